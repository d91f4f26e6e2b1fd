"""Discrete-event replay of each algorithm's blocking communication under a network model.

The engine turns a compute-time matrix ``compute_s[rank, iteration]`` and a message size into the
absolute time at which every rank finishes every iteration, following the communication semantics
of the paper-era implementations (Sec. 2 and 6 of the reference notes; Alg. 1 of Assran et al.
2019 for SGP). Seconds per iteration are then measured as the paper did (Sec. 5): per rank, the
running mean of the time between consecutive iteration ends, ``iter_end[rank, T-1] / T`` (every rank
starts at time 0), and the mean of those over ranks.

Modelling assumptions, shared by every algorithm:

* **Link.** A message of ``B`` bytes occupies its link for
  ``latency_s + 8 B / (bandwidth_gbps 1e9 efficiency)`` plus a jitter sample
  ``max(0, N(0, jitter_s^2))`` drawn per message (deterministic for a given seed).
* **NIC ports.** Each node has one send port and one receive port (full duplex). A message holds
  the sender's send port and the receiver's receive port for its whole duration (latency
  included, as a blocking send that completes on delivery), so ``k`` sends from one node
  serialise (k-peer SGP pays ``k`` message times) and so do ``k`` messages into one node.
  Messages are served in program order: by iteration, then by peer slot, then by sender rank.
* **Eager sends.** A transfer starts when the sender is ready and both ports are free; the
  receiver need not have posted its receive (socket buffering or a receiver thread). With
  ``ProgramSpec.rendezvous=True`` a point-to-point transfer of iteration ``t`` also waits until the
  receiver has finished its compute of iteration ``t`` (posted its receive).
* **Compute.** ``compute_s`` is taken as given: it holds data wait, forward, backward and the local
  optimizer step. Copies, (de)serialisation and the averaging arithmetic of gossip are free; the
  all-reduce's reduction can be charged with ``reduce_s_per_byte``.
* **No drain.** A rank's last iteration ends by the rules of that iteration; messages still in
  flight (OSGP) or gossip rounds still running (AD-PSGD) are not waited for.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sgprepro.network import NetworkConfig
from sgprepro.topology import (
    BipartiteExponentialGraph,
    ExponentialGraph,
    Topology,
)

log = logging.getLogger(__name__)

ALGORITHMS: tuple[str, ...] = ("allreduce", "sgp", "osgp", "dpsgd", "adpsgd")
ALLREDUCE_MODES: tuple[str, ...] = ("param_avg", "grad_bucket")
ALLREDUCE_ALGOS: tuple[str, ...] = ("ring", "recursive_doubling", "tree")

_GOSSIP_ROUNDS_PER_ITER_CAP = 64


@dataclass(frozen=True)
class ProgramSpec:
    """What a run's communication does per iteration (the algorithm and its variant).

    Attributes:
        algorithm: one of ``allreduce sgp osgp dpsgd adpsgd`` (the paper's names).
        allreduce_mode: ``param_avg`` (paper era: after the local step, a blocking all-reduce of
            the whole parameter vector) or ``grad_bucket`` (DDP style: gradient buckets
            all-reduced as backward produces them, overlapping its last part).
        allreduce_algo: ``ring`` (2(n-1) steps of S/n bytes), ``recursive_doubling`` (log2 n rounds
            exchanging S bytes both ways; the THD TCP all-reduce of the paper) or ``tree``
            (binary-tree reduce then broadcast, S bytes per edge).
        reduce_s_per_byte: seconds to add one received byte into the local buffer during an
            all-reduce (a CPU reduction in the paper era); charged after every reducing receive.
        buckets: number of equal gradient buckets in ``grad_bucket`` mode.
        backward_fraction: fraction of an iteration's compute spent in backward (``grad_bucket``);
            bucket ``b`` of ``B`` is ready after forward plus ``(b+1)/B`` of backward. The default
            2/3 assumes backward costs twice the forward pass.
        tau: OSGP staleness: a message sent at iteration t must be in by the end of t + tau.
        peers: out-peers per iteration for SGP/OSGP, an int or a callable ``step -> int``.
        rendezvous: point-to-point transfers also wait for the receiver's compute (see module
            docstring); default eager.
    """

    algorithm: str
    allreduce_mode: str = "param_avg"
    allreduce_algo: str = "recursive_doubling"
    reduce_s_per_byte: float = 0.0
    buckets: int = 4
    backward_fraction: float = 2.0 / 3.0
    tau: int = 1
    peers: int | Callable[[int], int] = 1
    rendezvous: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the key, value, rule and a fix."""
        if self.algorithm not in ALGORITHMS:
            raise ValueError(
                f"algorithm={self.algorithm!r}: unknown algorithm; use one of {list(ALGORITHMS)}"
            )
        if self.allreduce_mode not in ALLREDUCE_MODES:
            raise ValueError(
                f"allreduce_mode={self.allreduce_mode!r}: must be one of {list(ALLREDUCE_MODES)};"
                " use param_avg (paper era) or grad_bucket (DDP style)"
            )
        if self.allreduce_algo not in ALLREDUCE_ALGOS:
            raise ValueError(
                f"allreduce_algo={self.allreduce_algo!r}: must be one of {list(ALLREDUCE_ALGOS)}"
            )
        if not (self.reduce_s_per_byte >= 0 and math.isfinite(self.reduce_s_per_byte)):
            raise ValueError(
                f"reduce_s_per_byte={self.reduce_s_per_byte}: must be >= 0 and finite; use 0 to "
                "ignore the reduction cost"
            )
        if self.buckets < 1:
            raise ValueError(f"buckets={self.buckets}: must be >= 1; use 1 for one bucket")
        if not 0.0 <= self.backward_fraction <= 1.0:
            raise ValueError(
                f"backward_fraction={self.backward_fraction}: must be in [0, 1]; use 2/3 if "
                "backward costs twice the forward pass"
            )
        if self.tau < 0:
            raise ValueError(f"tau={self.tau}: must be >= 0; use tau=1 as the paper's OSGP")
        if not callable(self.peers) and self.peers < 1:
            raise ValueError(f"peers={self.peers}: must be >= 1; use peers=1 as the paper")

    def peers_at(self, step: int) -> int:
        """Out-peers per node in iteration ``step``."""
        return int(self.peers(step)) if callable(self.peers) else int(self.peers)

    @property
    def staleness(self) -> int:
        """Iterations a message may lag: ``tau`` for OSGP, 0 for SGP."""
        return self.tau if self.algorithm == "osgp" else 0

    def describe(self) -> dict[str, Any]:
        """Plain-data description (the ``peers`` callable is named, not serialised)."""
        return {
            "algorithm": self.algorithm,
            "allreduce_mode": self.allreduce_mode,
            "allreduce_algo": self.allreduce_algo,
            "reduce_s_per_byte": self.reduce_s_per_byte,
            "buckets": self.buckets,
            "backward_fraction": self.backward_fraction,
            "tau": self.tau,
            "peers": "callable" if callable(self.peers) else self.peers,
            "rendezvous": self.rendezvous,
        }


@dataclass(frozen=True)
class TimingResult:
    """Emulated iteration end times of one replay.

    Attributes:
        spec: the program replayed.
        network: the condition replayed under.
        message_bytes: size of one full message (bytes).
        iter_end: ``[n, T]`` absolute emulated time at which each rank finishes iteration ``t``.
        compute_s: ``[n, T]`` the compute times replayed.
        comm_wait_s: ``[n]`` total time each rank was blocked beyond its compute.
        s_per_itr_ranks: ``[n]`` per-rank running mean ``iter_end[:, -1] / T``.
        s_per_itr: mean of ``s_per_itr_ranks`` (the paper's table figure).
    """

    spec: ProgramSpec
    network: NetworkConfig
    message_bytes: float
    iter_end: np.ndarray
    compute_s: np.ndarray
    comm_wait_s: np.ndarray
    s_per_itr_ranks: np.ndarray = field(init=False)
    s_per_itr: float = field(init=False)

    def __post_init__(self) -> None:
        ranks = self.iter_end[:, -1] / self.iter_end.shape[1]
        object.__setattr__(self, "s_per_itr_ranks", ranks)
        object.__setattr__(self, "s_per_itr", float(ranks.mean()))

    @property
    def nodes(self) -> int:
        return int(self.iter_end.shape[0])

    @property
    def iterations(self) -> int:
        return int(self.iter_end.shape[1])

    def intervals(self) -> np.ndarray:
        """``[n, T]`` emulated time between consecutive iteration ends (the first from 0)."""
        return np.diff(self.iter_end, axis=1, prepend=0.0)

    def to_dict(self, include_iter_end: bool = False) -> dict[str, Any]:
        """JSON-ready summary (the ``timing.json`` record); every time in it is emulated."""
        n, t = self.iter_end.shape
        out: dict[str, Any] = {
            "emulated": True,
            "spec": self.spec.describe(),
            "network": self.network.to_dict(),
            "nodes": n,
            "iterations": t,
            "message_bytes": self.message_bytes,
            "message_time_s": self.network.message_time(self.message_bytes),
            "time/emulated_s_per_itr": self.s_per_itr,
            "time/emulated_s_per_itr_ranks": self.s_per_itr_ranks.tolist(),
            "time/emulated_s_per_itr_min": float(self.s_per_itr_ranks.min()),
            "time/emulated_s_per_itr_max": float(self.s_per_itr_ranks.max()),
            "time/emulated_comm_wait_s_per_itr": float(self.comm_wait_s.mean() / t),
            "time/emulated_comm_wait_s_per_itr_ranks": (self.comm_wait_s / t).tolist(),
            "time/compute_s_per_itr": float(self.compute_s.mean()),
        }
        if include_iter_end:
            out["iter_end"] = self.iter_end.tolist()
        return out


def default_topology(algorithm: str, n: int) -> Topology | None:
    """The paper's graph for ``algorithm``: exponential for SGP/OSGP, bipartite for D-/AD-PSGD."""
    if algorithm in ("sgp", "osgp"):
        return ExponentialGraph(n)
    if algorithm in ("dpsgd", "adpsgd"):
        return BipartiteExponentialGraph(n)
    return None


# --------------------------------------------------------------------------- link and ports


class _Link:
    """Message durations under one network condition, with the jitter stream of one replay."""

    def __init__(self, network: NetworkConfig, rng: np.random.Generator) -> None:
        self.network = network
        self.jitter = network.jitter_s
        self.rng = rng

    def durations(self, nbytes: float, size: int | tuple[int, ...]) -> np.ndarray | float:
        """Durations of ``size`` messages of ``nbytes`` each (a float when there is no jitter)."""
        base = self.network.message_time(nbytes)
        if self.jitter <= 0.0:
            return base
        return base + np.maximum(0.0, self.rng.normal(0.0, self.jitter, size))


class _Ports:
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


class _PeerTable:
    """Per-round peer arrays, cached by ``step % topology.cycle_length`` (graphs are periodic)."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.n = topology.n
        self._slots: dict[tuple[int, int], list[tuple[np.ndarray, bool]]] = {}
        self._pairs: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def slots(self, step: int, k: int) -> list[tuple[np.ndarray, bool]]:
        """For each peer slot q < k: ``(dst, unique)`` with ``dst[i]`` = i's q-th out-peer."""
        key = (step % max(1, self.topology.cycle_length), k)
        if key not in self._slots:
            topo, n = self.topology, self.n
            outs = [topo.out_peers(i, step, k) for i in range(n)]
            senders: dict[int, set[int]] = {j: set() for j in range(n)}
            for i, peers in enumerate(outs):
                for j in peers:
                    senders[j].add(i)
            for j in range(n):
                if senders[j] != set(topo.in_peers(j, step, k)):
                    raise ValueError(
                        f"topology={topo.describe()} step={step}: in_peers({j}) disagrees with "
                        "the out_peers of the other ranks; fix the graph's in_peers"
                    )
            width = max(len(p) for p in outs)
            table = []
            for q in range(width):
                if any(len(p) != width for p in outs):
                    raise ValueError(
                        f"topology={topo.describe()} step={step}: ranks have different numbers "
                        "of out-peers; the engine needs a regular out-degree per round"
                    )
                dst = np.array([p[q] for p in outs], dtype=np.intp)
                table.append((dst, len(np.unique(dst)) == n))
            self._slots[key] = table
        return self._slots[key]

    def pairs(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """``(active, passive)`` rank arrays of round ``step`` of a bipartite pairing."""
        key = step % max(1, self.topology.cycle_length)
        if key not in self._pairs:
            topo, n = self.topology, self.n
            partner = [topo.out_peers(i, step, 1)[0] for i in range(n)]
            if any(partner[partner[i]] != i or partner[i] == i for i in range(n)):
                raise ValueError(
                    f"topology={topo.describe()} step={step}: the round is not a perfect matching "
                    "of mutual pairs; D-PSGD/AD-PSGD need topology=bipartite_exponential"
                )
            is_active = getattr(topo, "is_active", None)
            active = [
                i for i in range(n) if (is_active(i) if is_active is not None else i < partner[i])
            ]
            if len(active) * 2 != n or any(partner[a] in active for a in active):
                raise ValueError(
                    f"topology={topo.describe()} step={step}: every pair needs one active and one "
                    "passive rank; use topology=bipartite_exponential"
                )
            a = np.array(active, dtype=np.intp)
            self._pairs[key] = (a, np.array([partner[i] for i in active], dtype=np.intp))
        return self._pairs[key]


# --------------------------------------------------------------------------- collectives


def _ring(start: float, n: int, nbytes: float, link: _Link, red_per_byte: float) -> np.ndarray:
    """Ring all-reduce: n-1 reduce-scatter then n-1 all-gather steps of ``nbytes/n`` each.

    In step k every rank sends one chunk to rank+1; it can forward in step k+1 once it has
    received (and, during reduce-scatter, added) the chunk of step k. No noise:
    ``2(n-1)(latency + S/(n bw)) + (n-1) reduce(S/n)``.
    """
    if n == 1:
        return np.full(1, start)
    chunk = nbytes / n
    steps = 2 * (n - 1)
    red = red_per_byte * chunk
    if link.jitter <= 0.0:
        d = link.network.message_time(chunk)
        end = arrive = start
        for k in range(steps):
            ready = start if k == 0 else arrive + (red if k - 1 < n - 1 else 0.0)
            end = max(ready, end) + d
            arrive = end
        return np.full(n, arrive)
    durs = link.durations(chunk, (steps, n))
    left = np.roll(np.arange(n), 1)  # rank i receives from rank i-1
    end_v = np.full(n, start)
    arrive_v = end_v
    for k in range(steps):
        # forward once the previous chunk is in; add it first during reduce-scatter (k-1 < n-1)
        ready_v = arrive_v + red if 0 < k < n else arrive_v
        end_v = np.maximum(ready_v, end_v)
        end_v += durs[k]
        arrive_v = end_v[left]
    return arrive_v


def _recursive_doubling(
    start: float, n: int, nbytes: float, link: _Link, red_per_byte: float
) -> np.ndarray:
    """Recursive-doubling all-reduce: log2(n) rounds, each a full ``nbytes`` exchange both ways.

    Round r pairs rank i with i XOR 2^r; each side sends while it receives (full duplex), then
    adds the received vector. For n not a power of two, the n - 2^k extra ranks first send their
    vector to a partner among the first 2^k and get the result back at the end (two extra
    rounds). No noise, n a power of two: ``log2(n) (latency + S/bw + reduce(S))``.
    """
    t = np.full(n, start)
    if n == 1:
        return t
    red = red_per_byte * nbytes
    p2 = 1 << (n.bit_length() - 1)
    extra = n - p2
    recv_last = np.full(n, start)
    if extra:
        src = np.arange(p2, n)
        arr = t[src] + link.durations(nbytes, extra)
        t[src - p2] = np.maximum(t[src - p2], arr) + red
        recv_last[src - p2] = arr
        t[src] = arr
    core = np.arange(p2)
    for r in range(p2.bit_length() - 1):
        partner = core ^ (1 << r)
        start_send = np.maximum(t[core], recv_last[partner])
        arr = start_send + link.durations(nbytes, p2)  # arr[i]: i's message reaches partner[i]
        got = arr[partner]  # what rank i receives from its partner
        t[core] = np.maximum(arr, got) + red
        recv_last[core] = got
    if extra:  # blocking send of the result back: both sides are done when it arrives
        src = np.arange(extra)
        t[src + p2] = t[src] + link.durations(nbytes, extra)
        t[src] = t[src + p2]
    return t


def _tree(start: float, n: int, nbytes: float, link: _Link, red_per_byte: float) -> np.ndarray:
    """Binary-tree all-reduce: reduce to rank 0 over the heap tree (children 2v+1, 2v+2), then
    broadcast down it. A parent receives its children one after the other (receive port) and
    sends to them one after the other (send port); every edge carries ``nbytes``.
    """
    if n == 1:
        return np.full(1, start)
    red = red_per_byte * nbytes
    d = link.durations(nbytes, 2 * (n - 1))
    durs = [d] * (2 * (n - 1)) if isinstance(d, float) else d.tolist()
    ready = [start] * n
    recv_free = [start] * n
    for v in range(n - 1, 0, -1):  # children have larger indices: processed first
        parent = (v - 1) // 2
        end = max(ready[v], recv_free[parent]) + durs[v - 1]
        recv_free[parent] = end
        ready[parent] = max(ready[parent], end) + red
    have = [0.0] * n
    done = [0.0] * n
    have[0] = ready[0]
    k = n - 1
    for v in range(n):
        send_free = have[v]
        for child in (2 * v + 1, 2 * v + 2):
            if child < n:
                send_free = send_free + durs[k]
                k += 1
                have[child] = send_free
        done[v] = send_free
    return np.array(done)


_COLLECTIVES = {"ring": _ring, "recursive_doubling": _recursive_doubling, "tree": _tree}


# --------------------------------------------------------------------------- algorithms


def _sim_allreduce(
    spec: ProgramSpec, compute: np.ndarray, nbytes: float, link: _Link
) -> tuple[np.ndarray, np.ndarray]:
    n, iters = compute.shape
    coll = _COLLECTIVES[spec.allreduce_algo]
    ends = np.empty((n, iters))
    c_end = np.empty((n, iters))
    prev = np.zeros(n)
    buckets = spec.buckets if spec.allreduce_mode == "grad_bucket" else 1
    bf = spec.backward_fraction
    for t in range(iters):
        comp = compute[:, t]
        c = prev + comp
        done = -math.inf
        e = c
        for b in range(buckets):
            if b == buckets - 1:
                ready = c
            else:  # forward, then the first (b+1)/B of backward
                ready = prev + comp * (1.0 - bf) + comp * bf * (b + 1) / buckets
            # synchronising collective: starts when every rank has the bucket and the previous
            # collective is over on every rank (collectives run one after another)
            start = max(float(ready.max()), done)
            e = coll(start, n, nbytes / buckets, link, spec.reduce_s_per_byte)
            done = float(e.max())
        ends[:, t] = e
        c_end[:, t] = c
        prev = e
    return ends, c_end


def _sim_pushsum(
    spec: ProgramSpec, compute: np.ndarray, nbytes: float, link: _Link, topo: Topology
) -> tuple[np.ndarray, np.ndarray]:
    n, iters = compute.shape
    table = _PeerTable(topo)
    ports = _Ports(n)
    ranks = np.arange(n)
    tau = spec.staleness
    ends = np.empty((n, iters))
    c_end = np.empty((n, iters))
    prev = np.zeros(n)
    pending: deque[np.ndarray] = deque()
    for t in range(iters):
        c = prev + compute[:, t]
        sent = c.copy()
        got = c.copy()
        for dst, unique in table.slots(t, spec.peers_at(t)):
            post = c[dst] if spec.rendezvous else None
            end = ports.transfer(ranks, dst, c, link.durations(nbytes, n), post, unique)
            np.maximum(sent, end, out=sent)
            if unique:
                got[dst] = np.maximum(got[dst], end)
            else:
                np.maximum.at(got, dst, end)
        pending.append(np.maximum(sent, got))
        e = np.maximum(c, pending.popleft()) if len(pending) > tau else c
        ends[:, t] = e
        c_end[:, t] = c
        prev = e
    return ends, c_end


def _sim_dpsgd(
    spec: ProgramSpec, compute: np.ndarray, nbytes: float, link: _Link, topo: Topology
) -> tuple[np.ndarray, np.ndarray]:
    n, iters = compute.shape
    table = _PeerTable(topo)
    ports = _Ports(n)
    half = n // 2
    ends = np.empty((n, iters))
    c_end = np.empty((n, iters))
    prev = np.zeros(n)
    for t in range(iters):
        c = prev + compute[:, t]
        act, pas = table.pairs(t)
        post = c[pas] if spec.rendezvous else None
        end1 = ports.transfer(act, pas, c[act], link.durations(nbytes, half), post)  # active sends
        ready2 = np.maximum(c[pas], end1)  # passive: receive, then send back
        end2 = ports.transfer(pas, act, ready2, link.durations(nbytes, half))
        e = np.empty(n)
        e[act] = end2
        e[pas] = end2
        ends[:, t] = e
        c_end[:, t] = c
        prev = e
    return ends, c_end


class _GossipLoop:
    """AD-PSGD background loops: round r of every node is a blocking exchange with its partner.

    Both partners must have reached round r; the active one sends then receives, the passive one
    receives then sends (two messages in series); both leave the round when the second arrives.
    ``starts[i, r]`` is when node i begins round r (and picks up a pending gradient, if any).
    """

    def __init__(self, n: int, nbytes: float, link: _Link, table: _PeerTable) -> None:
        self.nbytes, self.link, self.table = nbytes, link, table
        self.half = n // 2
        self.now = np.zeros(n)
        self.starts = np.empty((n, 0))

    def ensure(self, rounds: int) -> None:
        have = self.starts.shape[1]
        if rounds <= have:
            return
        rounds = max(rounds, 2 * have)
        new = np.empty((self.now.size, rounds - have))
        now = self.now
        for j, r in enumerate(range(have, rounds)):
            new[:, j] = now
            act, pas = self.table.pairs(r)
            meet = np.maximum(now[act], now[pas])
            d1 = self.link.durations(self.nbytes, self.half)
            d2 = self.link.durations(self.nbytes, self.half)
            out = meet + d1 + d2
            now = now.copy()
            now[act] = out
            now[pas] = out
        self.now = now
        self.starts = np.concatenate([self.starts, new], axis=1)


def _sim_adpsgd(
    spec: ProgramSpec, compute: np.ndarray, nbytes: float, link: _Link, topo: Topology
) -> tuple[np.ndarray, np.ndarray]:
    """Trainer: gradients back to back; hand-over of gradient t waits until the gossip loop has
    picked up gradient t-1 (at the start of a later round). Iteration t ends at the hand-over.
    """
    n, iters = compute.shape
    ends = np.empty((n, iters))
    c_end = np.empty((n, iters))
    round_s = 2.0 * link.network.message_time(nbytes)
    horizon = float(compute.max(axis=0).sum())
    est_rounds = math.inf if round_s <= 0 else horizon / round_s
    if est_rounds > _GOSSIP_ROUNDS_PER_ITER_CAP * iters + 1024:
        # Gossip rounds are far shorter than compute: a gradient is picked up within one round,
        # long before the next is ready, so the trainer never waits (exact while every gap
        # between round starts is below the compute time of an iteration).
        log.debug("adpsgd: gossip round %.3g s << compute; trainer not throttled", round_s)
        ends[:] = np.cumsum(compute, axis=1)
        return ends, ends.copy()
    gossip = _GossipLoop(n, nbytes, link, _PeerTable(topo))
    rows = np.arange(n)
    mean_c = float(compute.mean()) if compute.size else 0.0
    width = int(min(_GOSSIP_ROUNDS_PER_ITER_CAP + 2, max(2, math.ceil(mean_c / round_s) + 2)))
    window = np.arange(width)
    gossip.ensure(iters + width + 1)
    taken = np.full(n, -1)  # round at which the previous gradient was picked up
    prev = np.zeros(n)
    for t in range(iters):
        c = prev + compute[:, t]
        e = c if t == 0 else np.maximum(c, gossip.starts[rows, taken])
        # round that picks up this gradient: first round after `taken` starting at or after e
        cand = taken[:, None] + 1 + window
        gossip.ensure(int(cand.max()) + 1)
        hit = gossip.starts[rows[:, None], cand] >= e[:, None]
        found = hit.any(axis=1)
        nxt = taken + 1 + hit.argmax(axis=1)
        for i in np.flatnonzero(~found):
            j = int(np.searchsorted(gossip.starts[i], e[i], side="left"))
            while j >= gossip.starts.shape[1]:
                gossip.ensure(gossip.starts.shape[1] + width * 4)
                j = int(np.searchsorted(gossip.starts[i], e[i], side="left"))
            nxt[i] = max(j, taken[i] + 1)
        taken = nxt
        ends[:, t] = e
        c_end[:, t] = c
        prev = e
    return ends, c_end


def simulate(
    spec: ProgramSpec,
    compute_s: np.ndarray,
    message_bytes: float,
    network: NetworkConfig,
    topology: Topology | None = None,
    seed: int = 0,
) -> TimingResult:
    """Replay ``spec`` on a compute matrix under ``network``; emulated time, not waited for.

    Semantics per algorithm (Sec. 2 and 6 of the reference notes; Alg. 1 of Assran et al. 2019):

    * ``allreduce``: after compute, a synchronising all-reduce of ``message_bytes`` that starts
      when every rank has arrived (``param_avg``); or ``buckets`` gradient all-reduces, one after
      another, bucket b starting once every rank's backward has produced it (``grad_bucket``).
    * ``sgp``: after compute, one message to each out-peer of the round (sends serialise on the
      send port) while receiving; the iteration ends when its sends are done and all in-peers'
      messages of that round have arrived.
    * ``osgp``: as SGP, but iteration t only waits, at its end, for the messages of iteration
      ``t - tau`` (its own sends and its in-peers'), so communication overlaps compute.
    * ``dpsgd``: bipartite pairs; the active rank sends then receives, the passive one receives
      then sends: two messages in series per iteration.
    * ``adpsgd``: see :class:`_GossipLoop` and :func:`_sim_adpsgd`; s/itr is the trainer's.

    Args:
        spec: the program.
        compute_s: ``[n, T]`` compute seconds of every rank and iteration (taken as given; apply
            :func:`sgprepro.timing.apply_compute_noise` first for stragglers).
        message_bytes: bytes of one full message (the flattened parameter vector).
        network: the link model.
        topology: graph for the gossip algorithms; default :func:`default_topology`. Its peers
            must depend on the step only through ``step % topology.cycle_length``.
        seed: seed of the per-message jitter stream.

    Returns:
        The emulated :class:`TimingResult`.
    """
    compute = np.asarray(compute_s, dtype=float)
    if compute.ndim != 2 or compute.shape[1] < 1 or compute.shape[0] < 1:
        raise ValueError(
            f"compute_s shape={compute.shape}: must be [nodes, iterations] with both >= 1"
        )
    if not np.isfinite(compute).all() or (compute < 0).any():
        raise ValueError("compute_s: every entry must be finite and >= 0; check the trace")
    if not (message_bytes >= 0 and math.isfinite(message_bytes)):
        raise ValueError(f"message_bytes={message_bytes}: must be >= 0 and finite")
    n = compute.shape[0]
    link = _Link(network, np.random.default_rng((seed, 2)))
    if spec.algorithm == "allreduce":
        ends, c_end = _sim_allreduce(spec, compute, message_bytes, link)
    else:
        topo = topology if topology is not None else default_topology(spec.algorithm, n)
        assert topo is not None
        if topo.n != n:
            raise ValueError(
                f"topology={topo.describe()} with compute_s for {n} nodes: node counts differ; "
                f"build the graph with n={n}"
            )
        sim = {
            "sgp": _sim_pushsum,
            "osgp": _sim_pushsum,
            "dpsgd": _sim_dpsgd,
            "adpsgd": _sim_adpsgd,
        }[spec.algorithm]
        ends, c_end = sim(spec, compute, message_bytes, link, topo)
    wait = (ends - c_end).sum(axis=1)
    return TimingResult(spec, network, float(message_bytes), ends, compute, wait)
