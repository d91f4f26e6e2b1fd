"""Paper-scale replay: emulated s/itr of Table 1 of Assran et al. 2019 from three fitted numbers.

Workload (Sec. 1, 4 and 6 of the reference notes): ResNet-50, 25,557,032 fp32 parameters, so every
message is the whole 102,228,128-byte vector; 8 V100 GPUs per node; one epoch of iterations
(1252 / 626 / 313 / 157 at 4 / 8 / 16 / 32 nodes); 10 Gbps Ethernet (preset ``eth_10g``).

Paper-era semantics: AllReduce = recursive-doubling all-reduce of the parameters after the local
step, with a CPU reduction per round; SGP = 1 peer on the directed exponential graph; D-PSGD =
bipartite pairs, send and receive in series; AD-PSGD = trainer throttled by its gossip loop.

Three free parameters, fitted only on the 4-node column of Table 1 (numpy least squares on
relative errors, a deterministic coarse-to-fine grid): the link ``efficiency`` (fraction of the
10 Gbit/s line rate achieved), the per-iteration ``compute_s`` of a node, and the
``reduce_s_per_round`` CPU reduction of one recursive-doubling round. The other twelve cells are
predictions. Every time printed here is emulated by :func:`sgprepro.timing.simulate`.

Run: ``python -m sgprepro.timing.replay [--modern] [--format text|markdown|csv]``.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from sgprepro.network import NetworkConfig, load_preset
from sgprepro.timing.engine import ProgramSpec, simulate
from sgprepro.topology import BipartiteExponentialGraph, ExponentialGraph, Topology

log = logging.getLogger(__name__)

PAPER_PARAMS = 25_557_032
"""ResNet-50 parameter count (Sec. 4 of the reference notes)."""
PAPER_MESSAGE_BYTES = 4 * PAPER_PARAMS  # 102,228,128 bytes of fp32
PAPER_NODES: tuple[int, ...] = (4, 8, 16, 32)
PAPER_ITERS_PER_EPOCH: dict[int, int] = {4: 1252, 8: 626, 16: 313, 32: 157}
"""Iterations per epoch at 256 images per node (Sec. 4 of the reference notes)."""
PAPER_ALGORITHMS: tuple[str, ...] = ("allreduce", "dpsgd", "adpsgd", "sgp")

# Table 1 of Assran et al. 2019: seconds per iteration over 10 Gbps Ethernet, ResNet-50 /
# ImageNet, 8 V100 GPUs per node (reference notes, Sec. 1). Measured by the authors (wall clock).
PAPER_S_PER_ITR: dict[str, dict[int, float]] = {
    "allreduce": {4: 0.704, 8: 0.896, 16: 1.086, 32: 1.308},
    "dpsgd": {4: 0.628, 8: 0.618, 16: 0.632, 32: 0.657},
    "adpsgd": {4: 0.361, 8: 0.363, 16: 0.374, 32: 0.388},
    "sgp": {4: 0.377, 8: 0.377, 16: 0.411, 32: 0.426},
}
CALIBRATION_NODES = 4
"""The only column of Table 1 the fit sees."""


@dataclass(frozen=True)
class Calibration:
    """The three fitted numbers and the network they complete.

    Attributes:
        efficiency: achieved fraction of the line rate.
        compute_s: compute seconds per node and iteration.
        reduce_s_per_round: CPU reduction of one 102 MB recursive-doubling round, seconds.
        rms_rel_error: root-mean-square relative error on the calibration cells.
        network: the base condition with ``efficiency`` replaced.
    """

    efficiency: float
    compute_s: float
    reduce_s_per_round: float
    rms_rel_error: float
    network: NetworkConfig

    @property
    def message_time_s(self) -> float:
        return self.network.message_time(PAPER_MESSAGE_BYTES)

    @property
    def reduce_s_per_byte(self) -> float:
        return self.reduce_s_per_round / PAPER_MESSAGE_BYTES

    @property
    def effective_gbps(self) -> float:
        return self.network.bandwidth_gbps * self.efficiency


_PAPER_PATTERNS = {
    "sgp": "push",
    "osgp": "overlap_push",
    "dpsgd": "pairwise",
    "adpsgd": "gossip_async",
}


def paper_spec(algorithm: str, modern: bool = False) -> ProgramSpec:
    """The paper-era program of ``algorithm`` (``modern``: AllReduce as DDP-style ring buckets)."""
    if algorithm == "allreduce":
        if modern:
            return ProgramSpec("allreduce", collective="ring", buckets=4, label=algorithm)
        return ProgramSpec("allreduce", collective="recursive_doubling", label=algorithm)
    return ProgramSpec(_PAPER_PATTERNS[algorithm], peers=1, label=algorithm)


def paper_topology(algorithm: str, n: int) -> Topology | None:
    """1-peer directed exponential graph for SGP, bipartite exponential for D-PSGD/AD-PSGD."""
    if algorithm in ("sgp", "osgp"):
        return ExponentialGraph(n)
    if algorithm in ("dpsgd", "adpsgd"):
        return BipartiteExponentialGraph(n)
    return None


def emulate_cell(
    algorithm: str,
    n: int,
    network: NetworkConfig,
    compute_s: float,
    reduce_s_per_byte: float = 0.0,
    iterations: int | None = None,
    modern: bool = False,
    spec: ProgramSpec | None = None,
) -> float:
    """Emulated s/itr of one table cell (noise-free compute, one epoch by default)."""
    iters = iterations if iterations is not None else PAPER_ITERS_PER_EPOCH.get(n, 100)
    spec = spec if spec is not None else paper_spec(algorithm, modern)
    compute = np.full((n, iters), compute_s)
    net = network.replace(reduce_s_per_byte=reduce_s_per_byte)
    result = simulate(spec, compute, PAPER_MESSAGE_BYTES, net, paper_topology(algorithm, n))
    return result.s_per_itr


def _nelder_mead(
    f: Any, x0: np.ndarray, step: np.ndarray, max_evals: int, xtol: float
) -> tuple[np.ndarray, float]:
    """Minimal deterministic Nelder-Mead (standard coefficients) for a few parameters."""
    dim = len(x0)
    simplex = [x0.astype(float)] + [x0 + np.eye(dim)[k] * step[k] for k in range(dim)]
    values = [f(x) for x in simplex]
    evals = len(values)
    while evals < max_evals:
        order = np.argsort(values, kind="stable")
        simplex = [simplex[k] for k in order]
        values = [values[k] for k in order]
        if max(np.abs(x - simplex[0]).max() for x in simplex[1:]) < xtol:
            break
        centroid = np.mean(simplex[:-1], axis=0)
        refl = centroid + (centroid - simplex[-1])
        fr = f(refl)
        evals += 1
        if fr < values[0]:
            exp = centroid + 2.0 * (centroid - simplex[-1])
            fe = f(exp)
            evals += 1
            simplex[-1], values[-1] = (exp, fe) if fe < fr else (refl, fr)
        elif fr < values[-2]:
            simplex[-1], values[-1] = refl, fr
        else:
            con = centroid + 0.5 * (simplex[-1] - centroid)
            fc = f(con)
            evals += 1
            if fc < values[-1]:
                simplex[-1], values[-1] = con, fc
            else:  # shrink towards the best point
                for k in range(1, dim + 1):
                    simplex[k] = simplex[0] + 0.5 * (simplex[k] - simplex[0])
                    values[k] = f(simplex[k])
                    evals += 1
    k = int(np.argmin(values))
    return simplex[k], float(values[k])


def calibrate(
    base: NetworkConfig | None = None,
    iterations: int = 128,
    grid: int = 6,
    max_evals: int = 120,
) -> Calibration:
    """Fit efficiency, compute and reduction cost on the 4-node column of Table 1.

    The objective is the sum of squared relative errors of the four 4-node cells. The reduction
    cost only moves the AllReduce cell, which is affine in it (every round adds it), so for each
    (efficiency, compute) pair it is solved exactly (clipped at 0) from two replays. The pair is
    found by a ``grid x grid`` scan of efficiency in (0, 1] and compute in [0, the fastest 4-node
    cell], then a Nelder-Mead polish from the best grid point: deterministic and numpy only.

    Args:
        base: condition whose latency and line rate are kept (default preset ``eth_10g``).
        iterations: iterations per calibration replay. The replays are noise-free and reach their
            periodic steady state within a graph cycle, so 128 iterations give the one-epoch
            figure to within the first iteration's transient divided by 128.
        grid: points per axis of the initial scan.
        max_evals: evaluation budget of the polish.
    """
    base = base if base is not None else load_preset("eth_10g")
    n = CALIBRATION_NODES
    target = {a: PAPER_S_PER_ITR[a][n] for a in PAPER_ALGORITHMS}
    line_time = base.transfer_time(PAPER_MESSAGE_BYTES)  # at efficiency 1
    probe = 0.1 / PAPER_MESSAGE_BYTES  # 0.1 s per round, to measure the AllReduce slope
    lo = np.array([max(1e-3, line_time / max(target.values())), 0.0])
    hi = np.array([1.0, min(target.values())])
    cache: dict[tuple[float, float], tuple[float, float]] = {}

    def evaluate(x: np.ndarray) -> tuple[float, float]:
        eff, comp = (float(v) for v in np.clip(x, lo, hi))
        key = (eff, comp)
        if key not in cache:
            net = base.replace(efficiency=eff)
            pred = {a: emulate_cell(a, n, net, comp, 0.0, iterations) for a in PAPER_ALGORITHMS}
            with_probe = emulate_cell("allreduce", n, net, comp, probe, iterations)
            slope = (with_probe - pred["allreduce"]) / probe
            rho = max(0.0, (target["allreduce"] - pred["allreduce"]) / slope) if slope > 0 else 0.0
            pred["allreduce"] += slope * rho
            sse = sum((pred[a] / target[a] - 1.0) ** 2 for a in PAPER_ALGORITHMS)
            cache[key] = (sse, rho)
        sse, rho = cache[key]
        outside = float(np.abs(x - np.clip(x, lo, hi)).sum())  # keep the polish in bounds
        return sse + outside, rho

    points = [
        np.array([e, c])
        for e in np.linspace(lo[0], hi[0], grid)
        for c in np.linspace(lo[1], hi[1], grid)
    ]
    start = min(points, key=lambda x: evaluate(x)[0])
    best, sse = _nelder_mead(
        lambda x: evaluate(x)[0], start, (hi - lo) / (2 * grid), max_evals, xtol=1e-6
    )
    eff, comp = (float(v) for v in np.clip(best, lo, hi))
    rho_per_byte = evaluate(np.array([eff, comp]))[1]
    return Calibration(
        efficiency=eff,
        compute_s=comp,
        reduce_s_per_round=rho_per_byte * PAPER_MESSAGE_BYTES,
        rms_rel_error=math.sqrt(sse / len(PAPER_ALGORITHMS)),
        network=base.replace(efficiency=eff),
    )


@dataclass(frozen=True)
class Replay:
    """The replay's table, calibration and structural checks.

    Attributes:
        table: one row per (algorithm, nodes): ``published_s_per_itr`` (Table 1, measured by the
            authors), ``emulated_s_per_itr`` (this engine), ``error_pct`` and
            ``used_for_calibration``.
        calibration: the fitted parameters.
        checks: structural checks, one dict per check with ``check``, ``published``,
            ``emulated`` and ``holds``.
        modern: whether AllReduce was replayed as DDP-style ring buckets.
    """

    table: pd.DataFrame
    calibration: Calibration
    checks: list[dict[str, Any]]
    modern: bool

    @property
    def held_out_mape(self) -> float:
        """Mean absolute % error of the emulated s/itr over the cells not used for calibration."""
        held = self.table[~self.table["used_for_calibration"]]
        return float(held["error_pct"].abs().mean())


def replay_table(
    modern: bool = False,
    base: NetworkConfig | None = None,
    iterations: dict[int, int] | None = None,
    calib_iterations: int = 128,
    calibration: Calibration | None = None,
) -> pd.DataFrame:
    """The replay as a DataFrame (see :class:`Replay`; the frame's ``attrs`` hold the rest)."""
    rep = run_replay(modern, base, iterations, calib_iterations, calibration)
    table = rep.table.copy()
    table.attrs.update(
        held_out_mape_pct=rep.held_out_mape,
        calibration={k: v for k, v in asdict(rep.calibration).items() if k != "network"},
        checks=rep.checks,
        modern=modern,
        emulated=True,
    )
    return table


def _r2(x: np.ndarray, y: np.ndarray) -> float:
    slope, icept = np.polyfit(x, y, 1)
    resid = y - (slope * x + icept)
    total = ((y - y.mean()) ** 2).sum()
    return float(1.0 - (resid**2).sum() / total) if total > 0 else 1.0


def _order(values: dict[str, float]) -> str:
    return " < ".join(sorted(values, key=lambda a: values[a]))


def run_replay(
    modern: bool = False,
    base: NetworkConfig | None = None,
    iterations: dict[int, int] | None = None,
    calib_iterations: int = 128,
    calibration: Calibration | None = None,
) -> Replay:
    """Calibrate on the 4-node column, emulate all 16 cells and run the structural checks.

    Args:
        modern: replay AllReduce as ring all-reduce of gradient buckets overlapped with backward
            (a what-if; the calibration still uses the paper-era semantics).
        base: network condition (default preset ``eth_10g``); its efficiency is refitted.
        iterations: iterations per node count (default one epoch, ``PAPER_ITERS_PER_EPOCH``).
        calib_iterations: iterations of each calibration replay.
        calibration: skip the fit and use these parameters.
    """
    iters = iterations if iterations is not None else PAPER_ITERS_PER_EPOCH
    cal = calibration if calibration is not None else calibrate(base, calib_iterations)
    net = cal.network
    rows = []
    emulated: dict[str, dict[int, float]] = {a: {} for a in PAPER_ALGORITHMS}
    for algo in PAPER_ALGORITHMS:
        for n in PAPER_NODES:
            value = emulate_cell(
                algo, n, net, cal.compute_s, cal.reduce_s_per_byte, iters[n], modern
            )
            emulated[algo][n] = value
            pub = PAPER_S_PER_ITR[algo][n]
            rows.append(
                {
                    "algorithm": algo,
                    "nodes": n,
                    "iterations": iters[n],
                    "published_s_per_itr": pub,
                    "emulated_s_per_itr": value,
                    "error_pct": 100.0 * (value / pub - 1.0),
                    "used_for_calibration": n == CALIBRATION_NODES,
                }
            )
    table = pd.DataFrame(rows)

    checks: list[dict[str, Any]] = []
    logn = np.log2(np.array(PAPER_NODES, dtype=float))
    pub_ar = np.array([PAPER_S_PER_ITR["allreduce"][n] for n in PAPER_NODES])
    rd, ring = {}, {}
    for n in PAPER_NODES:
        for store, algo_name in ((rd, "recursive_doubling"), (ring, "ring")):
            spec = ProgramSpec("allreduce", collective=algo_name, label="allreduce")
            store[n] = emulate_cell(
                "allreduce", n, net, cal.compute_s, cal.reduce_s_per_byte, iters[n], spec=spec
            )
    rd_arr = np.array([rd[n] for n in PAPER_NODES])
    ring_arr = np.array([ring[n] for n in PAPER_NODES])
    r2_rd = _r2(logn, rd_arr)
    checks.append(
        {
            "check": "AllReduce (recursive doubling) s/itr linear in log2(n): R^2",
            "published": f"{_r2(logn, pub_ar):.4f}",
            "emulated": f"{r2_rd:.4f}",
            "holds": bool(r2_rd > 0.999),
        }
    )
    rd_growth = rd_arr[-1] / rd_arr[0] - 1.0
    ring_growth = ring_arr[-1] / ring_arr[0] - 1.0
    checks.append(
        {
            "check": "AllReduce under ring nearly flat: s/itr growth 4 -> 32 nodes (vs recursive "
            "doubling)",
            "published": f"{100 * (pub_ar[-1] / pub_ar[0] - 1):+.1f}% (recursive doubling)",
            "emulated": f"ring {100 * ring_growth:+.1f}% vs recursive doubling {100 * rd_growth:+.1f}%",
            "holds": bool(ring_growth < 0.5 * rd_growth),
        }
    )
    msg = cal.message_time_s
    pub_diff = [PAPER_S_PER_ITR["dpsgd"][n] - PAPER_S_PER_ITR["sgp"][n] for n in PAPER_NODES]
    emu_diff = [emulated["dpsgd"][n] - emulated["sgp"][n] for n in PAPER_NODES]
    checks.append(
        {
            "check": f"D-PSGD - SGP ~ one message time ({msg:.3f} s at the fitted efficiency)",
            "published": ", ".join(f"{d:.3f}" for d in pub_diff),
            "emulated": ", ".join(f"{d:.3f}" for d in emu_diff),
            "holds": bool(max(abs(d - msg) for d in emu_diff) <= 0.05 * msg),
        }
    )
    for n in PAPER_NODES:
        pub_order = _order({a: PAPER_S_PER_ITR[a][n] for a in PAPER_ALGORITHMS})
        emu_order = _order({a: emulated[a][n] for a in PAPER_ALGORITHMS})
        checks.append(
            {
                "check": f"ordering by s/itr at {n} nodes",
                "published": pub_order,
                "emulated": emu_order,
                "holds": pub_order == emu_order,
            }
        )
    return Replay(table, cal, checks, modern)


def _markdown(frame: pd.DataFrame) -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(str(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(str(row[c]) for c in cols) + " |")
    return "\n".join(lines)


def format_replay(rep: Replay, fmt: str = "text") -> str:
    """Render the replay as ``text`` (table plus summary), ``markdown`` or ``csv``."""
    table = rep.table
    if fmt == "csv":
        return table.to_csv(index=False, float_format="%.4f")
    cal = rep.calibration
    mode = (
        "modern: AllReduce = ring all-reduce of 4 gradient buckets overlapped with backward"
        if rep.modern
        else "paper era: AllReduce = recursive doubling of the parameters"
    )
    grid = pd.DataFrame({"algorithm": list(PAPER_ALGORITHMS)})
    for n in PAPER_NODES:
        cells = []
        for algo in PAPER_ALGORITHMS:
            row = table[(table.algorithm == algo) & (table.nodes == n)].iloc[0]
            mark = " [cal]" if row.used_for_calibration else ""
            cells.append(
                f"{row.emulated_s_per_itr:.3f} vs {row.published_s_per_itr:.3f} "
                f"({row.error_pct:+.1f}%){mark}"
            )
        grid[f"{n} nodes"] = cells
    head = [
        "Emulated s/itr (discrete-event replay, not measured) vs published Table 1 of "
        "Assran et al. 2019 (10 GbE, ResNet-50, 8 V100 per node)",
        f"Semantics: {mode}; SGP 1-peer exponential; D-PSGD bipartite serial; AD-PSGD gossip "
        "throttled.",
        f"Calibrated on the {CALIBRATION_NODES}-node column only (cells marked [cal]): "
        f"efficiency={cal.efficiency:.4f} ({cal.effective_gbps:.2f} Gbit/s effective, emulated "
        f"message time {cal.message_time_s:.4f} s), compute_s={cal.compute_s:.4f}, "
        f"reduce_s_per_round={cal.reduce_s_per_round:.4f} "
        f"(calibration rms error {100 * cal.rms_rel_error:.1f}%).",
        "Cells: emulated vs published s/itr (emulated error).",
    ]
    if rep.modern:
        head.append(
            "Modern AllReduce cells are a what-if: the parameters were fitted with the "
            "paper-era AllReduce, so its [cal] cell is a prediction here too."
        )
    checks = pd.DataFrame(rep.checks)
    tail = (
        f"Held-out MAPE of emulated s/itr over the 12 cells not used for calibration: "
        f"{rep.held_out_mape:.2f}%"
    )
    if fmt == "markdown":
        return "\n\n".join(
            [
                "\n".join(head),
                _markdown(grid),
                tail,
                "Structural checks (emulated vs published):",
                _markdown(checks),
            ]
        )
    with pd.option_context("display.width", 250, "display.max_colwidth", 120):
        return "\n".join(
            head
            + [
                "",
                grid.to_string(index=False),
                "",
                tail,
                "",
                "Structural checks (emulated vs published):",
                checks.to_string(index=False),
            ]
        )


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m sgprepro.timing.replay [--modern] [--format text|markdown|csv]``."""
    parser = argparse.ArgumentParser(
        prog="python -m sgprepro.timing.replay",
        description="Emulated (not measured) replay of Table 1 of Assran et al. 2019.",
    )
    parser.add_argument(
        "--modern",
        action="store_true",
        help="AllReduce as DDP-style ring buckets overlapped with backward",
    )
    parser.add_argument("--format", choices=("text", "markdown", "csv"), default="text")
    parser.add_argument(
        "--network",
        default="eth_10g",
        help="preset whose latency and line rate are kept (default eth_10g)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    rep = run_replay(modern=args.modern, base=load_preset(args.network))
    print(format_replay(rep, args.format))
    return 0


if __name__ == "__main__":
    sys.exit(main())
