"""AD-PSGD as the paper ran it, in emulated time: the gossip rounds, the trainers and their schedule.

Semantics (``gossip_sgd_adpsgd.py`` and ``BilatGossipDataParallel``/``BilatPushPull`` of the
original code, branch ``main``):

* **Gossip loop** (one per node, beside its trainer) over rounds r = 0, 1, ...; in round r each
  node meets its partner of round r on the bipartite graph (a node's round index advances only
  when its exchange completes, so partners always share r). A loop iteration first applies a
  handed-over gradient, if any, with the gossip optimizer, then gossips:

  - an **active** (odd) rank sends its model (blocking), then receives its partner's (blocking);
  - a **passive** (even) rank keeps a receive posted and returns at once while nothing has
    arrived (it never blocks on an absent partner); when the message is in, it sends its current
    model back (blocking).

  Both then set x <- (x_active + x_passive) / 2, where x_active is the active model when it
  started sending and x_passive the passive model when it noticed the arrival. In time: round r
  starts at ``max(active loop start, passive posted receive)``, the first message takes ``d1``,
  the reply ``d2``; both commit at ``start + d1 + d2`` and pay the averaging pass
  (``reduce_s_per_byte x bytes``) before their next loop iteration. The passive loop is blocked
  only while it sends the reply.
* **Trainer**: computes a gradient on its own model, then hands it to its gossip loop: it waits
  until the loop has consumed the previous one (one slot), pulls the gossip model and takes its
  own optimizer step on it with the new gradient (a look-ahead copy), so every gradient is
  computed on a model that contains the node's previous gradient. Its iteration ends at the
  hand-over. A passive loop consumes a gradient at once (unless it is sending a reply); an active
  loop at its next loop iteration: active trainers are throttled by their serial send-then-receive
  gossip, passive trainers run at about compute speed.
* **Learning rate and stopping** follow the global gradient count: gradients are numbered in the
  order they start; gradient g's learning rate uses ``g / n`` iterations; the run takes exactly
  ``budget`` gradients (faster nodes take more), then every gossip round that started before the
  last gradient was consumed completes.

A gossip loop does CPU work every round, so it cannot spin arbitrarily fast: a round lasts at
least ``mean compute / max_rounds_per_gradient``.

The same computation serves the timing replay and, through :meth:`AsyncSchedule.ops`, the
emulated-clock execution of a real AD-PSGD run: every rank replays its operations in this order,
so the interleaving is decided here, not by the operating system's scheduler.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from sgprepro.timing.link import Link
from sgprepro.timing.programs import PeerTable
from sgprepro.topology import Topology

# operation kinds of a rank's schedule
COMMIT, HANDOVER, APPLY, SEND, GRAD = 0, 1, 2, 3, 4
OP_NAMES = {COMMIT: "commit", HANDOVER: "handover", APPLY: "apply", SEND: "send", GRAD: "grad"}


def op_order(op: Op) -> tuple[float, int, int]:
    """Execution order of a rank's operations: by time; at equal times a commit first (the loop
    finishes its round), then hand-overs and applies in gradient order (gradient k-1 is applied
    before gradient k is handed over, which is before gradient k is applied), then a send (the
    loop gossips after applying), then the next gradient's compute."""
    if op.kind == COMMIT:
        return (op.time, 0, op.index)
    if op.kind in (HANDOVER, APPLY):
        return (op.time, 1, 2 * op.index + (op.kind == APPLY))
    return (op.time, 2 if op.kind == SEND else 3, op.index)


@dataclass(frozen=True)
class Op:
    """One operation of a rank's schedule.

    Attributes:
        time: emulated time.
        kind: ``GRAD`` (compute gradient ``index`` on the trainer model), ``HANDOVER`` (pull the
            gossip model into the trainer, then the trainer's look-ahead step with gradient
            ``index``), ``APPLY`` (gossip optimizer step with gradient ``index``), ``SEND``
            (post the exchange of round ``index`` with ``peer``: send the gossip model, post the
            receive), ``COMMIT`` (wait for round ``index``; x <- (x + received) / 2).
        index: gradient number on this rank (GRAD, HANDOVER, APPLY) or round (SEND, COMMIT).
        peer: the partner (SEND, COMMIT), else -1.
        ticket: GRAD only: the global gradient number (0-based; the learning rate uses
            ``ticket / n``).
    """

    time: float
    kind: int
    index: int
    peer: int = -1
    ticket: int = -1


@dataclass(frozen=True)
class AsyncSchedule:
    """Emulated AD-PSGD of one run: per rank, gradient and round times.

    Attributes:
        n: nodes.
        budget: gradients taken in all (global).
        grad_start, handover, consume: per rank, ``[K_i]`` start of each gradient's compute, its
            hand-over (the trainer's iteration end), its application by the gossip loop.
        tickets: per rank, ``[K_i]`` global gradient numbers.
        rounds_partner, rounds_snapshot, rounds_commit: per rank, ``[R_i]`` partner, the time
            its model was taken for the exchange, and the commit time of each round.
        active: ``[n]`` whether the rank is active (sends first).
        staleness: per rank, ``[K_i]`` gossip-model versions (applied gradients and committed
            exchanges) between the pull its gradient was computed from and its application.
    """

    n: int
    budget: int
    grad_start: tuple[np.ndarray, ...]
    handover: tuple[np.ndarray, ...]
    consume: tuple[np.ndarray, ...]
    tickets: tuple[np.ndarray, ...]
    rounds_partner: tuple[np.ndarray, ...]
    rounds_snapshot: tuple[np.ndarray, ...]
    rounds_commit: tuple[np.ndarray, ...]
    active: np.ndarray
    staleness: tuple[np.ndarray, ...]

    def _arrays(self, rank: int) -> tuple[np.ndarray, ...]:
        """Rank ``rank``'s operations as arrays (time, kind, index, peer, ticket), sorted into
        execution order by :func:`op_order`'s key (time, then class, then gradient or round)."""
        k = len(self.grad_start[rank])
        m = len(self.rounds_commit[rank])
        gi, ri = np.arange(k), np.arange(m)
        time = np.concatenate(
            [
                self.grad_start[rank],
                self.handover[rank],
                self.consume[rank],
                self.rounds_snapshot[rank],
                self.rounds_commit[rank],
            ]
        ).astype(float)
        kind = np.concatenate(
            [
                np.full(k, GRAD),
                np.full(k, HANDOVER),
                np.full(k, APPLY),
                np.full(m, SEND),
                np.full(m, COMMIT),
            ]
        )
        index = np.concatenate([gi, gi, gi, ri, ri])
        # op_order's key, as arrays: class 0 commit, 1 hand-over/apply, 2 send, 3 gradient
        cls = np.concatenate([np.full(k, 3), np.full(2 * k, 1), np.full(m, 2), np.zeros(m, int)])
        sub = np.concatenate([gi, 2 * gi, 2 * gi + 1, ri, ri])
        partner = np.asarray(self.rounds_partner[rank], dtype=np.int64)
        peer = np.concatenate([np.full(3 * k, -1), partner, partner])
        ticket = np.concatenate([self.tickets[rank], np.full(3 * k + 2 * m - k, -1)])
        order = np.lexsort((sub, cls, time))  # unique keys: the same order as sorting by op_order
        return time[order], kind[order], index[order], peer[order], ticket[order]

    def ops(self, rank: int) -> list[Op]:
        """Rank ``rank``'s operations in execution order (by time, ties by kind)."""
        cols = (a.tolist() for a in self._arrays(rank))
        return [Op(*row) for row in zip(*cols, strict=True)]

    def gradients(self) -> list[int]:
        """Gradients taken by each rank."""
        return [len(h) for h in self.handover]

    def rounds(self) -> list[int]:
        """Gossip rounds completed by each rank."""
        return [len(r) for r in self.rounds_commit]

    def staleness_histogram(self) -> dict[int, int]:
        """Staleness value -> number of gradients, over every rank."""
        values, counts = np.unique(np.concatenate(self.staleness), return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts, strict=True)}


class _Rounds:
    """The gossip rounds of every node, generated on demand (they do not depend on trainers).

    Costs per round (one pass = ``pass_s``): an active loop starts (``commit + avg``), applies the
    waiting gradient (``apply``: an active loop is throttled, so one is waiting at every start),
    takes its model and flattens it (``flatten``), then sends; the passive flattens its model
    when the message is in and replies; both average (``avg``) after the reply lands.
    """

    def __init__(
        self,
        topology: Topology,
        nbytes: float,
        link: Link,
        costs: dict[str, float],
        min_round_s: float,
    ) -> None:
        self.table = PeerTable(topology)
        self.n = topology.n
        self.nbytes, self.link = nbytes, link
        self.avg_s, self.apply_s, self.flatten_s = costs["avg"], costs["apply"], costs["flatten"]
        self.min_round_s = min_round_s
        self.loop = np.zeros(self.n)  # when each node's next loop iteration starts
        self.count = 0  # rounds generated; rows [0, count) of the arrays below are valid
        self.partner = np.zeros((0, self.n), dtype=np.intp)  # per round [n]: the partner
        self.start = np.zeros((0, self.n))  # per round [n]: the pair's transfer start
        self.snap = np.zeros((0, self.n))  # per round [n]: when the node's model is taken
        self.commit = np.zeros((0, self.n))  # per round [n]: the exchange's commit
        self.is_active = np.zeros(self.n, dtype=bool)
        self._horizon = 0.0  # horizon(), kept up to date by extend
        # the pairing repeats every cycle_length rounds: per cycle position, filled in round order
        self._period = max(1, topology.cycle_length)
        self._pairs: list[list[tuple[int, int]]] = []  # (active, passive) per pair
        self._active: list[np.ndarray] = []
        self._passive: list[np.ndarray] = []
        # the two message durations of every round when the link has no jitter (durations()
        # returned floats for the first round), else None: drawn per round
        self._fixed: tuple[float, float] | None = None

    def _grow(self, rows: int) -> None:
        need = self.count + rows
        if need <= len(self.commit):
            return
        cap = max(need, 2 * len(self.commit), 64)
        for name in ("partner", "start", "snap", "commit"):
            old = getattr(self, name)
            new = np.zeros((cap, self.n), dtype=old.dtype)
            new[: self.count] = old[: self.count]
            setattr(self, name, new)

    def _exchanges(self, r0: int, rounds: int) -> Iterable[tuple[int, int, float, float]]:
        """The pairs of rounds ``[r0, r0 + rounds)`` in round order, each as ``(active, passive,
        first message's duration, reply's duration)``. A link with jitter draws both durations
        per round, in round order (the same random stream as round-by-round calls); when round
        0's durations are floats (no jitter) they serve every round."""
        half, period, cycle = self.n // 2, self._period, self._pairs
        drawn: list[tuple[int, int, float, float]] = []
        for r in range(r0, r0 + rounds):
            if self._fixed is not None:
                break
            d1 = self.link.durations(self.nbytes, half)
            d2 = self.link.durations(self.nbytes, half)
            if r == 0 and isinstance(d1, float) and isinstance(d2, float):
                self._fixed = (float(d1), float(d2))
                break
            d1s, d2s = _per_pair(d1, half), _per_pair(d2, half)
            drawn.extend(
                (x, y, a, b) for (x, y), a, b in zip(cycle[r % period], d1s, d2s, strict=True)
            )
        if self._fixed is None:
            return drawn
        d1, d2 = self._fixed
        first = r0 % period
        one_cycle = [(x, y, d1, d2) for pairs in cycle[first:] + cycle[:first] for x, y in pairs]
        return itertools.islice(itertools.cycle(one_cycle), rounds * half)

    def extend(self, rounds: int) -> None:
        """Generate ``rounds`` more rounds. Plain floats per pair: the arrays hold a few nodes,
        where numpy's per-call cost would dominate (the same IEEE arithmetic either way); the
        rows are then written into the arrays in bulk."""
        half = self.n // 2
        r0 = self.count
        end = r0 + rounds
        period = self._period
        while len(self._pairs) < min(period, end):  # cycle positions first reached now
            act, pas = self.table.pairs(len(self._pairs))
            self._active.append(act)
            self._passive.append(pas)
            self._pairs.append(list(zip(act.tolist(), pas.tolist(), strict=True)))
        if r0 == 0 and rounds > 0:
            self.is_active[self._active[0]] = True
        self._grow(rounds)
        exchanges = self._exchanges(r0, rounds)
        loop = self.loop.tolist()
        apply_s, flatten_s, min_round = self.apply_s, self.flatten_s, self.min_round_s
        avg_s = self.avg_s
        rows: list[float] = []  # per pair: start, the two snapshots, commit
        put = rows.extend
        # a round is a perfect matching: each node is read and updated by one pair of it only
        for x, y, d1, d2 in exchanges:
            lx = loop[x]
            taken = lx + apply_s  # the active model, with its gradient applied
            ready = taken + flatten_s
            ly = loop[y]
            begin = ly if ly > ready else ready  # max(ready, ly)
            arrival = begin + d1  # the passive model is taken when the message is in
            com = arrival + flatten_s + d2
            floor = lx + min_round
            if floor > com:  # max(com, floor)
                com = floor
            loop[x] = loop[y] = com + avg_s
            put((begin, taken, arrival, com))
        idx = np.arange(r0, end)
        pos = idx % period
        act = np.array(self._active)[pos]  # [rounds, half]
        pas = np.array(self._passive)[pos]
        at = idx[:, None]
        vals = np.array(rows, dtype=float).reshape(rounds, half, 4)
        begin_v, commit_v = vals[:, :, 0], vals[:, :, 3]
        self.partner[at, act] = pas
        self.partner[at, pas] = act
        self.start[at, act] = begin_v
        self.start[at, pas] = begin_v
        self.snap[at, act] = vals[:, :, 1]
        self.snap[at, pas] = vals[:, :, 2]
        self.commit[at, act] = commit_v
        self.commit[at, pas] = commit_v
        self.loop = np.array(loop)
        self.count = end
        self._horizon = float(self.loop.min()) if end else 0.0

    def horizon(self) -> float:
        """Every node's next loop start is at least this late."""
        return self._horizon

    def until(self, t: float) -> None:
        """Generate rounds until every node's loop has passed ``t``."""
        while self._horizon <= t:
            self.extend(max(64, self.count // 4))  # a quarter more: little overshoot

    def loop_starts(self, rank: int) -> np.ndarray:
        """An active rank's loop iteration starts (where it consumes a gradient)."""
        return np.concatenate([[0.0], self.commit[: self.count, rank] + self.avg_s])

    def blocked(self, rank: int) -> tuple[np.ndarray, np.ndarray]:
        """A passive rank's blocked intervals (replying and averaging): starts and ends."""
        lo = self.snap[: self.count, rank].copy()
        hi = self.commit[: self.count, rank] + self.avg_s
        return lo, hi


def _per_pair(d: np.ndarray | float, half: int) -> list[float]:
    """One round's message durations as a list over its ``half`` pairs (a float is every pair's)."""
    return [d] * half if isinstance(d, float) else d.tolist()


_Cache = dict[int, tuple[int, bool, np.ndarray, np.ndarray]]


def _next_opportunity(rounds: _Rounds, rank: int, t: float, prev: float, cache: _Cache) -> float:
    """First time >= t at which ``rank``'s gossip loop takes a handed-over gradient; an active
    loop takes one gradient per loop iteration, so not at ``prev`` (its previous take) again.

    ``cache``: per rank, ``(rounds generated, active, lo, hi)``: an active rank's loop starts (in
    ``lo`` and ``hi`` both), a passive rank's blocked intervals (:meth:`_Rounds.blocked`).
    """
    if rounds.horizon() <= t:
        rounds.until(t)  # every loop has passed t: the answer lies in the generated rounds
    have = rounds.count
    entry = cache.get(rank)
    if entry is None or entry[0] != have:
        if rounds.is_active[rank]:
            starts = rounds.loop_starts(rank)
            entry = (have, True, starts, starts)
        else:
            entry = (have, False, *rounds.blocked(rank))
        cache[rank] = entry
    _, active, lo, hi = entry
    if active:
        i = int(lo.searchsorted(t, side="left"))
        if lo[i] <= prev:
            i = int(lo.searchsorted(prev, side="right"))
            if i >= len(lo):
                rounds.until(float(lo[-1]))
                return _next_opportunity(rounds, rank, t, prev, cache)
        return float(lo[i])
    i = int(lo.searchsorted(t, side="left")) - 1  # the last block starting before t
    if i >= 0 and lo[i] < t <= hi[i]:
        return float(hi[i])
    return float(t)


def adpsgd_schedule(
    compute: Sequence[np.ndarray],
    budget: int,
    topology: Topology,
    nbytes: float,
    link: Link,
    reduce_s_per_byte: float = 0.0,
    max_rounds_per_gradient: int = 64,
    passes: dict[str, int] | None = None,
) -> AsyncSchedule:
    """Emulate AD-PSGD (module docstring) until ``budget`` gradients were taken in all.

    Args:
        compute: per rank, the compute seconds of its successive gradients; a rank that takes
            more gradients than given repeats its mean.
        budget: gradients in all (n x iterations per node).
        topology: a bipartite graph (``partner``/``is_active``).
        nbytes: bytes of one message (the flat parameter vector).
        link: message durations.
        reduce_s_per_byte: CPU seconds of one pass over the vector, per byte.
        max_rounds_per_gradient: a round lasts at least mean compute / this.
        passes: CPU passes of the gossip loop: ``apply`` (optimizer step), ``flatten`` (before a
            send), ``avg`` (the averaging); default 5, 1, 2 as in the original code. A trainer
            hands its next gradient over only after the previous one's apply finished.
    """
    n = topology.n
    if len(compute) != n:
        raise ValueError(f"compute for {len(compute)} ranks with topology n={n}; they must agree")
    if budget < 1:
        raise ValueError(f"budget={budget}: must be >= 1 gradient")
    comp = [np.asarray(c, dtype=float) for c in compute]
    means = [float(c.mean()) if c.size else 0.0 for c in comp]
    min_round = float(np.mean(means)) / max_rounds_per_gradient
    counts = {"apply": 5, "flatten": 1, "avg": 2, **(passes or {})}
    pass_s = reduce_s_per_byte * nbytes
    costs = {k: v * pass_s for k, v in counts.items()}
    rounds = _Rounds(topology, nbytes, link, costs, min_round)
    rounds.extend(8)
    cache: _Cache = {}

    starts: list[list[float]] = [[] for _ in range(n)]
    hands: list[list[float]] = [[] for _ in range(n)]
    cons: list[list[float]] = [[] for _ in range(n)]
    tickets: list[list[int]] = [[] for _ in range(n)]
    heap = [(0.0, r) for r in range(n)]  # (next gradient start, rank)
    heapq.heapify(heap)
    last_consumed = [-np.inf] * n
    comp_s = [c.tolist() for c in comp]  # plain floats: the same values, no numpy scalars
    for ticket in range(budget):
        s, rank = heapq.heappop(heap)
        k = len(starts[rank])
        c_k = comp_s[rank][k] if k < len(comp_s[rank]) else means[rank]
        h = max(s + c_k, last_consumed[rank])
        c = _next_opportunity(rounds, rank, h, last_consumed[rank], cache)
        starts[rank].append(s)
        hands[rank].append(h)
        cons[rank].append(c)
        tickets[rank].append(ticket)
        last_consumed[rank] = c + costs["apply"]  # the read flag: once the apply is done
        heapq.heappush(heap, (h, rank))
    t_end = max(max(c) for c in cons if c)
    rounds.until(t_end)
    n_rounds = (rounds.start[: rounds.count] < t_end).sum(axis=0)

    def per_rank(rows: np.ndarray, i: int) -> np.ndarray:
        return rows[: n_rounds[i], i].copy()

    partner = tuple(per_rank(rounds.partner, i).astype(np.intp) for i in range(n))
    snap = tuple(per_rank(rounds.snap, i) for i in range(n))
    commit = tuple(per_rank(rounds.commit, i) for i in range(n))
    sched = AsyncSchedule(
        n=n,
        budget=budget,
        grad_start=tuple(np.array(s) for s in starts),
        handover=tuple(np.array(h) for h in hands),
        consume=tuple(np.array(c) for c in cons),
        tickets=tuple(np.array(t, dtype=np.int64) for t in tickets),
        rounds_partner=partner,
        rounds_snapshot=snap,
        rounds_commit=commit,
        active=rounds.is_active.copy(),
        staleness=(),
    )
    staleness = tuple(_staleness(*sched._arrays(i)[1:3]) for i in range(n))
    return dataclasses.replace(sched, staleness=staleness)


def _staleness(kind: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Gossip-model versions (applies and commits) between each gradient's read (the pull at the
    previous hand-over; the start for the first) and its application, in execution order.

    ``kind``, ``index``: a rank's operations in execution order (:meth:`AsyncSchedule._arrays`).
    """
    bumps = (kind == APPLY) | (kind == COMMIT)
    version = np.cumsum(bumps) - bumps  # the version each operation sees
    read = np.concatenate([[0], version[kind == HANDOVER]])  # read[k]: gradient k's pull
    applies = kind == APPLY
    return (version[applies] - read[index[applies]]).astype(np.int64)
