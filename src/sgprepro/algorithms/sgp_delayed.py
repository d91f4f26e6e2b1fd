"""SGP with delayed mixing: a deterministic variant, not the original's overlap SGP.

After the optimizer step, node i keeps p_ii (y_k, w_k) and sends p_ji (y_k, w_k), y_k = opt(x_k),
as SGP does, but a message sent at iteration k is mixed in exactly ``tau`` iterations later, so
tau messages per in-peer are in flight and communication overlaps tau iterations of compute:

    X_{k+1} = diag(P_k) Y_k + offdiag(P_{k-tau}) Y_{k-tau},  likewise for w.

Mass (the sums of x and w, counting in-flight messages) is conserved because the sender scales
what it keeps before its message leaves; in-flight messages are drained at the end and before a
checkpoint. With tau = 1 the neighbours' information reaches the gradient one round later than in
the original's OSGP (:mod:`sgprepro.algorithms.osgp`), and w settles at 2/3 with 1/3 in flight.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence

import torch

from sgprepro.algorithms.base import Closure, PeersAt, StepInfo
from sgprepro.algorithms.matrix import MatrixState
from sgprepro.algorithms.registry import register
from sgprepro.algorithms.sgp import PushSumAlgorithm
from sgprepro.comm import PendingExchange
from sgprepro.schema import AlgorithmConfig
from sgprepro.timing import ProgramSpec
from sgprepro.topology import Topology


@register
class SGPDelayed(PushSumAlgorithm):
    """SGP whose messages are mixed in ``config.tau`` iterations after they were sent."""

    name = "sgp_delayed"
    summary = (
        "A deterministic delayed variant (not the original's OSGP): SGP's post-step shares are "
        "mixed in exactly tau iterations later, X_{k+1} = diag(P_k) Y_k + "
        "offdiag(P_{k-tau}) Y_{k-tau} with Y = X - gamma D; in-flight messages are drained at the "
        "end. tau=0 is SGP."
    )
    settings = ("tau",)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tau = self.config.tau
        self._inflight: deque[tuple[int, PendingExchange]] = deque()

    @classmethod
    def check(cls, config: AlgorithmConfig, topology: Topology | None) -> None:
        super().check(config, topology)
        if config.tau < 0:
            raise ValueError(
                f"algorithm.tau={config.tau}: delay must be >= 0; use tau=1 (or tau=0: SGP)"
            )

    @classmethod
    def timing_program(
        cls, config: AlgorithmConfig, peers_at: PeersAt, message_bytes: int = 0
    ) -> ProgramSpec:
        return ProgramSpec("push", delay=config.tau, peers=peers_at, label=config.row)

    @classmethod
    def matrix_step(
        cls, state: MatrixState, step: int, epoch: float, closures: Sequence[Closure]
    ) -> list[float]:
        losses = state.gradients(closures)
        y = state.local_steps(state.stack() * state.w)
        diag, off = cls._split(state, step, epoch)
        state.inflight.append((step, off @ y, off @ state.w))
        x, state.w = diag @ y, diag @ state.w
        while state.inflight and state.inflight[0][0] <= step - state.config.tau:
            _, dx, dw = state.inflight.popleft()
            x, state.w = x + dx, state.w + dw
        state.unstack(x / state.w)
        return losses

    @classmethod
    def matrix_finish(cls, state: MatrixState) -> None:
        if not state.inflight:
            return
        x = state.stack() * state.w
        while state.inflight:
            _, dx, dw = state.inflight.popleft()
            x, state.w = x + dx, state.w + dw
        state.unstack(x / state.w)

    def train_step(self, step: int, epoch: float, closure: Closure) -> StepInfo:
        t0 = time.perf_counter()
        wait0 = self.comm.wait_s
        lr = self.lr_fn(step)
        self._set_lr(lr)
        c0 = time.thread_time()
        loss = closure()  # gradient at z
        self.flat.mul_(self._w)  # x = z * w
        self.optimizer.step()  # y = x - lr * d
        out_peers, in_peers, share = self._round(step, epoch)
        msg = torch.cat([self.flat, self._w]).mul_(share)
        self.flat.mul_(share)
        self._w.mul_(share)
        cpu = time.thread_time() - c0
        pending = self.comm.post(dict.fromkeys(out_peers, msg), in_peers, step, msg)
        self._inflight.append((step, pending))
        while self._inflight and self._inflight[0][0] <= step - self.tau:
            self._mix_in(self._inflight.popleft()[1])
        c1 = time.thread_time()
        self.flat.div_(self._w)  # z = x / w
        cpu += time.thread_time() - c1
        return self._step_info(loss, lr, cpu, t0, wait0)

    def finish(self) -> None:
        """Mix in every message still in flight, so no mass is lost."""
        if not self._inflight:
            return
        self.flat.mul_(self._w)
        while self._inflight:
            self._mix_in(self._inflight.popleft()[1])
        self.flat.div_(self._w)
        self.comm.sent.take()
