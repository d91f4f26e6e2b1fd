"""Links and NIC ports: how long a message takes, and when a node's ports are free.

A message of ``B`` bytes occupies its link for ``latency_s + 8 B / (bandwidth_gbps 1e9
efficiency)`` plus a jitter sample ``max(0, N(0, jitter_s^2))`` drawn per message (deterministic
for a given seed). Each node has one send port and one receive port (full duplex); a message holds
the sender's send port and the receiver's receive port for its whole duration, so ``k`` sends from
one node serialise and so do ``k`` messages into one node.
"""

from __future__ import annotations

import numpy as np

from sgprepro.network import NetworkConfig


class Link:
    """Message durations under one network condition, with the jitter stream of one replay."""

    def __init__(self, network: NetworkConfig, rng: np.random.Generator) -> None:
        self.network = network
        self.jitter = network.jitter_s
        self.rng = rng
        self._base: dict[float, float] = {}  # nbytes -> noise-free duration

    def message_time(self, nbytes: float) -> float:
        """Noise-free duration of one message of ``nbytes``."""
        return self.network.message_time(nbytes)

    def durations(self, nbytes: float, size: int | tuple[int, ...]) -> np.ndarray | float:
        """Durations of ``size`` messages of ``nbytes`` each (a float when there is no jitter)."""
        base = self._base.get(nbytes)
        if base is None:
            base = self._base[nbytes] = self.network.message_time(nbytes)
        if self.jitter <= 0.0:
            return base
        return base + np.maximum(0.0, self.rng.normal(0.0, self.jitter, size))


class Ports:
    """Busy-until times of every node's send and receive port."""

    def __init__(self, n: int) -> None:
        self.send_free = np.zeros(n)
        self.recv_free = np.zeros(n)

    def transfer(
        self,
        src: np.ndarray,
        dst: np.ndarray,
        ready: np.ndarray,
        dur: np.ndarray | float,
        post: np.ndarray | None = None,
        unique: bool = True,
    ) -> np.ndarray:
        """Schedule messages ``src[m] -> dst[m]`` in index order; return their end times.

        ``unique`` says every sender and every receiver appears once, so one vectorised step is
        the same as serving the messages one by one. Otherwise messages are served in waves, each
        taking the first pending message of every port, which is again the sequential order.
        """
        if unique:
            start = np.maximum(np.maximum(ready, self.send_free[src]), self.recv_free[dst])
            if post is not None:
                start = np.maximum(start, post)
            end = start + dur
            self.send_free[src] = end
            self.recv_free[dst] = end
            return end
        m = len(src)
        end = np.empty(m)
        dur_arr = np.broadcast_to(np.asarray(dur, dtype=float), (m,))
        pending = np.arange(m)
        while pending.size:
            _, first_dst = np.unique(dst[pending], return_index=True)
            _, first_src = np.unique(src[pending], return_index=True)
            take = np.zeros(pending.size, dtype=bool)
            take[first_dst] = True
            ok_src = np.zeros(pending.size, dtype=bool)
            ok_src[first_src] = True
            take &= ok_src
            idx = pending[take]
            sub_post = None if post is None else post[idx]
            end[idx] = self.transfer(src[idx], dst[idx], ready[idx], dur_arr[idx], sub_post)
            pending = pending[~take]
        return end
