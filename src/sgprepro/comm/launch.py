"""Local launcher: n worker processes forked from the current one, one per node.

Fork (after torch is imported) starts 32 workers in well under a second; spawn and torchrun
re-import torch in every worker. Rendezvous goes through a TCPStore served by the launching
process, which also watches the workers: the first failure, or the job outliving its deadline,
stops every worker and raises :class:`WorkerFailure` naming the rank and the cause.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import pickle
import queue
import signal
import socket
import time
import traceback
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist

from sgprepro.comm.group import WorkerContext, destroy, init_worker

log = logging.getLogger(__name__)

WorkerFn = Callable[..., Any]


class WorkerFailure(RuntimeError):
    """A worker raised, died or hung. ``rank`` is the first rank that failed (or -1)."""

    def __init__(self, rank: int, cause: str):
        self.rank, self.cause = rank, cause  # cause: first line, then the worker's traceback
        head = cause.splitlines()[0] if cause else "unknown cause"
        super().__init__(f"rank {rank} failed: {head}" if rank >= 0 else head)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(
    rank: int,
    world_size: int,
    port: int,
    backend: str,
    timeout_s: float,
    fn: WorkerFn,
    args: tuple,
    results: mp.Queue,
    threads: int,
) -> None:
    code = 0
    try:
        torch.set_num_threads(threads)
        ctx = init_worker(rank, world_size, "127.0.0.1", port, backend, timeout_s)
        try:
            out = fn(ctx, *args)
        except BaseException as exc:  # noqa: BLE001 - reported to the launcher
            # report before destroy(): tearing the group down makes the peers fail with
            # "Connection closed by peer", which must not be mistaken for the cause
            _report_error(results, rank, exc)
            code = 1
        else:
            # plain pickle: tensors travel by value, not as shared-memory handles of an exiting
            # process
            results.put(("ok", rank, pickle.dumps(out)))
        finally:
            destroy()
    except BaseException as exc:  # noqa: BLE001 - set-up failed (rendezvous, group init)
        _report_error(results, rank, exc)
        code = 1
    finally:
        results.close()
        results.join_thread()
        os._exit(code)


def _report_error(results: mp.Queue, rank: int, exc: BaseException) -> None:
    cause = f"{type(exc).__name__}: {exc}"
    # the time lets the launcher name the first rank that failed, not a peer that noticed
    results.put(("error", rank, (time.time(), cause + "\n" + traceback.format_exc())))


def _warm_imports() -> None:
    """Import lazily-loaded torch modules once here, so forked workers share them.

    Building a torch optimizer imports torch._dynamo on first use (seconds); done in every
    forked worker it would dominate start-up on a small machine.
    """
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)


def launch_local(
    fn: WorkerFn,
    world_size: int,
    args: tuple = (),
    *,
    backend: str = "gloo",
    timeout_s: float = 60.0,
    job_timeout_s: float | None = None,
    threads_per_worker: int = 1,
) -> list[Any]:
    """Run ``fn(ctx: WorkerContext, *args)`` on ``world_size`` forked ranks; return their results.

    Args:
        fn: the worker function; its return value must be picklable.
        world_size: number of ranks.
        backend: ``gloo`` (CPU) or ``nccl`` (one GPU per rank).
        timeout_s: bound on every communication wait inside the workers.
        job_timeout_s: bound on the whole job (None: no bound beyond the workers' own timeouts).

    Raises:
        WorkerFailure: a worker raised or died, or the job outlived ``job_timeout_s``; every
            other worker has been stopped when this is raised.
    """
    if world_size < 1:
        raise ValueError(f"nodes={world_size}: must be >= 1")
    _warm_imports()
    port = free_port()
    ctx = mp.get_context("fork")
    results: mp.Queue = ctx.Queue()
    procs = [
        ctx.Process(
            target=_entry,
            args=(r, world_size, port, backend, timeout_s, fn, args, results, threads_per_worker),
            name=f"sgprepro-rank{r}",
            daemon=False,
        )
        for r in range(world_size)
    ]
    for p in procs:
        p.start()
    # The store is served only after the fork, so no worker inherits its listening socket
    # (inherited, it made some workers' connections hang); workers retry until it is up.
    store = dist.TCPStore("127.0.0.1", port, world_size, True, wait_for_workers=False)
    outs: dict[int, Any] = {}
    errors: dict[int, tuple[float, str]] = {}
    deadline = None if job_timeout_s is None else time.monotonic() + job_timeout_s
    failure: WorkerFailure | None = None
    try:
        while len(outs) < world_size and failure is None:
            try:
                kind, rank, payload = results.get(timeout=0.2)
            except queue.Empty:
                dead = [
                    r
                    for r, p in enumerate(procs)
                    if r not in outs and p.exitcode is not None and p.exitcode != 0
                ]
                if dead:  # give its report a moment to arrive, then name it by its exit code
                    _drain(results, errors, outs, 1.0)
                    failure = _first_failure(errors) or WorkerFailure(
                        dead[0], f"process exited with code {procs[dead[0]].exitcode}"
                    )
                elif deadline is not None and time.monotonic() > deadline:
                    pending = sorted(set(range(world_size)) - set(outs))
                    failure = WorkerFailure(
                        pending[0] if pending else -1,
                        f"job exceeded job_timeout_s={job_timeout_s}s; ranks {pending} still running",
                    )
                continue
            if kind == "error":
                errors[rank] = payload
                # the peers of a failed rank fail soon after it: collect their reports briefly and
                # name the earliest failure, which is the cause
                _drain(results, errors, outs, 1.0)
                failure = _first_failure(errors)
            else:
                outs[rank] = pickle.loads(payload)
    finally:
        if failure is not None:
            _stop_all(procs)
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
                p.join()
        results.close()
        del store
    if failure is not None:
        log.error("%s", failure.cause.splitlines()[0])
        raise failure
    return [outs[r] for r in range(world_size)]


def _drain(results: mp.Queue, errors: dict, outs: dict, seconds: float) -> None:
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        try:
            kind, rank, payload = results.get(timeout=left)
        except queue.Empty:
            return
        if kind == "error":
            errors[rank] = payload
        else:
            outs[rank] = pickle.loads(payload)


def _first_failure(errors: dict[int, tuple[float, str]]) -> WorkerFailure | None:
    if not errors:
        return None
    rank = min(errors, key=lambda r: errors[r][0])
    return WorkerFailure(rank, errors[rank][1])


def _stop_all(procs: list[mp.process.BaseProcess]) -> None:
    for p in procs:
        if p.is_alive():
            try:
                os.kill(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    t0 = time.monotonic()
    for p in procs:
        p.join(timeout=max(0.1, 3 - (time.monotonic() - t0)))
    for p in procs:
        if p.is_alive():
            p.kill()


__all__ = ["WorkerContext", "WorkerFailure", "free_port", "launch_local"]
