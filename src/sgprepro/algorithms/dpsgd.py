"""D-PSGD (Lian et al. 2017) as the SGP paper ran it: synchronous symmetric gossip without weights.

After the local step, x_i <- (x_i + sum_{j in N_i} x_j) / (|N_i| + 1) with the neighbours of this
round; on the bipartite exponential graph that is a pairwise swap x_i <- (x_i + x_j) / 2 with the
partner j (even ranks passive, odd ranks active). Matrix form: X_{k+1} = W_k (X_k - gamma D_k)
with W_k symmetric and doubly stochastic. Sends and receives are posted together; the paper-era
serial send-then-receive is what the timing engine models (pattern ``pairwise``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from sgprepro.algorithms.base import (
    Algorithm,
    Closure,
    PeersAt,
    StepInfo,
    require_topology,
)
from sgprepro.algorithms.matrix import MatrixState
from sgprepro.algorithms.registry import register
from sgprepro.mixing import gossip_matrix
from sgprepro.schema import AlgorithmConfig
from sgprepro.timing import ProgramSpec
from sgprepro.topology import Topology


@register
class DPSGD(Algorithm):
    name = "dpsgd"
    summary = (
        "Synchronous symmetric averaging after the local step, X_{k+1} = W_k (X_k - gamma D_k): "
        "a pairwise swap with the round's partner on the original's bipartite exponential "
        "graph. The timing engine models the paper-era send-then-receive."
    )
    default_topology = "bipartite_exponential"
    has_oracle = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.check(self.config, self.topology)
        self.graph = require_topology(type(self), self.topology)

    @classmethod
    def check(cls, config: AlgorithmConfig, topology: Topology | None) -> None:
        topo = require_topology(cls, topology)
        if not topo.undirected:
            raise ValueError(
                f"topology.name={topo.name} with algorithm={cls.name}: D-PSGD averages "
                "symmetrically and needs an undirected graph; use topology=bipartite_exponential "
                "(or auto)"
            )

    @classmethod
    def timing_program(
        cls, config: AlgorithmConfig, peers_at: PeersAt, message_bytes: int = 0
    ) -> ProgramSpec:
        return ProgramSpec("pairwise", peers=peers_at, label=config.row)

    @classmethod
    def matrix_step(
        cls, state: MatrixState, step: int, epoch: float, closures: Sequence[Closure]
    ) -> list[float]:
        losses = state.gradients(closures)
        x = state.local_steps()
        assert state.topology is not None
        w = gossip_matrix(state.topology, step, state.peers.peers_at(epoch))
        state.unstack(state.matrix(w) @ x)
        return losses

    def train_step(self, step: int, epoch: float, closure: Closure) -> StepInfo:
        t0 = time.perf_counter()
        wait0 = self.comm.wait_s
        loss, lr, cpu = self._local_step(step, closure)
        k = self.peers.peers_at(epoch)
        neighbours = self.graph.out_peers(self.rank, step, k)
        received = self.comm.exchange(
            dict.fromkeys(neighbours, self.flat), neighbours, step, self.flat
        )
        c0 = time.thread_time()
        for msg in received.values():
            self.flat.add_(msg)
        self.flat.mul_(1.0 / (len(neighbours) + 1))
        cpu += time.thread_time() - c0
        return self._step_info(loss, lr, cpu, t0, wait0)
