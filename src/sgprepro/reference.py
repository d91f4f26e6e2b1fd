"""Single-process, matrix-form twin of every synchronous algorithm: the test oracle.

All n nodes' models live in one process. Each iteration every replica computes its gradient and
applies its own optimizer (so momentum, Nesterov and weight decay are exactly the library's),
then the communication is applied as a matrix product on the stacked flat parameters
X (shape (n, d)):

* allreduce, param_avg:   X <- (1/n) 1 1^T X
* allreduce, grad_bucket: every replica's gradient <- the mean gradient, before its step
* sgp:                    X <- P_k X, w <- P_k w, Z = X / w        (Alg. 1 of Assran et al. 2019)
* osgp (tau):             X <- diag(P_k) Y_k + offdiag(P_{k-tau}) Y_{k-tau}, likewise for w
* dpsgd:                  X <- W_k X with W_k the symmetric pairwise matrix

with P_k from :func:`sgprepro.mixing.pushsum_matrix` and W_k from
:func:`sgprepro.mixing.gossip_matrix`. AD-PSGD is asynchronous and has no matrix twin.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

import numpy as np
import torch

from sgprepro.algorithms.base import AlgorithmConfig, LrFn
from sgprepro.mixing import gossip_matrix, pushsum_matrix
from sgprepro.topology import PeersSchedule, Topology

Closure = Callable[[], torch.Tensor]


def _flat(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _load(model: torch.nn.Module, flat: torch.Tensor) -> None:
    offset = 0
    with torch.no_grad():
        for p in model.parameters():
            n = p.numel()
            p.copy_(flat[offset : offset + n].view_as(p))
            offset += n


class ReferenceRun:
    """n replicas stepped in lockstep with matrix-form communication."""

    def __init__(
        self,
        config: AlgorithmConfig,
        models: Sequence[torch.nn.Module],
        optimizers: Sequence[torch.optim.Optimizer],
        topology: Topology,
        peers: PeersSchedule,
        lr_fn: LrFn,
    ) -> None:
        if config.name == "adpsgd":
            raise ValueError("algorithm=adpsgd is asynchronous: it has no matrix-form twin")
        self.config = config
        self.models = list(models)
        self.optimizers = list(optimizers)
        self.n = len(self.models)
        self.topology = topology
        self.peers = peers
        self.lr_fn = lr_fn
        dtype = next(self.models[0].parameters()).dtype
        self.w = torch.ones(self.n, 1, dtype=dtype)
        self.tau = config.tau if config.name == "osgp" else 0
        self._inflight: deque[tuple[int, torch.Tensor, torch.Tensor]] = deque()

    def _stack(self) -> torch.Tensor:
        return torch.stack([_flat(m) for m in self.models])

    def _unstack(self, x: torch.Tensor) -> None:
        for m, row in zip(self.models, x, strict=True):
            _load(m, row)

    def _matrix(self, p: np.ndarray, like: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(p, dtype=like.dtype)

    def step(self, step: int, epoch: float, closures: Sequence[Closure]) -> list[float]:
        """One iteration of every node; returns the losses."""
        lr = self.lr_fn(step)
        for opt in self.optimizers:
            for g in opt.param_groups:
                g["lr"] = lr
        name = self.config.name
        losses = [float(c()) for c in closures]  # gradients at each node's de-biased model
        if name == "allreduce" and self.config.allreduce_mode == "grad_bucket":
            params = [list(m.parameters()) for m in self.models]
            for group in zip(*params, strict=True):
                mean = torch.stack([p.grad for p in group]).mean(0)
                for p in group:
                    p.grad.copy_(mean)
        if name in ("sgp", "osgp"):  # the step applies to the numerator x = z * w
            self._unstack(self._stack() * self.w)
        for opt in self.optimizers:
            opt.step()
        x = self._stack()
        k = self.peers.peers_at(epoch)
        if name == "allreduce":
            if self.config.allreduce_mode == "param_avg":
                x = self._matrix(np.full((self.n, self.n), 1.0 / self.n), x) @ x
        elif name == "dpsgd":
            x = self._matrix(gossip_matrix(self.topology, step, k), x) @ x
        else:
            p = self._matrix(pushsum_matrix(self.topology, step, k), x)
            diag = torch.diag(torch.diag(p))
            off = p - diag
            self._inflight.append((step, off @ x, off @ self.w))
            x, self.w = diag @ x, diag @ self.w
            while self._inflight and self._inflight[0][0] <= step - self.tau:
                _, dx, dw = self._inflight.popleft()
                x, self.w = x + dx, self.w + dw
            x = x / self.w
        self._unstack(x)
        return losses

    def finish(self) -> None:
        """Mix in in-flight messages (OSGP)."""
        if not self._inflight:
            return
        x = self._stack() * self.w
        while self._inflight:
            _, dx, dw = self._inflight.popleft()
            x, self.w = x + dx, self.w + dw
        self._unstack(x / self.w)

    def params(self) -> torch.Tensor:
        """De-biased parameters of every node, shape (n, d)."""
        return self._stack()

    def numerators(self) -> torch.Tensor:
        return self._stack() * self.w
