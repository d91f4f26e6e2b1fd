"""Mixing weights and per-round mixing matrices (pure numpy; no process group).

Conventions: ``P[j, i]`` is the share of node i's mass that lands on node j, so a PushSum round is
``X <- P @ X`` with ``X`` of shape (n, d) and ``P`` column-stochastic (Alg. 1 of Assran et al. 2019).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sgprepro.topology import Topology


def uniform_weight(num_out: int) -> float:
    """Share kept and sent to each out-peer with ``num_out`` out-peers: 1 / (num_out + 1)."""
    return 1.0 / (num_out + 1)


def pushsum_matrix(topology: Topology, step: int, num_peers: int = 1) -> np.ndarray:
    """Column-stochastic matrix of round ``step``: P[j, i] = 1/(d_i + 1) for j in out(i) + {i}."""
    n = topology.n
    p = np.zeros((n, n))
    for i in range(n):
        peers = topology.out_peers(i, step, num_peers)
        w = uniform_weight(len(peers))
        p[i, i] = w
        for j in peers:
            p[j, i] += w
    return p


def gossip_matrix(topology: Topology, step: int, num_peers: int = 1) -> np.ndarray:
    """Symmetric, doubly-stochastic D-PSGD matrix: x_i <- (x_i + sum_{j in N_i} x_j) / (|N_i| + 1).

    Requires an undirected graph whose round is regular (every node has the same degree).
    """
    if not topology.undirected:
        raise ValueError(
            f"topology={topology.name}: D-PSGD averages symmetrically and needs an undirected "
            "graph; use topology=bipartite_exponential, ring with peers=2, or complete"
        )
    n = topology.n
    w = np.zeros((n, n))
    for i in range(n):
        peers = topology.out_peers(i, step, num_peers)
        share = 1.0 / (len(peers) + 1)
        w[i, i] = share
        for j in peers:
            w[i, j] += share
    if not np.allclose(w, w.T):
        raise ValueError(
            f"topology={topology.describe()} round {step}: node degrees differ, so uniform "
            "pairwise weights are not symmetric; use a regular graph"
        )
    return w


def is_column_stochastic(p: np.ndarray, atol: float = 1e-12) -> bool:
    return bool((p >= 0).all() and np.allclose(p.sum(axis=0), 1.0, atol=atol))


def is_doubly_stochastic(p: np.ndarray, atol: float = 1e-12) -> bool:
    return is_column_stochastic(p, atol) and bool(np.allclose(p.sum(axis=1), 1.0, atol=atol))


def exact_consensus_round(
    topology: Topology,
    matrix: Callable[[Topology, int, int], np.ndarray] = pushsum_matrix,
    max_rounds: int = 64,
    num_peers: int = 1,
) -> int | None:
    """First round r after which the product of the rounds' matrices is exact averaging.

    Mixing weights here are dyadic (1/2, 1/3 excepted), so products are exact in float64 for
    dozens of rounds and the comparison is exact: a graph that only approaches the average
    asymptotically returns None.

    Args:
        topology: the graph.
        matrix: round matrix, :func:`pushsum_matrix` (SGP) or :func:`gossip_matrix` (D-PSGD).
        max_rounds: rounds tried.
        num_peers: peers per round.
    """
    n = topology.n
    acc = np.eye(n)
    for r in range(max_rounds):
        acc = matrix(topology, r, num_peers) @ acc
        if np.array_equal(acc, np.full((n, n), 1.0 / n)):
            return r + 1
    return None


def rounds_product(
    topology: Topology, rounds: int, num_peers: int = 1, start: int = 0
) -> np.ndarray:
    """P_{start+rounds-1} @ ... @ P_{start}: the effect of ``rounds`` PushSum rounds."""
    acc = np.eye(topology.n)
    for s in range(start, start + rounds):
        acc = pushsum_matrix(topology, s, num_peers) @ acc
    return acc
