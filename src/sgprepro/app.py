"""One job of a sweep: validate, record, launch the ranks, mark the run done (no Hydra imports).

Runs in the single Hydra process of a job (locally: it forks one worker per node), or in every
rank of a job that a launcher started (one process per node: a task of a submitit SLURM job, or a
process of torchrun or any env:// launcher; :mod:`sgprepro.launchenv` tells which). There, rank 0
decides for the whole job: it holds the run folder, skips a finished run or moves an earlier
attempt aside, and tells every rank through the rendezvous store, so no rank waits for a
timeout and no two processes write one folder.

A run directory whose ``done`` marker exists with the same config hash and seed is skipped (a
finished run of another seed is moved aside like a failed one); a failed or
interrupted one is moved aside into ``attempts/`` (nothing written is lost) and run again. Once
the run is done, the job process (rank 0 under a launcher) files it with W&B
(:mod:`sgprepro.tracking.wandb_run`).

Locally a run directory belongs to one job: the job process holds an OS lock on
``<run_dir>/.lock`` from before it writes or moves anything until it ends, and a second job on the
same directory fails at once (:class:`RunDirError`). SIGTERM and SIGINT stop the job and every
worker, and ``error.txt`` says it was interrupted; a run that completed keeps its ``done``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sgprepro.config import Config, cell_of, config_dict, config_hash, resolve_topology_name
from sgprepro.tracking import DONE, environment_info, write_json_atomic

log = logging.getLogger(__name__)

_RECORDS = ("run.json", "timing.json", "summary.json", "error.txt", "wandb")
_RECORD_PREFIXES = ("metrics_r", "trace_r", "error_r")
LOCK_FILE = ".lock"
ERROR_FILE = "error.txt"


class RunDirError(RuntimeError):
    """The run directory cannot be used: another job holds it, or it cannot be written."""


@contextlib.contextmanager
def hold_run_dir(out: Path) -> Iterator[Path]:
    """Hold ``out`` for this job: an exclusive ``flock`` on ``out/.lock``, for the block's life.

    Forked workers inherit the lock and die with the job, so it is free again once every process
    of the job is gone (ranks kept for the next job close it: :data:`HELD_LOCKS`). The lock file
    is created once and never written (a skipped run touches nothing); the holder's pid comes
    from the kernel's table of locks.

    Raises:
        RunDirError: another job holds ``out`` (its pid named when known), or ``out`` cannot be
            created or written.
    """
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise RunDirError(
            f"run folder {out}: cannot be written ({exc.strerror or exc}); make it writable or "
            "give the run another folder (hydra.run.dir=... or hydra.sweep.dir=...)"
        ) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = lock_holder(out / LOCK_FILE)
        os.close(fd)
        raise RunDirError(
            f"run folder {out} is in use by another job"
            f"{f' (pid {holder})' if holder else ''}: one folder holds one run; wait for that "
            "job to end, or give this run another folder (hydra.run.dir=...)"
        ) from exc
    HELD_LOCKS.add(fd)
    try:
        yield out
    finally:
        HELD_LOCKS.discard(fd)
        os.close(fd)


HELD_LOCKS: set[int] = set()
"""The descriptors of the run folder locks this process holds (:func:`hold_run_dir`); ranks kept
for later jobs close them (they would hold a finished run's folder)."""


def lock_holder(path: Path) -> int | None:
    """The pid holding an ``flock`` on ``path``, read from ``/proc/locks`` (Linux), or None."""
    try:
        st = path.stat()
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    dev_ino = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    # "1: FLOCK  ADVISORY  WRITE 1234 fe:00:5678 0 EOF"; a waiting lock has "->" after the id
    held = [p for p in (line.split() for line in lines) if len(p) >= 6 and p[1] == "FLOCK"]
    for match in (lambda f: f == dev_ino, lambda f: f.rsplit(":", 1)[-1] == str(st.st_ino)):
        pids = [int(p[4]) for p in held if match(p[5]) and p[4].isdigit()]
        if pids:
            return pids[0]
    return None


def mark_done(out: Path) -> None:
    """Write the ``done`` marker: the run finished and every record is complete."""
    (Path(out) / DONE).write_text(time.strftime("%Y-%m-%dT%H:%M:%S%z") + "\n")


def record_error(out: Path, text: str, name: str = ERROR_FILE) -> str | None:
    """Write ``error.txt`` (or ``name``: a rank's own ``error_r{rank}.txt`` under a launcher).
    Returns None, or why it could not be written (the cause must then be reported another way:
    the caller prints it)."""
    try:
        (Path(out) / name).write_text(text)
    except OSError as exc:
        why = f"{exc.strerror or type(exc).__name__}"
        log.error("cannot write %s (%s); the cause was: %s", Path(out) / name, why, text)
        return why
    return None


def resolve_backend(cfg: Config) -> str:
    if cfg.comm.backend != "auto":
        return cfg.comm.backend
    import torch

    return "nccl" if torch.cuda.is_available() else "gloo"


def plan(cfg: Config) -> str:
    """One line saying what this job would launch (printed by dry runs)."""
    where = (
        f"SLURM: {cfg.nodes} nodes x 1 task x {cfg.slurm.gpus_per_node} GPUs, partition="
        f"{cfg.slurm.partition or '<default>'}, time={cfg.slurm.timeout_min} min"
        if cfg.comm.gpus_per_rank > 0
        else f"local: {cfg.nodes} forked {cfg.comm.backend} workers"
    )
    # a dry run skips the checks of this machine's paths; a dataset folder that is not even set
    # fails on every machine, so say so now rather than once the job has been queued
    unset = (
        "; data.root is not set: set it (data.root=... or conf/local/<site>.yaml) before the "
        "real run"
        if cfg.data.root is None and cfg.data.name in ("imagenet", "cifar10")
        else ""
    )
    a = cfg.algorithm
    what = f"{a.variant} ({a.name})" if a.variant and a.variant != a.name else a.name
    return (
        f"would launch {what} on nodes={cfg.nodes} "
        f"(topology={resolve_topology_name(cfg) or 'none'}, network={cfg.network.name}, "
        f"model={cfg.model.name}, data={cfg.data.name}, epochs={cfg.optim.epochs:g}, "
        f"batch/node={cfg.optim.batch_size}, seed={cfg.seed}) -> {where}{unset}"
    )


def _has_records(out: Path) -> bool:
    return any((out / name).exists() for name in _RECORDS) or any(
        p.name.startswith(_RECORD_PREFIXES) for p in out.iterdir()
    )


def _new_attempt_dir(out: Path) -> Path:
    """A fresh ``attempts/<time>/`` folder: never one that exists (whose files a move would
    overwrite), even for two attempts within a second."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        dest = out / "attempts" / (stamp if i == 0 else f"{stamp}-{i}")
        try:
            dest.mkdir(parents=True)
            return dest
        except FileExistsError:
            continue
    raise RuntimeError(f"{out / 'attempts'}: no free folder name for {stamp}")


def _archive_previous(out: Path) -> Path:
    dest = _new_attempt_dir(out)
    for p in list(out.iterdir()):
        if p.name in _RECORDS or p.name.startswith(_RECORD_PREFIXES) or p.name.startswith("ckpt"):
            shutil.move(str(p), dest / p.name)
    return dest


def _same_run(out: Path, chash: str, seed: int) -> bool:
    """``out/run.json`` records this config (its hash leaves the seed out) and this seed."""
    try:
        run = json.loads((out / "run.json").read_text())
        return run["config_hash"] == chash and run["config"]["seed"] == seed
    except (OSError, ValueError, KeyError, TypeError):
        return False


def already_done(out: Path, chash: str, seed: int) -> bool:
    return (out / DONE).exists() and _same_run(out, chash, seed)


def resumable(out: Path, chash: str, seed: int) -> bool:
    """Checkpoints of this very config and seed exist and the run has not finished."""
    if (out / DONE).exists() or not any(out.glob("ckpt_r*.pt")):
        return False
    return _same_run(out, chash, seed)


def prepare_run_dir(cfg: Config, out: Path, overrides: str = "") -> str | None:
    """Skip a finished identical run, move a failed one aside, write run.json.

    ``overrides``: the run's overrides beyond its cell (:func:`sgprepro.config.recorded_overrides`),
    recorded so that its W&B name and group, and the report, keep them.

    Returns a reason to skip, or None when the run should go ahead.
    """
    chash = config_hash(cfg)
    out.mkdir(parents=True, exist_ok=True)
    if already_done(out, chash, cfg.seed):
        return f"{out} is done with the same config and seed (hash {chash}, seed {cfg.seed})"
    if resumable(out, chash, cfg.seed):
        dest = _new_attempt_dir(out)
        for p in out.glob("error*.txt"):
            shutil.move(str(p), dest / p.name)
        log.warning(
            "%s holds checkpoints of the same config: resuming (earlier errors in %s)", out, dest
        )
        return None
    if (out / DONE).exists() or _has_records(out):
        dest = _archive_previous(out)
        if (out / DONE).exists():
            shutil.move(str(out / DONE), dest / DONE)
        log.warning("previous records in %s moved to %s", out, dest)
    write_json_atomic(
        out / "run.json",
        {
            "run_id": out.name,
            "cell": cell_of(cfg),
            "overrides": overrides,
            "config": config_dict(cfg),
            "config_hash": chash,
            "topology": resolve_topology_name(cfg),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **environment_info(),
        },
    )
    return None


def run_job(cfg: Config, out: Path, overrides: str = "") -> dict[str, Any]:
    """Run one validated job into ``out``.

    Locally this process forks the workers; under a launcher (SLURM through submitit, or an
    env:// launcher such as torchrun) it is one rank of the job (:func:`run_rank`).
    ``overrides``: the run's overrides beyond its cell (recorded in run.json).

    Never raises for a worker failure: the run is recorded as failed (``error.txt``, no ``done``)
    so the next job of a multirun still runs; the result says whether ``error.txt`` could be
    written (``error_txt``: None, or why not).

    Raises:
        RunDirError: another job holds ``out`` (then nothing was touched), or it cannot be
            written.
        JobInterrupted: SIGTERM or SIGINT; every worker is stopped and ``error.txt`` says so
            (unless the run had completed: then it keeps its ``done``).
    """
    from sgprepro.comm.launch import (
        SHARED,
        JobInterrupted,
        StopSignals,
        WorkerFailure,
        launch_local,
    )
    from sgprepro.launchenv import detect
    from sgprepro.train.worker import run_worker

    if cfg.dry_run:
        line = plan(cfg)
        print(line, flush=True)
        return {"status": "dry_run", "plan": line}
    launch = detect()
    backend = resolve_backend(cfg)
    if launch.distributed:
        return run_rank(cfg, out, launch, backend, overrides)
    with hold_run_dir(out), StopSignals() as signals:
        try:
            try:
                reason = prepare_run_dir(cfg, out, overrides)
            except OSError as exc:
                raise RunDirError(
                    f"run folder {out}: cannot be written ({exc.strerror or exc}); make it "
                    "writable or give the run another folder (hydra.run.dir=...)"
                ) from exc
            if reason:
                log.info("skipping: %s", reason)
                return {"status": "skipped", "reason": reason}
            t0 = time.perf_counter()
            from sgprepro.data import build_dataset

            # once, shared with every forked rank (a CIFAR-10 download: once, under a lock)
            data = build_dataset(cfg.data)
            try:
                # the ranks stay for the next job of this size on the same data (a sweep's
                # next cell): no fork, no group set-up, no teardown between them
                results = launch_local(
                    run_worker,
                    cfg.nodes,
                    (cfg, str(out), SHARED),
                    backend=backend,
                    timeout_s=cfg.comm.timeout_s,
                    job_timeout_s=cfg.comm.job_timeout_s,
                    threads_per_worker=cfg.comm.threads_per_worker,
                    shared=data,
                    reuse=repr(cfg.data),
                    job_fds=tuple(HELD_LOCKS),
                )
            except WorkerFailure as exc:
                why = record_error(out, f"rank {exc.rank}: {exc.cause}\n")
                log.error("run failed: %s (details in %s)", exc, out / ERROR_FILE)
                return {"status": "failed", "rank": exc.rank, "error": str(exc), "error_txt": why}
            with signals.deferred():  # a signal now waits for the marker, then interrupts
                mark_done(out)
            wandb = file_with_wandb(out, cfg, results[0].get("axes"))
        except JobInterrupted as exc:
            if not (out / DONE).exists():
                exc.error_txt = record_error(
                    out,
                    f"interrupted by {exc.signame} (signal {exc.signum}): the job was stopped "
                    "before the run finished, every worker with it; run it again to redo it\n",
                )
            raise
    summary = results[0]["summary"]
    _log_summary(cfg, summary, f"job {time.perf_counter() - t0:.1f} s")
    return {"status": "ok", "summary": summary, "wandb": wandb}


def file_with_wandb(
    out: Path, cfg: Config, axes: tuple[list[float], list[float]] | None = None
) -> dict[str, Any] | None:
    """File the finished run with W&B from its records (None when W&B is disabled); a W&B
    failure is logged and never touches the local records. ``axes``: the time axes rank 0
    computed at the end of the run (None: derived again from the records)."""
    from sgprepro.tracking.wandb_run import log_run

    return log_run(out, cfg.logger, axes)


_VERDICT_KEY = "job/run_dir"


def _publish(store: Any, verdict: str) -> None:
    store.set(_VERDICT_KEY, verdict.encode())


def _rank0_verdict(cfg: Config, out: Path, overrides: str, stack: contextlib.ExitStack) -> str:
    """Rank 0: hold the run folder for the job's life and prepare it. Returns ``run:<folder>``,
    ``skip:<reason>`` or ``error:<message>``."""
    try:
        stack.enter_context(hold_run_dir(out))
        reason = prepare_run_dir(cfg, out, overrides)
    except RunDirError as exc:
        return f"error:{exc}"
    except OSError as exc:
        return (
            f"error:run folder {out}: cannot be written ({exc.strerror or exc}); make it "
            "writable or give the run another folder"
        )
    return f"skip:{reason}" if reason else f"run:{out.resolve()}"


def run_rank(
    cfg: Config, out: Path, launch: Any, backend: str, overrides: str = ""
) -> dict[str, Any]:
    """This process is rank ``launch.rank`` of a job started by SLURM (submitit) or an env://
    launcher: join the job's group, agree on the run folder, train, and (rank 0) mark it done.

    Rank 0 decides and every rank learns it through the rendezvous store at once: a finished run
    is skipped by every rank, a folder held by another job stops every rank. The run folder is
    rank 0's (Hydra's output folder on rank 0); every rank writes its own records there, so a
    job over several machines needs it on a shared file system.

    Raises:
        RunDirError: the run folder cannot be used (every rank raises it).
    """
    from sgprepro.comm import destroy, init_worker, rendezvous_store
    from sgprepro.train.worker import run_worker

    rank, world = launch.rank, launch.world_size
    if world != cfg.nodes:  # validate() refuses this first; a guard for direct callers
        raise RunDirError(f"nodes={cfg.nodes} with {launch.source}: use nodes={world}")
    # the GPU of this process on its machine (one task per node on SLURM: local rank 0)
    os.environ.setdefault("LOCAL_RANK", str(launch.local_rank))
    if launch.kind == "slurm":
        port = cfg.slurm.master_port + zlib.crc32(launch.job_id.encode()) % 1000
        url = f"tcp://{launch.master_addr}:{port}?rank={rank}&world_size={world}"
    else:
        url = "env://"
    try:
        store = rendezvous_store(url, cfg.comm.timeout_s)
    except Exception as exc:
        raise RuntimeError(
            f"rank {rank}: cannot reach the rendezvous store of {launch.kind} at "
            f"{launch.master_addr} within comm.timeout_s={cfg.comm.timeout_s} ({exc})"
        ) from exc
    with contextlib.ExitStack() as stack:
        ctx = init_worker(rank, world, "", 0, backend, cfg.comm.timeout_s, store=store)
        stack.callback(destroy)
        if rank == 0:
            verdict = _rank0_verdict(cfg, out, overrides, stack)
            _publish(ctx.store, verdict)
        else:
            verdict = ctx.store.get(_VERDICT_KEY).decode()
        kind, _, detail = verdict.partition(":")
        if kind == "skip":
            log.info("rank %d: skipping: %s", rank, detail)
            return {"status": "skipped", "reason": detail}
        if kind == "error":
            raise RunDirError(detail if rank == 0 else f"rank 0: {detail}")
        run_dir = Path(detail)
        if not (run_dir / "run.json").is_file():
            raise RunDirError(
                f"rank {rank}: run folder {run_dir} (rank 0's) is not visible here: a job over "
                "several machines writes into one folder; put hydra.run.dir (or "
                "hydra.sweep.dir) on a file system every machine shares"
            )
        # the worker sets its own (rank-prefixed) log handlers; the job's come back after it
        handlers, level = list(logging.getLogger().handlers), logging.getLogger().level
        try:
            result = run_worker(ctx, cfg, str(run_dir))
        except Exception as exc:  # noqa: BLE001 - recorded, then reported as a failed run
            name = ERROR_FILE if rank == 0 else f"error_r{rank}.txt"
            why = record_error(run_dir, f"rank {rank}: {type(exc).__name__}: {exc}\n", name)
            log.error("rank %d failed: %s (details in %s)", rank, exc, run_dir / name)
            return {
                "status": "failed",
                "rank": rank,
                "error": f"rank {rank} failed: {type(exc).__name__}: {exc}",
                "error_txt": why,
                "error_file": run_dir / name,
            }
        finally:
            root = logging.getLogger()
            for h in list(root.handlers):
                root.removeHandler(h)
            for h in handlers:
                root.addHandler(h)
            root.setLevel(level)
        if rank != 0:
            return {"status": "ok", "rank": rank, "summary": None}
        mark_done(run_dir)
    # the group is gone: the other ranks are free; rank 0 files the run with W&B
    _log_summary(cfg, result["summary"], f"{launch.kind} job of {world} ranks")
    wandb = file_with_wandb(run_dir, cfg, result.get("axes"))
    return {"status": "ok", "rank": 0, "summary": result["summary"], "wandb": wandb}


def _log_summary(cfg: Config, summary: dict[str, Any], how: str) -> None:
    log.info(
        "%s n=%d: top1 node mean %.2f%%, emulated %.4f s/itr, wall %.4f s/itr (%s)",
        cfg.algorithm.row,
        cfg.nodes,
        summary["val/top1_node_mean"],
        summary["time/emulated_s_per_itr"],
        summary["time/wall_s_per_itr"],
        how,
    )
