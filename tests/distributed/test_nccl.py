"""The same parity on NCCL, one GPU per rank (needs at least two CUDA devices)."""

from __future__ import annotations

import pytest
import torch

from sgprepro.comm.launch import launch_local
from tests.distributed.helpers import make_model, run_reference_case

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.dist,
    pytest.mark.skipif(
        not torch.cuda.is_available() or torch.cuda.device_count() < 2,
        reason="NCCL needs one GPU per rank (two or more CUDA devices)",
    ),
]


def _worker(ctx, case: str):
    from sgprepro.algorithms import AlgorithmConfig, build_algorithm
    from sgprepro.comm import Communicator
    from sgprepro.topology import PeersSchedule, make_topology
    from tests.distributed.helpers import (
        CASES,
        STEPS,
        STEPS_PER_EPOCH,
        closure_for,
        lr_fn,
        make_optimizer,
    )

    algo_cfg, topo_spec, peers = CASES[case]
    model = make_model().to(ctx.device)
    opt = make_optimizer(model)
    comm = Communicator(ctx.rank, ctx.world_size, ctx.timeout_s, backend="nccl")
    spec = dict(topo_spec)
    algo = build_algorithm(
        AlgorithmConfig(**algo_cfg),
        model,
        opt,
        comm,
        make_topology(spec.pop("name"), ctx.world_size, **spec),
        PeersSchedule(peers),
        lr_fn,
    )
    for step in range(STEPS):
        algo.train_step(step, step / STEPS_PER_EPOCH, closure_for(model, opt, ctx.rank, step))
    algo.finish()
    return algo.debiased().cpu().clone()


@pytest.mark.parametrize("case", ["allreduce_param_avg", "sgp_exp_paper", "dpsgd"])
def test_nccl_matches_the_oracle(case):
    n = min(torch.cuda.device_count(), 4)
    out = launch_local(_worker, n, (case,), backend="nccl", timeout_s=60, job_timeout_s=300)
    expected = run_reference_case(case, n).params()
    for rank in range(n):
        assert float((out[rank] - expected[rank]).norm() / expected[rank].norm()) < 1e-5
