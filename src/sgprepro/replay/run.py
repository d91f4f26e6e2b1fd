"""The replay of Table 1: all cells from the calibrated parameters, held-out error, checks.

Every time here is EMULATED by the timing engine; the published times are the authors' wall-clock
measurements. Checks compare the emulated table with the published one, never with itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sgprepro.algorithms import algorithm_class
from sgprepro.replay.calibrate import CALIBRATION_NODES, Calibration, calibrate
from sgprepro.replay.model import emulate
from sgprepro.replay.paper import ALGORITHMS

EXTRA_ALGORITHMS: tuple[str, ...] = ("osgp",)
"""Replayed beside Table 1's rows, with no published number to compare."""
HELD_OUT_MAPE_TARGET = 5.0
"""Mean absolute % error the held-out cells should stay within."""
HELD_OUT_MAX_TARGET = 10.0
"""No held-out cell should be worse than this (%)."""
CHECK_TOLERANCE = 0.25
"""Relative tolerance of the structural checks (slopes, gaps, growth)."""


@dataclass(frozen=True)
class Replay:
    """The replay's table, calibration and structural checks.

    Attributes:
        table: one row per (algorithm, nodes): ``published_s_per_itr`` (NaN for OSGP),
            ``emulated_s_per_itr``, ``error_pct``, ``used_for_calibration``, and for AD-PSGD the
            passive and active ranks' means.
        calibration: the parameters.
        checks: structural checks, each with ``check``, ``published``, ``emulated``, ``holds``.
        modern: whether this is the modern what-if.
    """

    table: pd.DataFrame
    calibration: Calibration
    checks: list[dict[str, Any]]
    modern: bool

    def held_out(self) -> pd.DataFrame:
        t = self.table
        return t[~t["used_for_calibration"] & t["published_s_per_itr"].notna()]

    @property
    def held_out_mape(self) -> float:
        """Mean absolute % error of the emulated s/itr over the published cells not calibrated."""
        return float(self.held_out()["error_pct"].abs().mean())

    @property
    def worst_held_out(self) -> pd.Series:
        held = self.held_out()
        return held.loc[held["error_pct"].abs().idxmax()]

    @property
    def meets_targets(self) -> bool:
        if self.held_out().empty:  # every published cell was fitted: no held-out score
            return False
        return (
            self.held_out_mape <= HELD_OUT_MAPE_TARGET
            and abs(float(self.worst_held_out["error_pct"])) <= HELD_OUT_MAX_TARGET
        )


def _cells(cal: Calibration, modern: bool) -> pd.DataFrame:
    paper = cal.paper
    rows = []
    for algo in (*ALGORITHMS, *EXTRA_ALGORITHMS):
        populations = not algorithm_class(algo).synchronous  # AD-PSGD: passive and active ranks
        for n in paper.nodes:
            res = emulate(algo, n, cal.params, paper, paper.iters_per_epoch[n], modern)
            pub = paper.s_per_itr.get(algo, {}).get(n, np.nan)
            ranks = res.s_per_itr_ranks
            rows.append(
                {
                    "algorithm": algo,
                    "nodes": n,
                    "iterations": paper.iters_per_epoch[n],
                    "published_s_per_itr": pub,
                    "emulated_s_per_itr": res.s_per_itr,
                    "error_pct": 100.0 * (res.s_per_itr / pub - 1.0),
                    "used_for_calibration": n in cal.nodes and algo in ALGORITHMS and not modern,
                    "passive_s_per_itr": float(ranks[0::2].mean()) if populations else np.nan,
                    "active_s_per_itr": float(ranks[1::2].mean()) if populations else np.nan,
                }
            )
    return pd.DataFrame(rows)


def _column(table: pd.DataFrame, algo: str, key: str) -> np.ndarray:
    return table[table.algorithm == algo].sort_values("nodes")[key].to_numpy(dtype=float)


def _within(emulated: float, published: float) -> bool:
    return abs(emulated - published) <= CHECK_TOLERANCE * abs(published)


def checks(table: pd.DataFrame, nodes: tuple[int, ...]) -> list[dict[str, Any]]:
    """Structural checks of the emulated table against the published one."""
    from sgprepro.results.compare import log2_fit

    out: list[dict[str, Any]] = []
    pub = {a: _column(table, a, "published_s_per_itr") for a in ALGORITHMS}
    emu = {a: _column(table, a, "emulated_s_per_itr") for a in ALGORITHMS}
    _, b_p, r2_p = log2_fit(np.array(nodes), pub["allreduce"])
    _, b_e, r2_e = log2_fit(np.array(nodes), emu["allreduce"])
    out.append(
        {
            "check": "AllReduce grows linearly in log2(n): slope s per doubling (R^2)",
            "published": f"{b_p:.3f} ({r2_p:.4f})",
            "emulated": f"{b_e:.3f} ({r2_e:.4f})",
            "holds": bool(r2_e > 0.98 and r2_p > 0.98 and _within(b_e, b_p)),
        }
    )
    gap_p, gap_e = pub["dpsgd"] - pub["sgp"], emu["dpsgd"] - emu["sgp"]
    out.append(
        {
            "check": "D-PSGD - SGP at each n (s)",
            "published": ", ".join(f"{g:.3f}" for g in gap_p),
            "emulated": ", ".join(f"{g:.3f}" for g in gap_e),
            "holds": bool(all(_within(e, p) for e, p in zip(gap_e, gap_p, strict=True))),
        }
    )
    for algo in ("sgp", "dpsgd", "adpsgd"):
        gp, ge = pub[algo][-1] / pub[algo][0] - 1, emu[algo][-1] / emu[algo][0] - 1
        out.append(
            {
                "check": f"{algo} nearly flat: growth {nodes[0]} -> {nodes[-1]} nodes",
                "published": f"{100 * gp:+.1f}%",
                "emulated": f"{100 * ge:+.1f}%",
                "holds": bool(abs(ge - gp) <= 0.1),
            }
        )
    for i, n in enumerate(nodes):
        po = " < ".join(sorted(ALGORITHMS, key=lambda a: pub[a][i]))
        eo = " < ".join(sorted(ALGORITHMS, key=lambda a: emu[a][i]))
        out.append(
            {
                "check": f"ordering by s/itr at {n} nodes",
                "published": po,
                "emulated": eo,
                "holds": po == eo,
            }
        )
    return out


def run_replay(
    modern: bool = False,
    calibration: Calibration | None = None,
    refit: bool = False,
    nodes: tuple[int, ...] = (CALIBRATION_NODES,),
) -> Replay:
    """Emulate every cell from the calibration and check against the published table.

    Args:
        modern: the what-if with today's software; it takes its own parameters (cited constants
            in ``workload.yaml``), not the paper-era fit.
        calibration: use these parameters.
        refit: fit the ``nodes`` columns afresh (Nelder-Mead, tens of seconds) instead of reading
            the stored fit (``experiments/table1_paper/calibration.json``, written by
            ``python -m sgprepro.replay --write-calibration``).
        nodes: the columns a refit sees (the 4-node column by default; others are a diagnostic:
            with every column fitted there are no held-out cells).
    """
    from sgprepro.replay.calibrate import modern_calibration, stored_calibration

    if calibration is not None:
        cal = calibration
    elif modern:
        cal = modern_calibration()
    else:
        stored = not refit and tuple(nodes) == (CALIBRATION_NODES,)
        cal = stored_calibration() if stored else calibrate(nodes=nodes)
    table = _cells(cal, modern)
    return Replay(table, cal, checks(table, cal.paper.nodes), modern)
