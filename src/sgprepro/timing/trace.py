"""Replay a run's recorded traces (``trace_r{rank}.jsonl``, docs/records.md) under a condition.

Each trace line is one iteration of one rank: ``{"step", "compute_s", "wall_s", "comm_s",
"sent": [[peer, bytes], ...]}``; AD-PSGD adds its gossip loop's CPU seconds
(:data:`GOSSIP_CPU_KEY`). Only ``compute_s`` and the message size enter the replay, so a run's
emulated time is reproduced exactly from its traces.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sgprepro.network import NetworkConfig
from sgprepro.timing.engine import ProgramSpec, TimingResult, simulate
from sgprepro.timing.noise import apply_compute_noise
from sgprepro.topology import Topology

log = logging.getLogger(__name__)

_TRACE_RE = re.compile(r"^trace_r(\d+)\.jsonl$")

GOSSIP_CPU_KEY = "gossip_cpu_s"
"""Trace key of AD-PSGD's gossip loop: CPU seconds of its gradient steps, the copies it sends and
its averaging, reported with the trainer's step (whose gradient and look-ahead step are the
step's ``compute_s``). The loop is the original's second process per node: its work is training,
but not the trainer's compute, so it never enters the replay."""


def training_cpu_s(rec: dict) -> float:
    """CPU seconds of training work in one trace line: the step's compute plus, for AD-PSGD, its
    gossip loop's arithmetic."""
    return float(rec["compute_s"]) + float(rec.get(GOSSIP_CPU_KEY) or 0.0)


@dataclass(frozen=True)
class Trace:
    """Compute times and message size read from a run's traces.

    Attributes:
        compute_s: ``[n, T]`` compute seconds (T = the shortest rank's iteration count).
        message_bytes: the largest message any rank sent (None when no rank sent anything).
        compute_ranks: per rank, all its compute seconds (AD-PSGD ranks take different counts).
    """

    compute_s: np.ndarray
    message_bytes: int | None
    compute_ranks: tuple[np.ndarray, ...] = ()


def load_trace(run_dir: str | Path) -> Trace:
    """Read every ``trace_r{rank}.jsonl`` of ``run_dir``; ranks must be 0..n-1.

    ``compute_s`` truncates ranks with more iterations than the shortest one (AD-PSGD ranks
    progress at their own pace) to the common length; ``compute_ranks`` keeps them whole.
    """
    directory = Path(run_dir)
    files = {}
    for path in directory.iterdir() if directory.is_dir() else []:
        match = _TRACE_RE.match(path.name)
        if match:
            files[int(match.group(1))] = path
    if not files or sorted(files) != list(range(len(files))):
        raise ValueError(
            f"run_dir={directory}: expected trace_r0.jsonl .. trace_r{{n-1}}.jsonl, found ranks "
            f"{sorted(files)}; point at a finished run directory"
        )
    rows: list[list[float]] = []
    sizes: set[int] = set()
    for rank in range(len(files)):
        compute: list[float] = []
        last_step = None
        with files[rank].open() as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                rec = json.loads(line)
                step = rec.get("step")
                if last_step is not None and step is not None and step <= last_step:
                    raise ValueError(
                        f"{files[rank]}:{lineno}: step={step} after step={last_step}; "
                        "steps must increase"
                    )
                last_step = step
                compute.append(float(rec["compute_s"]))
                sizes.update(int(b) for _, b in rec.get("sent", []))
        rows.append(compute)
    length = min(len(r) for r in rows)
    if length == 0:
        raise ValueError(f"run_dir={directory}: a trace has no iterations")
    if len(sizes) > 1:
        log.warning(
            "messages of %d different sizes %s; replaying every message at the largest",
            len(sizes),
            sorted(sizes)[:5],
        )
    matrix = np.array([r[:length] for r in rows], dtype=float)
    whole = tuple(np.array(r, dtype=float) for r in rows)
    return Trace(matrix, max(sizes) if sizes else None, whole)


def emulate_trace(
    source: str | Path | Trace,
    spec: ProgramSpec,
    network: NetworkConfig,
    topology: Topology | None = None,
    *,
    message_bytes: float | None = None,
    seed: int = 0,
    compute_noise: bool = True,
) -> TimingResult:
    """Emulated timing of a recorded run under ``network`` (the ``timing.json`` of the run).

    Args:
        source: a run directory holding ``trace_r*.jsonl``, or a loaded :class:`Trace`.
        spec: the program the run executed.
        network: the condition to emulate.
        topology: graph of the gossip algorithms; default as in :func:`simulate`.
        message_bytes: overrides the size read from the traces (needed when nothing was sent).
        seed: seed of the compute-noise and jitter streams.
        compute_noise: apply ``network``'s straggler and compute-noise model to the measured
            compute first (a no-op for noise-free conditions).

    Returns:
        ``simulate(spec, compute, message_bytes, network, topology, seed)`` on the trace's
        compute matrix: identical numbers to calling :func:`simulate` on the same arrays.
    """
    trace = source if isinstance(source, Trace) else load_trace(source)
    nbytes = message_bytes if message_bytes is not None else trace.message_bytes
    if nbytes is None:
        raise ValueError(
            "message_bytes=None: the traces record no sent messages; pass message_bytes= the "
            "size of the flattened parameter vector in bytes"
        )
    if spec.pattern == "gossip_async":  # every rank's own count; the budget is their sum
        ranks = trace.compute_ranks or tuple(trace.compute_s)
        if compute_noise:
            ranks = tuple(
                apply_compute_noise(r[None, :], network, seed + i)[0] for i, r in enumerate(ranks)
            )
        return simulate(spec, list(ranks), nbytes, network, topology, seed)
    compute = trace.compute_s
    if compute_noise:
        compute = apply_compute_noise(compute, network, seed)
    return simulate(spec, compute, nbytes, network, topology, seed)
