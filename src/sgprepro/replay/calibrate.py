"""Fit the paper-era parameters on the 4-node column of Table 1 (other columns: a diagnostic)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import yaml

from sgprepro.paths import study_dir
from sgprepro.replay.fit import nelder_mead
from sgprepro.replay.model import Params, emulate
from sgprepro.replay.paper import ALGORITHMS, PAPER_STUDY, PaperTable, load_paper_table

CALIBRATION_NODES = 4
"""The only column of Table 1 the fit sees (the default; ``--calibrate-on`` picks others)."""
CALIBRATION_ITERATIONS = 200
"""Iterations per calibration replay: noise-free replays reach their steady state long before."""
STARTS = ((0.12, 0.3, 0.005), (0.2, 0.45, 0.02))
"""Starting points (compute_s, efficiency, cpu_pass_s) of the deterministic multi-start fit."""
MAX_EVALS = 160
"""Evaluations per start (each replays the calibration cells: four per fitted column)."""


@dataclass(frozen=True)
class Calibration:
    """The fitted parameters and how well they fit the calibration columns.

    Attributes:
        params: the three physical parameters.
        rms_rel_error: root-mean-square relative error on the calibration cells (replays of
            ``CALIBRATION_ITERATIONS`` iterations).
        paper: the table they were fitted to.
        nodes: the columns of the table the fit saw (empty: not fitted, e.g. the modern
            what-if's cited constants).
    """

    params: Params
    rms_rel_error: float
    paper: PaperTable
    nodes: tuple[int, ...] = (CALIBRATION_NODES,)

    @property
    def compute_s(self) -> float:
        return self.params.compute_s

    @property
    def message_time_s(self) -> float:
        return self.params.message_time_s(self.paper)

    @property
    def cpu_pass_s(self) -> float:
        return self.params.cpu_pass_s

    @property
    def latency_s(self) -> float:
        return self.paper.latency_s

    @property
    def effective_gbps(self) -> float:
        return self.paper.line_rate_gbps * self.params.efficiency


def bounded(x: np.ndarray, paper: PaperTable) -> tuple[Params, float]:
    """Params inside physical bounds, and how far ``x`` was outside them."""
    hi = min(min(v.values()) for v in paper.s_per_itr.values())
    lo_b, hi_b = np.array([1e-3, 1e-3, 0.0]), np.array([hi, 1.0, 0.5])
    clipped = np.clip(x, lo_b, hi_b)
    return Params(*(float(v) for v in clipped)), float(np.abs(x - clipped).sum())


def calibration_columns(values: Sequence[int], paper: PaperTable | None = None) -> tuple[int, ...]:
    """The node counts to calibrate on, checked: each a column of Table 1, at least one.

    Raises ``ValueError`` naming the option, the value, the rule and a fix.
    """
    paper = paper or load_paper_table()
    cols = tuple(sorted({int(v) for v in values}))
    bad = [v for v in cols if v not in paper.nodes]
    if not cols or bad:
        have = ", ".join(str(n) for n in paper.nodes)
        raise ValueError(
            f"--calibrate-on={list(values)}: each value must be a node count of Table 1 "
            f"({have}) and at least one is needed; e.g. --calibrate-on {paper.nodes[0]} "
            f"{paper.nodes[1]}"
        )
    return cols


def calibrate(
    paper: PaperTable | None = None,
    nodes: Sequence[int] = (CALIBRATION_NODES,),
    max_evals: int = MAX_EVALS,
    leave_out: Sequence[tuple[str, int]] = (),
) -> Calibration:
    """Least squares of the relative errors of the cells of the ``nodes`` columns (the 4-node
    column by default) over (compute_s, efficiency, cpu_pass_s), deterministic multi-start
    Nelder-Mead with ``max_evals`` evaluations per start. ``leave_out``: cells of those columns
    the fit does not see (a diagnostic: which cell pulls the fit away from the rest)."""
    paper = paper or load_paper_table()
    cols = calibration_columns(nodes, paper)
    cells = [(a, n) for n in cols for a in ALGORITHMS if (a, n) not in set(leave_out)]

    def sse(x: np.ndarray) -> float:
        params, outside = bounded(x, paper)
        return (
            sum(
                (
                    emulate(a, n, params, paper, CALIBRATION_ITERATIONS).s_per_itr
                    / paper.s_per_itr[a][n]
                    - 1.0
                )
                ** 2
                for a, n in cells
            )
            + outside
        )

    best = min(
        (
            nelder_mead(sse, np.array(s), np.array([0.02, 0.05, 0.005]), max_evals, 1e-5)
            for s in STARTS
        ),
        key=lambda r: r[1],
    )
    params, _ = bounded(best[0], paper)
    return Calibration(params, math.sqrt(best[1] / len(cells)), paper, cols)


def stored_calibration(paper: PaperTable | None = None) -> Calibration:
    """The fit stored in ``experiments/table1_paper/calibration.json`` (``--write-calibration``),
    without refitting: what the report and ``paper_regime`` use. A test checks it against a fresh
    fit (:func:`calibrate`)."""
    from sgprepro.regime import paper_calibration

    paper = paper or load_paper_table()
    cal = paper_calibration()
    return Calibration(
        Params(cal.compute_s, cal.efficiency, cal.cpu_pass_s), cal.rms_rel_error, paper
    )


def modern_calibration(paper: PaperTable | None = None) -> Calibration:
    """The modern what-if's parameters: cited constants from ``workload.yaml``, not fitted."""
    paper = paper or load_paper_table()
    work = yaml.safe_load((study_dir(PAPER_STUDY) / "workload.yaml").read_text())["modern"]
    params = Params(float(work["compute_s"]), float(work["efficiency"]), float(work["cpu_pass_s"]))
    return Calibration(params, math.nan, paper, ())
