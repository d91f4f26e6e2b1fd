"""Stochastic Gradient Push (Alg. 1 of Assran et al. 2019) and its overlap variant (OSGP).

Each rank holds a numerator x_i (in the flat buffer, between steps replaced by the de-biased
z_i = x_i / w_i) and a PushSum weight w_i. Iteration k on rank i:

1. the gradient is taken at z_i (the parameters hold z_i while the closure runs);
2. the local optimizer step is applied to the numerator: x_i <- x_i - gamma d_i
   (momentum, Nesterov and weight decay stay local);
3. PushSum: keep p_ii (x_i, w_i), send p_ji (x_i, w_i) to every out-peer j, add what arrives.
   Uniform mixing: with d out-peers every share is 1 / (d + 1).

The weight travels in the same message as the parameters (one extra element), so multi-peer and
non-regular graphs stay correct; with one peer on the exponential graph it stays exactly 1.

OSGP: the message sent at iteration k is mixed in at iteration k + tau, so communication
overlaps tau iterations of computation; mass (sum of x and of w, counting in-flight messages)
is conserved because the sender scales what it keeps before applying its step.
"""

from __future__ import annotations

import time
from collections import deque

import torch

from sgprepro.algorithms.base import Algorithm, Closure, StepInfo
from sgprepro.comm import PendingExchange
from sgprepro.mixing import uniform_weight


class SGP(Algorithm):
    """SGP; with ``overlap=True`` (the ``osgp`` algorithm) messages are ``config.tau`` steps stale."""

    name = "sgp"
    overlap = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tau = self.config.tau if self.overlap else 0
        # w lives in the parameters' dtype, exactly as it travels
        self._w = torch.ones(1, dtype=self.flat.dtype, device=self.flat.device)
        self._msg_len = self.flat.numel() + 1
        self._inflight: deque[tuple[int, PendingExchange]] = deque()

    @property
    def ps_weight(self) -> float:
        return float(self._w.item())

    def debiased(self) -> torch.Tensor:
        return self.flat  # the buffer holds z between steps

    def state_dict(self) -> dict:
        return {"ps_weight": float(self._w.item())}

    def load_state_dict(self, state: dict) -> None:
        self._w.fill_(state["ps_weight"])

    def numerator(self) -> torch.Tensor:
        return self.flat * self._w

    def _mix_in(self, pending: PendingExchange) -> None:
        for msg in pending.wait().values():
            self.flat.add_(msg[:-1])
            self._w.add_(msg[-1:])

    def train_step(self, step: int, epoch: float, closure: Closure) -> StepInfo:
        t0 = time.perf_counter()
        wait0 = self.comm.wait_s
        lr = self.lr_fn(step)
        self._set_lr(lr)
        c0 = time.thread_time()
        loss = closure()  # gradient at z
        self.flat.mul_(self._w)  # x = z * w
        self.optimizer.step()  # x <- x - lr * d
        k = self.peers.peers_at(epoch)
        out_peers = self.topology.out_peers(self.rank, step, k)
        in_peers = self.topology.in_peers(self.rank, step, k)
        share = uniform_weight(len(out_peers))
        msg = torch.cat([self.flat, self._w]).mul_(share)
        self.flat.mul_(share)
        self._w.mul_(share)
        cpu = time.thread_time() - c0
        pending = self.comm.post({p: msg for p in out_peers}, in_peers, step, msg)
        self._inflight.append((step, pending))
        while self._inflight and self._inflight[0][0] <= step - self.tau:
            self._mix_in(self._inflight.popleft()[1])
        c1 = time.thread_time()
        self.flat.div_(self._w)  # z = x / w
        cpu += time.thread_time() - c1
        return self._step_info(loss, lr, cpu, t0, wait0)

    def finish(self) -> None:
        """Mix in every message still in flight (OSGP), so no mass is lost."""
        if not self._inflight:
            return
        self.flat.mul_(self._w)
        while self._inflight:
            self._mix_in(self._inflight.popleft()[1])
        self.flat.div_(self._w)
        self.comm.sent.take()


class OSGP(SGP):
    """Overlap SGP: messages mixed in ``tau`` iterations after they were sent."""

    name = "osgp"
    overlap = True
