"""Discrete-event timing engine: emulated seconds per iteration under a network condition.

Pure Python and numpy. :func:`simulate` replays an algorithm's blocking communication on a
compute-time matrix; :func:`emulate_trace` does the same from a run's recorded traces; the paper
replay lives in :mod:`sgprepro.timing.replay` (``python -m sgprepro.timing.replay``). Every time
this package produces is emulated, never measured.
"""

from sgprepro.timing.engine import (
    ALGORITHMS,
    ALLREDUCE_ALGOS,
    ALLREDUCE_MODES,
    ProgramSpec,
    TimingResult,
    default_topology,
    simulate,
)
from sgprepro.timing.noise import apply_compute_noise, synthesize_compute
from sgprepro.timing.trace import Trace, emulate_trace, load_trace

__all__ = [
    "ALGORITHMS",
    "ALLREDUCE_ALGOS",
    "ALLREDUCE_MODES",
    "ProgramSpec",
    "TimingResult",
    "Trace",
    "apply_compute_noise",
    "default_topology",
    "emulate_trace",
    "load_trace",
    "simulate",
    "synthesize_compute",
]
