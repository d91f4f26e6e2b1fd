"""The command line: ``sgprepro-train`` (the Hydra app) and ``sgprepro-report`` (tables, figures).

    sgprepro-train nodes=8 algorithm=sgp
    sgprepro-train -m +sweep=table1_scaled                    # the default study, locally
    sgprepro-train -m +sweep=table1_paper hydra/launcher=slurm
    torchrun --nnodes 2 --nproc-per-node 1 ... -m sgprepro.train nodes=2   # one rank per process
    sgprepro-report --runs multirun/table1_scaled --study table1_scaled --out reports/table1_scaled
    eval "$(sgprepro-train -sc install=bash)"                 # tab completion of overrides

``python -m sgprepro.train`` is the same app as ``sgprepro-train``. Only the schema (plain
dataclasses) is imported before Hydra parses the command line, so ``--help`` and tab completion
never load torch; the job itself lives in :mod:`sgprepro.app`.

Exit status: 0 ok; 1 a run failed, or its folder is held by another job or cannot be written
(a sweep runs every cell, then exits 1 listing those); 2 bad input (a sweep runs its valid
cells, then exits 2 listing the others); 128 + the signal
number when SIGTERM or SIGINT stopped it (130 for Ctrl-C).
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from sgprepro.configstore import register_configs
from sgprepro.interrupt import JobInterrupted
from sgprepro.overrides import SITE_HEADER
from sgprepro.paths import conf_dir
from sgprepro.train.callbacks import (
    BASIC_LAUNCHER,
    EXIT_BAD_INPUT,
    FAILED,
    SKIPPED,
    SkippedCell,
    fail,
)

register_configs()


def _skip_or_fail(
    message: str, code: int, cells: list[SkippedCell] = SKIPPED, what: str = "skipped"
) -> None:
    """A cell that cannot run (``SKIPPED``) or whose run failed (``FAILED``): in a local sweep,
    one line and on to the next cell (the sweep ends non-zero, listing it); a single run, or a
    job of a cluster sweep (whose launcher collects the jobs' statuses), exits here with
    ``code``."""
    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN or hc.launcher.get("_target_") != BASIC_LAUNCHER:
        fail(message, code)
    cell = SkippedCell(int(hc.job.num), " ".join(hc.overrides.task), message, code)
    cells.append(cell)
    if code == EXIT_BAD_INPUT:
        _drop_refused_folder(Path(hc.runtime.output_dir), f"{hc.job.name}.log")
    print(f"error: cell {cell}; {what}", file=sys.stderr, flush=True)


def _drop_refused_folder(out: Path, log_name: str) -> None:
    """Remove the folder Hydra made for a refused cell, if it holds only what Hydra put there
    (``.hydra/`` and an empty job log): a cell that never ran leaves no run folder behind. A
    folder with anything else in it (an earlier run's records) is kept as it was (the sweeper
    had Hydra write no ``.hydra/`` for a refused cell); so is one another job holds (its
    ``.lock``)."""
    from sgprepro.app import LOCK_FILE

    hydra_only = {".hydra", log_name, LOCK_FILE}
    try:
        fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a live job's folder is left alone
        entries = list(out.iterdir())
        if all(e.name in hydra_only and (e.is_dir() or e.stat().st_size == 0) for e in entries):
            shutil.rmtree(out, ignore_errors=True)
    except OSError:
        pass
    finally:
        os.close(fd)


@hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="config")
def _main(dcfg: DictConfig) -> float | None:
    from sgprepro.app import RunDirError, run_job
    from sgprepro.config import ConfigError, validate

    hc = HydraConfig.get()
    try:
        cfg = validate(
            dcfg, check_paths=not dcfg.get("dry_run", False), overrides=list(hc.overrides.task)
        )
    except ConfigError as exc:
        _skip_or_fail(str(exc), EXIT_BAD_INPUT)
        return None
    from sgprepro.config import (
        overridden_choices,
        recorded_overrides,
        unread_settings,
        unscaled_schedule,
    )
    from sgprepro.launchenv import detect
    from sgprepro.tracking.wandb_run import online_without_key

    if detect().rank == 0:  # once per run, not once per rank of a cluster job
        task = list(hc.overrides.task)
        notes = [*unread_settings(cfg, task), *overridden_choices(cfg, task)]
        notes += unscaled_schedule(cfg)
        if not cfg.dry_run:
            notes += once_per_process(online_without_key(cfg.logger.wandb_mode))
        for line in notes:
            print(f"warning: {line}", file=sys.stderr, flush=True)
    out = Path(hc.runtime.output_dir)
    try:
        recorded = recorded_overrides(
            list(hc.overrides.task), list(hc.job.config.override_dirname.exclude_keys), cfg.study
        )
        result = run_job(cfg, out, overrides=recorded)
    except RunDirError as exc:
        _skip_or_fail(str(exc), 1)
        return None
    except JobInterrupted as exc:
        exc.run_dir = out  # type: ignore[attr-defined]
        raise
    if result["status"] == "ok":
        summary = result.get("summary")
        return float(summary["val/top1_node_mean"]) if summary else None
    if result["status"] == "failed":
        where = (
            f"details in {result.get('error_file', out / 'error.txt')}"
            if result.get("error_txt") is None
            else f"error.txt could not be written in {out}: {result['error_txt']}"
        )
        _skip_or_fail(f"{result['error']} ({where})", 1, FAILED, "failed")
    return None


_SAID: set[str] = set()


def once_per_process(lines: list[str]) -> list[str]:
    """The lines not yet said by this process: a warning about the machine rather than the run
    (no W&B key) is said once for a whole sweep of in-process cells, not once per cell."""
    fresh = [line for line in lines if line not in _SAID]
    _SAID.update(fresh)
    return fresh


def _interrupted(signum: int, _frame: object) -> None:
    raise JobInterrupted(signum)


def _external_rank_args(argv: list[str]) -> list[str]:
    """Under an env:// launcher (torchrun), the overrides every process adds to the command line.

    Rank 0 keeps Hydra's run folder; the other ranks write into rank 0's (the job agrees on it
    through the rendezvous store), so Hydra gives them no folder, no ``.hydra/`` and no log
    file of their own (their log goes to the launcher's output).

    Raises:
        SystemExit: ``-m`` (a sweep) under an env:// launcher, or inconsistent launcher variables.
    """
    from sgprepro.launchenv import LaunchEnvError, detect

    try:
        launch = detect()
    except LaunchEnvError as exc:
        fail(str(exc), EXIT_BAD_INPUT)
        raise  # unreachable: fail() exits
    if launch.kind != "env":
        return []
    if any(a in ("-m", "--multirun") for a in argv):
        fail(
            f"-m with RANK={launch.rank}, WORLD_SIZE={launch.world_size} set: under torchrun "
            "(or any env:// launcher) each process is one rank of one run; launch one run per "
            "cell, or run the sweep locally or with hydra/launcher=slurm",
            EXIT_BAD_INPUT,
        )
    if launch.rank == 0:
        return []
    extra = ["hydra.run.dir=.", "hydra.output_subdir=null"]
    if not any(a.startswith(("hydra/job_logging=", "+hydra/job_logging=")) for a in argv):
        extra.append("hydra/job_logging=stdout")
    return extra


HELP = """\
sgprepro-train: one run, or a sweep (-m), of the SGP reproducibility harness (a Hydra app).

  sgprepro-train nodes=8 algorithm=sgp                        one run (nodes is explicit)
  sgprepro-train nodes=4 debug=tiny                           about 10 s on a CPU
  sgprepro-train -m +sweep=table1_scaled                      the default study, locally
  sgprepro-train -m +sweep=table1_paper hydra/launcher=slurm  one SLURM job per cell
  torchrun --nnodes 2 --nproc-per-node 1 --rdzv-backend c10d --rdzv-endpoint HOST:PORT \\
      -m sgprepro.train nodes=2                               one rank per process
  sgprepro-report --runs multirun/table1_scaled --study table1_scaled --out reports/table1_scaled

Options: -m (sweep), --cfg job (print the config), --hydra-help (Hydra's own flags),
-sc install=bash (tab completion: eval "$(sgprepro-train -sc install=bash)"). docs/cluster.md
covers SLURM, torchrun and W&B.

== Configuration groups (group=option) ==
{groups}
== Config{given} ==
{config}"""


def _config_groups() -> str:
    """``group: option, ...`` for every group of the config tree (Hydra's own under
    ``--hydra-help``), read from the folders: no composition per group."""
    from sgprepro.overrides import group_options

    lines = [f"{g}: {', '.join(opts)}" for g, opts in group_options().items() if opts]
    return "\n".join(lines) + "\n"


def _help(argv: list[str]) -> str:
    """The ``--help`` text: the groups and the config composed with the given overrides (one
    composition, no torch: well under Hydra's own help, which composes once per group)."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    overrides = [a for a in argv if not a.startswith("-")]
    with initialize_config_dir(version_base="1.3", config_dir=str(conf_dir()), job_name="help"):
        try:
            cfg = compose("config", overrides=overrides)
        except (HydraException, OmegaConfBaseException) as exc:
            text = str(exc).split("Config search path")[0]  # Hydra appends its search path
            why = " ".join(line.strip() for line in text.splitlines() if line.strip())
            fail(f"--help with {' '.join(overrides)}: {why}; fix the override, or run --help alone")
    given = f" (with {' '.join(overrides)})" if overrides else ""
    return HELP.format(groups=_config_groups(), given=given, config=OmegaConf.to_yaml(cfg))


def _check_site_files(argv: list[str], root: Path | None = None) -> None:
    """Refuse a ``local=<site>`` whose file in the config folder lacks :data:`SITE_HEADER`
    (Hydra's own error, "Key 'local' not in 'Config'", names neither the file nor the fix).
    A site on another search path (``hydra.searchpath``) is left to Hydra; a missing site file
    is :func:`sgprepro.overrides.check_overrides`'s."""
    root = (root or conf_dir()).resolve()
    for arg in argv:
        key, _, value = arg.partition("=")
        if key.lstrip("+") != "local" or not value:  # ~local removes the site: nothing to read
            continue
        if value.startswith("choice(") and value.endswith(")"):
            value = value[len("choice(") : -1]
        for site in (v.strip() for v in value.split(",")):  # a sweep: local=a,b
            path = root / "local" / f"{site}.yaml"
            if not site or not path.is_file():
                continue
            lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
            if not lines or lines[0].replace(" ", "") != SITE_HEADER.replace(" ", ""):
                shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
                fail(
                    f"local={site}: {shown} must start with the line '{SITE_HEADER}' (site "
                    "settings are top-level keys such as data.root, not keys under local.); "
                    "add that line as its first line"
                )


def train() -> None:
    """``sgprepro-train``: run the app; SIGTERM or SIGINT anywhere (a run, or between the cells of
    a sweep) ends it with one line and status 128 + the signal number."""
    argv = sys.argv[1:]
    if "--help" in argv or "-h" in argv:
        _check_site_files(argv)
        print(_help(argv), end="")
        return
    _check_site_files(argv)
    from sgprepro.overrides import check_overrides

    problem = check_overrides(argv)
    if problem is not None:
        fail(problem, EXIT_BAD_INPUT)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _interrupted)  # during a run, sgprepro.app takes over
    sys.argv += _external_rank_args(argv)
    try:
        if _one_rank_of_env_job():
            _end_as_a_rank(_main)
        else:
            _main()
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


def _one_rank_of_env_job() -> bool:
    """Whether this process is one rank of a job an env:// launcher (torchrun) started."""
    from sgprepro.launchenv import detect

    return detect().kind == "env"


def _end_as_a_rank(main: Callable[[], object]) -> NoReturn:
    """Run ``main``, then end the process without the interpreter's teardown, as the local
    launcher's ranks do: a torchrun rank's C++ objects (the rendezvous store's client, gloo's
    transport) can call std::terminate when destroyed at exit while the other ranks tear theirs
    down (about one job in ten aborted with SIGABRT after its run was done, leaving the other
    machine's torchrun waiting on its exit barrier). Logs and streams are flushed first; the
    exit status is the one the run would have had."""
    code: int = 0
    try:
        main()
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except (JobInterrupted, KeyboardInterrupt):
        raise  # the caller says what was stopped, then exits
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def report() -> None:
    """``sgprepro-report``: build a study's report (``python -m sgprepro.results``)."""
    from sgprepro.results.__main__ import main

    sys.exit(main(prog="sgprepro-report"))


__all__ = ["report", "train"]
