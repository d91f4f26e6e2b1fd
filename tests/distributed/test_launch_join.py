"""A job whose ranks return at once, with no collective, still succeeds: every rank waits until
all ranks have their connections up before its function runs (``sgprepro.comm.group``)."""

from __future__ import annotations

import pytest

from sgprepro.comm.launch import launch_local

pytestmark = pytest.mark.dist


def _rank(ctx) -> int:
    return ctx.rank  # no collective: the rank closes its group as soon as it is up


def test_ranks_that_return_at_once_do_not_break_peers_still_connecting() -> None:
    # without the wait, about one launch of 32 such ranks in four failed on 2 cores with
    # "Connection closed by peer" in a peer's group init
    for _ in range(3):
        assert launch_local(_rank, 32, (), timeout_s=60, job_timeout_s=120) == list(range(32))
