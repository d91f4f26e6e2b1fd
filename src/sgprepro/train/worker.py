"""One rank's training loop (one process = one node of the paper).

Collective structure: synchronous algorithms evaluate at the same steps on every rank and compute
cross-node statistics there; AD-PSGD ranks evaluate only their own model mid-run (no barrier),
and every rank meets once at the end.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sgprepro.algorithms import build_algorithm
from sgprepro.comm import Communicator, WorkerContext
from sgprepro.config import Config, build_topology, parse_fault, peers_schedule
from sgprepro.data import batches_per_epoch, build_dataset, make_loader
from sgprepro.models import build_model
from sgprepro.tracking import JsonlWriter, WandbMirror
from sgprepro.train.checkpoint import cut_records, load_checkpoint, restore, save_checkpoint
from sgprepro.train.evaluate import consensus_and_average, evaluate
from sgprepro.train.finalize import estimate_s_per_itr, finalize_run, run_identity
from sgprepro.train.schedule import make_lr_fn

log = logging.getLogger(__name__)


def iterations(cfg: Config, train_size: int) -> tuple[int, int]:
    """(iterations per epoch per node, total iterations per node)."""
    ipe = batches_per_epoch(train_size, cfg.nodes, cfg.optim.batch_size)
    total = max(1, math.ceil(cfg.optim.epochs * ipe))
    if cfg.train.max_steps > 0:
        total = min(total, cfg.train.max_steps)
    return ipe, total


def _setup_logging(rank: int) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"[rank {rank}] %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO if rank == 0 else logging.WARNING)


def _progress_enabled(mode: str) -> bool:
    if mode == "on":
        return True
    if mode == "off":
        return False
    return sys.stderr.isatty() and not os.environ.get("CI")


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


def _maybe_resume(cfg, out: Path, rank: int, comm, model, optimizer, algo) -> tuple[int, list]:
    """Collective: resume from every rank's checkpoint of one common step, or start at 0."""
    state = load_checkpoint(out, rank) if cfg.train.checkpoint_every_epochs > 0 else None
    mine = torch.tensor([float(state["step"]) if state else -1.0], dtype=torch.float64)
    steps = {float(t) for t in comm.all_gather(mine.to(next(model.parameters()).device), 0)}
    if len(steps) == 1 and (step := int(steps.pop())) > 0:
        restore(state, model, optimizer, algo)
        cut_records(out, rank, step)
        if rank == 0:
            log.info("resuming every rank from its checkpoint at step %d", step)
        return step, list(state["losses"])
    cut_records(out, rank, 0)  # a fresh start: no stale lines from an earlier attempt
    return 0, []


def run_worker(ctx: WorkerContext, cfg: Config, run_dir: str) -> dict[str, Any]:
    """Train, evaluate and record one rank. Returns a small status dict."""
    rank, n = ctx.rank, ctx.world_size
    out = Path(run_dir)
    _setup_logging(rank)
    torch.manual_seed(cfg.seed + rank)
    pair = build_dataset(cfg.data)
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
    ipe, total_steps = iterations(cfg, len(pair.train))
    lr_fn = make_lr_fn(o, n, ipe)
    comm = Communicator(rank, n, cfg.comm.timeout_s, backend=ctx.backend)
    topology = build_topology(cfg)
    algo = build_algorithm(
        cfg.algorithm,
        model,
        optimizer,
        comm,
        topology,
        peers_schedule(cfg),
        lr_fn,
        store=ctx.store,
        total_steps=total_steps,
    )
    asynchronous = cfg.algorithm.name == "adpsgd"
    eval_every = max(1, round(cfg.train.eval_every_epochs * ipe))
    start_step, losses = _maybe_resume(cfg, out, rank, comm, model, optimizer, algo)
    ckpt_every = (
        max(1, round(cfg.train.checkpoint_every_epochs * ipe))
        if cfg.train.checkpoint_every_epochs > 0 and not asynchronous
        else 0
    )
    metrics = JsonlWriter(out / f"metrics_r{rank}.jsonl")
    trace = JsonlWriter(out / f"trace_r{rank}.jsonl")
    mirror = None
    if rank == 0:
        ident = run_identity(cfg)
        mirror = WandbMirror(
            cfg.logger.wandb_mode,
            out,
            cfg.logger.project,
            cfg.logger.entity,
            ident["name"],
            ident["group"],
            ident["tags"],
            ident["config"],
        )
    bar = None
    postfix: dict[str, str] = {}  # progress display: loss, emulated s/itr estimate, top-1
    recent: list[float] = []
    if rank == 0 and _progress_enabled(cfg.logger.progress):
        from tqdm import tqdm

        bar = tqdm(total=total_steps, desc=ident["name"], unit="itr", leave=False)

    def do_eval(step: int, final: bool) -> None:
        top1, vloss = evaluate(model, pair.val, cfg.train.eval_batch_size, ctx.device)
        epoch = step / ipe
        metrics.write(
            {
                "kind": "eval",
                "step": step,
                "epoch": epoch,
                "val/top1": top1,
                "val/loss": vloss,
                "pushsum/weight": algo.ps_weight,
            }
        )
        if asynchronous and not final:
            return
        stats = torch.tensor([top1, vloss, algo.ps_weight], dtype=torch.float64, device=ctx.device)
        gathered = torch.stack(comm.all_gather(stats, step)).cpu()
        distance, _, avg_model = consensus_and_average(model, algo.debiased(), comm, step)
        if rank == 0:
            avg_top1, _ = evaluate(avg_model, pair.val, cfg.train.eval_batch_size, ctx.device)
            rec = {
                "kind": "global",
                "step": step,
                "epoch": epoch,
                "val/top1_node_mean": float(gathered[:, 0].mean()),
                "val/top1_node_min": float(gathered[:, 0].min()),
                "val/top1_node_max": float(gathered[:, 0].max()),
                "val/loss_node_mean": float(gathered[:, 1].mean()),
                "val/top1_avg_model": avg_top1,
                "consensus/distance": distance,
                "pushsum/weight_min": float(gathered[:, 2].min()),
                "pushsum/weight_max": float(gathered[:, 2].max()),
            }
            metrics.write(rec)
            if mirror:
                mirror.log({k: v for k, v in rec.items() if k != "kind"}, step=step)
            if bar is not None:
                postfix["top1"] = f"{rec['val/top1_node_mean']:.1f}"
                bar.set_postfix(postfix)

    # one start line for every rank (W&B and data set-up take uneven time), so no rank of an
    # asynchronous run begins with the others' budget already spent
    comm.barrier(0)
    step, epoch = start_step, start_step // ipe
    skip = start_step % ipe  # batches of the resumed epoch already trained on
    t_prev = time.perf_counter()
    done = step >= total_steps and not asynchronous
    while not done:
        for x, y in make_loader(pair.train, rank, n, o.batch_size, cfg.seed, epoch):
            if skip:
                skip -= 1
                continue
            if cfg.train.inject_fault:
                _inject_fault(cfg.train.inject_fault, rank, step)
            x, y = x.to(ctx.device), y.to(ctx.device)

            def closure(x=x, y=y) -> torch.Tensor:
                optimizer.zero_grad()
                loss = nn.functional.cross_entropy(model(x), y)
                loss.backward()
                return loss.detach()

            info = algo.train_step(step, step / ipe, closure)
            t_now = time.perf_counter()
            trace.write(
                {
                    "step": step,
                    "compute_s": info.compute_s,
                    "wall_s": t_now - t_prev,
                    "comm_s": info.comm_s,
                    "sent": info.sent,
                }
            )
            losses.append(info.loss)
            step += 1
            if step % cfg.train.log_every == 0 or step == 1:
                rec = {
                    "kind": "train",
                    "step": step,
                    "epoch": step / ipe,
                    "train/loss": info.loss,
                    "lr": info.lr,
                }
                if info.global_step is not None:
                    rec["global_step"] = info.global_step
                metrics.write(rec)
                if mirror:
                    mirror.log({"train/loss": info.loss, "lr": info.lr}, step=step)
            if bar is not None:
                recent.append(info.compute_s)
                if step % cfg.train.log_every == 0 or step == 1:
                    est = estimate_s_per_itr(
                        cfg, ipe, algo.flat.numel() * algo.flat.element_size(), recent[-50:]
                    )
                    postfix["emulated s/itr (est)"] = f"{est:.4f}"
                postfix["loss"] = f"{info.loss:.3f}"
                bar.update(1)
                bar.set_postfix(postfix, refresh=False)
            done = info.stop if asynchronous else step >= total_steps
            if not done and step % eval_every == 0:
                do_eval(step, final=False)
            if ckpt_every and not done and step % ckpt_every == 0:
                algo.finish()  # OSGP: in-flight messages are mixed in before the state is saved
                save_checkpoint(out, rank, step, model, optimizer, algo, losses)
            t_prev = time.perf_counter()
            if done:
                break
        epoch += 1
    algo.finish()
    do_eval(step, final=True)
    metrics.write(
        {"kind": "final", "step": step, "train/loss_last": sum(losses[-20:]) / len(losses[-20:])}
    )
    metrics.close()
    trace.close()
    if bar is not None:
        bar.close()
    comm.barrier(step)  # every rank's records are complete past this point
    summary = None
    if rank == 0:
        param_bytes = algo.flat.numel() * algo.flat.element_size()
        summary = finalize_run(out, cfg, ipe, total_steps, param_bytes)
        if mirror:
            mirror.summary({k: v for k, v in summary.items() if not isinstance(v, list | dict)})
            mirror.finish()
    return {"rank": rank, "steps": step, "summary": summary}
