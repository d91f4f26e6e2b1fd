"""Where does gossip win? Speed-up over AllReduce on a grid of network conditions.

For one node count, every algorithm's paper-era program is emulated with compute 1 (every time
relative to a node's compute per iteration) on a grid of one-way latency and transfer time of one
full message, both in compute times; the CPU passes keep the calibrated ratio. The paper's 10 GbE
point (its calibration) is marked. EMULATED throughout.

The map of the stored calibration is kept in ``experiments/table1_paper/gossip_map.json``
(written with ``calibration.json`` by ``python -m sgprepro.replay --write-calibration``) under a
key of everything it depends on: node count, grid, iterations, the calibrated ratios and a hash of
the engine's and the programs' source. :func:`speedups` returns the stored map when its key
matches and replays the grid otherwise; a test checks the stored map against a fresh replay.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

import sgprepro
from sgprepro.network import NetworkConfig
from sgprepro.paths import study_dir
from sgprepro.replay.calibrate import Calibration
from sgprepro.replay.model import Params, emulate
from sgprepro.replay.paper import PAPER_STUDY

log = logging.getLogger(__name__)

GOSSIP: tuple[str, ...] = ("sgp", "osgp", "dpsgd", "adpsgd")
LATENCIES: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
"""One-way latency in compute times (10 GbE in the paper: about 4e-4)."""
TRANSFERS: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0, 2.0, 4.0)
"""Transfer time of one full message in compute times (the paper's 10 GbE: about 1.9)."""
MAP_ITERATIONS = 60
"""Iterations per grid replay: noise-free replays are periodic after a few iterations (60 and 120
iterations differ by under 0.3% in any speed-up)."""
MAP_FILE = "gossip_map.json"
ENGINE_SOURCES: tuple[str, ...] = (
    "timing",
    "algorithms",
    "network",
    "topology",
    "replay/model.py",
)
"""Source the map depends on (under ``src/sgprepro``): a change there invalidates the stored map."""


def paper_point(cal: Calibration) -> tuple[float, float]:
    """(latency, transfer) of the paper's 10 GbE setting, in compute times."""
    c = cal.compute_s
    return cal.latency_s / c, (cal.message_time_s - cal.latency_s) / c


def map_path() -> Path:
    return study_dir(PAPER_STUDY) / MAP_FILE


def engine_fingerprint() -> str:
    """SHA-256 over the source files of :data:`ENGINE_SOURCES` (names and contents)."""
    root = Path(sgprepro.__file__).parent
    digest = hashlib.sha256()
    for name in ENGINE_SOURCES:
        path = root / name
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for f in files:
            digest.update(f.relative_to(root).as_posix().encode())
            digest.update(f.read_bytes())
    return digest.hexdigest()


def map_key(
    cal: Calibration,
    nodes: int,
    latencies: Sequence[float],
    transfers: Sequence[float],
    iterations: int,
) -> dict[str, Any]:
    """Everything a map depends on (floats rounded to 12 significant digits)."""

    def r(x: float) -> float:
        return float(f"{x:.12g}")

    lat, tr = paper_point(cal)
    return {
        "nodes": int(nodes),
        "latencies": [r(v) for v in latencies],
        "transfers": [r(v) for v in transfers],
        "iterations": int(iterations),
        "cpu_pass_over_compute": r(cal.cpu_pass_s / cal.compute_s),
        "paper_point": [r(lat), r(tr)],
        "engine": engine_fingerprint(),
    }


def stored_speedups(key: dict[str, Any]) -> pd.DataFrame | None:
    """The stored map if its key is ``key``, else None."""
    try:
        data = json.loads(map_path().read_text())
    except (OSError, ValueError):
        return None
    if data.get("key") != key:
        log.info("%s is stale (regenerate with --write-calibration); replaying", map_path())
        return None
    return pd.DataFrame(data["rows"])


def write_gossip_map(cal: Calibration) -> Path:
    """Replay the default map of ``cal`` and store it where :func:`speedups` finds it."""
    key = map_key(cal, 32, LATENCIES, TRANSFERS, MAP_ITERATIONS)
    frame = _replay_grid(cal, 32, LATENCIES, TRANSFERS, MAP_ITERATIONS)
    record = {
        "written_by": "python -m sgprepro.replay --write-calibration",
        "what": "where-gossip-wins map of the stored calibration (emulated speed-ups over "
        "AllReduce)",
        "key": key,
        "rows": frame.to_dict(orient="records"),
    }
    path = map_path()
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path


def speedups(
    cal: Calibration,
    nodes: int = 32,
    latencies: Sequence[float] = LATENCIES,
    transfers: Sequence[float] = TRANSFERS,
    iterations: int = MAP_ITERATIONS,
    use_stored: bool = True,
) -> pd.DataFrame:
    """Long frame: algorithm, latency_over_compute, transfer_over_compute, speedup (AllReduce
    s/itr / the algorithm's), for every grid point and the paper's point (``paper=True``).

    With ``use_stored``, the stored map is returned when it was made for exactly these inputs
    (see the module docstring); otherwise the grid is replayed.
    """
    if use_stored:
        stored = stored_speedups(map_key(cal, nodes, latencies, transfers, iterations))
        if stored is not None:
            return stored
    return _replay_grid(cal, nodes, latencies, transfers, iterations)


def _replay_grid(
    cal: Calibration,
    nodes: int,
    latencies: Sequence[float],
    transfers: Sequence[float],
    iterations: int,
) -> pd.DataFrame:
    paper = cal.paper
    unit = Params(1.0, 1.0, cal.cpu_pass_s / cal.compute_s)
    points = [(lat, tr, False) for lat in latencies for tr in transfers]
    points.append((*paper_point(cal), True))
    rows = []
    for lat, tr, is_paper in points:
        net = NetworkConfig(
            name="grid",
            latency_s=lat,
            bandwidth_gbps=8.0 * paper.message_bytes / (tr * 1e9),
            reduce_s_per_byte=unit.cpu_pass_s / paper.message_bytes,
        )
        ar = emulate("allreduce", nodes, unit, paper, iterations, network=net).s_per_itr
        for algo in GOSSIP:
            t = emulate(algo, nodes, unit, paper, iterations, network=net).s_per_itr
            rows.append(
                {
                    "algorithm": algo,
                    "nodes": nodes,
                    "latency_over_compute": lat,
                    "transfer_over_compute": tr,
                    "speedup": ar / t,
                    "paper": is_paper,
                }
            )
    return pd.DataFrame(rows)


def speedup_grid(frame: pd.DataFrame, algorithm: str) -> pd.DataFrame:
    """One algorithm's grid: latency rows, transfer columns (the paper's point excluded)."""
    sel = frame[(frame.algorithm == algorithm) & ~frame.paper]
    return sel.pivot(
        index="latency_over_compute", columns="transfer_over_compute", values="speedup"
    ).sort_index()


def paper_speedups(frame: pd.DataFrame) -> dict[str, float]:
    """Each gossip algorithm's speed-up at the paper's point."""
    sel = frame[frame.paper]
    return {r.algorithm: float(r.speedup) for r in sel.itertuples()}


__all__ = [
    "GOSSIP",
    "paper_point",
    "paper_speedups",
    "speedup_grid",
    "speedups",
    "write_gossip_map",
]
