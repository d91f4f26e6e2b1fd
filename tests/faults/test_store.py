"""The local rendezvous store is a FileStore in a private folder: no socket, removed at the end,
and it does everything AD-PSGD asks of the job's store."""

from __future__ import annotations

import os
import tempfile

import pytest

from sgprepro.comm.launch import launch_local

STEPS = 5


def _store_ops(ctx) -> dict:
    store = ctx.store
    for _ in range(STEPS):  # AD-PSGD's global gradient counter
        store.add("counter", 1)
    if ctx.rank == 1:
        store.set("stop_flag", "1")
    store.wait(["stop_flag"])
    # every rank proposes its own stop round; compare_set lets exactly one win
    agreed = store.compare_set("stop_round", "", str(10 + ctx.rank))
    from sgprepro.comm import Communicator

    Communicator(ctx.rank, ctx.world_size, ctx.timeout_s).barrier(0)
    return {
        "counter": store.add("counter", 0),
        "flag": store.check(["stop_flag"]),
        "missing": store.check(["never_set"]),
        "agreed": bytes(agreed).decode(),
        "stop_round": bytes(store.get("stop_round")).decode(),
        "store": type(store).__name__,
    }


@pytest.mark.dist
def test_the_store_does_what_adpsgd_needs_and_leaves_nothing(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = os.fork()  # a job process killed by SIGKILL left its rendezvous folder behind
    if gone == 0:
        os._exit(0)
    os.waitpid(gone, 0)
    stale = tmp_path / f"sgprepro-rendezvous-{gone}-abc"
    stale.mkdir()
    (stale / "store").write_text("")
    alive = tmp_path / f"sgprepro-rendezvous-{os.getppid()}-def"  # a live job's: kept
    alive.mkdir()
    n = 3
    out = launch_local(_store_ops, n, (), timeout_s=30, job_timeout_s=60)
    assert all(o["counter"] == n * STEPS for o in out), out
    assert all(o["flag"] and not o["missing"] for o in out), out
    rounds = {o["stop_round"] for o in out}
    assert len(rounds) == 1, out
    assert rounds <= {str(10 + r) for r in range(n)}, out
    assert {o["agreed"] for o in out} == rounds  # every proposer learns the winner
    assert {o["store"] for o in out} == {"PrefixStore"}
    left = [str(p) for p in tmp_path.glob("sgprepro-rendezvous-*")]
    assert left == [str(alive)]  # its own removed at the end, the dead job's on the way
