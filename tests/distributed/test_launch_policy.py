"""Forked workers run as batch work (``SCHED_BATCH``), their gloo threads included."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

from sgprepro.comm import Communicator
from sgprepro.comm.launch import launch_local

pytestmark = [
    pytest.mark.dist,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SCHED_BATCH is Linux's"),
]


def _policies(ctx) -> dict[int, int]:
    comm = Communicator(ctx.rank, ctx.world_size, ctx.timeout_s)
    t = torch.ones(3)
    comm.all_reduce_(t, 0)  # the group's threads exist and have carried traffic
    tids = [int(p.name) for p in Path("/proc/self/task").iterdir()]
    return {tid: os.sched_getscheduler(tid) for tid in tids}


def test_every_thread_of_every_worker_runs_sched_batch() -> None:
    own = os.sched_getscheduler(0)
    results = launch_local(_policies, 3, (), timeout_s=30, job_timeout_s=60)
    assert os.sched_getscheduler(0) == own  # the job process keeps its own policy
    for rank, policies in enumerate(results):
        assert len(policies) >= 2, f"rank {rank}: expected the main and gloo threads"
        assert set(policies.values()) == {os.SCHED_BATCH}, f"rank {rank}: {policies}"
