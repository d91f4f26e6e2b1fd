"""The point-to-point all-reduce on real gloo groups: the exact sum, the same bits on every rank,
for group sizes that are and are not powers of two, over consecutive steps."""

from __future__ import annotations

import pytest
import torch

from sgprepro.comm import Communicator
from sgprepro.comm.launch import launch_local

pytestmark = pytest.mark.dist

STEPS = 3


def _value(rank: int, step: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1000 * step + rank)
    return torch.randn(257, generator=g, dtype=torch.float64)


def _all_reduce_steps(ctx) -> list[torch.Tensor]:
    comm = Communicator(ctx.rank, ctx.world_size, ctx.timeout_s)
    out = []
    for step in range(STEPS):
        t = _value(ctx.rank, step)
        comm.all_reduce_(t, step)
        out.append(t)
    return out


@pytest.mark.parametrize("n", [2, 3, 5, 6, 8])
def test_all_reduce_is_the_exact_sum_with_the_same_bits_everywhere(n: int) -> None:
    results = launch_local(_all_reduce_steps, n, (), timeout_s=30, job_timeout_s=120)
    for step in range(STEPS):
        expected = sum(_value(r, step) for r in range(n))
        got = [results[r][step] for r in range(n)]
        torch.testing.assert_close(got[0], expected, rtol=1e-12, atol=1e-12)
        for r in range(1, n):
            assert torch.equal(got[r], got[0]), f"rank {r} differs from rank 0 at step {step}"


def _all_reduce_at_own_step(ctx) -> torch.Tensor:
    comm = Communicator(ctx.rank, ctx.world_size, ctx.timeout_s)
    t = _value(ctx.rank, 0)
    comm.all_reduce_(t, step=100 + 7 * ctx.rank)  # an asynchronous run's ranks end apart
    return t


def test_all_reduce_does_not_need_the_ranks_to_agree_on_the_step() -> None:
    results = launch_local(_all_reduce_at_own_step, 4, (), timeout_s=10, job_timeout_s=60)
    expected = sum(_value(r, 0) for r in range(4))
    for r in range(4):
        torch.testing.assert_close(results[r], expected, rtol=1e-12, atol=1e-12)
