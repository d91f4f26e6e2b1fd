"""Bytes on the wire and wall-clock cost of communication for every algorithm, on real gloo groups.

Run from the repository root::

    .venv/bin/python benchmarks/bench_comm.py [--nodes 4 8 16] [--steps 30] [--warmup 5]
        [--model mnist1d_cnn|mlp|resnet20] [--batch 32] [--format text|markdown]

For each algorithm and node count n, n worker processes are forked with ``launch_local`` (one
torch thread each), build the same model, and train on random batches shaped like the model's
data (MNIST-1D (1, 40) or CIFAR (3, 32, 32)): ``--warmup`` steps, then ``--steps`` measured ones.

Per algorithm and n the table gives:

* the bytes a node sends per iteration (``StepInfo.sent``, mean over ranks and steps) next to
  the theoretical value, their ratio, and an exact check of every measured step against theory;
  for AD-PSGD the gossip thread's messages are counted per trainer iteration, its rounds are not
  tied to trainer steps, so the check is per message (one vector + one flag element each);
* for AllReduce, ``sent`` is the payload handed to the collective (one vector); the bytes a
  node puts on the wire in a ring all-reduce, 2(n-1)/n x payload, are printed as theory only
  (gloo chooses its own collective algorithm; they are not measured);
* the time communication adds to a step, as WALL-CLOCK on this machine: mean step wall time
  with the algorithm minus that of a no-communication local SGD step measured in the same
  harness with the same n, plus the mean time blocked waiting (``StepInfo.comm_s``).

The benchmark prints figures and asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from sgprepro.algorithms import Algorithm, AlgorithmConfig, RunContext, build_algorithm
from sgprepro.comm import Communicator
from sgprepro.comm.launch import WorkerFailure, launch_local
from sgprepro.models import ModelSpec, build_model
from sgprepro.topology import PeersSchedule, make_topology

NUM_CLASSES = 10
INPUT_SHAPES = {"mnist1d_cnn": (1, 40), "mlp": (1, 40), "resnet20": (3, 32, 32)}
LR = 0.05


@dataclass(frozen=True)
class Case:
    """One benchmarked configuration. ``algorithm`` None: the local SGD baseline."""

    label: str
    algorithm: dict | None = None
    topology: dict = field(default_factory=lambda: {"name": "complete"})
    peers: int = 1


LOCAL = Case("local SGD (no comm)")
CASES = [
    Case("allreduce param_avg", {"name": "allreduce", "allreduce_mode": "param_avg"}),
    Case("allreduce grad_bucket", {"name": "allreduce", "allreduce_mode": "grad_bucket"}),
    Case("sgp 1 peer", {"name": "sgp"}, {"name": "exponential", "form": "paper"}, 1),
    Case("sgp 2 peers", {"name": "sgp"}, {"name": "exponential", "form": "paper"}, 2),
    Case("osgp tau=1", {"name": "osgp", "tau": 1}, {"name": "exponential", "form": "paper"}, 1),
    Case("dpsgd", {"name": "dpsgd"}, {"name": "bipartite_exponential"}),
    Case("adpsgd", {"name": "adpsgd", "clock": "real"}, {"name": "bipartite_exponential"}),
]


NO_COMM = {"name": "local_sgd", "average_every": 10**9}
"""The baseline: the same local step as every algorithm, and no communication (local SGD whose
averaging period is longer than any run)."""


@dataclass
class RankResult:
    """What one rank measured over its measured steps."""

    wall_s: list[float]
    comm_s: list[float]
    step_bytes: list[int]  # bytes sent per measured step
    message_bytes: set[int]  # distinct sizes of the messages sent
    messages: int


@dataclass
class Row:
    """One line of the table: an algorithm at one node count."""

    label: str
    n: int
    sent: float = 0.0  # bytes per node per iteration, measured (mean over ranks)
    theory: int | None = None  # per iteration; AD-PSGD: per gossip round
    exact: bool | None = None
    ring_wire: float | None = None
    msgs_per_iter: float = 0.0
    step_ms: float = 0.0
    overhead_ms: float | None = None
    blocked_ms: float = 0.0
    error: str | None = None


def _build(case: Case, model: nn.Module, opt, comm: Communicator, ctx, total: int) -> Algorithm:
    topo_spec = dict(case.topology)
    topology = make_topology(topo_spec.pop("name"), ctx.world_size, **topo_spec)
    peers = PeersSchedule.constant(case.peers)
    return build_algorithm(
        AlgorithmConfig(**(case.algorithm or NO_COMM)),
        model,
        opt,
        comm,
        topology,
        peers,
        lambda _: LR,
        RunContext(total_steps=total, store=ctx.store),
    )


def make_model(model_name: str) -> tuple[nn.Module, torch.optim.Optimizer]:
    """The model every rank starts from, and the paper's local optimizer (Nesterov, wd 1e-4)."""
    shape = INPUT_SHAPES[model_name]
    model = build_model(ModelSpec(name=model_name), NUM_CLASSES, shape, seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9, nesterov=True, weight_decay=1e-4)
    return model, opt


def random_batches(model_name: str, batch: int, seed: int, count: int = 4) -> list:
    shape = INPUT_SHAPES[model_name]
    g = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randn(batch, *shape, generator=g),
            torch.randint(0, NUM_CLASSES, (batch,), generator=g),
        )
        for _ in range(count)
    ]


def warm_parent(model_name: str, batch: int) -> tuple[int, int]:
    """One step in the launching process, so forked workers inherit initialised kernels.

    Returns (parameter count, bytes per element).
    """
    model, opt = make_model(model_name)
    x, y = random_batches(model_name, batch, seed=0, count=1)[0]
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    p = next(model.parameters())
    return sum(q.numel() for q in model.parameters()), p.element_size()


def _worker(ctx, case: Case, model_name: str, batch: int, warmup: int, steps: int) -> RankResult:
    model, opt = make_model(model_name)
    comm = Communicator(ctx.rank, ctx.world_size, ctx.timeout_s)
    total = warmup + steps
    algo = _build(case, model, opt, comm, ctx, total)
    data = random_batches(model_name, batch, seed=ctx.rank)

    def closure_at(step: int):
        x, y = data[step % len(data)]

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            return loss.detach()

        return closure

    asynchronous = case.algorithm is not None and case.algorithm["name"] == "adpsgd"
    budget = total * ctx.world_size  # AD-PSGD: gradients all ranks may take
    res = RankResult([], [], [], set(), 0)
    step = 0
    while step < total or asynchronous:
        if step == warmup and not asynchronous:
            comm.barrier(step)  # the measured window starts together on every rank
        info = algo.train_step(step, 0.0, closure_at(step))
        # AD-PSGD: count only steps whose gradient was handed over (within the global budget)
        handed = not asynchronous or round(info.global_step * ctx.world_size) + 1 <= budget
        if step >= warmup and handed:
            res.wall_s.append(info.wall_s)
            res.comm_s.append(info.comm_s)
            res.step_bytes.append(sum(b for _, b in info.sent))
            res.message_bytes.update(b for _, b in info.sent)
            res.messages += len(info.sent)
        step += 1
        if asynchronous and info.stop:
            break
    algo.finish()
    if asynchronous and res.step_bytes:
        # what the gossip loop sent after the trainer's last step belongs to the measured window
        late = algo.take_sent()
        res.step_bytes[-1] += sum(b for _, b in late)
        res.message_bytes.update(b for _, b in late)
        res.messages += len(late)
    return res


def theory_bytes(case: Case, params: int, elem: int) -> int | None:
    """Bytes a node sends per iteration (AD-PSGD: per gossip round), from the algorithm's design."""
    if case.algorithm is None:
        return 0
    name = case.algorithm["name"]
    vector = params * elem
    return {
        "allreduce": vector,  # the collective's payload
        "sgp": case.peers * (vector + elem),  # parameters + the PushSum weight, to each peer
        "osgp": case.peers * (vector + elem),
        "dpsgd": vector,
        "adpsgd": vector + elem,  # parameters + the averaging flag, each gossip round
    }[name]


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def measure(case: Case, n: int, args, params: int, elem: int) -> Row:
    row = Row(case.label, n)
    try:
        ranks: list[RankResult] = launch_local(
            _worker,
            n,
            (case, args.model, args.batch, args.warmup, args.steps),
            timeout_s=60.0,
            job_timeout_s=args.job_timeout,
        )
    except WorkerFailure as exc:
        row.error = f"rank {exc.rank}: {exc.cause.splitlines()[0]}"
        return row
    row.theory = theory_bytes(case, params, elem)
    row.sent = _mean([_mean(r.step_bytes) for r in ranks])
    row.msgs_per_iter = _mean([r.messages / max(len(r.step_bytes), 1) for r in ranks])
    row.step_ms = 1e3 * _mean([_mean(r.wall_s) for r in ranks])
    row.blocked_ms = 1e3 * _mean([_mean(r.comm_s) for r in ranks])
    if case.algorithm is not None and case.algorithm["name"] == "adpsgd":
        row.exact = all(r.message_bytes <= {row.theory} for r in ranks)
    else:
        row.exact = all(b == row.theory for r in ranks for b in r.step_bytes)
    if case.algorithm is not None and case.algorithm["name"] == "allreduce":
        row.ring_wire = 2 * (n - 1) / n * row.sent
    return row


# -- output --------------------------------------------------------------------------------------
HEADERS = [
    "algorithm",
    "n",
    "sent B/iter/node (measured)",
    "theory B/iter",
    "ratio",
    "exact",
    "ring wire B/iter (theory)",
    "msgs/iter",
    "step ms",
    "comm adds ms (wall)",
    "blocked ms",
]


def _cells(row: Row) -> list[str]:
    if row.error:
        return [row.label, str(row.n), f"FAILED: {row.error}"] + [""] * (len(HEADERS) - 3)
    adpsgd = row.label.startswith("adpsgd")
    ratio = row.sent / row.theory if row.theory else float("nan")
    return [
        row.label,
        str(row.n),
        f"{row.sent:,.0f}",
        f"{row.theory:,}" + (" /round" if adpsgd else ""),
        "-" if not row.theory else f"{ratio:.3f}" + (" (rounds/iter)" if adpsgd else ""),
        ("✓" if row.exact else "✗") + (" per msg" if adpsgd else ""),
        "-" if row.ring_wire is None else f"{row.ring_wire:,.0f}",
        f"{row.msgs_per_iter:.2f}",
        f"{row.step_ms:.2f}",
        "baseline" if row.overhead_ms is None else f"{row.overhead_ms:+.2f}",
        f"{row.blocked_ms:.2f}",
    ]


def render(rows: list[Row], fmt: str) -> str:
    table = [HEADERS] + [_cells(r) for r in rows]
    if fmt == "markdown":
        lines = ["| " + " | ".join(r) + " |" for r in table]
        lines.insert(1, "|" + "|".join("---" for _ in HEADERS) + "|")
        return "\n".join(lines)
    widths = [
        max(len(r[i]) for r in table if not r[2].startswith("FAILED")) for i in range(len(HEADERS))
    ]
    return "\n".join(
        "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in table
    )


def header(args, params: int, elem: int, load: tuple[float, float]) -> str:
    cores = os.cpu_count()
    over = [n for n in args.nodes if cores is not None and n > cores]
    return "\n".join(
        [
            (
                f"model {args.model}: {params:,} parameters, vector {params * elem:,} B "
                f"({elem} B/element); batch {args.batch}; {args.warmup} warm-up + {args.steps} measured steps"
            ),
            f"machine: os.cpu_count() = {cores}; one torch thread per worker; n processes on these cores"
            + (f" (OVERSUBSCRIBED for n = {', '.join(map(str, over))})" if over else "")
            + f"; 1-min load average {load[0]:.1f} before, {load[1]:.1f} after the run "
            "(other processes distort the wall-clock figures)",
            (
                "times: WALL-CLOCK on this machine (time.perf_counter), mean over ranks and steps; "
                "'comm adds' = step wall - local SGD step wall (same n, same harness); "
                "'blocked' = StepInfo.comm_s"
            ),
            (
                "allreduce: 'sent' is the collective's payload; ring wire bytes = 2(n-1)/n x payload "
                "(theory; gloo picks its own algorithm). sgp/osgp: + 4 B PushSum weight per peer. "
                "adpsgd: gossip messages (vector + 4 B flag) per trainer iteration; theory is per round, "
                "ratio = gossip rounds per trainer iteration; its 'blocked' is the wait to hand a gradient over"
            ),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--model", choices=sorted(INPUT_SHAPES), default="mnist1d_cnn")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--format", choices=["text", "markdown"], default="text")
    parser.add_argument("--job-timeout", type=float, default=300.0, help="seconds per launch")
    args = parser.parse_args()
    t0 = time.perf_counter()
    load0 = os.getloadavg()[0]
    params, elem = warm_parent(args.model, args.batch)
    rows: list[Row] = []
    for n in args.nodes:
        base = measure(LOCAL, n, args, params, elem)
        rows.append(base)
        for case in CASES:
            t1 = time.perf_counter()
            row = measure(case, n, args, params, elem)
            print(f"n={n} {case.label}: {time.perf_counter() - t1:.1f} s", file=sys.stderr)
            if not row.error and not base.error:
                row.overhead_ms = row.step_ms - base.step_ms
            rows.append(row)
    print(header(args, params, elem, (load0, os.getloadavg()[0])))
    print(render(rows, args.format))
    print(f"benchmark wall time: {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
