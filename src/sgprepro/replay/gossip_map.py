"""Where does gossip win? Speed-up over AllReduce on a grid of network conditions.

For one node count, every algorithm's paper-era program is emulated with compute 1 (every time
relative to a node's compute per iteration) on a grid of one-way latency and transfer time of one
full message, both in compute times; the CPU passes keep the calibrated ratio. The paper's 10 GbE
point (its calibration) is marked. EMULATED throughout.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from sgprepro.network import NetworkConfig
from sgprepro.replay.calibrate import Calibration
from sgprepro.replay.model import Params, emulate

GOSSIP: tuple[str, ...] = ("sgp", "osgp", "dpsgd", "adpsgd")
LATENCIES: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
"""One-way latency in compute times (10 GbE in the paper: about 4e-4)."""
TRANSFERS: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0, 2.0, 4.0)
"""Transfer time of one full message in compute times (the paper's 10 GbE: about 1.9)."""
MAP_ITERATIONS = 120


def paper_point(cal: Calibration) -> tuple[float, float]:
    """(latency, transfer) of the paper's 10 GbE setting, in compute times."""
    c = cal.compute_s
    return cal.latency_s / c, (cal.message_time_s - cal.latency_s) / c


def speedups(
    cal: Calibration,
    nodes: int = 32,
    latencies: Sequence[float] = LATENCIES,
    transfers: Sequence[float] = TRANSFERS,
    iterations: int = MAP_ITERATIONS,
) -> pd.DataFrame:
    """Long frame: algorithm, latency_over_compute, transfer_over_compute, speedup (AllReduce
    s/itr / the algorithm's), for every grid point and the paper's point (``paper=True``)."""
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


__all__ = ["GOSSIP", "paper_point", "paper_speedups", "speedup_grid", "speedups"]
