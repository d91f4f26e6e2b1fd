"""The outcome of one replay: every rank's iteration end times, and s/itr measured as the paper did.

Seconds per iteration as Table 1 of Assran et al. 2019 measured them (the original code's batch
meters): per rank, the running mean of the time between consecutive iteration ends; the table
figure is the mean of those over ranks. Like the
original code's meters (``--num_itr_ignore``, default 10 in its ``main`` branch), the first
iterations are left out, so start-up effects (an AD-PSGD trainer's first, unthrottled hand-over,
an OSGP pipeline filling) do not bias the mean: a rank's figure is
``(end[T-1] - end[k0-1]) / (T - k0)`` with ``k0 = min(IGNORE_FIRST_ITERATIONS, T // 4)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from sgprepro.network import NetworkConfig

if TYPE_CHECKING:
    from sgprepro.timing.programs import ProgramSpec

IGNORE_FIRST_ITERATIONS = 10
"""Iterations left out of s/itr at the start of a run (the original's ``--num_itr_ignore``)."""


def ignored_iterations(iterations: int) -> int:
    """How many first iterations a rank with ``iterations`` iterations leaves out of its s/itr."""
    return min(IGNORE_FIRST_ITERATIONS, iterations // 4)


def steady_s_per_itr(ends: np.ndarray) -> float:
    """Mean time between consecutive iteration ends, the first iterations left out."""
    t = len(ends)
    if t == 0:
        return float("nan")
    k0 = ignored_iterations(t)
    if k0 == 0:
        return float(ends[-1] / t)
    return float((ends[-1] - ends[k0 - 1]) / (t - k0))


@dataclass(frozen=True)
class TimingResult:
    """Emulated iteration end times of one replay.

    Attributes:
        spec: the program replayed.
        network: the condition replayed under.
        message_bytes: size of one full message (bytes).
        ends: per rank, the absolute emulated time at which it finishes each of its iterations
            (synchronous programs: every rank the same count; AD-PSGD: counts differ by rank).
        compute_s: per rank, the compute times replayed.
        comm_wait_s: ``[n]`` total time each rank was blocked beyond its compute.
        details: program-specific extras (AD-PSGD: per-rank rounds, roles, staleness).
        s_per_itr_ranks: ``[n]`` per-rank s/itr (see the module docstring).
        s_per_itr: mean of ``s_per_itr_ranks`` (the paper's table figure).
    """

    spec: ProgramSpec
    network: NetworkConfig
    message_bytes: float
    ends: tuple[np.ndarray, ...]
    compute_s: tuple[np.ndarray, ...]
    comm_wait_s: np.ndarray
    details: dict[str, Any] = field(default_factory=dict)
    s_per_itr_ranks: np.ndarray = field(init=False)
    s_per_itr: float = field(init=False)

    def __post_init__(self) -> None:
        ranks = np.array([steady_s_per_itr(e) for e in self.ends])
        object.__setattr__(self, "s_per_itr_ranks", ranks)
        object.__setattr__(self, "s_per_itr", float(ranks.mean()))

    @classmethod
    def lockstep(
        cls,
        spec: ProgramSpec,
        network: NetworkConfig,
        message_bytes: float,
        iter_end: np.ndarray,
        compute: np.ndarray,
        compute_end: np.ndarray,
    ) -> TimingResult:
        """A result of a synchronous program from ``[n, T]`` end and compute-end matrices."""
        wait = (iter_end - compute_end).sum(axis=1)
        return cls(
            spec,
            network,
            float(message_bytes),
            tuple(iter_end),
            tuple(compute),
            wait,
        )

    @property
    def nodes(self) -> int:
        return len(self.ends)

    @property
    def iterations(self) -> int:
        """Iterations of the rank that ran the fewest."""
        return min(len(e) for e in self.ends)

    @property
    def iter_end(self) -> np.ndarray:
        """``[n, T]`` end times (every rank's first ``T`` iterations, T = the fewest any ran)."""
        t = self.iterations
        return np.stack([e[:t] for e in self.ends])

    def intervals(self) -> np.ndarray:
        """``[n, T]`` emulated time between consecutive iteration ends (the first from 0)."""
        return np.diff(self.iter_end, axis=1, prepend=0.0)

    def mean_end(self) -> np.ndarray:
        """Mean over ranks of each iteration's end time (first ``iterations`` iterations)."""
        return self.iter_end.mean(axis=0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the ``timing.json`` record); every time in it is emulated."""
        counts = [len(e) for e in self.ends]
        mean_compute = float(np.mean(np.concatenate(self.compute_s))) if counts else 0.0
        return {
            "emulated": True,
            "spec": self.spec.describe(),
            "network": self.network.to_dict(),
            "nodes": self.nodes,
            "iterations": self.iterations,
            "iterations_ranks": counts,
            "iterations_ignored": [ignored_iterations(c) for c in counts],
            "message_bytes": self.message_bytes,
            "message_time_s": self.network.message_time(self.message_bytes),
            "time/emulated_s_per_itr": self.s_per_itr,
            "time/emulated_s_per_itr_ranks": self.s_per_itr_ranks.tolist(),
            "time/emulated_s_per_itr_min": float(self.s_per_itr_ranks.min()),
            "time/emulated_s_per_itr_max": float(self.s_per_itr_ranks.max()),
            "time/emulated_comm_wait_s_per_itr": float(
                np.mean([w / max(c, 1) for w, c in zip(self.comm_wait_s, counts, strict=True)])
            ),
            "time/emulated_comm_wait_s_per_itr_ranks": [
                float(w / max(c, 1)) for w, c in zip(self.comm_wait_s, counts, strict=True)
            ],
            "time/compute_s_per_itr": mean_compute,
            **{f"details/{k}": v for k, v in self.details.items()},
        }
