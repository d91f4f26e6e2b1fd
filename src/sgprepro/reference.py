"""Single-process, matrix-form twin of every synchronous algorithm: the test oracle.

All n nodes' models live in one process. Each iteration every replica computes its gradient and
applies its own optimizer (so momentum, Nesterov and weight decay are exactly the library's);
communication is a matrix product on the stacked flat parameters X (shape (n, d)), written by
each algorithm class next to its implementation (``Algorithm.matrix_step``):

* allreduce, param_avg:   X <- (1/n) 1 1^T (X - gamma D)
* allreduce, grad_bucket: every replica's gradient <- the mean gradient, before its step
* sgp:                    X <- P_k (X - gamma D), w <- P_k w, Z = X / w  (Alg. 1 of Assran et al.)
* osgp:                   X <- opt(diag(P_k) X) + offdiag(P_k) X, w <- P_k w  (the original's)
* sgp_delayed (tau):      X <- diag(P_k) Y_k + offdiag(P_{k-tau}) Y_{k-tau}, likewise for w
* dpsgd:                  X <- W_k (X - gamma D) with W_k the symmetric pairwise matrix

AD-PSGD is asynchronous: its twin replays a schedule of the timing engine
(:func:`sgprepro.algorithms.adpsgd.matrix_run`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from sgprepro.algorithms import AlgorithmConfig, LrFn, MatrixState, algorithm_class
from sgprepro.topology import PeersSchedule, Topology

Closure = Callable[[], torch.Tensor]


class ReferenceRun:
    """n replicas stepped in lockstep with matrix-form communication."""

    def __init__(
        self,
        config: AlgorithmConfig,
        models: Sequence[torch.nn.Module],
        optimizers: Sequence[torch.optim.Optimizer],
        topology: Topology | None,
        peers: PeersSchedule,
        lr_fn: LrFn,
    ) -> None:
        self.cls = algorithm_class(config.name)
        if not self.cls.has_oracle:
            raise ValueError(
                f"algorithm={config.name} has no lockstep matrix-form twin (an asynchronous "
                "algorithm's twin replays a schedule)"
            )
        self.state = MatrixState(config, models, optimizers, topology, peers)
        self.lr_fn = lr_fn

    @property
    def w(self) -> torch.Tensor:
        """PushSum weights, shape (n, 1)."""
        return self.state.w

    def step(self, step: int, epoch: float, closures: Sequence[Closure]) -> list[float]:
        """One iteration of every node; returns the losses."""
        self.state.set_lr(self.lr_fn(step))
        return self.cls.matrix_step(self.state, step, epoch, closures)

    def finish(self) -> None:
        """Mix in what is still in flight (delayed variants)."""
        self.cls.matrix_finish(self.state)

    def params(self) -> torch.Tensor:
        """De-biased parameters of every node, shape (n, d)."""
        return self.state.stack()
