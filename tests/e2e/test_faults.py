"""Failure handling with real gloo workers: a crashing or hanging rank fails the job (error.txt,
no done marker, every worker stopped) within the configured timeouts, and a multirun goes on.

Faults come from the ``train.inject_fault`` config key: ``crash@R:S`` / ``hang@R:S``.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from sgprepro.app import run_job
from sgprepro.config import Config, validate
from sgprepro.tracking import DONE

pytestmark = [pytest.mark.dist, pytest.mark.slow]


def _tiny(compose_cfg, *overrides: str) -> Config:
    return validate(compose_cfg(["debug=tiny", "logger=disabled", *overrides]))


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True) if p.is_running()}


def _assert_workers_gone(before: set[int]) -> None:
    assert mp.active_children() == []
    alive = []
    for pid in _children() - before:
        try:
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE:
                alive.append((pid, proc.name()))
        except psutil.NoSuchProcess:
            pass
    assert not alive, alive


@pytest.fixture(scope="module")
def crashed(compose_cfg, tmp_path_factory) -> tuple[Config, Path, dict, float, set[int]]:
    cfg = _tiny(compose_cfg, "nodes=4", "train.inject_fault=crash@1:3", "comm.timeout_s=20")
    out = tmp_path_factory.mktemp("crash")
    before = _children()
    t0 = time.monotonic()
    result = run_job(cfg, out)
    return cfg, out, result, time.monotonic() - t0, before


def test_crashing_worker_fails_the_job_and_stops_every_worker(crashed) -> None:
    cfg, out, result, elapsed, before = crashed
    assert result["status"] == "failed"
    assert elapsed < cfg.comm.timeout_s  # reported at once, not after a peer's wait times out
    error = (out / "error.txt").read_text()
    assert re.match(rf"rank {result['rank']}: \w+(Error|Exception): \S", error), error
    assert not (out / DONE).exists()
    assert (out / "run.json").exists()  # the record of what was attempted stays
    _assert_workers_gone(before)


def test_error_txt_names_the_crashing_rank(crashed) -> None:
    _, out, result, _, _ = crashed
    assert result["rank"] == 1
    error = (out / "error.txt").read_text()
    assert error.startswith("rank 1: RuntimeError: injected fault: rank 1 crashed at step 3")


def test_hanging_worker_times_out_its_peers(compose_cfg, tmp_path) -> None:
    cfg = _tiny(compose_cfg, "nodes=2", "train.inject_fault=hang@1:3", "comm.timeout_s=5")
    before = _children()
    t0 = time.monotonic()
    result = run_job(cfg, tmp_path)
    elapsed = time.monotonic() - t0
    assert result["status"] == "failed"
    # rank 0's wait on its only peer at step 3 hits comm.timeout_s; the hung rank is killed
    assert result["rank"] == 0
    error = (tmp_path / "error.txt").read_text()
    assert error.startswith("rank 0: CommTimeoutError: rank 0 step 3: "), error
    assert re.search(r"with peer 1 did not complete within 5\.0s \(comm\.timeout_s\)", error)
    assert cfg.comm.timeout_s <= elapsed < cfg.comm.timeout_s + 30
    assert not (tmp_path / DONE).exists()
    _assert_workers_gone(before)


def _cli(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "WANDB_MODE": "disabled",
        "WANDB_DIR": str(tmp_path),
        "HYDRA_FULL_ERROR": "0",
    }
    return subprocess.run(
        [sys.executable, "-m", "sgprepro.train", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_single_run_failure_exits_non_zero(tmp_path) -> None:
    run_dir = tmp_path / "run"
    proc = _cli(
        ["nodes=2", "debug=tiny", "train.inject_fault=crash@1:1", f"hydra.run.dir={run_dir}"],
        tmp_path,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert re.match(r"error: rank \d failed: ", errors[0]), proc.stderr
    assert "error.txt" in errors[0]
    assert (run_dir / "error.txt").exists()
    assert not (run_dir / DONE).exists()


def test_multirun_goes_on_after_a_failed_job(tmp_path) -> None:
    sweep_dir = tmp_path / "sweep"
    proc = _cli(
        [
            "-m",
            "nodes=2",
            "debug=tiny",
            "train.inject_fault='crash@1:2',''",  # job 0 crashes, job 1 runs clean
            f"hydra.sweep.dir={sweep_dir}",
        ],
        tmp_path,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]  # the sweep ran on, then names the failure
    assert proc.stderr.strip().splitlines()[-1].startswith("error: 1 run(s) failed")
    jobs = sorted(p for p in sweep_dir.iterdir() if (p / "run.json").exists())
    assert len(jobs) == 2, [p.name for p in sweep_dir.iterdir()]
    failed = [p for p in jobs if "crash" in p.name]
    clean = [p for p in jobs if "crash" not in p.name]
    assert len(failed) == 1, [p.name for p in jobs]
    assert len(clean) == 1, [p.name for p in jobs]
    assert re.match(r"rank \d: \w+", (failed[0] / "error.txt").read_text())
    assert not (failed[0] / DONE).exists()
    assert (clean[0] / DONE).exists()
    assert not (clean[0] / "error.txt").exists()
    assert (clean[0] / "summary.json").exists()
    for job in jobs:  # the debug preset, left out of the folder name, is in the record
        recorded = json.loads((job / "run.json").read_text())["overrides"]
        assert "debug=tiny" in recorded.split(","), recorded
        assert "nodes=2" not in recorded.split(","), recorded  # a cell coordinate is not
