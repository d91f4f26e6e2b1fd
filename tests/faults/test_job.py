"""One live 4-node run, seen from outside: it listens on loopback only, its folder refuses a
second job, and SIGTERM stops it and every worker within seconds, with one line and error.txt."""

from __future__ import annotations

import json
import os
import signal
import time

import psutil
import pytest

from sgprepro.app import RunDirError, run_job
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

pytestmark = [pytest.mark.dist, pytest.mark.slow]

LOOPBACK = ("127.0.0.1", "::1")


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("job")
    run_dir = cwd / "run"
    proc = start_cli(["nodes=4", *ENDLESS, f"hydra.run.dir={run_dir}"], cwd)
    wait_for(
        lambda: len(workers(proc.pid)) == 4 and all(trace_lines(run_dir, r) >= 3 for r in range(4)),
        120,
        "4 workers training",
    )
    yield proc, run_dir, cwd
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def listening(pids: list[int]) -> list[tuple[int, str, int]]:
    return [
        (pid, c.laddr.ip, c.laddr.port)
        for pid in pids
        for c in psutil.Process(pid).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    ]


def test_a_local_run_listens_on_loopback_only(job) -> None:
    proc, _, _ = job
    ranks = workers(proc.pid)
    socks = listening([proc.pid, *(p.pid for p in ranks.values())])
    # gloo's pair sockets exist (the check is not vacuous) and are all bound to loopback
    assert {pid for pid, _, _ in socks} == {p.pid for p in ranks.values()}, socks
    assert all(ip in LOOPBACK for _, ip, _ in socks), socks
    # the job process serves no rendezvous socket at all (a FileStore in a private folder)
    assert not [s for s in socks if s[0] == proc.pid]


def test_a_second_job_on_the_same_folder_fails_at_once(job, compose_cfg) -> None:
    proc, run_dir, _ = job
    run_json = (run_dir / "run.json").read_text()
    cfg = validate(compose_cfg(["nodes=4", "debug=tiny"]))
    t0 = time.monotonic()
    with pytest.raises(RunDirError) as info:  # the CLI prints it as one line, exit status 1
        run_job(cfg, run_dir)
    assert time.monotonic() - t0 < 2  # at once: no worker, no wait
    msg = str(info.value)
    assert "\n" not in msg
    assert f"run folder {run_dir} is in use by another job (pid {proc.pid})" in msg, msg
    assert "hydra.run.dir=" in msg  # the fix
    assert proc.poll() is None  # the first job runs on
    assert len(workers(proc.pid)) == 4
    assert (run_dir / "run.json").read_text() == run_json  # and its records are untouched
    assert not (run_dir / "error.txt").exists()
    assert not (run_dir / "attempts").exists()


def test_sigterm_stops_the_job_and_every_worker_with_one_line(job) -> None:
    proc, run_dir, _ = job
    ranks = list(workers(proc.pid).values())
    assert len(ranks) == 4
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert elapsed < 10
    assert "Traceback" not in err
    (line,) = error_lines(err)
    assert line.startswith("error: interrupted by SIGTERM: the run in ")
    assert "error.txt" in line
    assert not alive(ranks)
    error = (run_dir / "error.txt").read_text()
    assert error.startswith("interrupted by SIGTERM (signal 15)"), error
    assert not (run_dir / "done").exists()
    assert not (run_dir / "summary.json").exists()
    assert json.loads((run_dir / "run.json").read_text())["cell"]["nodes"] == 4
    before = snapshot(run_dir)
    time.sleep(1.0)
    assert snapshot(run_dir) == before  # nothing writes into the folder once the job is gone
