"""Overlap SGP (OSGP) as the original code ran it (``overlap=True``, ``synch_freq=0``).

At the start of iteration k, before any compute, a node sends its share of the PRE-step numerator
and weight, lo (x_k, w_k) with lo = 1 / (d + 1), to each of its d out-peers, and keeps lo
(x_k, w_k); the gradient at z_k = x_k / w_k is computed while the messages travel; the optimizer
step is taken; then the node blocks (bounded) for its in-peers' messages of the same round k and
adds them. Communication hides behind forward and backward: an iteration takes about
max(compute, message).

Matrix form, with D_k = diag(P_k) and O_k = P_k - D_k:

* ``overlap_step=kept_share`` (the original's ``main`` branch: ``gossip/distributed.py``, the
  optimizer acts on the kept share, so weight decay sees lo x_k):
  X_{k+1} = opt(D_k X_k) + O_k X_k, i.e. P_k X_k - gamma D'_k; w_{k+1} = P_k w_k.
* ``overlap_step=lazy_halved`` (tag ``sgp_pytorch0.5``, ``gossip_module/distributed.py``: "lazy"
  mixing, which the tag used with regular graphs): X_{k+1} = D_k opt(X_k) + O_k X_k, i.e. the
  step is scaled by lo (halved for one peer).

Messages are never older than the step they are mixed in, so nothing is in flight between steps.
(``sgp_delayed`` is a different, deterministic variant that mixes messages tau steps later.)
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from sgprepro.algorithms.base import Closure, PeersAt, StepInfo
from sgprepro.algorithms.matrix import MatrixState
from sgprepro.algorithms.registry import register
from sgprepro.algorithms.sgp import PushSumAlgorithm
from sgprepro.schema import AlgorithmConfig
from sgprepro.timing import ProgramSpec
from sgprepro.topology import Topology

OVERLAP_STEPS = ("kept_share", "lazy_halved")


@register
class OSGP(PushSumAlgorithm):
    """The original's 1-overlap SGP: send x_k at the start of the step, mix it in before the next."""

    name = "osgp"
    summary = (
        "The original's overlap SGP: lo (x_k, w_k) is sent at the START of iteration k, the "
        "gradient at z_k = x_k/w_k is computed meanwhile, the in-peers' messages of round k are "
        "mixed in at its end. `kept_share` (the original `main`): X_{k+1} = opt(D_k X_k) + "
        "O_k X_k; `lazy_halved` (tag sgp_pytorch0.5): X_{k+1} = D_k opt(X_k) + O_k X_k; "
        "w_{k+1} = P_k w_k (D_k, O_k: diagonal and off-diagonal of P_k)."
    )
    settings = ("overlap_step",)

    @classmethod
    def check(cls, config: AlgorithmConfig, topology: Topology | None) -> None:
        super().check(config, topology)
        if config.overlap_step not in OVERLAP_STEPS:
            raise ValueError(
                f"algorithm.overlap_step={config.overlap_step!r}: must be one of "
                f"{list(OVERLAP_STEPS)}; use kept_share (the original's main branch) or "
                "lazy_halved (its sgp_pytorch0.5 tag)"
            )

    @classmethod
    def timing_program(
        cls, config: AlgorithmConfig, peers_at: PeersAt, message_bytes: int = 0
    ) -> ProgramSpec:
        return ProgramSpec("overlap_push", peers=peers_at, label=config.row)

    @classmethod
    def matrix_step(
        cls, state: MatrixState, step: int, epoch: float, closures: Sequence[Closure]
    ) -> list[float]:
        losses = state.gradients(closures)  # at z_k, while the pre-step shares travel
        diag, off = cls._split(state, step, epoch)
        x = state.stack() * state.w  # numerators x_k
        sent = off @ x
        if state.config.overlap_step == "kept_share":
            y = state.local_steps(diag @ x)
        else:
            y = diag @ state.local_steps(x)
        state.w = (diag + off) @ state.w
        state.unstack((y + sent) / state.w)
        return losses

    def train_step(self, step: int, epoch: float, closure: Closure) -> StepInfo:
        t0 = time.perf_counter()
        wait0 = self.comm.wait_s
        lr = self.lr_fn(step)
        self._set_lr(lr)
        out_peers, in_peers, share = self._round(step, epoch)
        c0 = time.thread_time()
        msg = torch.cat([self.flat * self._w, self._w]).mul_(share)  # lo (x_k, w_k), pre-step
        cpu = time.thread_time() - c0
        pending = self.comm.post(dict.fromkeys(out_peers, msg), in_peers, step, msg)
        c1 = time.thread_time()
        loss = closure()  # gradient at z_k while the messages travel
        if self.config.overlap_step == "kept_share":
            self.flat.mul_(self._w * share)  # the kept share lo x_k
            self.optimizer.step()  # opt(lo x_k)
        else:
            self.flat.mul_(self._w)  # x_k
            self.optimizer.step()  # opt(x_k)
            self.flat.mul_(share)  # lo opt(x_k)
        self._w.mul_(share)
        cpu += time.thread_time() - c1
        self._mix_in(pending)  # the in-peers' shares of round k
        c2 = time.thread_time()
        self.flat.div_(self._w)  # z_{k+1}
        cpu += time.thread_time() - c2
        return self._step_info(loss, lr, cpu, t0, wait0)
