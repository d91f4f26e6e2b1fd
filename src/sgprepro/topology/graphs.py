"""Graphs used by the paper and its baselines (Sec. 3 and App. A of Assran et al. 2019).

Every graph is time-varying: round ``step`` selects offsets from a cyclic "phone book". With
``num_peers`` (k) out-peers per round a node uses k consecutive entries of that book, starting at
entry ``k * step``: the book advances by k entries per round, as the original code's
``GraphManager._rotate_group_indices`` does (tag ``sgp_pytorch0.5``, ``graph_manager.py``). The
original also restarts the book at entry 0 when the peers per round change mid-run; here the
entries of a round depend on the round index and k only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable


class TopologyError(ValueError):
    """A graph cannot be built for the requested node count or peers per round."""


def _log2_floor(x: int) -> int:
    return x.bit_length() - 1


class Topology(ABC):
    """A time-varying communication graph over ``n`` nodes.

    Attributes:
        name: registry name (``topology.name`` in the config).
        n: number of nodes.
        undirected: every round's edges are mutual (in_peers == out_peers), as D-PSGD needs.
    """

    name: str = ""
    undirected: bool = False

    def __init__(self, n: int) -> None:
        if n < 2:
            raise TopologyError(
                f"nodes={n} with topology={self.name}: a graph needs at least 2 nodes; use nodes>=2"
            )
        self.n = n

    @property
    @abstractmethod
    def max_peers(self) -> int:
        """Largest ``num_peers`` this graph supports per round."""

    @property
    def cycle_length(self) -> int:
        """Number of rounds after which the graph sequence repeats."""
        return 1

    def check_peers(self, num_peers: int) -> None:
        if not 1 <= num_peers <= self.max_peers:
            raise TopologyError(
                f"topology.peers={num_peers} with topology={self.name}, nodes={self.n}: "
                f"peers per round must be in [1, {self.max_peers}]; lower the peers or add nodes"
            )

    @abstractmethod
    def out_peers(self, rank: int, step: int, num_peers: int = 1) -> tuple[int, ...]:
        """Ranks that ``rank`` sends to in round ``step``."""

    @abstractmethod
    def in_peers(self, rank: int, step: int, num_peers: int = 1) -> tuple[int, ...]:
        """Ranks that ``rank`` receives from in round ``step``."""

    def describe(self) -> str:
        return f"{self.name}(n={self.n})"


class _OffsetGraph(Topology):
    """A circulant graph whose round-``step`` edges are ``i -> i + offset`` for offsets in a book."""

    offsets: tuple[int, ...]

    @property
    def max_peers(self) -> int:
        return len(self.offsets)

    @property
    def cycle_length(self) -> int:
        return len(self.offsets)

    def _round_offsets(self, step: int, num_peers: int) -> tuple[int, ...]:
        self.check_peers(num_peers)
        return book_entries(self.offsets, step, num_peers)

    def out_peers(self, rank: int, step: int, num_peers: int = 1) -> tuple[int, ...]:
        return tuple((rank + off) % self.n for off in self._round_offsets(step, num_peers))

    def in_peers(self, rank: int, step: int, num_peers: int = 1) -> tuple[int, ...]:
        return tuple((rank - off) % self.n for off in self._round_offsets(step, num_peers))


def book_entries(book: tuple[int, ...], step: int, num_peers: int) -> tuple[int, ...]:
    """The ``num_peers`` entries of round ``step``: ``book[(k step + j) mod L]`` for j < k."""
    return tuple(book[(num_peers * step + j) % len(book)] for j in range(num_peers))


def _dedupe_mod(offsets: list[int], n: int) -> tuple[int, ...]:
    seen: set[int] = set()
    book: list[int] = []
    for off in offsets:
        o = off % n
        if o != 0 and o not in seen:
            seen.add(o)
            book.append(o)
    return tuple(book)


class ExponentialGraph(_OffsetGraph):
    """Directed exponential graph.

    ``form="paper"``: node i sends to the peer 2^0, 2^1, ..., 2^floor(log2(n-1)) hops ahead, one
    offset per round, cycling (Sec. 3 of the paper). With n a power of two and one peer, the
    product of log2(n) rounds of mixing with weights 1/2 is exact averaging.

    ``form="phonebook"``: the original code's graph type 0, offsets +1, -1, +2, -2, +4, ... (duplicates
    modulo n removed); exact averaging needs the whole cycle (about 2 log2 n rounds).
    """

    name = "exponential"
    FORMS = ("paper", "phonebook")

    def __init__(self, n: int, form: str = "paper") -> None:
        super().__init__(n)
        if form not in self.FORMS:
            raise TopologyError(
                f"topology.form={form!r}: must be one of {list(self.FORMS)}; "
                "use form=paper (forward-only 2^k hops) or form=phonebook (original code's +-2^i)"
            )
        self.form = form
        powers = [2**i for i in range(_log2_floor(n - 1) + 1)]
        if form == "paper":
            self.offsets = _dedupe_mod(powers, n)
        else:
            self.offsets = _dedupe_mod([s * p for p in powers for s in (1, -1)], n)

    def describe(self) -> str:
        return f"exponential[{self.form}](n={self.n}, offsets={list(self.offsets)})"


class BipartiteGraph(Topology):
    """Bipartite pairing: odd ranks are active, even ranks passive, every round a matching.

    In round ``step`` an active rank r pairs with ``r + o`` and a passive rank p with ``p - o``
    for each offset o of the round's book entries; every offset is odd, so pairs cross sides and
    are mutual. Subclasses set ``offsets`` (signed, distinct modulo n).
    """

    undirected = True

    def __init__(self, n: int) -> None:
        super().__init__(n)
        if n % 2:
            raise TopologyError(
                f"nodes={n} with topology={self.name}: the bipartite graph pairs odd (active) with "
                f"even (passive) ranks and needs an even node count; use nodes={n + 1}"
            )

    offsets: tuple[int, ...]

    @property
    def max_peers(self) -> int:
        return len(self.offsets)

    @property
    def cycle_length(self) -> int:
        return len(self.offsets)

    @staticmethod
    def is_active(rank: int) -> bool:
        return rank % 2 == 1

    def _peer(self, rank: int, off: int) -> int:
        return (rank + off) % self.n if self.is_active(rank) else (rank - off) % self.n

    def partner(self, rank: int, step: int) -> int:
        """The one partner of ``rank`` in round ``step`` (one peer per round, as AD-PSGD uses)."""
        return self._peer(rank, self.offsets[step % len(self.offsets)])

    def out_peers(self, rank: int, step: int, num_peers: int = 1) -> tuple[int, ...]:
        self.check_peers(num_peers)
        return tuple(self._peer(rank, o) for o in book_entries(self.offsets, step, num_peers))

    def in_peers(self, rank: int, step: int, num_peers: int = 1) -> tuple[int, ...]:
        return self.out_peers(rank, step, num_peers)

    def describe(self) -> str:
        return f"{self.name}(n={self.n}, offsets={list(self.offsets)})"


class BipartiteExponentialGraph(BipartiteGraph):
    """The original code's bipartite exponential graph (graph type 1), used by D-PSGD and AD-PSGD.

    The book of signed offsets is +1, -1, +3, -3, +5, -5, +9, -9, ... (1 + 2^i for i >= 1 up to
    floor(log2(n - 1)), each forward then backward), with offsets equal modulo n kept once: an
    active rank r pairs with r + o, a passive rank p with p - o (the passive side lists the
    backward peer first, which makes every pair mutual). Cycle length 2, 4, 8, 10 at n = 4, 8, 16,
    32 (``graph_manager.py``, ``DynamicBipartiteExponentialGraph``, tag ``sgp_pytorch0.5``). It does
    not reach exact consensus within one cycle for n >= 8.
    """

    name = "bipartite_exponential"

    def __init__(self, n: int) -> None:
        super().__init__(n)
        hops = [1] + [1 + 2**i for i in range(1, _log2_floor(n - 1) + 1)]
        self.offsets = _dedupe_mod([s * h for h in hops for s in (1, -1)], n)


class ForwardBipartiteExponentialGraph(BipartiteGraph):
    """A faster-mixing variant, not the original's: forward offsets 1, 1 + 2^1, 1 + 2^2, ... (< n)
    only (active r pairs with r + o, passive p with p - o). At n = 32 it reaches exact consensus
    within one cycle; kept as ``topology=bipartite_exponential_forward`` for comparison."""

    name = "bipartite_exponential_forward"

    def __init__(self, n: int) -> None:
        super().__init__(n)
        book = [1] + [1 + 2**i for i in range(1, _log2_floor(n - 1) + 1) if 1 + 2**i < n]
        self.offsets = _dedupe_mod(book, n)


class RingGraph(_OffsetGraph):
    """Ring: one peer sends to rank+1 (directed); two peers use rank+1 and rank-1 (undirected)."""

    name = "ring"

    def __init__(self, n: int) -> None:
        super().__init__(n)
        self.offsets = _dedupe_mod([1, -1], n)

    def _round_offsets(self, step: int, num_peers: int) -> tuple[int, ...]:
        self.check_peers(num_peers)
        return self.offsets[:num_peers]  # static graph: the book does not rotate

    @property
    def cycle_length(self) -> int:
        return 1


class CompleteGraph(Topology):
    """Every node sends to every other node each round (uniform weights 1/n: exact averaging)."""

    name = "complete"
    undirected = True

    @property
    def max_peers(self) -> int:
        return self.n - 1

    def check_peers(self, num_peers: int) -> None:  # the degree is fixed; num_peers is ignored
        return None

    def out_peers(self, rank: int, step: int, num_peers: int = 1) -> tuple[int, ...]:
        return tuple(j for j in range(self.n) if j != rank)

    def in_peers(self, rank: int, step: int, num_peers: int = 1) -> tuple[int, ...]:
        return self.out_peers(rank, step, num_peers)


TOPOLOGIES: dict[str, Callable[..., Topology]] = {
    "exponential": ExponentialGraph,
    "bipartite_exponential": BipartiteExponentialGraph,
    "bipartite_exponential_forward": ForwardBipartiteExponentialGraph,
    "ring": RingGraph,
    "complete": CompleteGraph,
}


def make_topology(name: str, n: int, **kwargs: object) -> Topology:
    """Build a graph by registry name; raises TopologyError naming the key and the choices."""
    if name not in TOPOLOGIES:
        raise TopologyError(
            f"topology.name={name!r}: unknown graph; choose one of {sorted(TOPOLOGIES)}"
        )
    return TOPOLOGIES[name](n, **kwargs)
