"""Local SGD with periodic exact averaging (Stich 2019; Lin et al. 2020), beside the paper's four.

Every node takes its own optimizer steps (momentum stays local) and, every ``average_every``
iterations, the parameters are averaged exactly with a sum all-reduce scaled by 1/n. Matrix form:
X_{k+1} = J (X_k - gamma D_k) when (k + 1) is a multiple of H, else X_k - gamma D_k, with
J = (1/n) 1 1^T. H = 1 is AllReduce SGD (parameter averaging).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from sgprepro.algorithms.base import Algorithm, Closure, PeersAt, StepInfo
from sgprepro.algorithms.matrix import MatrixState
from sgprepro.algorithms.registry import register
from sgprepro.schema import AlgorithmConfig
from sgprepro.timing import COLLECTIVES, ProgramSpec
from sgprepro.topology import Topology


@register
class LocalSGD(Algorithm):
    name = "local_sgd"
    summary = (
        "Not in the paper: local steps, and every H = `average_every` iterations exact averaging "
        "of the parameters, X_{k+1} = J (X_k - gamma D_k) when H divides k + 1, else "
        "X_k - gamma D_k. H = 1 is AllReduce SGD."
    )
    default_topology = None
    settings = ("allreduce_algo", "average_every")
    has_oracle = True

    @classmethod
    def check(cls, config: AlgorithmConfig, topology: Topology | None) -> None:
        if config.average_every < 1:
            raise ValueError(
                f"algorithm.average_every={config.average_every}: must be >= 1; use 8 (1 is "
                "AllReduce SGD)"
            )
        if config.allreduce_algo not in COLLECTIVES:
            raise ValueError(
                f"algorithm.allreduce_algo={config.allreduce_algo!r}: must be one of "
                f"{sorted(COLLECTIVES)}; use recursive_doubling or ring"
            )

    @classmethod
    def timing_program(
        cls, config: AlgorithmConfig, peers_at: PeersAt, message_bytes: int = 0
    ) -> ProgramSpec:
        return ProgramSpec(
            "allreduce",
            collective=config.allreduce_algo,
            every=config.average_every,
            label=config.row,
        )

    @staticmethod
    def _averages(config: AlgorithmConfig, step: int) -> bool:
        return (step + 1) % config.average_every == 0

    @classmethod
    def matrix_step(
        cls, state: MatrixState, step: int, epoch: float, closures: Sequence[Closure]
    ) -> list[float]:
        losses = state.gradients(closures)
        x = state.local_steps()
        if cls._averages(state.config, step):
            x = state.matrix(np.full((state.n, state.n), 1.0 / state.n)) @ x
        state.unstack(x)
        return losses

    def train_step(self, step: int, epoch: float, closure: Closure) -> StepInfo:
        t0 = time.perf_counter()
        wait0 = self.comm.wait_s
        loss, lr, cpu = self._local_step(step, closure)
        if self._averages(self.config, step):
            c0 = time.thread_time()
            self.flat.mul_(1.0 / self.world_size)
            cpu += time.thread_time() - c0
            self.comm.all_reduce_(self.flat, step, "parameter all-reduce")
        return self._step_info(loss, lr, cpu, t0, wait0)
