"""Stochastic Gradient Push (Alg. 1 of Assran et al. 2019), and the PushSum state it shares with
its overlap variants.

Each rank holds a numerator x_i (in the flat buffer, between steps replaced by the de-biased
z_i = x_i / w_i) and a PushSum weight w_i. Iteration k on rank i:

1. the gradient is taken at z_i (the parameters hold z_i while the closure runs);
2. the local optimizer step is applied to the numerator: x_i <- x_i - gamma d_i
   (momentum, Nesterov and weight decay stay local);
3. PushSum: keep p_ii (x_i, w_i), send p_ji (x_i, w_i) to every out-peer j, add what arrives.
   Uniform mixing: with d out-peers every share is 1 / (d + 1).

Matrix form: X_{k+1} = P_k (X_k - gamma D_k), w_{k+1} = P_k w_k. The weight travels in the same
message as the parameters (one extra element), so multi-peer and non-regular graphs stay correct;
with one peer on the exponential graph it stays exactly 1.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from sgprepro.algorithms.base import Algorithm, Closure, PeersAt, StepInfo, require_topology
from sgprepro.algorithms.matrix import MatrixState
from sgprepro.algorithms.registry import register
from sgprepro.comm import PendingExchange
from sgprepro.mixing import pushsum_matrix, uniform_weight
from sgprepro.schema import AlgorithmConfig
from sgprepro.timing import ProgramSpec
from sgprepro.topology import Topology


class PushSumAlgorithm(Algorithm):
    """Shared state of the PushSum family: the weight w, the de-biased buffer, mixing in."""

    default_topology = "exponential"
    has_oracle = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.graph = require_topology(type(self), self.topology)
        # w lives in the parameters' dtype, exactly as it travels
        self._w = torch.ones(1, dtype=self.flat.dtype, device=self.flat.device)

    @classmethod
    def check(cls, config: AlgorithmConfig, topology: Topology | None) -> None:
        require_topology(cls, topology)

    @property
    def ps_weight(self) -> float:
        return float(self._w.item())

    def debiased(self) -> torch.Tensor:
        return self.flat  # the buffer holds z between steps

    def state_dict(self) -> dict:
        return {"ps_weight": float(self._w.item())}

    def load_state_dict(self, state: dict) -> None:
        self._w.fill_(state["ps_weight"])

    def _round(self, step: int, epoch: float) -> tuple[tuple[int, ...], tuple[int, ...], float]:
        """Out-peers, in-peers and the uniform share of round ``step``."""
        k = self.peers.peers_at(epoch)
        out_peers = self.graph.out_peers(self.rank, step, k)
        in_peers = self.graph.in_peers(self.rank, step, k)
        return out_peers, in_peers, uniform_weight(len(out_peers))

    def _mix_in(self, pending: PendingExchange) -> None:
        """Add every received (share x, share w) to the numerator and the weight."""
        for msg in pending.wait().values():
            self.flat.add_(msg[:-1])
            self._w.add_(msg[-1:])

    @staticmethod
    def _split(state: MatrixState, step: int, epoch: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(diag(P_k), offdiag(P_k)) of round ``step`` as tensors."""
        assert state.topology is not None
        p = state.matrix(pushsum_matrix(state.topology, step, state.peers.peers_at(epoch)))
        diag = torch.diag(torch.diag(p))
        return diag, p - diag


@register
class SGP(PushSumAlgorithm):
    """SGP: the optimizer step on the numerator, then one PushSum round (Alg. 1)."""

    name = "sgp"
    summary = (
        "Alg. 1: the gradient at the de-biased z = x/w, the optimizer step on the numerator x, "
        "then PushSum with uniform weights 1/(k+1): X_{k+1} = P_k (X_k - gamma D_k), "
        "w_{k+1} = P_k w_k. The weight travels in the message (one extra element)."
    )

    @classmethod
    def timing_program(
        cls, config: AlgorithmConfig, peers_at: PeersAt, message_bytes: int = 0
    ) -> ProgramSpec:
        return ProgramSpec("push", peers=peers_at, label=config.row)

    @classmethod
    def matrix_step(
        cls, state: MatrixState, step: int, epoch: float, closures: Sequence[Closure]
    ) -> list[float]:
        losses = state.gradients(closures)  # at each node's de-biased z
        x = state.local_steps(state.stack() * state.w)  # the step acts on the numerator
        diag, off = cls._split(state, step, epoch)
        p = diag + off
        x, state.w = p @ x, p @ state.w
        state.unstack(x / state.w)
        return losses

    def train_step(self, step: int, epoch: float, closure: Closure) -> StepInfo:
        t0 = time.perf_counter()
        wait0 = self.comm.wait_s
        lr = self.lr_fn(step)
        self._set_lr(lr)
        c0 = time.thread_time()
        loss = closure()  # gradient at z
        self.flat.mul_(self._w)  # x = z * w
        self.optimizer.step()  # x <- x - lr * d
        out_peers, in_peers, share = self._round(step, epoch)
        msg = torch.cat([self.flat, self._w]).mul_(share)
        self.flat.mul_(share)
        self._w.mul_(share)
        cpu = time.thread_time() - c0
        self._mix_in(self.comm.post(dict.fromkeys(out_peers, msg), in_peers, step, msg))
        c1 = time.thread_time()
        self.flat.div_(self._w)  # z = x / w
        cpu += time.thread_time() - c1
        return self._step_info(loss, lr, cpu, t0, wait0)
