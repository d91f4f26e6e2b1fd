"""The rank that failed is named, with its exit code or signal; a peer that only saw its
connection close reports a closed connection, never a timeout."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import torch

from sgprepro.app import run_job
from sgprepro.comm import Communicator
from sgprepro.comm.communicator import CommTimeoutError
from sgprepro.comm.launch import WorkerFailure, describe_error, launch_local
from sgprepro.config import validate
from tests.faults.helpers import ENDLESS, trace_lines, workers

GLOO_CLOSED = (
    "[/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:561] Connection closed by peer "
    "[127.0.0.1]:18821. This is typically caused by a remote worker crashing."
)


def test_a_closed_connection_is_not_reported_as_a_timeout() -> None:
    try:
        try:
            raise RuntimeError(GLOO_CLOSED)
        except RuntimeError as exc:  # what Communicator does with a failed wait
            raise CommTimeoutError(3, 30, 2, "recv", 120.0, str(exc)) from exc
    except CommTimeoutError as exc:
        kind, cause = describe_error(3, exc)
    assert kind == "closed"
    assert cause.startswith("ConnectionClosed: rank 3 step 30: recv with peer 2: the connection")
    assert "not a timeout" in cause
    assert "Connection closed by peer [127.0.0.1]:18821" in cause
    assert "did not complete within" not in cause
    assert "120" not in cause
    # a real timeout keeps its message
    kind, cause = describe_error(0, CommTimeoutError(0, 3, 1, "recv", 5.0, "Timed out"))
    assert kind == "error"
    assert "did not complete within 5.0s" in cause


def _die_while_peers_wait(ctx, victim: int, how: str) -> int:
    comm = Communicator(ctx.rank, ctx.world_size, ctx.timeout_s)
    comm.barrier(0)
    if ctx.rank == victim:
        time.sleep(0.3)
        if how == "exit":
            os._exit(3)
        os.kill(os.getpid(), signal.SIGKILL)
    comm.all_reduce_(torch.ones(4), step=1)  # the victim never joins
    return ctx.rank


@pytest.mark.dist
@pytest.mark.parametrize(
    ("how", "head"),
    [("exit", "exited with code 3"), ("kill", "killed by SIGKILL (signal 9)")],
)
def test_the_rank_that_died_is_named_with_its_exit_code_or_signal(how, head) -> None:
    t0 = time.monotonic()
    with pytest.raises(WorkerFailure) as info:
        launch_local(_die_while_peers_wait, 4, (2, how), timeout_s=30, job_timeout_s=60)
    assert time.monotonic() - t0 < 20  # at once, not after the peers' 30 s timeout
    failure = info.value
    assert failure.rank == 2, failure.cause
    assert failure.cause.startswith(f"{head} without reporting an error"), failure.cause
    assert str(failure).startswith(f"rank 2 failed: {head}")
    # the peers' reports follow, as closed connections caused by another rank
    assert "ConnectionClosed: rank " in failure.cause
    assert "did not complete within" not in failure.cause


@pytest.mark.dist
@pytest.mark.slow
def test_sigkill_of_rank_2_in_a_training_run_names_rank_2(compose_cfg, tmp_path) -> None:
    cfg = validate(compose_cfg(["nodes=4", *ENDLESS]))

    def kill_rank_2() -> None:
        end = time.monotonic() + 120
        while time.monotonic() < end:
            rank2 = workers(os.getpid()).get(2)
            if rank2 is not None and trace_lines(tmp_path, 2) >= 3:
                rank2.send_signal(signal.SIGKILL)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_rank_2, daemon=True)
    killer.start()
    t0 = time.monotonic()
    result = run_job(cfg, tmp_path)
    elapsed = time.monotonic() - t0
    killer.join(timeout=1)
    assert result["status"] == "failed", result
    assert result["rank"] == 2, result
    error = (tmp_path / "error.txt").read_text()
    assert error.startswith("rank 2: killed by SIGKILL (signal 9) without reporting an error")
    assert "did not complete within" not in error
    assert elapsed < cfg.comm.timeout_s  # reported as it happened, not after a timeout
    assert not (tmp_path / "done").exists()
