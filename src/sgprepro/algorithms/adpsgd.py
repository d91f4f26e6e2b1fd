"""AD-PSGD (Lian et al. 2018) as the SGP paper ran it: asynchronous pairwise averaging.

Per node, a trainer and a gossip loop run concurrently (``gossip_sgd_adpsgd.py`` and
``BilatGossipDataParallel`` of the original code, branch ``main``):

* the **gossip loop** owns the gossip copy x of the parameters and its own optimizer (momentum
  local). Each loop iteration applies the gradient the trainer handed over, if any, then gossips
  with the bipartite partner of its round: an active (odd) rank sends x, then receives; a passive
  (even) rank keeps a receive posted, never blocks when nothing has arrived, and sends x back when
  a message is in. Both set x <- (x_active + x_passive) / 2.
* the **trainer** computes a gradient on its own model, hands it over (waiting until the previous
  one was consumed), pulls x and takes its own optimizer step with the new gradient on it (a
  look-ahead copy): its next gradient is computed on a model that contains its previous one.
* the learning rate and the stop follow the global gradient count (gradient g uses lr(g / n);
  exactly n x iterations gradients are taken in all, faster nodes take more).

Two clocks (``algorithm.clock``):

* ``emulated`` (default): the timing engine decides the interleaving under the run's network
  condition and a compute-time model (:func:`sgprepro.timing.adpsgd_schedule`): which model each
  gradient is computed on, in which gossip round it is applied, how many gradients each rank
  takes. Every rank then replays its operations in that order over real gloo messages, so a
  config gives bit-identical results on any machine and any load, and another network condition
  gives another schedule (and honestly another accuracy).
* ``real``: a gossip thread and the trainer interleave in real time (a cluster's behaviour): the
  global count lives in the job's store, and the run stops at a round agreed through the store's
  compare-and-set, with a margin of (n - 1) x cycle + 2 rounds.

Matrix form under a schedule (the oracle, :func:`matrix_run`): the same operations applied to n
replicas in one process.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from sgprepro.algorithms.base import Algorithm, Closure, PeersAt, StepInfo, require_topology
from sgprepro.algorithms.registry import register
from sgprepro.comm import CommError, Communicator, PendingExchange, flat_grad
from sgprepro.network import NetworkConfig
from sgprepro.schema import AlgorithmConfig
from sgprepro.timing import (
    AsyncSchedule,
    Link,
    Op,
    ProgramSpec,
    adpsgd_schedule,
    apply_compute_noise,
)
from sgprepro.timing.engine import JITTER_STREAM, async_passes
from sgprepro.timing.gossip_async import APPLY, COMMIT, GRAD, HANDOVER, SEND, op_order
from sgprepro.timing.trace import GOSSIP_CPU_KEY
from sgprepro.topology import BipartiteGraph, Topology

log = logging.getLogger(__name__)

CLOCKS = ("emulated", "real")
COUNTER_KEY = "adpsgd/gradients"
STOP_FLAG_KEY = "adpsgd/budget_spent"
STOP_ROUND_KEY = "adpsgd/stop_round"
PASSIVE_POLL_S = 0.0005
"""Real clock: how long a passive gossip loop sleeps when nothing has arrived."""
HANDOVER_POLL_S = 0.05
"""Real clock: how often a waiting trainer re-checks for a failed gossip loop."""
DRAIN_POLL_S = 0.02
"""Real clock: how long a stopped gossip loop waits for the trainer's last gradients per poll."""
JOIN_GRACE_S = 5.0
"""Real clock: time beyond comm.timeout_s to wait for the gossip thread to end."""
STOP_MARGIN_EXTRA_ROUNDS = 2
"""Real clock: handshake rounds added to (n - 1) x cycle in the agreed stop margin."""


@register
class ADPSGD(Algorithm):
    """AD-PSGD. From the :class:`RunContext`: ``total_steps`` (iterations per node; the global
    budget is ``total_steps * n`` gradients), ``schedule`` (emulated clock) or ``store`` (real
    clock)."""

    name = "adpsgd"
    summary = (
        "Asynchronous pairwise averaging as the original ran it: a gossip loop per node (active "
        "ranks send then receive, passive ranks never block), trainers that hand over one "
        "gradient per loop iteration and take a look-ahead step on the pulled model; lr and stop "
        "on the global gradient count. Emulated clock by default: the timing engine decides the "
        "interleaving, the run follows it (deterministic)."
    )
    synchronous = False
    default_topology = "bipartite_exponential"
    settings = ("clock", "schedule_compute_s", "max_rounds_per_gradient", "gossip_margin_rounds")

    @classmethod
    def check(cls, config: AlgorithmConfig, topology: Topology | None) -> None:
        topo = require_topology(cls, topology)
        if not isinstance(topo, BipartiteGraph):
            raise ValueError(
                f"topology.name={topo.name} with algorithm=adpsgd: AD-PSGD pairs active and "
                "passive nodes; use topology=bipartite_exponential (or auto)"
            )
        if config.clock not in CLOCKS:
            raise ValueError(
                f"algorithm.clock={config.clock!r}: must be one of {list(CLOCKS)}; use emulated "
                "(deterministic, the default) or real (clusters)"
            )
        if not 0 < config.schedule_compute_s < math.inf:
            raise ValueError(
                f"algorithm.schedule_compute_s={config.schedule_compute_s}: must be > 0 and "
                "finite; use "
                "your measured compute seconds per iteration, e.g. 0.005"
            )
        if config.gossip_margin_rounds < 0:
            raise ValueError(
                f"algorithm.gossip_margin_rounds={config.gossip_margin_rounds}: must be >= 0 "
                "(0: (n - 1) x the graph's cycle + 2 rounds); use algorithm.gossip_margin_rounds=0"
            )
        if config.max_rounds_per_gradient < 1:
            raise ValueError(
                f"algorithm.max_rounds_per_gradient={config.max_rounds_per_gradient}: must be "
                ">= 1; use 64"
            )

    @classmethod
    def timing_program(
        cls, config: AlgorithmConfig, peers_at: PeersAt, message_bytes: int = 0
    ) -> ProgramSpec:
        return ProgramSpec(
            "gossip_async", max_rounds_per_gradient=config.max_rounds_per_gradient, label=config.row
        )

    @classmethod
    def needs_plan(cls, config: AlgorithmConfig) -> bool:
        return config.clock == "emulated"

    @classmethod
    def plan(
        cls,
        config: AlgorithmConfig,
        *,
        network: NetworkConfig,
        topology: Topology | None,
        nodes: int,
        total_steps: int,
        message_bytes: int,
        seed: int,
    ) -> AsyncSchedule | None:
        """The emulated-clock schedule: every node computes for ``schedule_compute_s`` per
        gradient (times the condition's compute-noise model, seeded) under ``network`` (an
        absolute condition: the caller resolves a relative one against that compute);
        ``nodes x total_steps`` gradients in all."""
        if not cls.needs_plan(config):
            return None
        topo = require_topology(cls, topology)
        c0 = config.schedule_compute_s
        net = network
        compute = apply_compute_noise(np.full((nodes, 2 * total_steps + 8), c0), net, seed)
        spec = cls.timing_program(config, lambda _: 1, message_bytes)
        return adpsgd_schedule(
            list(compute),
            nodes * total_steps,
            topo,
            message_bytes,
            Link(net, np.random.default_rng((seed, JITTER_STREAM))),
            net.reduce_s_per_byte,
            spec.max_rounds_per_gradient,
            async_passes(spec),
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.check(self.config, self.topology)
        self.graph: BipartiteGraph = self.topology  # type: ignore[assignment]
        schedule: AsyncSchedule | None = self.run.schedule
        store = self.run.store
        if self.run.total_steps < 1:
            raise ValueError("algorithm=adpsgd needs the run's total_steps (RunContext)")
        self.total_grads = self.run.total_steps * self.world_size
        # the gossip loop's own parameters and optimizer
        self.x = torch.nn.Parameter(self.flat.detach().clone())
        self.gossip_opt = type(self.optimizer)([self.x], **dict(self.optimizer.defaults))
        self._clock: _EmulatedClock | _RealClock
        if self.config.clock == "emulated":
            if schedule is None:
                raise ValueError("algorithm=adpsgd with clock=emulated needs its schedule")
            self._clock = _EmulatedClock(self, schedule)
        else:
            if store is None:
                raise ValueError("algorithm=adpsgd with clock=real needs the job's store")
            self._clock = _RealClock(self, store)

    def train_step(self, step: int, epoch: float, closure: Closure) -> StepInfo:
        return self._clock.train_step(step, closure)

    def finish(self) -> None:
        """Complete the gossip this rank still owes, then load x into the model (the original
        evaluates the gossip model)."""
        self._clock.finish()
        self.flat.copy_(self.x.detach())

    def take_sent(self) -> list[list[int]]:
        """Messages sent since the last step reported them: after :meth:`finish`, those the gossip
        loop sent after the trainer's last step (on the real clock it may run behind)."""
        return self._clock.take_sent()

    def debiased(self) -> torch.Tensor:
        return self.flat

    @contextmanager
    def evaluation_view(self) -> Iterator[None]:
        """Mid-run evaluation sees the gossip model x, as the original's ``eval()`` pulls it."""
        saved = self.flat.clone()
        self.flat.copy_(self.x.detach())
        try:
            yield
        finally:
            self.flat.copy_(saved)

    @property
    def summary_extra(self) -> dict[str, Any]:
        """Per-rank facts for the summary: gradients, rounds, staleness histogram."""
        return self._clock.stats()

    # -- shared operations -----------------------------------------------------------------
    def _pull_and_look_ahead(self, grad: torch.Tensor, lr: float) -> None:
        """The trainer pulls x and takes its own step with ``grad`` on it."""
        self.flat.copy_(self.x.detach())
        offset = 0
        for p in self.params:
            k = p.numel()
            g = grad[offset : offset + k].view_as(p)
            if p.grad is None:
                p.grad = g.clone()
            else:
                p.grad.copy_(g)
            offset += k
        self._set_lr(lr)
        self.optimizer.step()

    def _apply(self, grad: torch.Tensor, lr: float) -> None:
        """The gossip loop's optimizer step with a handed-over gradient."""
        for group in self.gossip_opt.param_groups:
            group["lr"] = lr
        self.x.grad = grad
        self.gossip_opt.step()


class _EmulatedClock:
    """Replays this rank's operations of the schedule (see the module docstring)."""

    def __init__(self, algo: ADPSGD, schedule: AsyncSchedule) -> None:
        if schedule.n != algo.world_size:
            raise ValueError(
                f"AD-PSGD schedule for {schedule.n} nodes in a job of {algo.world_size}"
            )
        self.a = algo
        self.schedule = schedule
        self.ops: list[Op] = schedule.ops(algo.rank)
        self.pos = 0
        self.grads: dict[int, tuple[torch.Tensor, float]] = {}
        self.pending: dict[int, tuple[torch.Tensor, PendingExchange]] = {}
        self.version = 0
        self.read_version = [0]  # the version each gradient's model was pulled at
        self.staleness: list[int] = []
        self.rounds = 0
        self.n_grads = len(schedule.handover[algo.rank])
        self.trainer_cpu = 0.0  # the look-ahead steps since the last step reported them
        self.gossip_cpu = 0.0  # the gossip loop's arithmetic since the last step reported it

    def _run(self, op: Op) -> None:
        """One operation; its thread CPU time goes to the trainer (the look-ahead step) or to
        the gossip loop (gradient steps, the copy sent, averaging), never the message waits."""
        a = self.a
        c0 = time.thread_time()
        if op.kind == HANDOVER:
            grad, lr = self.grads[op.index]
            a._pull_and_look_ahead(grad, lr)
            self.read_version.append(self.version)
            self.trainer_cpu += time.thread_time() - c0
        elif op.kind == APPLY:
            grad, lr = self.grads.pop(op.index)
            self.staleness.append(self.version - self.read_version[op.index])
            a._apply(grad, lr)
            self.version += 1
            self.gossip_cpu += time.thread_time() - c0
        elif op.kind == SEND:
            buf = a.x.detach().clone()
            self.gossip_cpu += time.thread_time() - c0
            self.pending[op.index] = (buf, a.comm.post({op.peer: buf}, [op.peer], op.index, buf))
        elif op.kind == COMMIT:
            buf, pending = self.pending.pop(op.index)
            got = pending.wait()[op.peer]
            c0 = time.thread_time()
            with torch.no_grad():
                a.x.copy_((buf + got).mul_(0.5))
            self.version += 1
            self.rounds += 1
            self.gossip_cpu += time.thread_time() - c0
        else:
            raise ValueError(f"unexpected operation {op}")

    def train_step(self, step: int, closure: Closure) -> StepInfo:
        a = self.a
        t0 = time.perf_counter()
        wait0 = a.comm.wait_s
        while self.ops[self.pos].kind != GRAD:  # operations before this gradient
            self._run(self.ops[self.pos])
            self.pos += 1
        op = self.ops[self.pos]
        self.pos += 1
        if op.index != step:
            raise CommError(
                f"rank {a.rank}: AD-PSGD schedule out of step (gradient {op.index}, loop step "
                f"{step})"
            )
        global_step = op.ticket / a.world_size
        lr = a.lr_fn(global_step)
        c0 = time.thread_time()
        loss = closure()
        self.grads[op.index] = (flat_grad(a.params), lr)
        cpu = time.thread_time() - c0
        last = op.index == self.n_grads - 1
        # operations up to the next gradient (the last gradient: everything left)
        while self.pos < len(self.ops) and (last or self.ops[self.pos].kind != GRAD):
            self._run(self.ops[self.pos])
            self.pos += 1
        stale = self.staleness[-1] if self.staleness else -1
        cpu += self.trainer_cpu
        gossip_cpu, self.trainer_cpu, self.gossip_cpu = self.gossip_cpu, 0.0, 0.0
        return StepInfo(
            loss=float(loss),
            lr=lr,
            compute_s=cpu,
            comm_s=a.comm.wait_s - wait0,
            wall_s=time.perf_counter() - t0,
            sent=self.take_sent(),
            stop=last,
            global_step=global_step,
            extra={"rounds": self.rounds, "staleness_last": stale, GOSSIP_CPU_KEY: gossip_cpu},
        )

    def take_sent(self) -> list[list[int]]:
        return self.a.comm.sent.take()

    def finish(self) -> None:
        while self.pos < len(self.ops):
            self._run(self.ops[self.pos])
            self.pos += 1

    def stats(self) -> dict[str, Any]:
        return {
            "gradients": self.n_grads,
            "gossip_rounds": self.rounds,
            "staleness": self.staleness,
            "clock": "emulated",
        }


class _RealClock:
    """A gossip thread beside the trainer, interleaving in real time (see the module docstring).

    Clean stop without a barrier: the first gossip loop to see the global budget spent publishes
    a stop round r_stop = r + margin (compare-and-set in the store, so all ranks agree); every loop
    finishes exactly round r_stop. With pairwise rounds, a rank can lead the slowest by at most
    (n - 1) x L rounds for a graph cycle of L rounds. Rounds after a rank learned the stop are
    handshakes without averaging (a flag in the message; a pair averages only if both flags say
    so), so the models are not averaged more than the asynchronous run would have.

    Staleness as on the emulated clock: x's version counts its changes (a gradient applied, an
    averaging); a gradient's staleness is the version when it is applied minus the version of the
    x its trainer pulled before computing it.
    """

    def __init__(self, algo: ADPSGD, store: Any) -> None:
        self.a = algo
        self.store = store
        n = algo.world_size
        self.margin = algo.config.gossip_margin_rounds or (
            (n - 1) * algo.graph.cycle_length + STOP_MARGIN_EXTRA_ROUNDS
        )
        self._lock = threading.Lock()
        self._slot: queue.Queue = queue.Queue(maxsize=1)
        self._trainer_done = threading.Event()
        self._error: BaseException | None = None
        self.rounds_done = 0
        self.gradients = 0
        self.version = 0  # changes of x so far (under _lock)
        self._read_version = 0  # the version of the x the trainer's next gradient is computed on
        self.staleness: list[int] = []
        self._sent_pending: list[list[int]] = []
        self._gossip_cpu = 0.0  # the gossip thread's arithmetic not yet reported (under _lock)
        self.gossip = Communicator.new_group(algo.rank, n, algo.comm.timeout_s, algo.comm.backend)
        self._thread = threading.Thread(
            target=self._run_gossip, name=f"adpsgd-gossip-r{algo.rank}", daemon=True
        )
        self._thread.start()

    # -- trainer side ---------------------------------------------------------------------
    def train_step(self, step: int, closure: Closure) -> StepInfo:
        a = self.a
        t0 = time.perf_counter()
        self._raise_if_failed()
        c0 = time.thread_time()
        loss = closure()  # on the trainer's model (the previous pull + look-ahead)
        grad = flat_grad(a.params)
        cpu = time.thread_time() - c0
        ticket = self.store.add(COUNTER_KEY, 1)  # 1-based global gradient count
        global_step = (ticket - 1) / a.world_size
        lr = a.lr_fn(global_step)
        stop = ticket >= a.total_grads
        w0 = time.perf_counter()
        if ticket <= a.total_grads:
            self._handover(grad, lr, self._read_version, step)
            self.gradients += 1
        with self._lock:
            c1 = time.thread_time()
            a._pull_and_look_ahead(grad, lr)
            cpu += time.thread_time() - c1
            self._read_version = self.version
            gossip_cpu, self._gossip_cpu = self._gossip_cpu, 0.0
        if stop:
            self.store.set(STOP_FLAG_KEY, "1")
        return StepInfo(
            loss=float(loss),
            lr=lr,
            compute_s=cpu,
            comm_s=time.perf_counter() - w0,  # waiting for the gossip loop to take the gradient
            wall_s=time.perf_counter() - t0,
            sent=self.take_sent(),
            stop=stop,
            global_step=global_step,
            extra={"rounds": self.rounds_done, GOSSIP_CPU_KEY: gossip_cpu},
        )

    def take_sent(self) -> list[list[int]]:
        with self._lock:
            out, self._sent_pending = self._sent_pending, []
        return out

    def _handover(self, grad: torch.Tensor, lr: float, read_version: int, step: int) -> None:
        timeout_s = self.a.comm.timeout_s
        deadline = time.perf_counter() + timeout_s
        while True:
            self._raise_if_failed()
            try:
                self._slot.put((grad, lr, read_version), timeout=HANDOVER_POLL_S)
                return
            except queue.Full:
                if time.perf_counter() > deadline:
                    raise CommError(
                        f"rank {self.a.rank} step {step}: the gossip loop took no gradient "
                        f"within {timeout_s:.1f}s (comm.timeout_s); its partner may be stuck"
                    ) from None

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise CommError(f"rank {self.a.rank}: gossip loop failed: {self._error}") from (
                self._error
            )

    # -- gossip side ----------------------------------------------------------------------
    def _apply_gradient(self, wait_s: float = 0.0) -> None:
        try:
            item = self._slot.get(timeout=wait_s) if wait_s > 0 else self._slot.get_nowait()
        except queue.Empty:
            return
        grad, lr, read_version = item
        with self._lock:
            c0 = time.thread_time()
            self.staleness.append(self.version - read_version)
            self.a._apply(grad, lr)
            self.version += 1
            self._gossip_cpu += time.thread_time() - c0

    def _stop_round(self, r: int) -> int | None:
        if self.store.check([STOP_ROUND_KEY]):
            return int(self.store.get(STOP_ROUND_KEY))
        if self.store.check([STOP_FLAG_KEY]):
            return int(self.store.compare_set(STOP_ROUND_KEY, "", str(r + self.margin)))
        return None

    def _run_gossip(self) -> None:
        try:
            self._gossip_loop()
        except BaseException as exc:  # noqa: BLE001 - surfaced to the trainer thread
            self._error = exc
            log.error("rank %d: gossip loop failed: %s", self.a.rank, exc)

    def _exchange(self, r: int, averaging: float, passive_wait: Callable[[], None]) -> None:
        """Round r: active sends then receives; passive receives (polling, applying gradients
        meanwhile) then sends back. x <- average when both flags say so."""
        a = self.a
        n = a.x.numel()
        partner = a.graph.partner(a.rank, r)
        recv = torch.empty(n + 1, dtype=a.flat.dtype, device=a.flat.device)
        send = torch.empty_like(recv)
        if a.graph.is_active(a.rank):
            with self._lock:
                c0 = time.thread_time()
                send[:n].copy_(a.x.detach())
                self._gossip_cpu += time.thread_time() - c0
            send[n] = averaging
            self.gossip.exchange({partner: send}, [], r, send)
            got = self.gossip.exchange({}, [partner], r, recv)[partner]
        else:
            # never block on an absent partner: a helper thread waits for the message (gloo
            # completes a receive only inside wait()) while this loop keeps applying gradients
            pending = self.gossip.post({}, [partner], r, recv)
            box: dict[str, Any] = {}

            def receive() -> None:
                try:
                    box["got"] = pending.wait()[partner]
                except BaseException as exc:  # noqa: BLE001 - re-raised in the loop
                    box["error"] = exc

            waiter = threading.Thread(target=receive, name=f"adpsgd-recv-r{a.rank}", daemon=True)
            waiter.start()
            while waiter.is_alive():
                passive_wait()
            if "error" in box:
                raise box["error"]
            got = box["got"]
            with self._lock:
                c0 = time.thread_time()
                send[:n].copy_(a.x.detach())
                self._gossip_cpu += time.thread_time() - c0
            send[n] = averaging
            self.gossip.exchange({partner: send}, [], r, send)
        if averaging and float(got[n]) == 1.0:
            with self._lock:
                c0 = time.thread_time()
                a.x.data.copy_((send[:n] + got[:n]).mul_(0.5))
                self.version += 1
                self._gossip_cpu += time.thread_time() - c0
        with self._lock:
            self._sent_pending.extend(self.gossip.sent.take())

    def _gossip_loop(self) -> None:
        stop_round: int | None = None
        r = 0

        def poll() -> None:
            self._apply_gradient()
            time.sleep(PASSIVE_POLL_S)

        while True:
            if stop_round is None:
                stop_round = self._stop_round(r)
                if stop_round is not None and r > stop_round:
                    raise CommError(
                        f"rank {self.a.rank}: gossip round {r} is past the agreed stop round "
                        f"{stop_round}; raise algorithm.gossip_margin_rounds"
                    )
            if stop_round is not None and r > stop_round:
                break
            self._apply_gradient()
            self._exchange(r, 1.0 if stop_round is None else 0.0, poll)
            r += 1
            self.rounds_done = r
        # keep taking the trainer's gradients (those within the budget) until it has stopped
        timeout_s = self.a.comm.timeout_s
        deadline = time.perf_counter() + timeout_s
        while not self._trainer_done.is_set():
            self._apply_gradient(wait_s=DRAIN_POLL_S)
            if time.perf_counter() > deadline:
                raise CommError(
                    f"rank {self.a.rank}: the trainer did not stop within {timeout_s:.1f}s "
                    f"after gossip round {stop_round}"
                )
        self._apply_gradient()

    def finish(self) -> None:
        self._trainer_done.set()
        timeout_s = self.a.comm.timeout_s
        self._thread.join(timeout=timeout_s + JOIN_GRACE_S)
        if self._thread.is_alive():
            raise CommError(
                f"rank {self.a.rank}: gossip loop did not stop within {timeout_s:.1f}s "
                f"(round {self.rounds_done})"
            )
        self._raise_if_failed()

    def stats(self) -> dict[str, Any]:
        return {
            "gradients": self.gradients,
            "gossip_rounds": self.rounds_done,
            "staleness": self.staleness,
            "clock": "real",
        }


def matrix_run(
    schedule: AsyncSchedule,
    models: Sequence[torch.nn.Module],
    optimizers: Sequence[torch.optim.Optimizer],
    gossip_optimizers: Sequence[torch.optim.Optimizer],
    gossip_params: Sequence[torch.nn.Parameter],
    closures: Callable[[int, int], Closure],
    lr_fn: Callable[[float], float],
) -> None:
    """The oracle: AD-PSGD under ``schedule`` on n replicas in one process.

    Every rank's operations are applied in one global order (each rank's execution order, ranks
    interleaved by time), which respects every dependency the real run has. ``closures(rank, k)`` returns the closure
    of rank ``rank``'s k-th gradient (on its trainer model ``models[rank]``); ``gossip_params[i]``
    is rank i's gossip copy x (a flat Parameter) stepped by ``gossip_optimizers[i]``; trainers'
    look-ahead steps use ``optimizers[i]``. On return ``gossip_params`` hold the final models.
    """
    n = schedule.n
    events = [(op_order(op), rank, op) for rank in range(n) for op in schedule.ops(rank)]
    events.sort(key=lambda e: (e[0], e[1]))
    grads: dict[tuple[int, int], tuple[torch.Tensor, float]] = {}
    sent: dict[tuple[int, int], torch.Tensor] = {}
    commits: dict[tuple[int, int], int] = {}
    for _, rank, op in events:
        kind, index = op.kind, op.index
        params = list(models[rank].parameters())
        x = gossip_params[rank]
        if kind == GRAD:
            lr = lr_fn(op.ticket / n)
            closures(rank, index)()
            grads[(rank, index)] = (flat_grad(params), lr)
        elif kind == HANDOVER:
            grad, lr = grads[(rank, index)]
            offset = 0
            with torch.no_grad():
                for p in params:  # copies: the trainer model must not alias x
                    k = p.numel()
                    p.copy_(x[offset : offset + k].view_as(p))
                    p.grad = grad[offset : offset + k].view_as(p).clone()
                    offset += k
            for g in optimizers[rank].param_groups:
                g["lr"] = lr
            optimizers[rank].step()
        elif kind == APPLY:
            grad, lr = grads.pop((rank, index))
            for g in gossip_optimizers[rank].param_groups:
                g["lr"] = lr
            x.grad = grad
            gossip_optimizers[rank].step()
        elif kind == SEND:
            sent[(rank, index)] = x.detach().clone()
        elif kind == COMMIT:
            with torch.no_grad():
                x.copy_((sent[(rank, index)] + sent[(op.peer, index)]).mul_(0.5))
            pair = (min(rank, op.peer), index)
            if commits.pop(pair, 0):  # the second of the pair: both copies are used up
                del sent[(rank, index)], sent[(op.peer, index)]
            else:
                commits[pair] = 1
