"""Killing the job process (SIGKILL, as timeout -s KILL or an OOM killer do) takes its workers
with it; Ctrl-C stops a sweep with one line; a run that completed keeps its done marker."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from sgprepro import app
from sgprepro.comm.launch import JobInterrupted
from sgprepro.config import validate
from tests.faults.helpers import (
    ENDLESS,
    alive,
    error_lines,
    snapshot,
    start_cli,
    trace_lines,
    wait_for,
    workers,
)


def _job_process(cfg, run_dir) -> int:
    """A job process as the CLI runs it (run_job in the main thread), forked from this one."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if app.run_job(cfg, run_dir)["status"] == "ok" else 1
        finally:
            os._exit(code)
    return pid


@pytest.mark.dist
@pytest.mark.slow
def test_sigkill_of_the_job_takes_every_worker_and_frees_the_folder(compose_cfg, tmp_path) -> None:
    run_dir = tmp_path / "run"
    job = _job_process(validate(compose_cfg(["nodes=4", *ENDLESS])), run_dir)
    try:
        ranks = wait_for(
            lambda: (
                len(w := workers(job)) == 4
                and all(trace_lines(run_dir, r) >= 3 for r in range(4))
                and list(w.values())
            ),
            120,
            "4 workers training",
        )
    finally:
        os.kill(job, signal.SIGKILL)
        os.waitpid(job, 0)
    wait_for(lambda: not alive(ranks), 3, "the workers to die with their job")
    before = snapshot(run_dir)
    time.sleep(1.5)
    assert snapshot(run_dir) == before  # no orphan trains on and writes into the folder
    assert not (run_dir / "summary.json").exists()
    assert not (run_dir / "done").exists()
    # the folder is free at once: a re-run takes it, moves the killed run's records aside, and
    # nothing of the killed job writes into the new run
    rerun = app.run_job(validate(compose_cfg(["nodes=4", "debug=tiny"])), run_dir)
    assert rerun["status"] == "ok"
    assert (run_dir / "done").exists()
    assert json.loads((run_dir / "summary.json").read_text())["iterations"] == 8
    assert all(trace_lines(run_dir, r) == 8 for r in range(4))
    (attempt,) = (run_dir / "attempts").iterdir()
    assert trace_lines(attempt, 0) >= 3  # the killed run's records, kept


@pytest.mark.dist
@pytest.mark.slow
def test_ctrl_c_of_a_sweep_stops_it_with_one_line_and_records_why(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    proc = start_cli(["-m", "nodes=4", "seed=0,1", *ENDLESS, f"hydra.sweep.dir={sweep}"], tmp_path)
    try:
        cell = wait_for(lambda: next(sweep.glob("sgp-n4-*-s0*"), None), 120, "cell 0")
        ranks = wait_for(
            lambda: (
                len(w := workers(proc.pid)) == 4
                and all(trace_lines(cell, r) >= 3 for r in range(4))
                and list(w.values())
            ),
            120,
            "4 workers training",
        )
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: the job and its workers
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 128 + signal.SIGINT, err[-2000:]
    assert "Traceback" not in err
    (line,) = error_lines(err)
    assert line.startswith("error: interrupted by SIGINT: the run in ")
    assert str(cell) in line
    assert (cell / "error.txt").read_text().startswith("interrupted by SIGINT (signal 2)")
    assert not (cell / "done").exists()
    assert not list(sweep.glob("sgp-n4-*-s1*/run.json"))  # the sweep stopped there
    assert not alive(ranks)


def test_a_signal_as_the_run_completes_keeps_its_done_marker(
    compose_cfg, tmp_path, monkeypatch
) -> None:
    cfg = validate(compose_cfg(["nodes=2", "debug=tiny"]))
    summary = {
        "val/top1_node_mean": 1.0,
        "time/emulated_s_per_itr": 1.0,
        "time/wall_s_per_itr": 1.0,
    }

    def launch(*args, **kwargs):  # the workers' part of a run that completes
        (tmp_path / "summary.json").write_text(json.dumps(summary))
        return [{"summary": summary}, {"summary": None}]

    def done_then_signal(out):
        os.kill(os.getpid(), signal.SIGTERM)  # arrives while the marker is being written
        assert not (out / "done").exists()
        mark_done(out)

    mark_done = app.mark_done
    monkeypatch.setattr("sgprepro.comm.launch.launch_local", launch)
    monkeypatch.setattr(app, "mark_done", done_then_signal)
    with pytest.raises(JobInterrupted) as info:
        app.run_job(cfg, tmp_path)
    assert info.value.signame == "SIGTERM"
    assert (tmp_path / "done").exists()  # complete: it keeps its marker
    assert not (tmp_path / "error.txt").exists()


def test_a_signal_before_the_run_completes_records_the_interruption(
    compose_cfg, tmp_path, monkeypatch
) -> None:
    cfg = validate(compose_cfg(["nodes=2", "debug=tiny"]))

    def launch(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # the handler raises before this ends
        raise AssertionError("SIGINT did not interrupt the job")

    monkeypatch.setattr("sgprepro.comm.launch.launch_local", launch)
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    with pytest.raises(JobInterrupted) as info:
        app.run_job(cfg, tmp_path)
    assert info.value.exit_code == 130
    assert info.value.error_txt is None
    assert (tmp_path / "error.txt").read_text().startswith("interrupted by SIGINT (signal 2)")
    assert not (tmp_path / "done").exists()
    # the job's handlers are gone again: the test process has its own back
    assert {sig: signal.getsignal(sig) for sig in before} == before
