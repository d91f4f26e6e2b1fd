"""Reproduced or not: a run of a study against its committed reference, cell by cell (pure + I/O).

The reference (``experiments/<study>/reference.csv``) is the committed result of the study: per
(algorithm, nodes) the top-1 mean, sample std and seed count, and the speed-up over the baseline
with its per-seed range. Emulated seconds scale with the machine's compute speed, so only
dimensionless numbers are compared: top-1 points and speed-ups.

A cell agrees when the difference of means is within two standard errors of a difference,
``2 sqrt(s_a^2/n_a + s_b^2/n_b)``, plus a floor (``TOP1_FLOOR`` points, ``SPEEDUP_FLOOR``
relative) for cells whose seeds happen to agree closely.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from sgprepro.results.compare import comparison
from sgprepro.results.layout import Layout

REFERENCE_COLUMNS = (
    "algorithm",
    "nodes",
    "top1",
    "top1_std",
    "n",
    "speedup",
    "speedup_lo",
    "speedup_hi",
)
Z = 2.0
TOP1_FLOOR = 0.3
"""Points of top-1 a cell may move and still agree, whatever its seeds' spread."""
SPEEDUP_FLOOR = 0.03
"""Relative change of a speed-up a cell may show and still agree."""


def reference_frame(runs: pd.DataFrame, layout: Layout) -> pd.DataFrame:
    """The study's result as a reference (what ``reference.csv`` holds)."""
    return comparison(runs, layout)[list(REFERENCE_COLUMNS)]


def read_reference(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, comment="#")
    missing = [c for c in REFERENCE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"reference file={path} lacks columns {missing}")
    return frame


def _speedup_sd(lo: float, hi: float) -> float:
    """A standard deviation from a range over seeds (range / 2, a rough bound for n = 3)."""
    return (hi - lo) / 2.0 if not (math.isnan(lo) or math.isnan(hi)) else 0.0


def agreement(runs: pd.DataFrame, layout: Layout, reference: pd.DataFrame) -> pd.DataFrame:
    """One row per (algorithm, nodes, quantity): ours, the reference's, the tolerance, agrees
    (None where there is no finished run to compare: ``ours`` is "missing")."""
    ours = reference_frame(runs, layout).set_index(["algorithm", "nodes"])
    ref = reference.set_index(["algorithm", "nodes"])
    rows = []
    for key in ours.index:
        a = ours.loc[key]
        if not a.n or math.isnan(a.top1):  # no finished run of this cell: nothing to compare
            rows.append(
                {
                    "algorithm": key[0],
                    "nodes": key[1],
                    "quantity": "all",
                    "ours": "missing",
                    "reference": "",
                    "tolerance": "",
                    "agrees": None,
                }
            )
            continue
        if key not in ref.index:
            rows.append(
                {
                    "algorithm": key[0],
                    "nodes": key[1],
                    "quantity": "all",
                    "ours": "",
                    "reference": "absent",
                    "tolerance": "",
                    "agrees": False,
                }
            )
            continue
        b = ref.loc[key]
        se = math.sqrt(
            (a.top1_std**2 / a.n if a.n > 1 else 0.0) + (b.top1_std**2 / b.n if b.n > 1 else 0.0)
        )
        tol = Z * se + TOP1_FLOOR
        d = a.top1 - b.top1
        rows.append(
            {
                "algorithm": key[0],
                "nodes": key[1],
                "quantity": "top-1 %",
                "ours": f"{a.top1:.2f} +- {a.top1_std:.2f} (n={int(a.n)})",
                "reference": f"{b.top1:.2f} +- {b.top1_std:.2f} (n={int(b.n)})",
                "tolerance": f"{tol:.2f}",
                "agrees": bool(abs(d) <= tol),
            }
        )
        if key[0] != layout.baseline and math.isnan(a.speedup):  # no baseline run at this n
            rows.append(
                {
                    "algorithm": key[0],
                    "nodes": key[1],
                    "quantity": "speed-up",
                    "ours": "missing",
                    "reference": f"{b.speedup:.2f}x",
                    "tolerance": "",
                    "agrees": None,
                }
            )
        elif key[0] != layout.baseline:
            sd = math.sqrt(
                _speedup_sd(a.speedup_lo, a.speedup_hi) ** 2
                + _speedup_sd(b.speedup_lo, b.speedup_hi) ** 2
            )
            tol_s = Z * sd + SPEEDUP_FLOOR * b.speedup
            rows.append(
                {
                    "algorithm": key[0],
                    "nodes": key[1],
                    "quantity": "speed-up",
                    "ours": f"{a.speedup:.2f}x",
                    "reference": f"{b.speedup:.2f}x",
                    "tolerance": f"{tol_s:.2f}",
                    "agrees": bool(abs(a.speedup - b.speedup) <= tol_s),
                }
            )
    return pd.DataFrame(rows)


def not_compared_markdown(changed: dict[str, int], layout: Layout, reference_path: Path) -> str:
    """``agreement.md`` when the runs change the study's settings: they are another experiment
    than the one the reference records, so no cell is compared."""
    from sgprepro.results.table import changed_settings_note

    return "\n".join(
        [
            f"# Reproduced or not: study `{layout.study}` against its reference",
            "",
            (
                f"**Not compared.**{changed_settings_note(changed)} The reference "
                f"(`{reference_path}`) records the study with its own settings, so these runs "
                "are another experiment: run the study's sweep without these overrides to check "
                "a reproduction, or keep this report as the result of the variant."
            ),
        ]
    )


def agreement_markdown(frame: pd.DataFrame, layout: Layout, reference_path: Path) -> str:
    """``agreement.md``: the verdict, the cells that disagree, then every cell."""
    from sgprepro.results.table import to_markdown

    missing = frame[frame.agrees.isna()] if len(frame) else frame
    present = frame[frame.agrees.notna()] if len(frame) else frame
    bad = present[~present.agrees.astype(bool)]
    head = [
        f"# Reproduced or not: study `{layout.study}` against its reference",
        "",
        (
            f"Reference: `{reference_path}` (the committed result of the study). A cell agrees "
            f"when the difference is within {Z:g} standard errors of a difference of seed means "
            f"plus {TOP1_FLOOR} points (top-1) or {100 * SPEEDUP_FLOOR:.0f}% (speed-up over "
            f"{layout.labels.get(layout.baseline, layout.baseline)}, EMULATED ratio)."
        ),
        "",
        f"**{len(present) - len(bad)} of {len(present)} cells agree.**"
        + (
            f" {len(missing)} row(s) have no finished run here (of the cell, or for a speed-up of "
            "the baseline at that node count) and are not compared (missing)."
            if len(missing)
            else ""
        ),
    ]
    if len(bad):
        head += ["", "Cells that do not agree:", "", to_markdown(bad.drop(columns="agrees"))]
    head += ["", "Every cell:", "", to_markdown(frame)]
    return "\n".join(head)
