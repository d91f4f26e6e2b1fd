"""Graphs and mixing matrices (pure; no process group)."""

from __future__ import annotations

import numpy as np
import pytest

from sgprepro.mixing import (
    exact_consensus_round,
    gossip_matrix,
    is_column_stochastic,
    is_doubly_stochastic,
    pushsum_matrix,
    rounds_product,
)
from sgprepro.topology import (
    BipartiteExponentialGraph,
    CompleteGraph,
    ExponentialGraph,
    ForwardBipartiteExponentialGraph,
    PeersSchedule,
    RingGraph,
    TopologyError,
    make_topology,
)

NODES = [4, 8, 16, 32]


@pytest.mark.parametrize("n", NODES)
@pytest.mark.parametrize("form", ["paper", "phonebook"])
@pytest.mark.parametrize("peers", [1, 2])
def test_sgp_matrices_column_stochastic(n, form, peers):
    g = ExponentialGraph(n, form)
    for step in range(2 * g.cycle_length):
        p = pushsum_matrix(g, step, peers)
        assert is_column_stochastic(p)
        # every node keeps 1/(peers+1) and sends the same share to each out-peer
        assert np.allclose(np.diag(p), 1.0 / (peers + 1))


@pytest.mark.parametrize("n", NODES)
def test_dpsgd_matrices_doubly_stochastic_and_symmetric(n):
    g = BipartiteExponentialGraph(n)
    for step in range(2 * g.cycle_length):
        w = gossip_matrix(g, step)
        assert is_doubly_stochastic(w)
        assert np.allclose(w, w.T)
        assert np.allclose(np.diag(w), 0.5)  # a pairwise swap


# -- the original code's phone books, built independently of sgprepro.topology ----------------


def _original_books(n: int, bipartite: bool) -> list[list[int]]:
    """Per-rank phone books as graph types 0 and 1 of the original code describe them.

    Hop i (0 <= i <= floor(log2(n - 1))) is 2^i (type 0) or 1 for i = 0 and 1 + 2^i after
    (type 1). Each rank lists the peer `hop` ahead, then the one `hop` behind (type 1: passive,
    even ranks list the one behind first), skipping a peer already listed.
    """
    top = (n - 1).bit_length() - 1
    books = []
    for rank in range(n):
        book: list[int] = []
        for i in range(top + 1):
            hop = (1 if i == 0 else 1 + 2**i) if bipartite else 2**i
            ahead, behind = (rank + hop) % n, (rank - hop) % n
            order = (behind, ahead) if bipartite and rank % 2 == 0 else (ahead, behind)
            for peer in order:
                if peer not in book:
                    book.append(peer)
        books.append(book)
    return books


def _original_round(books: list[list[int]], rank: int, step: int, k: int) -> tuple[int, ...]:
    """The k out-peers of round `step`: the group indices start at 0..k-1 and rotate by k."""
    book = books[rank]
    return tuple(book[(j + k * step) % len(book)] for j in range(k))


@pytest.mark.parametrize("n", NODES)
@pytest.mark.parametrize("peers", [1, 2])
def test_bipartite_graph_is_the_originals_round_by_round(n, peers):
    g = BipartiteExponentialGraph(n)
    books = _original_books(n, bipartite=True)
    assert g.cycle_length == len(books[1]) == {4: 2, 8: 4, 16: 8, 32: 10}[n]
    for step in range(3 * g.cycle_length):
        for rank in range(n):
            assert g.out_peers(rank, step, peers) == _original_round(books, rank, step, peers)
            assert g.in_peers(rank, step, peers) == g.out_peers(rank, step, peers)
        if peers == 1:
            assert [g.partner(r, step) for r in range(n)] == [
                _original_round(books, r, step, 1)[0] for r in range(n)
            ]


@pytest.mark.parametrize("n", NODES)
@pytest.mark.parametrize("peers", [1, 2])
def test_phonebook_exponential_is_the_originals_round_by_round(n, peers):
    g = ExponentialGraph(n, "phonebook")
    books = _original_books(n, bipartite=False)
    for step in range(3 * g.cycle_length):
        for rank in range(n):
            assert g.out_peers(rank, step, peers) == _original_round(books, rank, step, peers)


def test_bipartite_books_at_32_nodes():
    assert BipartiteExponentialGraph(32).offsets == (1, 31, 3, 29, 5, 27, 9, 23, 17, 15)
    assert ForwardBipartiteExponentialGraph(32).offsets == (1, 3, 5, 9, 17)
    g = BipartiteExponentialGraph(32)
    assert [g.partner(7, s) for s in range(10)] == [8, 6, 10, 4, 12, 2, 16, 30, 24, 22]
    assert [g.partner(8, s) for s in range(10)] == [7, 9, 5, 11, 3, 13, 31, 17, 23, 25]


@pytest.mark.parametrize(
    ("n", "original", "forward"), [(4, 2, 2), (8, 3, 4), (16, 5, 5), (32, None, 6)]
)
def test_bipartite_exact_consensus_rounds(n, original, forward):
    """D-PSGD's pairwise averaging: the original's +-book mixes more slowly than the forward one;
    at 32 nodes it never averages exactly, and one cycle leaves a gap of about 1e-3."""
    assert exact_consensus_round(BipartiteExponentialGraph(n), gossip_matrix) == original
    assert exact_consensus_round(ForwardBipartiteExponentialGraph(n), gossip_matrix) == forward
    if n == 32:
        g = BipartiteExponentialGraph(n)
        acc = np.eye(n)
        for r in range(g.cycle_length):
            acc = gossip_matrix(g, r) @ acc
        assert 5e-4 < np.abs(acc - 1.0 / n).max() < 2e-3


@pytest.mark.parametrize("n", NODES)
def test_paper_exponential_exact_consensus_after_log2n_rounds(n):
    g = ExponentialGraph(n, "paper")
    rounds = int(np.log2(n))
    assert np.allclose(rounds_product(g, rounds), np.full((n, n), 1.0 / n))
    # and not one round earlier
    assert not np.allclose(rounds_product(g, rounds - 1), np.full((n, n), 1.0 / n))


@pytest.mark.parametrize("n", NODES)
def test_phonebook_exact_consensus_after_one_cycle(n):
    g = ExponentialGraph(n, "phonebook")
    cycle = g.cycle_length
    assert cycle == 2 * int(np.log2(n)) - 1  # +-2^i with -2^(log n - 1) == +2^(log n - 1) removed
    assert exact_consensus_round(g) == cycle
    assert np.allclose(rounds_product(g, cycle), np.full((n, n), 1.0 / n))
    # a cycle starting at any round works (the book rotates)
    assert np.allclose(rounds_product(g, cycle, start=3), np.full((n, n), 1.0 / n))


def test_exponential_offsets():
    assert ExponentialGraph(8, "paper").offsets == (1, 2, 4)
    assert ExponentialGraph(8, "phonebook").offsets == (1, 7, 2, 6, 4)
    assert ExponentialGraph(8).out_peers(5, 0) == (6,)
    assert ExponentialGraph(8).out_peers(5, 1) == (7,)
    assert ExponentialGraph(8).out_peers(5, 2) == (1,)
    assert ExponentialGraph(8).out_peers(5, 3) == (6,)  # cycles
    assert ExponentialGraph(8).out_peers(5, 0, 2) == (6, 7)
    assert ExponentialGraph(8).out_peers(5, 1, 2) == (1, 6)  # the book advances by k=2 a round
    assert ExponentialGraph(6, "paper").offsets == (1, 2, 4)  # any n is supported


@pytest.mark.parametrize("n", [3, 6, 8, 12])
@pytest.mark.parametrize("peers", [1, 2])
def test_in_peers_invert_out_peers(n, peers):
    for g in (ExponentialGraph(n, "paper"), ExponentialGraph(n, "phonebook"), RingGraph(n)):
        if peers > g.max_peers:
            continue
        for step in range(g.cycle_length + 1):
            for i in range(n):
                for j in g.out_peers(i, step, peers):
                    assert i in g.in_peers(j, step, peers)
                assert len(g.in_peers(i, step, peers)) == len(g.out_peers(i, step, peers))


@pytest.mark.parametrize("n", NODES)
@pytest.mark.parametrize("graph", [BipartiteExponentialGraph, ForwardBipartiteExponentialGraph])
def test_bipartite_pairs_are_mutual_and_cross_sides(n, graph):
    g = graph(n)
    for step in range(g.cycle_length):
        for i in range(n):
            j = g.partner(i, step)
            assert g.partner(j, step) == i
            assert g.is_active(i) != g.is_active(j)


def test_bipartite_needs_even_nodes():
    with pytest.raises(TopologyError, match=r"nodes=5 .*even.*nodes=6"):
        BipartiteExponentialGraph(5)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(TopologyError, match=r"nodes=1"):
        ExponentialGraph(1)
    with pytest.raises(TopologyError, match=r"topology.name='torus'"):
        make_topology("torus", 8)
    with pytest.raises(TopologyError, match=r"topology.form="):
        ExponentialGraph(8, form="bogus")
    with pytest.raises(TopologyError, match=r"topology.peers=4"):
        ExponentialGraph(8).out_peers(0, 0, 4)
    with pytest.raises(ValueError, match="undirected"):
        gossip_matrix(ExponentialGraph(8), 0)


def test_complete_graph_is_exact_averaging():
    g = CompleteGraph(5)
    assert np.allclose(pushsum_matrix(g, 0), np.full((5, 5), 0.2))


def test_peers_schedule():
    s = PeersSchedule({0: 2, 30: 1})
    assert s.peers_at(0) == 2
    assert s.peers_at(29.9) == 2
    assert s.peers_at(30) == 1
    assert s.peers_at(89) == 1
    assert s.max_peers == 2
    with pytest.raises(ValueError, match="epoch 0"):
        PeersSchedule({5: 1})


def _pushsum_run(p_of, n, rounds, tau=0, seed=0):
    """Matrix PushSum with messages delayed by tau rounds; returns totals of x and w per round."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    w = np.ones(n)
    total_x0 = x.sum(0)
    inflight = []
    totals = []
    for k in range(rounds):
        p = p_of(k)
        d = np.diag(np.diag(p))
        inflight.append((k, (p - d) @ x, (p - d) @ w))
        x, w = d @ x, d @ w
        while inflight and inflight[0][0] <= k - tau:
            _, dx, dw = inflight.pop(0)
            x, w = x + dx, w + dw
        pending_x = sum((m[1] for m in inflight), np.zeros_like(x)).sum(0)
        pending_w = sum((m[2] for m in inflight), np.zeros_like(w)).sum()
        totals.append((x.sum(0) + pending_x, w.sum() + pending_w))
    for _, dx, dw in inflight:  # drain, as OSGP's finish() does
        x, w = x + dx, w + dw
    return total_x0, totals, x, w


@pytest.mark.parametrize("tau", [0, 1, 3])
def test_pushsum_and_osgp_conserve_mass(tau):
    n = 8
    g = ExponentialGraph(n, "phonebook")
    total_x0, totals, x, w = _pushsum_run(lambda k: pushsum_matrix(g, k, 1 + k % 2), n, 120, tau)
    for tx, tw in totals:
        assert np.allclose(tx, total_x0)
        assert tw == pytest.approx(n)
    # and the de-biased values reach the average
    assert np.allclose(x / w[:, None], total_x0 / n, atol=1e-6)
