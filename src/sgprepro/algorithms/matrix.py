"""The state of the single-process matrix-form twin of an algorithm (the test oracle's side).

All n nodes' models live in one process. Each node computes its gradient and applies its own
optimizer (so momentum, Nesterov and weight decay are exactly the library's); communication is a
matrix product on the stacked flat parameters ``X`` of shape (n, d). Each algorithm class writes
its own update with these helpers (:meth:`sgprepro.algorithms.Algorithm.matrix_step`);
:class:`sgprepro.reference.ReferenceRun` drives them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from sgprepro.schema import AlgorithmConfig
from sgprepro.topology import PeersSchedule, Topology


class MatrixState:
    """n replicas stepped in lockstep, with the PushSum weights ``w`` (n, 1).

    Attributes:
        config: the algorithm's knobs.
        models, optimizers: one per node.
        topology, peers: the graph and peers schedule (topology None without a graph).
        w: PushSum weights, shape (n, 1), in the parameters' dtype.
        inflight: messages still travelling (delayed variants): any objects the update keeps.
        extra: per-algorithm state (e.g. momentum of a slow outer loop).
    """

    def __init__(
        self,
        config: AlgorithmConfig,
        models: Sequence[torch.nn.Module],
        optimizers: Sequence[torch.optim.Optimizer],
        topology: Topology | None,
        peers: PeersSchedule,
    ) -> None:
        self.config = config
        self.models = list(models)
        self.optimizers = list(optimizers)
        self.n = len(self.models)
        self.topology = topology
        self.peers = peers
        self.dtype = next(self.models[0].parameters()).dtype
        self.w = torch.ones(self.n, 1, dtype=self.dtype)
        self.inflight: deque[Any] = deque()
        self.extra: dict[str, Any] = {}

    # -- parameters ------------------------------------------------------------------------
    def stack(self) -> torch.Tensor:
        """Every node's current parameters, shape (n, d)."""
        return torch.stack(
            [torch.cat([p.detach().reshape(-1) for p in m.parameters()]) for m in self.models]
        )

    def unstack(self, x: torch.Tensor) -> None:
        """Load row i of ``x`` into node i's model."""
        with torch.no_grad():
            for m, row in zip(self.models, x, strict=True):
                offset = 0
                for p in m.parameters():
                    k = p.numel()
                    p.copy_(row[offset : offset + k].view_as(p))
                    offset += k

    def matrix(self, p: np.ndarray) -> torch.Tensor:
        """A numpy mixing matrix in the parameters' dtype."""
        return torch.as_tensor(p, dtype=self.dtype)

    # -- local computation -----------------------------------------------------------------
    def set_lr(self, lr: float) -> None:
        for opt in self.optimizers:
            for g in opt.param_groups:
                g["lr"] = lr

    @staticmethod
    def gradients(closures: Sequence[Any]) -> list[float]:
        """Run every node's closure (gradients at its current parameters); returns the losses."""
        return [float(c()) for c in closures]

    def average_gradients(self) -> None:
        """Every node's gradient <- the mean gradient (what a gradient all-reduce does)."""
        for group in zip(*[list(m.parameters()) for m in self.models], strict=True):
            mean = torch.stack([p.grad for p in group]).mean(0)
            for p in group:
                p.grad.copy_(mean)

    def local_steps(self, x: torch.Tensor | None = None) -> torch.Tensor:
        """Each node's optimizer step with its stored gradient, from parameters ``x`` (default:
        where the models stand); returns the stepped parameters (n, d)."""
        if x is not None:
            self.unstack(x)
        for opt in self.optimizers:
            opt.step()
        return self.stack()
