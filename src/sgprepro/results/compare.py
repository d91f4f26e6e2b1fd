"""Our numbers against the baseline and against the paper's: gaps, speed-ups and their noise (pure).

* **gap** to the baseline (AllReduce) at the same node count, in top-1 points: baseline mean minus
  the algorithm's mean over seeds (positive: the algorithm is behind). Its noise is the standard
  error of a difference of two means, ``sqrt(s_a^2 / n_a + s_b^2 / n_b)`` with sample standard
  deviations over seeds.
* **speed-up** over the baseline at the same node count: the baseline's mean s/itr divided by
  the algorithm's (ratios of emulated times under the study's condition, on the layout's clock:
  in units of each run's own compute under `time: paper_equivalent`, so a run's compute measured
  under other load does not enter the ratio; the paper's are ratios of its wall-clock times).
  Its spread is the range of the per-seed ratios.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from sgprepro.results.layout import Layout
from sgprepro.results.table import ROWS, select_study, time_row

COLUMNS = (
    "algorithm",
    "label",
    "nodes",
    "top1",
    "top1_std",
    "n",
    "gap",
    "gap_se",
    "paper_gap",
    "speedup",
    "speedup_lo",
    "speedup_hi",
    "paper_speedup",
    "s_per_itr",
)


def _se(s1: float, n1: int, s2: float, n2: int) -> float:
    if n1 < 2 or n2 < 2 or math.isnan(s1) or math.isnan(s2):
        return math.nan
    return math.sqrt(s1**2 / n1 + s2**2 / n2)


def _paper_ratio(
    pair: tuple[float | None, float | None], op: Callable[[float, float], float]
) -> float:
    """``op(ours_cell, baseline_cell)`` of two published values, NaN when either is absent."""
    a, b = pair
    return op(a, b) if a is not None and b is not None else math.nan


def comparison(runs: pd.DataFrame, layout: Layout) -> pd.DataFrame:
    """One row per (algorithm, nodes) of the layout: top-1 mean, std and seeds; the gap to the
    baseline with its standard error and the paper's gap; the speed-up over the baseline with
    the range of per-seed ratios and the paper's speed-up (see the module docstring)."""
    sel = select_study(runs, layout)
    ok = sel[sel["status"] == "ok"]
    top1_key, time_key = ROWS["top1"].metric, ROWS[time_row(layout)].metric

    def cell(alg: str, n: int) -> pd.DataFrame:
        return ok[(ok["algorithm"] == alg) & (ok["nodes"] == n)]

    rows = []
    base = layout.baseline
    for alg, label in layout.algorithms:
        for n in layout.nodes:
            here, ref = cell(alg, n), cell(base, n)
            acc = pd.to_numeric(here.get(top1_key, pd.Series(dtype=float)), errors="coerce")
            acc = acc.dropna()
            racc = pd.to_numeric(ref.get(top1_key, pd.Series(dtype=float)), errors="coerce")
            racc = racc.dropna()
            mean = float(acc.mean()) if len(acc) else math.nan
            std = float(acc.std(ddof=1)) if len(acc) > 1 else math.nan
            rmean = float(racc.mean()) if len(racc) else math.nan
            rstd = float(racc.std(ddof=1)) if len(racc) > 1 else math.nan
            t = here.set_index("seed")[time_key] if time_key in here else pd.Series(dtype=float)
            rt = ref.set_index("seed")[time_key] if time_key in ref else pd.Series(dtype=float)
            t, rt = pd.to_numeric(t, errors="coerce"), pd.to_numeric(rt, errors="coerce")
            speed = float(rt.mean() / t.mean()) if len(t) and len(rt) else math.nan
            per_seed = (rt / t).dropna()
            p_top = (layout.paper_value(alg, n, "top1"), layout.paper_value(base, n, "top1"))
            p_t = (
                layout.paper_value(alg, n, "s_per_itr"),
                layout.paper_value(base, n, "s_per_itr"),
            )
            rows.append(
                {
                    "algorithm": alg,
                    "label": label,
                    "nodes": n,
                    "top1": mean,
                    "top1_std": std,
                    "n": len(acc),
                    "gap": rmean - mean,
                    "gap_se": _se(std, len(acc), rstd, len(racc)),
                    "paper_gap": _paper_ratio(p_top, lambda a, b: b - a),
                    "speedup": speed,
                    "speedup_lo": float(per_seed.min()) if len(per_seed) else math.nan,
                    "speedup_hi": float(per_seed.max()) if len(per_seed) else math.nan,
                    "paper_speedup": _paper_ratio(p_t, lambda a, b: b / a),
                    "s_per_itr": float(t.mean()) if len(t) else math.nan,
                }
            )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def log2_fit(nodes: np.ndarray, values: np.ndarray) -> tuple[float, float, float]:
    """Least squares ``values ~ a + b log2(nodes)``: returns (a, b, R^2)."""
    x = np.log2(np.asarray(nodes, dtype=float))
    y = np.asarray(values, dtype=float)
    b, a = np.polyfit(x, y, 1)
    resid = y - (a + b * x)
    total = float(((y - y.mean()) ** 2).sum())
    return float(a), float(b), (1.0 - float((resid**2).sum()) / total) if total > 0 else 1.0
