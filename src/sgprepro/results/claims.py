"""The paper's claims, tested on a study's runs: holds / does not hold / within noise (pure).

A claim some of whose cells have no finished run is "not tested (runs missing)", unless a
present cell already makes it fail.

Claims live in ``experiments/<study>/claims.yaml``: each has the paper's words (``claim``) and how
this study reads them (``test``: a kind and its thresholds, our reading, stated there). Noise is
the seed-to-seed spread: a gap carries the standard error of a difference of means (see
:mod:`sgprepro.results.compare`) and a verdict needs the difference to clear two of them; a
speed-up carries the range of its per-seed ratios.

Verdicts, per kind:

* ``gap_at_most`` (``algorithm``, ``nodes``, ``points``): at every node count the gap to the
  baseline g +- 2 SE must stay below ``points``: holds if g + 2 SE <= points at all of them, does
  not hold if g - 2 SE > points at any, within noise otherwise.
* ``speedup_at_least`` (``algorithm``, ``nodes``, ``factor``): holds if every seed's speed-up is
  >= factor, does not hold if none is, within noise otherwise.
* ``log_growth`` (``flat``, ``r2``, ``growth``, ``flat_growth``): the baseline's s/itr fits
  a + b log2(n) with R^2 >= r2 and grows by >= ``growth`` from the first to the last node count,
  while each ``flat`` algorithm grows by <= ``flat_growth``.
* ``faster`` (``algorithm``, ``than``): at every node count every seed of ``algorithm`` has a
  lower s/itr than every seed of ``than`` (holds), or the opposite at some node count (does not
  hold), else within noise.
* ``accuracy_order`` (``nodes``, ``order``): each consecutive pair is ordered by more than 2 SE
  (holds), reversed by more than 2 SE (does not hold), or within noise.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from sgprepro.results.compare import comparison, log2_fit
from sgprepro.results.layout import Layout
from sgprepro.results.table import ROWS, select_study, time_row

HOLDS, FAILS, NOISE = "holds", "does not hold", "within noise"
MISSING = "not tested (runs missing)"
Z = 2.0
"""Standard errors a difference must clear to count (about a 95 % interval)."""


@dataclass(frozen=True)
class Verdict:
    """One claim's outcome.

    Attributes:
        id: the claim's key.
        claim: the paper's words.
        reading: how the study tests them.
        verdict: holds, does not hold, within noise, or not tested (runs missing).
        evidence: the numbers behind the verdict (ours, with seed noise, and the paper's).
    """

    id: str
    claim: str
    reading: str
    verdict: str
    evidence: str


def load_claims(path: Path) -> list[dict[str, Any]]:
    """Read ``claims.yaml``: a list of {id, claim, reading, test}."""
    raw = yaml.safe_load(Path(path).read_text())
    for c in raw:
        for key in ("id", "claim", "reading", "test"):
            if key not in c:
                raise ValueError(f"claims file={path}: a claim lacks key={key!r}: {c}")
    return raw


def _combine(verdicts: list[str]) -> str:
    if any(v == FAILS for v in verdicts):
        return FAILS
    if any(v == MISSING for v in verdicts):
        return MISSING
    return HOLDS if all(v == HOLDS for v in verdicts) else NOISE


def _fmt(x: float, d: int = 2) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.{d}f}"


def _cell(cmp: pd.DataFrame, alg: str, n: int) -> pd.Series:
    return cmp[(cmp.algorithm == alg) & (cmp.nodes == n)].iloc[0]


def _seed_times(runs: pd.DataFrame, layout: Layout, alg: str, n: int) -> np.ndarray:
    sel = select_study(runs, layout)
    ok = sel[(sel.status == "ok") & (sel.algorithm == alg) & (sel.nodes == n)]
    metric = ROWS[time_row(layout)].metric
    return pd.to_numeric(ok[metric], errors="coerce").dropna().to_numpy()


def _gap_at_most(cmp: pd.DataFrame, t: dict) -> tuple[str, str]:
    parts, verdicts = [], []
    for n in t["nodes"]:
        r = _cell(cmp, t["algorithm"], n)
        g, se = r.gap, (r.gap_se if not math.isnan(r.gap_se) else 0.0)
        if math.isnan(g):
            verdicts.append(MISSING)
            parts.append(f"{n} nodes: missing")
            continue
        verdicts.append(
            HOLDS if g + Z * se <= t["points"] else FAILS if g - Z * se > t["points"] else NOISE
        )
        parts.append(
            f"{n} nodes: gap {g:+.2f} +- {_fmt(se)} points (seed std {_fmt(r.top1_std)}, "
            f"n={r.n}; paper {_fmt(r.paper_gap)})"
        )
    return _combine(verdicts), "; ".join(parts)


def _speedup_at_least(cmp: pd.DataFrame, t: dict) -> tuple[str, str]:
    parts, verdicts = [], []
    for n in t["nodes"]:
        r = _cell(cmp, t["algorithm"], n)
        lo, hi = r.speedup_lo, r.speedup_hi
        if math.isnan(r.speedup):
            verdicts.append(MISSING)
            parts.append(f"{n} nodes: missing")
            continue
        verdicts.append(HOLDS if lo >= t["factor"] else FAILS if hi < t["factor"] else NOISE)
        parts.append(
            f"{n} nodes: {r.speedup:.2f}x (seeds {lo:.2f}-{hi:.2f}x; paper "
            f"{_fmt(r.paper_speedup)}x)"
        )
    return _combine(verdicts), "; ".join(parts)


def _log_growth(cmp: pd.DataFrame, layout: Layout, t: dict) -> tuple[str, str]:
    nodes = np.array(layout.nodes, dtype=float)
    base = cmp[cmp.algorithm == layout.baseline].sort_values("nodes")["s_per_itr"].to_numpy()
    verdicts, parts = [], []
    if np.isnan(base).any():
        verdicts.append(MISSING)
        parts.append(f"{layout.baseline}: cells missing")
    else:
        _, slope, r2 = log2_fit(nodes, base)
        growth = base[-1] / base[0] - 1
        verdicts.append(HOLDS if r2 >= t["r2"] and slope > 0 and growth >= t["growth"] else FAILS)
        parts.append(
            f"{layout.baseline}: +{100 * growth:.0f}% from {int(nodes[0])} to {int(nodes[-1])} "
            f"nodes, R^2 {r2:.3f} in log2(n)"
        )
        paper_base = [
            v
            for n in nodes
            if (v := layout.paper_value(layout.baseline, int(n), "s_per_itr")) is not None
        ]
        if len(paper_base) == len(nodes):
            pg = paper_base[-1] / paper_base[0] - 1
            r2p = log2_fit(nodes, np.array(paper_base))[2]
            parts[0] += f" (paper +{100 * pg:.0f}%, R^2 {r2p:.3f})"
    for alg in t["flat"]:
        col = cmp[cmp.algorithm == alg].sort_values("nodes")["s_per_itr"].to_numpy()
        if np.isnan(col).any():
            verdicts.append(MISSING)
            parts.append(f"{alg}: cells missing")
            continue
        fg = col[-1] / col[0] - 1
        verdicts.append(HOLDS if fg <= t["flat_growth"] else FAILS)
        pv = [v for n in nodes if (v := layout.paper_value(alg, int(n), "s_per_itr")) is not None]
        paper = f" (paper {100 * (pv[-1] / pv[0] - 1):+.0f}%)" if len(pv) == len(nodes) else ""
        parts.append(f"{alg}: {100 * fg:+.0f}%{paper}")
    return _combine(verdicts), "; ".join(parts)


def _faster(runs: pd.DataFrame, layout: Layout, t: dict) -> tuple[str, str]:
    verdicts, parts = [], []
    for n in layout.nodes:
        a = _seed_times(runs, layout, t["algorithm"], n)
        b = _seed_times(runs, layout, t["than"], n)
        if not len(a) or not len(b):
            verdicts.append(MISSING)
            parts.append(f"{n} nodes: missing")
            continue
        verdicts.append(HOLDS if a.max() < b.min() else FAILS if a.min() > b.max() else NOISE)
        pa = layout.paper_value(t["algorithm"], n, "s_per_itr")
        pb = layout.paper_value(t["than"], n, "s_per_itr")
        paper = f"; paper {pb / pa:.2f}x" if pa and pb else ""
        parts.append(f"{n} nodes: {b.mean() / a.mean():.2f}x faster{paper}")
    return _combine(verdicts), "; ".join(parts)


def _accuracy_order(cmp: pd.DataFrame, t: dict) -> tuple[str, str]:
    n = t["nodes"]
    order = t["order"]
    verdicts, parts = [], []
    for hi, lo in itertools.pairwise(order):
        a, b = _cell(cmp, hi, n), _cell(cmp, lo, n)
        if math.isnan(a.top1) or math.isnan(b.top1):
            verdicts.append(MISSING)
            parts.append(f"{hi} - {lo}: missing")
            continue
        d = a.top1 - b.top1
        se = math.sqrt(
            (a.top1_std**2 / a.n if a.n > 1 else 0.0) + (b.top1_std**2 / b.n if b.n > 1 else 0.0)
        )
        verdicts.append(HOLDS if d - Z * se > 0 else FAILS if d + Z * se < 0 else NOISE)
        parts.append(f"{hi} - {lo}: {d:+.2f} +- {se:.2f} points")
    ours = " > ".join(
        cmp[cmp.nodes == n].sort_values("top1", ascending=False)["algorithm"].tolist()
    )
    return _combine(verdicts), "; ".join(parts) + f" (ours by mean: {ours})"


def evaluate_claims(runs: pd.DataFrame, layout: Layout, claims: list[dict]) -> list[Verdict]:
    """Every claim's verdict on the study's runs (status "ok" only)."""
    cmp = comparison(runs, layout)
    out = []
    for c in claims:
        t = c["test"]
        kind = t["kind"]
        if kind == "gap_at_most":
            verdict, evidence = _gap_at_most(cmp, t)
        elif kind == "speedup_at_least":
            verdict, evidence = _speedup_at_least(cmp, t)
        elif kind == "log_growth":
            verdict, evidence = _log_growth(cmp, layout, t)
        elif kind == "faster":
            verdict, evidence = _faster(runs, layout, t)
        elif kind == "accuracy_order":
            verdict, evidence = _accuracy_order(cmp, t)
        else:
            raise ValueError(f"claim {c['id']}: unknown test kind={kind!r}")
        out.append(Verdict(c["id"], c["claim"], c["reading"], verdict, evidence))
    return out


def claims_markdown(verdicts: list[Verdict], layout: Layout) -> str:
    """``claims.md``: one section per claim with its verdict and numbers."""
    lines = [
        f"# The paper's claims on study `{layout.study}`",
        "",
        (
            "Each claim in the paper's words, how this study reads it, the verdict (holds / does "
            "not hold / within noise: the seed-to-seed noise cannot tell / not tested: runs "
            "missing), and the numbers behind "
            "it (ours: mean over seeds, +- the standard error of a difference or the range over "
            "seeds; the paper's in parentheses). Times are EMULATED under the study's network "
            "condition; the paper's are wall-clock, so only ratios are compared."
        ),
        "",
        "| claim | verdict |",
        "|---|---|",
    ]
    lines += [f"| {v.claim} | **{v.verdict}** |" for v in verdicts]
    for v in verdicts:
        lines += [
            "",
            f"## {v.claim}",
            "",
            f"- Reading: {v.reading}",
            f"- Verdict: **{v.verdict}**",
            f"- Numbers: {v.evidence}",
        ]
    return "\n".join(lines) + "\n"
