"""One rank's training loop (one process = one node of the paper).

Collective structure: synchronous algorithms evaluate at the same steps on every rank and compute
cross-node statistics there; asynchronous ones (AD-PSGD) evaluate only their own model mid-run
(no barrier), and every rank meets once at the end.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Subset

from sgprepro.algorithms import Algorithm, RunContext, algorithm_class, build_algorithm
from sgprepro.comm import Communicator, WorkerContext
from sgprepro.config import Config, build_topology, parse_fault, peers_schedule, run_iterations
from sgprepro.data import DatasetPair, build_dataset, make_loader
from sgprepro.models import build_model
from sgprepro.regime import resolve
from sgprepro.train.checkpoint import cut_records, load_checkpoint, restore, save_checkpoint
from sgprepro.train.evaluate import consensus_and_average, consensus_distance, evaluate
from sgprepro.train.finalize import LOSS_WINDOW, finalize_run
from sgprepro.train.records import RankRecords
from sgprepro.train.schedule import make_lr_fn

log = logging.getLogger(__name__)


@dataclass
class Setup:
    """Everything one rank trains with."""

    cfg: Config
    ctx: WorkerContext
    pair: DatasetPair
    model: nn.Module
    optimizer: torch.optim.Optimizer
    comm: Communicator
    algo: Algorithm
    ipe: int
    total_steps: int

    @property
    def message_bytes(self) -> int:
        return self.algo.flat.numel() * self.algo.flat.element_size()


def model_digest(model: nn.Module) -> str:
    """SHA-256 of the model's state (every parameter and buffer, by name, as stored): two runs
    that end with the same bits have the same digest."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _setup_logging(rank: int) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"[rank {rank}] %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO if rank == 0 else logging.WARNING)


def build(ctx: WorkerContext, cfg: Config, data: DatasetPair | None = None) -> Setup:
    """Data, model, optimizer and algorithm of this rank. Collective: the algorithm's plan, when
    it has one, is computed once by rank 0 and sent to every rank.

    ``data``: the dataset pair, when the launcher built it once before forking the ranks (else
    this rank builds it)."""
    rank, n = ctx.rank, ctx.world_size
    torch.manual_seed(cfg.seed + rank)
    pair = data if data is not None else build_dataset(cfg.data)
    model: nn.Module = build_model(cfg.model, pair.num_classes, pair.input_shape, seed=cfg.seed)
    model = model.to(ctx.device)
    if cfg.comm.gpus_per_rank > 1:
        model = nn.DataParallel(model, device_ids=list(range(cfg.comm.gpus_per_rank)))
    o = cfg.optim
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=o.lr_per_ref_batch,
        momentum=o.momentum,
        nesterov=o.nesterov,
        weight_decay=o.weight_decay,
    )
    ipe, total_steps = run_iterations(cfg, len(pair.train))
    comm = Communicator(rank, n, cfg.comm.timeout_s, backend=ctx.backend)
    topology = build_topology(cfg)
    cls = algorithm_class(cfg.algorithm.name)
    plan = None
    if cls.needs_plan(cfg.algorithm):
        nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
        network = resolve(cfg.network, cfg.algorithm.schedule_compute_s, nbytes)
        mine = (
            cls.plan(
                cfg.algorithm,
                network=network,
                topology=topology,
                nodes=n,
                total_steps=total_steps,
                message_bytes=nbytes,
                seed=cfg.seed,
            )
            if rank == 0
            else None
        )
        plan = comm.broadcast_object(mine, 0)
    algo = build_algorithm(
        cfg.algorithm,
        model,
        optimizer,
        comm,
        topology,
        peers_schedule(cfg),
        make_lr_fn(o, n, ipe),
        RunContext(total_steps=total_steps, store=ctx.store, schedule=plan),
    )
    return Setup(cfg, ctx, pair, model, optimizer, comm, algo, ipe, total_steps)


def _inject_fault(spec: str, rank: int, step: int) -> None:
    """``train.inject_fault`` (tests of failure handling): crash or hang this rank at this step."""
    fault = parse_fault(spec)
    if fault is None or fault[1] != rank or fault[2] != step:
        return
    if fault[0] == "crash":
        raise RuntimeError(f"injected fault: rank {rank} crashed at step {step} ({spec})")
    log.warning("injected fault: rank %d hangs at step %d (%s)", rank, step, spec)
    while True:  # stopped only by the launcher (or SLURM) killing the process
        time.sleep(60)


def _maybe_resume(s: Setup, out: Path) -> tuple[int, list[float]]:
    """Collective: resume from every rank's checkpoint of one common step, or start at 0."""
    rank = s.ctx.rank
    state = load_checkpoint(out, rank) if s.cfg.train.checkpoint_every_epochs > 0 else None
    mine = torch.tensor([float(state["step"]) if state else -1.0], dtype=torch.float64)
    steps = {float(t) for t in s.comm.all_gather(mine.to(s.ctx.device), 0)}
    if state is not None and len(steps) == 1 and (step := int(steps.pop())) > 0:
        restore(state, s.model, s.optimizer, s.algo)
        cut_records(out, rank, step)
        if rank == 0:
            log.info("resuming every rank from its checkpoint at step %d", step)
        return step, list(state["losses"])
    cut_records(out, rank, 0)  # a fresh start: no stale lines from an earlier attempt
    return 0, []


def _batches(s: Setup, start_step: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """This rank's batches from ``start_step`` on, epoch after epoch (never ends)."""
    epoch, skip = divmod(start_step, s.ipe)
    while True:
        loader = make_loader(
            s.pair.train, s.ctx.rank, s.ctx.world_size, s.cfg.optim.batch_size, s.cfg.seed, epoch
        )
        for x, y in loader:
            if skip:
                skip -= 1
                continue
            yield x.to(s.ctx.device), y.to(s.ctx.device)
        epoch += 1


def _evaluate(s: Setup, records: RankRecords, step: int, final: bool) -> None:
    """Every node evaluates its own model. Mid-run: on ``train.eval_subset`` validation samples
    (all when 0) and, for synchronous algorithms, the consensus distance. At the end: the full
    validation set, the cross-node statistics and the averaged model. Collective unless
    asynchronous and mid-run."""
    cfg, algo = s.cfg, s.algo
    val = s.pair.val
    if not final and 0 < cfg.train.eval_subset < len(val):
        val = Subset(val, range(cfg.train.eval_subset))
    view = getattr(algo, "evaluation_view", nullcontext)
    with view():
        top1, vloss = evaluate(s.model, val, cfg.train.eval_batch_size, s.ctx.device)
    records.eval_point(step, step / s.ipe, top1, vloss, algo.ps_weight)
    if not algo.synchronous and not final:
        return
    stats = torch.tensor([top1, vloss, algo.ps_weight], dtype=torch.float64, device=s.ctx.device)
    gathered = torch.stack(s.comm.all_gather(stats, step)).cpu()
    if final:
        distance, _, avg_model = consensus_and_average(s.model, algo.debiased(), s.comm, step)
    else:
        distance, avg_model = consensus_distance(algo.debiased(), s.comm, step), None
    if s.ctx.rank == 0:
        avg_top1 = (
            evaluate(avg_model, s.pair.val, cfg.train.eval_batch_size, s.ctx.device)[0]
            if avg_model is not None
            else None
        )
        records.global_point(step, step / s.ipe, gathered, avg_top1, distance)


def _train(s: Setup, out: Path, records: RankRecords, start_step: int, losses: list[float]) -> int:
    """The iteration loop; returns the number of iterations this rank took."""
    cfg, algo, rank = s.cfg, s.algo, s.ctx.rank
    eval_every = max(1, round(cfg.train.eval_every_epochs * s.ipe))
    ckpt_every = (
        max(1, round(cfg.train.checkpoint_every_epochs * s.ipe))
        if cfg.train.checkpoint_every_epochs > 0 and algo.synchronous
        else 0
    )
    step = start_step
    evals_done = start_step // eval_every
    if algo.synchronous and step >= s.total_steps:
        return step
    t_prev = time.perf_counter()
    for x, y in _batches(s, start_step):
        if cfg.train.inject_fault:
            _inject_fault(cfg.train.inject_fault, rank, step)

        def closure(x: torch.Tensor = x, y: torch.Tensor = y) -> torch.Tensor:
            s.optimizer.zero_grad()
            loss = nn.functional.cross_entropy(s.model(x), y)
            loss.backward()
            return loss.detach()

        info = algo.train_step(step, step / s.ipe, closure)
        t_now = time.perf_counter()
        records.trace(step, info, t_now - t_prev)
        losses.append(info.loss)
        step += 1
        records.train_point(step, step / s.ipe, info)
        done = info.stop if not algo.synchronous else step >= s.total_steps
        # an asynchronous rank evaluates on the global clock (its ranks take different numbers
        # of gradients), so every rank has the same evaluation points
        clock = step if algo.synchronous or info.global_step is None else info.global_step
        if not done and clock >= (evals_done + 1) * eval_every:
            evals_done = int(clock // eval_every)
            _evaluate(s, records, step, final=False)
        if ckpt_every and not done and step % ckpt_every == 0:
            algo.finish()  # in-flight messages are mixed in before the state is saved
            save_checkpoint(out, rank, step, s.model, s.optimizer, algo, losses)
        t_prev = time.perf_counter()
        if done:
            return step
    raise AssertionError("unreachable: the batch stream never ends")


def run_worker(
    ctx: WorkerContext, cfg: Config, run_dir: str, data: DatasetPair | None = None
) -> dict[str, Any]:
    """Train, evaluate and record one rank. Returns a small status dict.

    ``data``: the dataset pair built once by the launcher before forking (None: build it here).
    """
    out = Path(run_dir)
    _setup_logging(ctx.rank)
    s = build(ctx, cfg, data)
    start_step, losses = _maybe_resume(s, out)
    records = RankRecords(out, ctx.rank, cfg, s.ipe, s.total_steps, s.message_bytes)
    try:
        # one start line for every rank (data set-up takes uneven time), so no rank of an
        # asynchronous run begins with the others' budget already spent
        s.comm.barrier(0)
        step = _train(s, out, records, start_step, losses)
        s.algo.finish()
        _evaluate(s, records, step, final=True)
        window = losses[-LOSS_WINDOW:] or [float("nan")]
        extra = {"params/sha256": model_digest(s.model), **getattr(s.algo, "summary_extra", {})}
        records.final(step, sum(window) / len(window), extra)
    finally:
        records.close()
    s.comm.barrier(step)  # every rank's records are complete past this point
    summary = axes = None
    if ctx.rank == 0:
        summary, axes = finalize_run(out, cfg, s.ipe, s.total_steps, s.message_bytes)
    return {"rank": ctx.rank, "steps": step, "summary": summary, "axes": axes}
