"""Communication graphs: who sends to whom at each round.

Pure Python; no process group needed. Every graph answers ``out_peers(rank, step, num_peers)``
and ``in_peers(rank, step, num_peers)``; a sender only needs its out-peers and a receiver only its
in-peers, and the round index ``step`` must agree on every rank.
"""

from sgprepro.topology.graphs import (
    TOPOLOGIES,
    BipartiteExponentialGraph,
    BipartiteGraph,
    CompleteGraph,
    ExponentialGraph,
    ForwardBipartiteExponentialGraph,
    RingGraph,
    Topology,
    TopologyError,
    make_topology,
)
from sgprepro.topology.schedule import PeersSchedule

__all__ = [
    "TOPOLOGIES",
    "BipartiteExponentialGraph",
    "BipartiteGraph",
    "CompleteGraph",
    "ExponentialGraph",
    "ForwardBipartiteExponentialGraph",
    "PeersSchedule",
    "RingGraph",
    "Topology",
    "TopologyError",
    "make_topology",
]
