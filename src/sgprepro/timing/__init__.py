"""Discrete-event timing engine: emulated seconds per iteration under a network condition.

Pure Python and numpy. :func:`simulate` replays a communication program (what an algorithm
declares with ``timing_program``) on a compute-time matrix; :func:`emulate_trace` does the same
from a run's recorded traces; :func:`adpsgd_schedule` decides AD-PSGD's interleaving in emulated
time. Every time this package produces is emulated, never measured.
"""

from sgprepro.timing.collectives import COLLECTIVES
from sgprepro.timing.engine import simulate
from sgprepro.timing.gossip_async import AsyncSchedule, Op, adpsgd_schedule
from sgprepro.timing.link import Link
from sgprepro.timing.noise import apply_compute_noise, synthesize_compute
from sgprepro.timing.programs import PATTERNS, ProgramSpec
from sgprepro.timing.result import IGNORE_FIRST_ITERATIONS, TimingResult
from sgprepro.timing.trace import Trace, emulate_trace, load_trace

__all__ = [
    "COLLECTIVES",
    "IGNORE_FIRST_ITERATIONS",
    "PATTERNS",
    "AsyncSchedule",
    "Link",
    "Op",
    "ProgramSpec",
    "TimingResult",
    "Trace",
    "adpsgd_schedule",
    "apply_compute_noise",
    "emulate_trace",
    "load_trace",
    "simulate",
    "synthesize_compute",
]
