"""Communication programs: what a node's iteration waits for, per communication pattern.

The engine knows communication patterns, not algorithms: each algorithm class declares the
program it runs (:meth:`sgprepro.algorithms.Algorithm.timing_program`). Synchronous patterns
share one lockstep driver (:func:`run_lockstep`): iteration ``t`` of every rank starts when its
iteration ``t - 1`` ended, computes for ``compute_s[rank, t]``, and ends when the pattern's waits
are over. The asynchronous AD-PSGD pattern is event driven (:mod:`sgprepro.timing.gossip_async`).

Patterns (Alg. 1 and Sec. 6 of Assran et al. 2019; ``gossip_module/`` of the original code, tag
``sgp_pytorch0.5``):

* ``allreduce``: after compute, a synchronising all-reduce of the message that starts when every
  rank has arrived (``buckets=0``); or ``buckets`` gradient all-reduces, one after another, bucket
  b starting once every rank's backward has produced it (DDP style); every ``every`` iterations
  (local SGD), plain compute in between.
* ``push``: after compute, one message to each out-peer of the round (sends serialise on the send
  port) while receiving; iteration t ends when its sends are done and the in-peers' messages of
  round ``t - delay`` have arrived (``delay=0``: SGP; ``delay=tau``: messages mixed tau iterations
  later).
* ``overlap_push``: the original's overlap SGP: the messages of round t are sent at the START of
  iteration t, before compute, and iteration t ends when its compute is done and its round's
  sends and receives are complete: about ``max(compute, message)`` per iteration.
* ``pairwise``: bipartite pairs; the active rank sends then receives, the passive one receives
  then sends: two messages in series per iteration (D-PSGD as the paper ran it).
* ``gossip_async``: AD-PSGD, see :mod:`sgprepro.timing.gossip_async`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from sgprepro.timing.collectives import COLLECTIVES
from sgprepro.timing.link import Link, Ports
from sgprepro.topology import Topology

PATTERNS: tuple[str, ...] = ("allreduce", "push", "overlap_push", "pairwise", "gossip_async")


@dataclass(frozen=True)
class ProgramSpec:
    """What a run's communication does per iteration.

    Attributes:
        pattern: one of :data:`PATTERNS`.
        collective: ``allreduce``: ``recursive_doubling`` (log2 n rounds exchanging the whole
            vector both ways; the THD TCP all-reduce of the paper era), ``ring`` (2(n-1) steps of
            S/n bytes) or ``tree`` (binary-tree reduce then broadcast).
        buckets: ``allreduce``: 0 for one all-reduce of the parameters after the local step
            (paper era); B > 0 for B gradient buckets all-reduced as backward produces them.
        backward_fraction: fraction of an iteration's compute spent in backward (``buckets``);
            bucket b of B is ready after forward plus (b+1)/B of backward.
        every: ``allreduce``: communicate every ``every`` iterations (1: every iteration).
        delay: ``push``: a message sent at iteration t must be in by the end of t + delay.
        peers: out-peers per iteration (``push``, ``overlap_push``), an int or ``step -> int``.
        rendezvous: point-to-point transfers of iteration t also wait until the receiver has
            finished its compute of iteration t (posted its receive); default eager.
        max_rounds_per_gradient: ``gossip_async``: bound on gossip rounds between two of a
            rank's gradients (a gossip loop cannot spin faster than its own CPU work).
        send_passes: CPU passes over the vector a node makes before its message leaves (the
            original's gossip thread flattens the parameters into one buffer: 1).
        round_passes: passes per reducing step: an all-reduce round (THD: the reduction and a
            copy, 2) or an AD-PSGD averaging (``add_`` and ``mul_``, 2).
        fixed_passes: all-reduce: passes outside the rounds (flatten, clone, copy back: 3).
        apply_passes: AD-PSGD: passes of the gossip process's optimizer step with momentum,
            Nesterov and weight decay (5).
        label: what ran, for the records (e.g. the algorithm variant).

    One pass costs the condition's ``reduce_s_per_byte`` x message bytes (free under conditions
    that set it to 0); the pass counts come from the original code (``gossip_module/`` of tag
    ``sgp_pytorch0.5``; THD's ``DataChannelTCP::allReduce``).
    """

    pattern: str
    collective: str = "recursive_doubling"
    buckets: int = 0
    backward_fraction: float = 2.0 / 3.0
    every: int = 1
    delay: int = 0
    peers: int | Callable[[int], int] = 1
    rendezvous: bool = False
    max_rounds_per_gradient: int = 64
    send_passes: int = 1
    round_passes: int = 2
    fixed_passes: int = 3
    apply_passes: int = 5
    label: str = ""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the key, value, rule and a fix."""
        if self.pattern not in PATTERNS:
            raise ValueError(f"pattern={self.pattern!r}: unknown; use one of {list(PATTERNS)}")
        if self.collective not in COLLECTIVES:
            raise ValueError(
                f"collective={self.collective!r}: must be one of {sorted(COLLECTIVES)}; use "
                "recursive_doubling (paper era) or ring (NCCL/gloo today)"
            )
        if self.buckets < 0:
            raise ValueError(f"buckets={self.buckets}: must be >= 0; use 0 for no buckets")
        if not 0.0 <= self.backward_fraction <= 1.0:
            raise ValueError(
                f"backward_fraction={self.backward_fraction}: must be in [0, 1]; use 2/3 if "
                "backward costs twice the forward pass"
            )
        if self.every < 1:
            raise ValueError(f"every={self.every}: must be >= 1; use 1 for every iteration")
        if self.delay < 0:
            raise ValueError(f"delay={self.delay}: must be >= 0; use 0 (SGP)")
        if not callable(self.peers) and self.peers < 1:
            raise ValueError(f"peers={self.peers}: must be >= 1; use peers=1 as the paper")
        for key in ("send_passes", "round_passes", "fixed_passes", "apply_passes"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key}={getattr(self, key)}: must be >= 0; use 0 for none")
        if self.max_rounds_per_gradient < 1:
            raise ValueError(
                f"max_rounds_per_gradient={self.max_rounds_per_gradient}: must be >= 1; use 64"
            )

    def peers_at(self, step: int) -> int:
        """Out-peers per node in iteration ``step``."""
        return int(self.peers(step)) if callable(self.peers) else int(self.peers)

    def describe(self) -> dict[str, Any]:
        """Plain-data description (the ``peers`` callable is named, not serialised)."""
        return {
            "pattern": self.pattern,
            "label": self.label,
            "collective": self.collective,
            "buckets": self.buckets,
            "backward_fraction": self.backward_fraction,
            "every": self.every,
            "delay": self.delay,
            "peers": "callable" if callable(self.peers) else self.peers,
            "rendezvous": self.rendezvous,
            "max_rounds_per_gradient": self.max_rounds_per_gradient,
            "send_passes": self.send_passes,
            "round_passes": self.round_passes,
            "fixed_passes": self.fixed_passes,
            "apply_passes": self.apply_passes,
        }

    def passes_s(self, kind: str, nbytes: float, reduce_s_per_byte: float) -> float:
        """Seconds of the ``kind`` passes (``send``, ``round``, ``fixed``, ``apply``)."""
        return getattr(self, f"{kind}_passes") * reduce_s_per_byte * nbytes


class PeerTable:
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
            if any(len(p) != width for p in outs):
                raise ValueError(
                    f"topology={topo.describe()} step={step}: ranks have different numbers "
                    "of out-peers; the engine needs a regular out-degree per round"
                )
            table = []
            for q in range(width):
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


StepFn = Callable[[int, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def run_lockstep(step: StepFn, compute: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The one driver of every synchronous pattern.

    Args:
        step: ``(t, start [n], compute [n]) -> (iteration end [n], compute end [n])``.
        compute: ``[n, T]`` compute seconds.

    Returns:
        ``[n, T]`` iteration end times and compute end times.
    """
    n, iters = compute.shape
    ends = np.empty((n, iters))
    c_end = np.empty((n, iters))
    prev = np.zeros(n)
    for t in range(iters):
        e, c = step(t, prev, compute[:, t])
        ends[:, t] = e
        c_end[:, t] = c
        prev = e
    return ends, c_end


def allreduce_step(spec: ProgramSpec, n: int, nbytes: float, link: Link) -> StepFn:
    """Pattern ``allreduce`` (see the module docstring)."""
    coll = COLLECTIVES[spec.collective]
    buckets = max(1, spec.buckets)
    bf = spec.backward_fraction
    per_byte = link.network.reduce_s_per_byte
    red_per_byte = spec.round_passes * per_byte
    fixed = spec.passes_s("fixed", nbytes, per_byte) if spec.buckets == 0 else 0.0

    def step(t: int, start: np.ndarray, comp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = start + comp
        if (t + 1) % spec.every:
            return c, c
        done = -math.inf
        e = c
        for b in range(buckets):
            if spec.buckets == 0 or b == buckets - 1:
                ready = c
            else:  # forward, then the first (b+1)/B of backward
                ready = start + comp * (1.0 - bf) + comp * bf * (b + 1) / buckets
            # synchronising collective: starts when every rank has the bucket and the previous
            # collective is over on every rank (collectives run one after another)
            begin = max(float(ready.max()), done) + fixed
            e = coll(begin, n, nbytes / buckets, link, red_per_byte)
            done = float(e.max())
        return e, c

    return step


def _post_round(
    spec: ProgramSpec,
    t: int,
    table: PeerTable,
    ports: Ports,
    ready: np.ndarray,
    post: np.ndarray,
    nbytes: float,
    link: Link,
) -> np.ndarray:
    """Send every rank's messages of round t from ``ready``; the time each rank's round is over
    (its sends delivered and its in-peers' messages in)."""
    n = table.n
    ranks = np.arange(n)
    sent = ready.copy()
    got = ready.copy()
    for dst, unique in table.slots(t, spec.peers_at(t)):
        p = post[dst] if spec.rendezvous else None
        end = ports.transfer(ranks, dst, ready, link.durations(nbytes, n), p, unique)
        np.maximum(sent, end, out=sent)
        if unique:
            got[dst] = np.maximum(got[dst], end)
        else:
            np.maximum.at(got, dst, end)
    return np.maximum(sent, got)


def push_step(spec: ProgramSpec, nbytes: float, link: Link, topo: Topology) -> StepFn:
    """Pattern ``push`` (SGP; with ``delay`` the delayed variant)."""
    table, ports = PeerTable(topo), Ports(topo.n)
    pending: deque[np.ndarray] = deque()
    flatten = spec.passes_s("send", nbytes, link.network.reduce_s_per_byte)

    def step(t: int, start: np.ndarray, comp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = start + comp
        f = c + flatten
        pending.append(_post_round(spec, t, table, ports, f, f, nbytes, link))
        e = np.maximum(c, pending.popleft()) if len(pending) > spec.delay else c
        return e, c

    return step


def overlap_push_step(spec: ProgramSpec, nbytes: float, link: Link, topo: Topology) -> StepFn:
    """Pattern ``overlap_push`` (the original's OSGP): sends posted before compute."""
    table, ports = PeerTable(topo), Ports(topo.n)
    flatten = spec.passes_s("send", nbytes, link.network.reduce_s_per_byte)

    def step(t: int, start: np.ndarray, comp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = start + comp
        f = start + flatten
        done = _post_round(spec, t, table, ports, f, f, nbytes, link)
        return np.maximum(c, done), c

    return step


def pairwise_step(spec: ProgramSpec, nbytes: float, link: Link, topo: Topology) -> StepFn:
    """Pattern ``pairwise`` (D-PSGD): the active rank sends then receives, in series."""
    table, ports = PeerTable(topo), Ports(topo.n)
    half = topo.n // 2
    flatten = spec.passes_s("send", nbytes, link.network.reduce_s_per_byte)

    def step(t: int, start: np.ndarray, comp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = start + comp
        f = c + flatten
        act, pas = table.pairs(t)
        post = f[pas] if spec.rendezvous else None
        end1 = ports.transfer(act, pas, f[act], link.durations(nbytes, half), post)
        ready2 = np.maximum(f[pas], end1)  # passive: receive, then send back
        end2 = ports.transfer(pas, act, ready2, link.durations(nbytes, half))
        e = np.empty(topo.n)
        e[act] = end2
        e[pas] = end2
        return e, c

    return step
