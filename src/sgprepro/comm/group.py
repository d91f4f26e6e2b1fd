"""Process-group setup for one worker process (one rank = one node of the paper)."""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass
class WorkerContext:
    """What a rank knows about its job: identity, backend, device and the rendezvous store."""

    rank: int
    world_size: int
    backend: str
    device: torch.device
    store: dist.Store
    timeout_s: float


def init_worker(
    rank: int,
    world_size: int,
    master_addr: str,
    master_port: int,
    backend: str = "gloo",
    timeout_s: float = 60.0,
    store_prefix: str = "sgprepro",
    host_store: bool = False,
    store_path: str | None = None,
    store: dist.Store | None = None,
) -> WorkerContext:
    """Join the job's process group.

    The rendezvous store is a FileStore at ``store_path`` when given (one machine: no socket),
    else a TCPStore at ``master_addr:master_port`` (a cluster). Either supports what AD-PSGD asks
    of the job's store: ``add``, ``check``, ``get``, ``set`` and ``compare_set``.

    ``host_store``: this rank serves the TCPStore (rank 0 on a cluster).
    ``store``: a store an ``env://`` or ``tcp://`` rendezvous already connected (used as is).

    Raises:
        RuntimeError: the rendezvous or the group init failed (fatal: never a silent fallback).
    """
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend={backend!r}: must be gloo (CPU) or nccl (GPU)")
    timeout = datetime.timedelta(seconds=timeout_s)
    try:
        if store is not None:
            base = store
        elif store_path is not None:
            base = dist.FileStore(store_path, world_size)
            base.set_timeout(timeout)
        else:
            base = dist.TCPStore(master_addr, master_port, world_size, host_store, timeout=timeout)
    except Exception as exc:
        where = store_path or f"{master_addr}:{master_port}"
        raise RuntimeError(
            f"rank {rank}: cannot reach the rendezvous store at {where} within {timeout_s}s ({exc})"
        ) from exc
    prefixed = dist.PrefixStore(store_prefix, base)
    if backend == "nccl":
        if not torch.cuda.is_available():
            raise RuntimeError(f"rank {rank}: backend=nccl needs CUDA; use backend=gloo on CPU")
        local = int(os.environ.get("LOCAL_RANK", rank % torch.cuda.device_count()))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    dist.init_process_group(
        backend, store=prefixed, rank=rank, world_size=world_size, timeout=timeout
    )
    _joined(prefixed, rank, world_size, timeout_s)
    log.debug("rank %d joined a %s group of %d", rank, backend, world_size)
    return WorkerContext(rank, world_size, backend, device, prefixed, timeout_s)


def _joined(store: dist.Store, rank: int, world_size: int, timeout_s: float) -> None:
    """Wait on the store until every rank has its connections up. A rank that finished
    connecting returns from the group init while others are still connecting to the rest; had it
    gone on and closed its group (a function that returns at once), a rank still connecting would
    fail with "Connection closed by peer"."""
    if store.add("joined", 1) == world_size:
        store.set("all_joined", "1")
    try:
        store.wait(["all_joined"], datetime.timedelta(seconds=timeout_s))
    except Exception as exc:
        raise RuntimeError(
            f"rank {rank}: not every one of the {world_size} ranks joined the group within "
            f"{timeout_s}s ({exc})"
        ) from exc


def rendezvous_store(url: str, timeout_s: float) -> dist.Store:
    """The store of the job's rendezvous at ``url`` (``env://`` or ``tcp://host:port?rank=..``)."""
    store, _, _ = next(dist.rendezvous(url, timeout=datetime.timedelta(seconds=timeout_s)))
    return store


def destroy() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
