"""Local launcher: n worker processes forked from the current one, one per node.

Fork (after torch is imported) starts 32 workers in well under a second; spawn and torchrun
re-import torch in every worker.

- **No socket open to the network.** Rendezvous goes through a ``torch.distributed.FileStore`` in
  a private temporary folder (removed at the end; a job killed by SIGKILL leaves it, and the next
  launch removes it), and gloo's pair sockets are bound to the loopback interface
  (``GLOO_SOCKET_IFNAME``), so a local run listens on 127.0.0.1 only.
- **Workers die with their job.** Each worker asks the kernel for SIGKILL when the job process
  dies (``PR_SET_PDEATHSIG``, Linux), checks that the job process still lives right after the
  fork, and keeps checking from a daemon thread. Workers ignore SIGINT (a Ctrl-C reaches the whole
  process group; the job process decides) and die on SIGTERM.
- **The job process watches them.** The first failure, or the job outliving its deadline, stops
  every worker (SIGTERM, then SIGKILL) and raises :class:`WorkerFailure` naming the rank that
  failed: a rank killed by a signal or exiting without a report is named with its signal or exit
  code, before any peer that only saw its connection close. Inside :class:`StopSignals`, SIGTERM
  and SIGINT stop every worker the same way and raise :class:`JobInterrupted`.
- **A sweep's jobs of one size share their ranks.** With ``reuse`` (what a job of a sweep
  passes), the ranks stay, joined, after the job, and the next job of the same size runs on them
  (:class:`RankPool`): no fork, no group set-up and no teardown between jobs (at 32 ranks on 2
  cores a run's time outside its loop fell from a median of 4.5 s to 1.8 s). Each job's
  function and arguments are pickled to the ranks, its keys in the store
  are its own, and the dataset reaches the ranks through the fork (:data:`SHARED`). A job of
  another size, a failure, an interrupt or the end of the job process ends them.
- **Workers run as batch work.** Each worker takes the kernel's ``SCHED_BATCH`` policy (Linux):
  a rank woken by a message no longer preempts the rank that sent it, so a rank keeps its core
  until its own step blocks: fewer context switches and warmer caches, which matters when 32
  ranks share 2 cores (the default study's iteration loops take 15 % less time). The order of
  work may change, the results do not: a run's arithmetic and its emulated clock do not depend
  on when the OS runs each rank (a real-clock AD-PSGD run, ``algorithm.clock=real``, is decided
  by the OS in any case).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import dataclasses
import logging
import multiprocessing as mp
import os
import pickle
import queue
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from sgprepro.comm.group import WorkerContext, destroy, init_worker
from sgprepro.interrupt import JobInterrupted

log = logging.getLogger(__name__)

WorkerFn = Callable[..., Any]

EXIT_ORPHANED = 75  # a worker whose job process is gone exits with this code
STOP_GRACE_S = 3.0  # SIGTERM, then SIGKILL after this long
_LIVENESS_PERIOD_S = 0.5
_PR_SET_NAME = 15
_PR_SET_PDEATHSIG = 1
# what gloo (and the kernel) say when the other end of a connection went away
_CLOSED_RE = re.compile(
    r"connection closed by peer|connection reset by peer|broken pipe|\bECONNRESET\b|\bEPIPE\b",
    re.IGNORECASE,
)


class WorkerFailure(RuntimeError):  # noqa: N818 - public name since the first release
    """A worker raised, died or hung. ``rank`` is the rank that caused it (or -1)."""

    def __init__(self, rank: int, cause: str):
        self.rank, self.cause = rank, cause  # cause: first line, then details
        head = cause.splitlines()[0] if cause else "unknown cause"
        super().__init__(f"rank {rank} failed: {head}" if rank >= 0 else head)


class StopSignals:
    """Turn SIGTERM and SIGINT into :class:`JobInterrupted` in the main thread, for a job's life.

    The first signal raises once; later ones are noted and ignored, so the clean-up that follows
    (stopping workers, writing ``error.txt``) is not cut short. :meth:`deferred` holds a signal
    back over a critical section (e.g. writing the ``done`` marker) and raises it at the end.
    Outside the main thread (where Python cannot take signals) it does nothing.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.received: int | None = None
        self._raised = False
        self._defer = 0
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        global _ACTIVE
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
            _ACTIVE = self
        return self

    def __exit__(self, *exc: object) -> None:
        global _ACTIVE
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        self._old.clear()
        if _ACTIVE is self:
            _ACTIVE = None

    def _handle(self, signum: int, frame: object) -> None:
        if self.received is None:
            self.received = signum
        if self._defer or self._raised:
            return
        self._raised = True
        raise JobInterrupted(signum)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """No JobInterrupted inside the block; a signal received meanwhile raises at its end."""
        self._defer += 1
        try:
            yield
        finally:
            self._defer -= 1
        if not self._defer and self.received is not None and not self._raised:
            self._raised = True
            raise JobInterrupted(self.received)


_ACTIVE: StopSignals | None = None


def _held() -> contextlib.AbstractContextManager:
    """Defer signals over a clean-up when a :class:`StopSignals` is active, else do nothing."""
    return _ACTIVE.deferred() if _ACTIVE is not None else contextlib.nullcontext()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loopback_interface() -> str:
    """The name of the loopback interface ("lo" on Linux, "lo0" on macOS)."""
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        names = []
    for name in ("lo", "lo0"):
        if name in names:
            return name
    return next((n for n in names if n.startswith("lo")), "lo")


def _prctl(option: int, arg: int | bytes) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, arg, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int, rank: int) -> None:
    while True:
        time.sleep(_LIVENESS_PERIOD_S)
        if os.getppid() != parent_pid:
            _orphaned(parent_pid, rank)


def _orphaned(parent_pid: int, rank: int) -> None:
    with contextlib.suppress(OSError):
        os.write(2, f"rank {rank}: job process {parent_pid} is gone; exiting\n".encode())
    os._exit(EXIT_ORPHANED)


def _child_setup(rank: int, parent_pid: int) -> None:
    """First thing in a forked worker: signals, the scheduling policy, the tie to the job process,
    a readable name."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(os, "SCHED_BATCH"):  # every thread started from here on (gloo's) inherits it
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the job died before the death signal was armed
        _orphaned(parent_pid, rank)
    threading.Thread(
        target=_watch_parent, args=(parent_pid, rank), name="parent-watch", daemon=True
    ).start()
    _prctl(_PR_SET_NAME, f"sgprepro-r{rank}".encode()[:15])


def _entry(
    rank: int,
    world_size: int,
    store_path: str,
    backend: str,
    timeout_s: float,
    work: Any,
    results: mp.Queue,
    threads: int,
    parent_pid: int,
    ifname: str,
    shared: Any = None,
    job_fds: tuple[int, ...] = (),
) -> None:
    """One rank: joins the group, runs its work, reports each result, leaves the group.

    ``work``: ``(fn, args)`` to run once (a one-job rank), or the read end of the pipe a
    :class:`RankPool` sends tasks on (run in turn until an empty message, or until one fails).
    :data:`SHARED` in a task's ``args`` is ``shared``, which the rank has from the fork.
    ``job_fds``: descriptors of the forking job to close at once (a kept rank outlives it).
    """
    code = 0
    try:
        _child_setup(rank, parent_pid)
        for fd in job_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        # gloo's pair sockets (and NCCL's bootstrap) listen on this interface only
        os.environ["GLOO_SOCKET_IFNAME"] = ifname
        os.environ["NCCL_SOCKET_IFNAME"] = ifname
        torch.set_num_threads(threads)
        ctx = init_worker(rank, world_size, "", 0, backend, timeout_s, store_path=store_path)
        try:
            for number, fn, args in _tasks(work):
                args = tuple(shared if a is SHARED else a for a in args)
                # a kept rank's task has its own keys in the store (a job's counters start afresh)
                job = (
                    ctx
                    if not number
                    else dataclasses.replace(
                        ctx, store=dist.PrefixStore(f"task{number}", ctx.store)
                    )
                )
                try:
                    out = fn(job, *args)
                except BaseException as exc:  # noqa: BLE001 - reported to the launcher
                    # report before destroy(): tearing the group down makes the peers fail with
                    # "Connection closed by peer", which must not be mistaken for the cause
                    _report_error(results, rank, exc)
                    code = 1
                    break
                # plain pickle: tensors travel by value, not as shared-memory handles of an
                # exiting process
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


def _tasks(work: Any) -> Iterator[tuple[int, WorkerFn, tuple]]:
    """``(number, fn, args)`` of each task of :func:`_entry`'s ``work`` (number 0: a one-job
    rank's only task)."""
    if isinstance(work, tuple):
        yield (0, *work)
        return
    while task := work.recv_bytes():
        yield pickle.loads(task)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def describe_error(rank: int, exc: BaseException) -> tuple[str, str]:
    """(kind, cause) of a worker's exception: kind "closed" when a connection to another rank
    closed under it (that rank exited or was killed; not a timeout), else "error"."""
    text = f"{type(exc).__name__}: {exc}"
    # the innermost match: gloo's own message, not a wrapper that quotes it
    closed = [str(e) for e in _chain(exc) if _CLOSED_RE.search(str(e))]
    if not closed:
        return "error", text
    step, peer, op = (getattr(exc, a, None) for a in ("step", "peer", "op"))
    where = f" step {step}: {op} with peer {peer}" if step is not None else ""
    detail = re.sub(r"^\[[^\]]*\]\s*", "", closed[-1].splitlines()[0]).split(". ")[0]
    return "closed", (
        f"ConnectionClosed: rank {rank}{where}: the connection was closed by another rank (it "
        f"exited or was killed); not a timeout [{detail[:160]}]"
    )


def _report_error(results: mp.Queue, rank: int, exc: BaseException) -> None:
    kind, cause = describe_error(rank, exc)
    # the time lets the launcher name the first rank that failed, not a peer that noticed
    results.put(("error", rank, (time.time(), kind, cause + "\n" + traceback.format_exc())))


def warm_imports() -> None:
    """Import lazily-loaded torch modules once here, so forked workers share them.

    Building a torch optimizer imports torch._dynamo on first use (seconds); done in every
    forked worker it would dominate start-up on a small machine.
    """
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)


class _Shared:
    """The placeholder of :func:`launch_local`'s ``shared`` object in ``args``."""

    def __repr__(self) -> str:
        return "SHARED"

    def __reduce__(self) -> str:
        return "SHARED"  # unpickles as this module's SHARED: identity survives the pipe


SHARED = _Shared()
"""In ``launch_local``'s ``args``: the ``shared`` object, which the ranks get from the fork
(never pickled), e.g. the job's dataset."""


def launch_local(
    fn: WorkerFn,
    world_size: int,
    args: tuple = (),
    *,
    backend: str = "gloo",
    timeout_s: float = 60.0,
    job_timeout_s: float | None = None,
    threads_per_worker: int = 1,
    shared: Any = None,
    reuse: Any = None,
    job_fds: Sequence[int] = (),
) -> list[Any]:
    """Run ``fn(ctx: WorkerContext, *args)`` on ``world_size`` forked ranks; return their results.

    Args:
        fn: the worker function; its return value must be picklable.
        world_size: number of ranks.
        backend: ``gloo`` (CPU) or ``nccl`` (one GPU per rank).
        timeout_s: bound on every communication wait inside the workers.
        job_timeout_s: bound on the whole job (None: no bound beyond the workers' own timeouts).
        shared: an object the ranks inherit from the fork; :data:`SHARED` in ``args`` stands
            for it.
        reuse: None forks fresh ranks that exit with the job. Else a key of ``shared`` (equal
            keys, equal objects): the ranks stay, joined, for the next call with the same
            world size, backend, timeouts, threads and key (:class:`RankPool`; a call with any
            other closes them first, and so does the end of this process). Each call's ``fn``
            and ``args`` are pickled to the ranks; they keep their process group, and each call
            gets its own keys in the store.
        job_fds: descriptors of this job (its run folder's lock) that kept ranks close after
            the fork: they outlive the job. Ranks of one job keep them, and die with it.

    Every worker has been stopped (SIGTERM, then SIGKILL) when anything is raised.

    Raises:
        WorkerFailure: a worker raised or died, or the job outlived ``job_timeout_s``.
        JobInterrupted: SIGTERM or SIGINT inside :class:`StopSignals`.
    """
    if world_size < 1:
        raise ValueError(f"nodes={world_size}: must be >= 1")
    warm_imports()
    if reuse is not None:
        key = (world_size, backend, timeout_s, threads_per_worker, reuse)
        pool = RankPool.kept(key, shared, job_fds)
        return pool.run(fn, args, job_timeout_s)
    close_kept_ranks()  # a fresh job never shares the machine's cores with idle kept ranks
    _remove_stale_rendezvous()
    store_dir = tempfile.mkdtemp(prefix=f"{_RENDEZVOUS_PREFIX}{os.getpid()}-")
    store_path = str(Path(store_dir) / "store")
    ctx = mp.get_context("fork")
    results: mp.Queue = ctx.Queue()
    one_shot = tuple(shared if a is SHARED else a for a in args)
    procs = [
        ctx.Process(
            target=_entry,
            args=(
                r,
                world_size,
                store_path,
                backend,
                timeout_s,
                (fn, one_shot),
                results,
                threads_per_worker,
                os.getpid(),
                loopback_interface(),
            ),
            name=f"sgprepro-rank{r}",
            daemon=False,
        )
        for r in range(world_size)
    ]
    finished = False
    try:
        for p in procs:
            p.start()
        outs = _collect(procs, results, world_size, job_timeout_s)
        finished = True
    finally:
        with _held():
            if not finished:
                _stop_all(procs)
            _join_all(procs, 10.0)
            results.close()
            shutil.rmtree(store_dir, ignore_errors=True)
    return outs


def _collect(
    procs: list,
    results: mp.Queue,
    world_size: int,
    job_timeout_s: float | None,
) -> list[Any]:
    """Every rank's result of one job, watching the ranks; raises :class:`WorkerFailure` naming
    the rank that caused a failure, or the job outliving ``job_timeout_s``."""
    outs: dict[int, Any] = {}
    errors: dict[int, tuple[float, str, str]] = {}
    deadline = None if job_timeout_s is None else time.monotonic() + job_timeout_s
    failure: WorkerFailure | None = None
    while len(outs) < world_size and failure is None:
        try:
            kind, rank, payload = results.get(timeout=0.2)
        except queue.Empty:
            if _dead(procs, outs, errors):  # give its report (or result) a moment to arrive
                _drain(results, errors, outs, 1.0)
                if errors or _dead(procs, outs, errors):
                    failure = _blame(procs, outs, errors)
            elif deadline is not None and time.monotonic() > deadline:
                pending = sorted(set(range(world_size)) - set(outs))
                failure = WorkerFailure(
                    pending[0] if pending else -1,
                    f"job exceeded job_timeout_s={job_timeout_s}s; ranks {pending} still running",
                )
            continue
        if kind == "error":
            errors[rank] = payload
            # the peers of a failed rank fail soon after it: collect their reports briefly,
            # and the exit status of ranks that died without one, then name the cause
            _drain(results, errors, outs, 1.0)
            failure = _blame(procs, outs, errors)
        else:
            outs[rank] = pickle.loads(payload)
    if failure is not None:
        log.error("%s", failure.cause.splitlines()[0])
        raise failure
    return [outs[r] for r in range(world_size)]


def _join_all(procs: Sequence[mp.process.BaseProcess], seconds: float) -> None:
    """Join every started worker, killing those still alive after ``seconds`` in all."""
    deadline_join = time.monotonic() + seconds
    for p in procs:
        if p.pid is None:
            continue
        p.join(timeout=max(0.1, deadline_join - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join()


class RankPool:
    """Ranks kept, joined, between the jobs of one process (a sweep's consecutive jobs of one
    size): a job then costs no fork, no group set-up and no teardown (at 32 ranks on 2
    cores a run's time outside its loop fell from a median of 4.5 s to 1.8 s). One pool at a
    time, in :data:`_KEPT`; :func:`close_kept_ranks` ends it.

    A job that fails or is interrupted stops every rank of the pool (the next job forks new
    ones); a rank ends with the process that forked it, as a one-job rank does."""

    def __init__(self, key: tuple, shared: Any, job_fds: Sequence[int] = ()) -> None:
        world_size, backend, timeout_s, threads, _ = key
        self.key = key
        self.world_size = world_size
        self.tasks = 0
        _remove_stale_rendezvous()
        self.store_dir = tempfile.mkdtemp(prefix=f"{_RENDEZVOUS_PREFIX}{os.getpid()}-")
        ctx = mp.get_context("fork")
        self.results: mp.Queue = ctx.Queue()
        pipes = [ctx.Pipe(duplex=False) for _ in range(world_size)]
        self.senders = [send for _, send in pipes]
        self.procs = [
            ctx.Process(
                target=_entry,
                args=(
                    r,
                    world_size,
                    str(Path(self.store_dir) / "store"),
                    backend,
                    timeout_s,
                    pipes[r][0],
                    self.results,
                    threads,
                    os.getpid(),
                    loopback_interface(),
                    shared,
                    tuple(job_fds),
                ),
                name=f"sgprepro-rank{r}",
                daemon=False,
            )
            for r in range(world_size)
        ]
        try:
            for p in self.procs:
                p.start()
        except BaseException:
            self.stop()
            raise
        for recv, _ in pipes:
            recv.close()  # the ranks hold their ends

    @classmethod
    def kept(cls, key: tuple, shared: Any, job_fds: Sequence[int] = ()) -> RankPool:
        """The kept pool for ``key`` (a new one when there is none, or one for another key,
        which is closed first)."""
        global _KEPT
        if _KEPT is not None and (_KEPT.key != key or not _KEPT.alive()):
            close_kept_ranks()
        if _KEPT is None:
            _KEPT = cls(key, shared, job_fds)
        return _KEPT

    def alive(self) -> bool:
        return all(p.is_alive() for p in self.procs)

    def run(self, fn: WorkerFn, args: tuple, job_timeout_s: float | None) -> list[Any]:
        """One job on the pool's ranks; on any failure the pool is stopped and forgotten."""
        global _KEPT
        self.tasks += 1
        task = pickle.dumps((self.tasks, fn, args))
        done = False
        try:
            for send in self.senders:
                send.send_bytes(task)
            outs = _collect(self.procs, self.results, self.world_size, job_timeout_s)
            done = True
        except OSError as exc:  # a rank's pipe closed: it died before the task
            raise WorkerFailure(-1, f"a kept rank was gone before the job started ({exc})") from exc
        finally:
            if not done:
                with _held():
                    self.stop()
                    if _KEPT is self:
                        _KEPT = None
        return outs

    def stop(self) -> None:
        """SIGTERM (then SIGKILL) every rank: after a failure or an interrupt."""
        _stop_all(self.procs)
        self._release()

    def close(self) -> None:
        """Tell every rank to leave its group and exit; kill those that do not within 10 s."""
        for send in self.senders:
            with contextlib.suppress(OSError):
                send.send_bytes(b"")
        self._release()

    def _release(self) -> None:
        _join_all(self.procs, 10.0)
        for send in self.senders:
            send.close()
        self.results.close()
        shutil.rmtree(self.store_dir, ignore_errors=True)


_KEPT: RankPool | None = None


def close_kept_ranks() -> None:
    """Close the kept ranks of :class:`RankPool`, if any (also run when this process exits)."""
    global _KEPT
    pool, _KEPT = _KEPT, None
    if pool is not None:
        pool.close()


atexit.register(close_kept_ranks)


_RENDEZVOUS_PREFIX = "sgprepro-rendezvous-"


def _remove_stale_rendezvous() -> None:
    """Remove the rendezvous folders of job processes that are gone (a job killed by SIGKILL
    cannot remove its own); each folder is named after its job's pid."""
    for path in Path(tempfile.gettempdir()).glob(f"{_RENDEZVOUS_PREFIX}*-*"):
        pid = path.name[len(_RENDEZVOUS_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:  # alive, another user's
            pass


def _dead(procs: list, outs: dict, errors: dict) -> list[int]:
    """Ranks whose process ended without a result (a failure, whatever its exit code)."""
    return [
        r
        for r, p in enumerate(procs)
        if r not in outs and p.exitcode is not None and (p.exitcode != 0 or r not in errors)
    ]


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name} (signal {-code})"
    return f"exited with code {code}"


def _blame(procs: list, outs: dict, errors: dict[int, tuple[float, str, str]]) -> WorkerFailure:
    """The rank that caused the failure, in this order: a rank that died without a report (by a
    signal or an exit code), then the earliest reported error, then the earliest rank that saw a
    connection close (when nothing else is known, after waiting briefly for a death to show)."""
    end = time.monotonic() + 2.0
    while True:
        silent = [r for r in _dead(procs, outs, errors) if r not in errors]
        real = {r: e for r, e in errors.items() if e[1] != "closed"}
        if silent or real or time.monotonic() > end:
            break
        time.sleep(0.05)  # only closed connections so far: the rank behind them is dying
    others = _others_line(errors)
    if silent:
        rank = silent[0]
        code = procs[rank].exitcode
        head = f"{_exit_text(code)} without reporting an error"
        return WorkerFailure(rank, head + (f"\n{others}" if others else ""))
    pool = real or errors
    if not pool:
        return WorkerFailure(-1, "a worker stopped without a report")
    rank = min(pool, key=lambda r: pool[r][0])
    cause = pool[rank][2]
    rest = _others_line({r: e for r, e in errors.items() if r != rank})
    return WorkerFailure(rank, cause.rstrip("\n") + (f"\n{rest}" if rest else ""))


def _others_line(errors: dict[int, tuple[float, str, str]]) -> str:
    if not errors:
        return ""
    parts = [f"rank {r}: {errors[r][2].splitlines()[0]}" for r in sorted(errors)]
    return "then: " + "; ".join(parts)


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


def _stop_all(procs: Sequence[mp.process.BaseProcess]) -> None:
    """SIGTERM every live worker, then SIGKILL those still alive after ``STOP_GRACE_S``."""
    for p in procs:
        if p.pid is not None and p.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGTERM)
    t0 = time.monotonic()
    for p in procs:
        if p.pid is not None:
            p.join(timeout=max(0.05, STOP_GRACE_S - (time.monotonic() - t0)))
    for p in procs:
        if p.pid is not None and p.is_alive():
            p.kill()


__all__ = [
    "SHARED",
    "JobInterrupted",
    "RankPool",
    "StopSignals",
    "WorkerContext",
    "WorkerFailure",
    "close_kept_ranks",
    "describe_error",
    "free_port",
    "launch_local",
    "loopback_interface",
]
