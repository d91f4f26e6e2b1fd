"""Hydra callbacks of a sweep: the study's efficiency, printed when a multirun ends.

Efficiency = summed per-step training CPU of every run the sweep trained (each rank's thread CPU
time of forward, backward, the local step and the mixing arithmetic, AD-PSGD's gossip loop
included, from its trace: :func:`sgprepro.timing.trace.training_cpu_s`) / (the sweep's wall time
x the machine's cores). It says how much of the machine the study spent training rather than
starting processes, evaluating, exchanging messages or waiting on the scheduler. Written to
``efficiency.json`` in the sweep directory (``training_cpu_s``, ``wall_s``, ``cores``), with where
a local sweep's wall time went: rank 0's iteration loops (``loops_s``, the sum of its steps' wall
time), the rest of the jobs (``jobs_s - loops_s``: starting and evaluating, the end-of-run
summary, filing with W&B) and the time between and before jobs (``wall_s - jobs_s``); per run in
``runs``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from sgprepro.timing.trace import training_cpu_s
from sgprepro.tracking import read_jsonl

log = logging.getLogger(__name__)


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def trained_cpu_s(run_dir: Path) -> float | None:
    """Summed per-step training CPU (all ranks, all iterations) of a finished run, from its
    traces."""
    total = 0.0
    found = False
    for path in sorted(run_dir.glob("trace_r*.jsonl")):
        found = True
        for rec in read_jsonl(path):
            try:
                total += training_cpu_s(rec)
            except (TypeError, ValueError, KeyError):
                continue
    return total if found else None


def loop_wall_s(run_dir: Path) -> float | None:
    """Rank 0's iteration loop of a finished run: the summed wall time of its steps (its trace)."""
    path = run_dir / "trace_r0.jsonl"
    if not path.is_file():
        return None
    total = 0.0
    for rec in read_jsonl(path):
        try:
            total += float(rec["wall_s"])
        except (TypeError, ValueError, KeyError):
            continue
    return total


def efficiency(
    sweep_dir: Path,
    started: float,
    wall_s: float,
    cores: int,
    run_dirs: list[Path] | None = None,
    job_s: dict[Path, float] | None = None,
) -> dict[str, Any]:
    """The efficiency record of a sweep: its runs that finished after ``started`` were trained,
    those finished before were already done. ``run_dirs``: the sweep's own run folders (other
    sweeps may share ``sweep_dir``); None: every run under ``sweep_dir``. ``job_s``: the wall
    seconds of each of the sweep's jobs by run folder (a local sweep's; None elsewhere)."""
    compute = loops = 0.0
    runs: list[dict[str, Any]] = []
    trained = skipped = 0
    if run_dirs is None:
        markers = sorted(Path(sweep_dir).rglob("done"))
    else:
        unique = dict.fromkeys(Path(d).resolve() for d in run_dirs)  # two cells, one folder
        markers = [d / "done" for d in unique if (d / "done").is_file()]
    for done in markers:
        if "attempts" in done.parts:
            continue
        if done.stat().st_mtime < started:
            skipped += 1
            continue
        c = trained_cpu_s(done.parent)
        if c is not None:
            compute += c
            trained += 1
            loop = loop_wall_s(done.parent) or 0.0
            loops += loop
            job = (job_s or {}).get(done.parent.resolve())
            runs.append({"run": done.parent.name, "loop_s": loop, "job_s": job})
    return {
        "runs_trained": trained,
        "runs_already_done": skipped,
        "training_cpu_s": compute,
        "wall_s": wall_s,
        "cores": cores,
        "efficiency": compute / (wall_s * cores) if wall_s > 0 else None,
        "loops_s": loops,
        "jobs_s": sum(job_s.values()) if job_s else None,
        "runs": runs,
    }


def where_the_wall_went(rec: dict[str, Any]) -> str | None:
    """One line: a local sweep's wall time in rank 0's loops, the rest of its jobs, and between
    and before jobs (None where the jobs ran elsewhere)."""
    if rec.get("jobs_s") is None:
        return None
    wall, jobs, loops = rec["wall_s"], rec["jobs_s"], rec["loops_s"]
    return (
        f"where the wall went: {loops:.0f} s in the iteration loops (rank 0's steps, "
        f"{100 * loops / wall:.0f} %), {jobs - loops:.0f} s in the rest of the jobs (starting, "
        f"evaluating, summaries, W&B), {wall - jobs:.0f} s between and before jobs"
    )


class StudyEfficiency(Callback):
    """Prints and records the study's efficiency at the end of a multirun."""

    def __init__(self) -> None:
        self._start = 0.0
        self._start_wall = 0.0
        self._run_dirs: list[Path] = []
        self._job_start = 0.0
        self._job_s: dict[Path, float] = {}

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._start = time.time()
        self._start_wall = time.perf_counter()
        self._run_dirs = []
        self._job_s = {}

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._job_start = time.perf_counter()

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        """Notes the job's run folder and wall time (jobs of a local sweep end in this
        process)."""
        out = config.hydra.runtime.get("output_dir")
        if out:
            self._run_dirs.append(Path(out))
            key = Path(out).resolve()  # two cells, one folder: their jobs add up
            self._job_s[key] = self._job_s.get(key, 0.0) + time.perf_counter() - self._job_start

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        rec = efficiency(
            sweep_dir,
            self._start,
            time.perf_counter() - self._start_wall,
            available_cores(),
            # jobs of a cluster launcher end elsewhere: then every run under the sweep folder
            self._run_dirs or None,
            self._job_s or None,
        )
        (sweep_dir / "efficiency.json").write_text(json.dumps(rec, indent=2) + "\n")
        if rec["runs_trained"]:
            print(
                f"study efficiency: {100 * rec['efficiency']:.0f}% = summed per-step training "
                f"CPU {rec['training_cpu_s']:.0f} CPU-s / (wall {rec['wall_s']:.0f} s x {rec['cores']} "
                f"cores); {rec['runs_trained']} runs trained, {rec['runs_already_done']} already "
                f"done ({sweep_dir / 'efficiency.json'})",
                flush=True,
            )
            line = where_the_wall_went(rec)
            if line:
                print(line, flush=True)
