"""D-PSGD (Lian et al. 2017) as the SGP paper ran it: synchronous symmetric gossip without weights.

After the local step, x_i <- (x_i + sum_{j in N_i} x_j) / (|N_i| + 1) with the neighbours of this
round; on the bipartite exponential graph that is a pairwise swap x_i <- (x_i + x_j) / 2 with the
partner j (even ranks passive, odd ranks active). Sends and receives are posted together; the
paper-era serial send-then-receive is what the timing engine models.
"""

from __future__ import annotations

import time

from sgprepro.algorithms.base import Algorithm, Closure, StepInfo


class DPSGD(Algorithm):
    name = "dpsgd"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not self.topology.undirected:
            raise ValueError(
                f"algorithm=dpsgd with topology={self.topology.name}: D-PSGD needs mutual pairs; "
                "use topology=bipartite_exponential"
            )

    def train_step(self, step: int, epoch: float, closure: Closure) -> StepInfo:
        t0 = time.perf_counter()
        wait0 = self.comm.wait_s
        loss, lr, cpu = self._local_step(step, closure)
        k = self.peers.peers_at(epoch)
        neighbours = self.topology.out_peers(self.rank, step, k)
        received = self.comm.exchange(
            {p: self.flat for p in neighbours}, neighbours, step, self.flat
        )
        c0 = time.thread_time()
        for msg in received.values():
            self.flat.add_(msg)
        self.flat.mul_(1.0 / (len(neighbours) + 1))
        cpu += time.thread_time() - c0
        return self._step_info(loss, lr, cpu, t0, wait0)
