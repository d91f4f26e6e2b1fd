"""Ranks kept between jobs (``launch_local(reuse=...)``, what a sweep's jobs use): the same rank
processes run consecutive jobs of one size, a job of another size or a failure replaces them,
and none outlives the process that forked them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch
import torch.distributed as dist

from sgprepro.comm.launch import SHARED, WorkerFailure, close_kept_ranks, launch_local

pytestmark = pytest.mark.dist


def _job(ctx, data, tag):
    t = torch.tensor([float(ctx.rank)])
    dist.all_reduce(t)  # the kept group still works
    return {
        "pid": os.getpid(),
        "sum": float(t),
        "data": data,
        "tag": tag,
        "count": ctx.store.add("count", 1),  # this job's own key: starts afresh in every job
    }


def _fail_on_rank_1(ctx, _data, _tag):
    if ctx.rank == 1:
        raise RuntimeError("rank 1 breaks on purpose")
    dist.barrier()
    return ctx.rank


def _ranks_alive(pids) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def _wait_gone(pids, seconds: float = 10.0) -> list[int]:
    end = time.monotonic() + seconds
    while (alive := _ranks_alive(pids)) and time.monotonic() < end:
        time.sleep(0.05)
    return alive


def test_consecutive_jobs_of_one_size_run_on_the_same_ranks() -> None:
    data = {"shared": list(range(5))}  # reaches the ranks through the fork, not the pipe
    try:
        first = launch_local(_job, 4, (SHARED, "a"), shared=data, reuse="d", job_timeout_s=60)
        second = launch_local(_job, 4, (SHARED, "b"), shared=data, reuse="d", job_timeout_s=60)
        assert [r["pid"] for r in second] == [r["pid"] for r in first]
        assert [r["tag"] for r in second] == ["b"] * 4
        assert all(r["sum"] == 6.0 and r["data"] == data for r in first + second)
        assert sorted(r["count"] for r in second) == [1, 2, 3, 4]  # not 5..8
        # another size: the kept ranks are closed, new ones forked
        bigger = launch_local(_job, 8, (SHARED, "c"), shared=data, reuse="d", job_timeout_s=60)
        assert not {r["pid"] for r in bigger} & {r["pid"] for r in first}
        assert _wait_gone([r["pid"] for r in first]) == []
        assert bigger[0]["sum"] == 28.0
    finally:
        close_kept_ranks()
    assert _wait_gone([r["pid"] for r in bigger]) == []


def test_a_failed_job_stops_the_kept_ranks_and_the_next_job_forks_new_ones() -> None:
    try:
        before = launch_local(_job, 4, (None, "a"), reuse="d", job_timeout_s=60)
        with pytest.raises(WorkerFailure) as info:
            launch_local(_fail_on_rank_1, 4, (None, "b"), reuse="d", job_timeout_s=60)
        assert info.value.rank == 1
        assert "breaks on purpose" in info.value.cause
        assert _wait_gone([r["pid"] for r in before]) == []
        after = launch_local(_job, 4, (None, "c"), reuse="d", job_timeout_s=60)
        assert not {r["pid"] for r in after} & {r["pid"] for r in before}
    finally:
        close_kept_ranks()


def test_kept_ranks_end_with_the_process_that_forked_them() -> None:
    code = (
        "import os, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from test_rank_pool import _job\n"
        "from sgprepro.comm.launch import launch_local\n"
        "out = launch_local(_job, 4, (None, 'x'), reuse='d', job_timeout_s=60)\n"
        "print(' '.join(str(r['pid']) for r in out), flush=True)\n"
        # no close: the process ends with its ranks kept
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    pids = [int(p) for p in proc.stdout.split()]
    assert len(pids) == 4
    assert _wait_gone(pids) == []
