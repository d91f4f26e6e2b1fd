"""Discrete-event replay of a communication program under a network model.

The engine turns compute times (``compute_s[rank, iteration]``) and a message size into the
absolute emulated time at which every rank finishes every iteration, following the blocking
semantics of the program's pattern (:mod:`sgprepro.timing.programs`,
:mod:`sgprepro.timing.gossip_async`). Seconds per iteration are then measured as the paper did
(:mod:`sgprepro.timing.result`).

Modelling assumptions, shared by every pattern:

* **Link and ports** (:mod:`sgprepro.timing.link`): latency + bytes / achieved bandwidth, plus
  optional jitter; one send and one receive port per node; messages served in program order.
* **Eager sends.** A transfer starts when the sender is ready and both ports are free; the
  receiver need not have posted its receive (socket buffering or a receiver thread), unless
  ``ProgramSpec.rendezvous``.
* **Compute** is taken as given: it holds data wait, forward, backward and the local optimizer
  step. Copies and (de)serialisation are free; the all-reduce's reduction and AD-PSGD's averaging
  pass cost the condition's ``reduce_s_per_byte``.
* **No drain.** A rank's last iteration ends by the rules of that iteration.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from sgprepro.network import NetworkConfig
from sgprepro.timing.gossip_async import AsyncSchedule, adpsgd_schedule
from sgprepro.timing.link import Link
from sgprepro.timing.programs import (
    ProgramSpec,
    allreduce_step,
    overlap_push_step,
    pairwise_step,
    push_step,
    run_lockstep,
)
from sgprepro.timing.result import TimingResult
from sgprepro.topology import Topology

JITTER_STREAM = 2
"""RNG stream id of per-message jitter (``default_rng((seed, JITTER_STREAM))``)."""


def _check_compute(compute: np.ndarray) -> None:
    if compute.ndim != 2 or compute.shape[1] < 1 or compute.shape[0] < 1:
        raise ValueError(
            f"compute_s shape={compute.shape}: must be [nodes, iterations] with both >= 1"
        )
    if not np.isfinite(compute).all() or (compute < 0).any():
        raise ValueError("compute_s: every entry must be finite and >= 0; check the trace")


def _check_topology(spec: ProgramSpec, topology: Topology | None, n: int) -> Topology:
    if topology is None:
        raise ValueError(
            f"pattern={spec.pattern} needs the run's topology; pass topology= (the graph the "
            "algorithm used)"
        )
    if topology.n != n:
        raise ValueError(
            f"topology={topology.describe()} with compute_s for {n} nodes: node counts differ; "
            f"build the graph with n={n}"
        )
    return topology


def simulate(
    spec: ProgramSpec,
    compute_s: np.ndarray | Sequence[np.ndarray],
    message_bytes: float,
    network: NetworkConfig,
    topology: Topology | None = None,
    seed: int = 0,
    budget: int | None = None,
) -> TimingResult:
    """Replay ``spec`` on compute times under ``network``; emulated time, not waited for.

    Args:
        spec: the program (an algorithm's :meth:`timing_program`).
        compute_s: ``[n, T]`` compute seconds of every rank and iteration (taken as given; apply
            :func:`sgprepro.timing.apply_compute_noise` first for stragglers). For
            ``gossip_async`` also a list of per-rank arrays (ranks take different counts).
        message_bytes: bytes of one full message (the flattened parameter vector).
        network: the link model.
        topology: the graph of the gossip patterns (required for them). Its peers must depend
            on the step only through ``step % topology.cycle_length``.
        seed: seed of the per-message jitter stream.
        budget: ``gossip_async``: gradients in all (default: the number of compute entries).

    Returns:
        The emulated :class:`TimingResult`.
    """
    if not (message_bytes >= 0 and math.isfinite(message_bytes)):
        raise ValueError(f"message_bytes={message_bytes}: must be >= 0 and finite")
    link = Link(network, np.random.default_rng((seed, JITTER_STREAM)))
    if spec.pattern == "gossip_async":
        ranks = [np.asarray(c, dtype=float) for c in compute_s]
        for c in ranks:
            _check_compute(c[None, :] if c.ndim == 1 else c)
        topo = _check_topology(spec, topology, len(ranks))
        total = sum(c.size for c in ranks) if budget is None else budget
        sched = adpsgd_schedule(
            ranks,
            total,
            topo,
            message_bytes,
            link,
            network.reduce_s_per_byte,
            spec.max_rounds_per_gradient,
            async_passes(spec),
        )
        return async_result(spec, network, message_bytes, sched, ranks)
    compute = np.asarray(compute_s, dtype=float)
    _check_compute(compute)
    n = compute.shape[0]
    if spec.pattern == "allreduce":
        step = allreduce_step(spec, n, message_bytes, link)
    else:
        topo = _check_topology(spec, topology, n)
        factory = {
            "push": push_step,
            "overlap_push": overlap_push_step,
            "pairwise": pairwise_step,
        }[spec.pattern]
        step = factory(spec, message_bytes, link, topo)
    ends, c_end = run_lockstep(step, compute)
    return TimingResult.lockstep(spec, network, message_bytes, ends, compute, c_end)


def async_passes(spec: ProgramSpec) -> dict[str, int]:
    """The gossip loop's CPU passes of a ``gossip_async`` program."""
    return {"apply": spec.apply_passes, "flatten": spec.send_passes, "avg": spec.round_passes}


def async_result(
    spec: ProgramSpec,
    network: NetworkConfig,
    message_bytes: float,
    sched: AsyncSchedule,
    compute: Sequence[np.ndarray],
) -> TimingResult:
    """The :class:`TimingResult` of an AD-PSGD schedule: iteration ends are the hand-overs."""
    comp = []
    waits = []
    for i in range(sched.n):
        k = len(sched.handover[i])
        mean = float(compute[i].mean()) if compute[i].size else 0.0
        c = np.array([compute[i][j] if j < compute[i].size else mean for j in range(k)])
        comp.append(c)
        waits.append(float((sched.handover[i] - sched.grad_start[i] - c).sum()))
    hist = sched.staleness_histogram()
    details = {
        "gradients_ranks": sched.gradients(),
        "gossip_rounds_ranks": sched.rounds(),
        "active_ranks": [int(r) for r in np.flatnonzero(sched.active)],
        "staleness_histogram": [[int(k), int(v)] for k, v in sorted(hist.items())],
    }
    return TimingResult(
        spec,
        network,
        float(message_bytes),
        tuple(sched.handover),
        tuple(comp),
        np.array(waits),
        details,
    )
