"""``python -m sgprepro.train``: the Hydra entry point (thin; the job logic is sgprepro.app).

Examples:
    python -m sgprepro.train nodes=8 algorithm=sgp
    python -m sgprepro.train -m algorithm=allreduce,dpsgd,adpsgd,sgp nodes=4,8,16,32 network=eth_10g

Exit status: 0 ok; 1 a run failed, or its folder is held by another job or cannot be written;
2 bad input (a sweep runs its valid cells, then exits 2 listing the others); 128 + the signal
number when SIGTERM or SIGINT stopped it (130 for Ctrl-C).
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from sgprepro.comm.launch import JobInterrupted
from sgprepro.config import ConfigError, register_configs, validate
from sgprepro.train.callbacks import BASIC_LAUNCHER, EXIT_BAD_INPUT, SKIPPED, SkippedCell, fail

CONF_DIR = str(Path(__file__).resolve().parents[3] / "conf")

register_configs()
log = logging.getLogger("sgprepro")


def _skip_or_fail(message: str, code: int) -> None:
    """A cell that cannot run: in a local sweep, one line and on to the next cell (the sweep ends
    non-zero, listing it); a single run (or a cluster sweep's task) exits here."""
    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN or hc.launcher.get("_target_") != BASIC_LAUNCHER:
        fail(message, code)
    cell = SkippedCell(int(hc.job.num), " ".join(hc.overrides.task), message)
    SKIPPED.append(cell)
    print(f"error: cell {cell}; skipped", file=sys.stderr, flush=True)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(dcfg: DictConfig) -> float | None:
    from sgprepro.app import RunDirError, run_job

    try:
        cfg = validate(dcfg, check_paths=not dcfg.get("dry_run", False))
    except ConfigError as exc:
        _skip_or_fail(str(exc), EXIT_BAD_INPUT)
        return None
    hc = HydraConfig.get()
    out = Path(hc.runtime.output_dir)
    try:
        result = run_job(cfg, out)
    except RunDirError as exc:
        _skip_or_fail(str(exc), 1)
        return None
    except JobInterrupted as exc:
        exc.run_dir = out  # type: ignore[attr-defined]
        raise
    if result["status"] == "ok":
        return float(result["summary"]["val/top1_node_mean"])
    if result["status"] == "failed" and hc.mode == RunMode.RUN:
        # a single run reports failure in its exit status; in a multirun the next job still runs
        where = (
            f"details in {out / 'error.txt'}"
            if result.get("error_txt") is None
            else f"error.txt could not be written in {out}: {result['error_txt']}"
        )
        fail(f"{result['error']} ({where})", 1)
    return None


def _interrupted(signum: int, frame: object) -> None:
    raise JobInterrupted(signum)


def cli() -> None:
    """Run the app; SIGTERM or SIGINT anywhere (a run, or between the cells of a sweep) ends it
    with one line and status 128 + the signal number."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _interrupted)  # during a run, sgprepro.app takes over
    try:
        main()
    except (JobInterrupted, KeyboardInterrupt) as exc:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the message is on its way
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if not isinstance(exc, JobInterrupted):
            exc = JobInterrupted(signal.SIGINT)
        run_dir = getattr(exc, "run_dir", None)
        if run_dir is None:
            what = "no run was in progress"
        elif (run_dir / "done").exists():
            what = f"the run in {run_dir} had completed and keeps its done marker"
        elif exc.error_txt is None:
            what = f"the run in {run_dir} was stopped with every worker; error.txt says so"
        else:
            what = (
                f"the run in {run_dir} was stopped with every worker; error.txt could not be "
                f"written there: {exc.error_txt}"
            )
        print(f"error: {exc}: {what}", file=sys.stderr, flush=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    cli()
