"""Shared pieces of the distributed tests: a tiny model, deterministic batches, a worker."""

from __future__ import annotations

import torch
from torch import nn

from sgprepro.algorithms import AlgorithmConfig, build_algorithm
from sgprepro.comm import Communicator
from sgprepro.reference import ReferenceRun
from sgprepro.topology import PeersSchedule, Topology, make_topology

DIM_IN, HIDDEN, CLASSES, BATCH = 6, 10, 3, 12


def make_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(DIM_IN, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, CLASSES)).double()


def make_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    # the paper's optimizer: SGD, momentum 0.9, Nesterov, weight decay 1e-4
    return torch.optim.SGD(
        model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4
    )


def lr_fn(step: float) -> float:
    return 0.05 + 0.05 * (int(step) % 3)  # changes every step, so a step-counter bug shows


def batch(rank: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(10_000 * rank + step)
    x = (
        torch.randn(BATCH, DIM_IN, generator=g, dtype=torch.float64) + rank * 0.3
    )  # heterogeneous shards
    y = torch.randint(0, CLASSES, (BATCH,), generator=g)
    return x, y


def closure_for(model: nn.Module, opt: torch.optim.Optimizer, rank: int, step: int):
    def closure() -> torch.Tensor:
        opt.zero_grad()
        device = next(model.parameters()).device
        x, y = (t.to(device) for t in batch(rank, step))
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss.detach()

    return closure


class SkewGraph(Topology):
    """A non-regular directed graph (test only): i -> i+1, and rank 0 also -> every other rank
    on even rounds. In-degrees differ, so PushSum weights leave 1."""

    name = "skew"

    @property
    def max_peers(self) -> int:
        return self.n - 1

    def out_peers(self, rank: int, step: int, num_peers: int = 1) -> tuple[int, ...]:
        if rank == 0 and step % 2 == 0:
            return tuple(range(1, self.n))
        return ((rank + 1) % self.n,)

    def in_peers(self, rank: int, step: int, num_peers: int = 1) -> tuple[int, ...]:
        return tuple(i for i in range(self.n) if rank in self.out_peers(i, step, num_peers))


def build_topology(spec: dict | None, n: int) -> Topology | None:
    if spec is None:
        return None
    spec = dict(spec)
    name = spec.pop("name")
    if name == "skew":
        return SkewGraph(n)
    return make_topology(name, n, **spec)


CASES: dict[str, tuple[dict, dict | None, dict]] = {
    # case -> (algorithm config, topology spec, peers schedule)
    "allreduce_param_avg": ({"name": "allreduce", "allreduce_mode": "param_avg"}, None, {0: 1}),
    "allreduce_grad_bucket": (
        {"name": "allreduce", "allreduce_mode": "grad_bucket", "bucket_mb": 0.0002},
        None,
        {0: 1},
    ),
    "sgp_exp_paper": ({"name": "sgp"}, {"name": "exponential", "form": "paper"}, {0: 1}),
    "sgp_phonebook_2peers_then_1": (
        {"name": "sgp"},
        {"name": "exponential", "form": "phonebook"},
        {0: 2, 1: 1},
    ),
    "sgp_skew": ({"name": "sgp"}, {"name": "skew"}, {0: 1}),
    "sgp_complete": ({"name": "sgp"}, {"name": "complete"}, {0: 1}),
    "osgp_exp_paper": ({"name": "osgp"}, {"name": "exponential", "form": "paper"}, {0: 1}),
    "osgp_skew": ({"name": "osgp"}, {"name": "skew"}, {0: 1}),
    "osgp_lazy_skew": ({"name": "osgp", "overlap_step": "lazy_halved"}, {"name": "skew"}, {0: 1}),
    "osgp_phonebook_2peers_then_1": (
        {"name": "osgp"},
        {"name": "exponential", "form": "phonebook"},
        {0: 2, 1: 1},
    ),
    "sgp_delayed_tau1": (
        {"name": "sgp_delayed", "tau": 1},
        {"name": "exponential", "form": "paper"},
        {0: 1},
    ),
    "sgp_delayed_tau2_skew": ({"name": "sgp_delayed", "tau": 2}, {"name": "skew"}, {0: 1}),
    "dpsgd": ({"name": "dpsgd"}, {"name": "bipartite_exponential"}, {0: 1}),
}

STEPS = 21
STEPS_PER_EPOCH = 10  # so the peers schedule {0: 2, 1: 1} switches inside the run


def run_distributed_case(ctx, case: str, steps: int = STEPS) -> dict:
    """Worker: run ``case`` for ``steps`` iterations; return the de-biased params and weight."""
    algo_cfg, topo_spec, peers = CASES[case]
    model = make_model()
    opt = make_optimizer(model)
    comm = Communicator(ctx.rank, ctx.world_size, ctx.timeout_s)
    algo = build_algorithm(
        AlgorithmConfig(**algo_cfg),
        model,
        opt,
        comm,
        build_topology(topo_spec, ctx.world_size),
        PeersSchedule(peers),
        lr_fn,
    )
    bytes_per_step = []
    for step in range(steps):
        info = algo.train_step(
            step, step / STEPS_PER_EPOCH, closure_for(model, opt, ctx.rank, step)
        )
        bytes_per_step.append(sum(b for _, b in info.sent))
    algo.finish()
    return {
        "params": algo.debiased().clone(),
        "numerator": (algo.debiased() * algo.ps_weight).clone(),
        "weight": algo.ps_weight,
        "bytes": bytes_per_step,
    }


def run_all_cases(ctx, cases: list[str]) -> dict:
    return {case: run_distributed_case(ctx, case) for case in cases}


def run_reference_case(case: str, n: int, steps: int = STEPS) -> ReferenceRun:
    algo_cfg, topo_spec, peers = CASES[case]
    models = [make_model() for _ in range(n)]
    opts = [make_optimizer(m) for m in models]
    ref = ReferenceRun(
        AlgorithmConfig(**algo_cfg),
        models,
        opts,
        build_topology(topo_spec, n),
        PeersSchedule(peers),
        lr_fn,
    )
    for step in range(steps):
        ref.step(
            step,
            step / STEPS_PER_EPOCH,
            [closure_for(m, o, r, step) for r, (m, o) in enumerate(zip(models, opts, strict=True))],
        )
    ref.finish()
    return ref


def preset_cases(n: int) -> dict[str, tuple[AlgorithmConfig, Topology | None, PeersSchedule]]:
    """Every algorithm preset of conf/algorithm/ whose class has a matrix-form twin, composed as
    ``algorithm=<preset>`` and validated like a run: (algorithm config, graph, peers schedule).
    A new algorithm's preset is covered without touching this file."""
    from sgprepro.algorithms import algorithm_class
    from sgprepro.config import build_topology, peers_schedule, validate
    from sgprepro.paths import conf_dir
    from tests.conftest import compose_config

    out = {}
    for path in sorted((conf_dir() / "algorithm").glob("*.yaml")):
        cfg = validate(compose_config([f"nodes={n}", f"algorithm={path.stem}"]))
        if algorithm_class(cfg.algorithm.name).has_oracle:
            out[path.stem] = (cfg.algorithm, build_topology(cfg), peers_schedule(cfg))
    return out


def run_preset(ctx, cases: dict, steps: int = STEPS) -> dict:
    """Worker: every preset case for ``steps`` iterations; the de-biased parameters of each."""
    out = {}
    for name, (algo_cfg, topo, peers) in cases.items():
        model = make_model()
        opt = make_optimizer(model)
        comm = Communicator(ctx.rank, ctx.world_size, ctx.timeout_s)
        algo = build_algorithm(algo_cfg, model, opt, comm, topo, peers, lr_fn)
        for step in range(steps):
            algo.train_step(step, step / STEPS_PER_EPOCH, closure_for(model, opt, ctx.rank, step))
        algo.finish()
        out[name] = algo.debiased().clone()
    return out


def reference_preset(case: tuple, n: int, steps: int = STEPS) -> torch.Tensor:
    algo_cfg, topo, peers = case
    models = [make_model() for _ in range(n)]
    opts = [make_optimizer(m) for m in models]
    ref = ReferenceRun(algo_cfg, models, opts, topo, peers, lr_fn)
    for step in range(steps):
        ref.step(
            step,
            step / STEPS_PER_EPOCH,
            [closure_for(m, o, r, step) for r, (m, o) in enumerate(zip(models, opts, strict=True))],
        )
    ref.finish()
    return ref.params()
