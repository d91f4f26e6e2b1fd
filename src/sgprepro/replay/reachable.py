"""How far the calibration column is from parameters that meet the held-out targets.

A diagnostic, not a calibration: the search here SEES the held-out cells. It answers "could these
programs meet the targets at all with ``<= 3`` parameters, and at what cost on the calibration
column?", by two deterministic searches over (compute_s, efficiency, cpu_pass_s):

- minimax: the smallest worst-cell error on the calibration column alone;
- reachable: the smallest worst-cell calibration error among parameters whose replay meets both
  held-out targets (MAPE and worst cell).

Beside them, one least-squares fit per calibration cell of the other calibration cells: the
cell whose omission brings the rest of the table closest is the one the others disagree with.

Both are local searches (Nelder-Mead from the best points of a coarse scan around the fit,
restarted where it stalls): what they report is the best they found, not a proven optimum.

Every time is EMULATED by the timing engine, as in the replay.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sgprepro.replay.calibrate import (
    CALIBRATION_NODES,
    Calibration,
    bounded,
    calibrate,
)
from sgprepro.replay.fit import nelder_mead
from sgprepro.replay.model import Params, emulate
from sgprepro.replay.paper import ALGORITHMS, PaperTable, load_paper_table
from sgprepro.replay.run import HELD_OUT_MAPE_TARGET, HELD_OUT_MAX_TARGET, Replay, run_replay

SEARCH_ITERATIONS = 30
"""Iterations per replayed cell during the searches: the noise-free replays are periodic long
before (the reported points are then replayed at the table's own iteration counts)."""
PENALTY = 50.0
"""Weight of a held-out target's excess (in %) against the calibration error (in %)."""
MAX_EVALS = 300
"""Evaluations per start of each search."""
SCAN = ((0.8, 1.0, 1.2, 1.4), (0.9, 1.0, 1.1, 1.2), (0.5, 1.0, 2.0))
"""The coarse scan the searches start from: factors on the fit's (compute_s, efficiency,
cpu_pass_s)."""
SEARCH_STARTS = 3
"""Nelder-Mead starts: the best points of the scan."""
RESTARTS = 3
"""Restarts from where the best start stalled (Nelder-Mead stalls at the kinks of a worst-cell
error)."""


@dataclass(frozen=True)
class Point:
    """Parameters and their full replay.

    Attributes:
        params: the three physical parameters.
        replay: the replay at those parameters (the table's iteration counts).
    """

    params: Params
    replay: Replay

    @property
    def calibration_worst_pct(self) -> float:
        """Largest absolute % error over the calibration cells."""
        t = self.replay.table
        return float(t[t.used_for_calibration]["error_pct"].abs().max())


@dataclass(frozen=True)
class LeftOut:
    """The least-squares fit of the calibration cells less one, and its full replay.

    Attributes:
        algorithm: the left-out cell's algorithm.
        nodes: the left-out cell's node count.
        point: the fit's parameters and replay.
    """

    algorithm: str
    nodes: int
    point: Point

    @property
    def error_pct(self) -> float:
        """The left-out cell's % error under the fit of the others."""
        t = self.point.replay.table
        row = t[(t["algorithm"] == self.algorithm) & (t["nodes"] == self.nodes)]
        return float(row["error_pct"].iloc[0])


@dataclass(frozen=True)
class Reachability:
    """The least-squares fit beside the two searches' points and the leave-one-out fits.

    Attributes:
        fit: the replay's own least-squares fit (sees the calibration column only).
        minimax: the parameters with the smallest worst calibration-cell error.
        reachable: the parameters that meet both held-out targets with the smallest worst
            calibration-cell error; ``None`` when the search found none.
        left_out: one least-squares fit per calibration cell, of the calibration cells less
            that one: which cell pulls the fit away from the rest of the table.
    """

    fit: Point
    minimax: Point
    reachable: Point | None
    left_out: tuple[LeftOut, ...] = ()


def _errors(params: Params, cells: Sequence[tuple[str, int]], paper: PaperTable) -> np.ndarray:
    return np.array(
        [
            100.0
            * (
                emulate(a, n, params, paper, SEARCH_ITERATIONS).s_per_itr / paper.s_per_itr[a][n]
                - 1.0
            )
            for a, n in cells
        ]
    )


def _point(params: Params, paper: PaperTable, nodes: tuple[int, ...]) -> Point:
    cal = Calibration(params, float("nan"), paper, nodes)
    return Point(params, run_replay(calibration=cal))


def reachability(
    paper: PaperTable | None = None,
    nodes: Sequence[int] = (CALIBRATION_NODES,),
    max_evals: int = MAX_EVALS,
    fit: Calibration | None = None,
) -> Reachability:
    """Fit, minimax and reachable points for calibration on ``nodes`` (the 4-node column).

    ``fit``: the least-squares fit of those columns when the caller has it (the replay's own);
    fitted here otherwise."""
    paper = paper or load_paper_table()
    cols = tuple(sorted(set(nodes)))
    fit = fit if fit is not None else calibrate(paper, cols)
    cal_cells = [(a, n) for n in cols for a in ALGORITHMS]
    held = [(a, n) for n in paper.nodes if n not in cols for a in ALGORITHMS]
    if not held:
        raise ValueError(
            f"--calibrate-on={list(cols)} with --reachable: every column is calibrated, so there "
            "are no held-out cells to reach; leave at least one column out"
        )
    origin = np.array([fit.compute_s, fit.params.efficiency, fit.cpu_pass_s])
    grid = [origin * np.array(g) for g in itertools.product(*SCAN)]
    step = np.array([0.02, 0.03, 0.005])

    def minimax(x: np.ndarray) -> float:
        params, outside = bounded(x, paper)
        return float(np.abs(_errors(params, cal_cells, paper)).max()) + 100.0 * outside

    def reach(x: np.ndarray) -> float:
        params, outside = bounded(x, paper)
        cal_err = np.abs(_errors(params, cal_cells, paper))
        held_err = np.abs(_errors(params, held, paper))
        excess = max(0.0, held_err.mean() - HELD_OUT_MAPE_TARGET) + max(
            0.0, held_err.max() - HELD_OUT_MAX_TARGET
        )
        return float(cal_err.max()) + PENALTY * excess + 100.0 * outside

    def best(f) -> Params:
        """Nelder-Mead from the best points of the scan, then restarted with a fresh simplex
        where it stalled, until a restart gains nothing."""
        scanned = sorted(grid, key=f)[:SEARCH_STARTS]
        x, v = min((nelder_mead(f, s, step, max_evals, 1e-7) for s in scanned), key=lambda r: r[1])
        for _ in range(RESTARTS):
            y, w = nelder_mead(f, x, step, max_evals, 1e-7)
            if w >= v - 1e-6:
                break
            x, v = y, w
        return bounded(x, paper)[0]

    reached = _point(best(reach), paper, cols)
    left_out = tuple(
        LeftOut(a, n, _point(calibrate(paper, cols, leave_out=[(a, n)]).params, paper, cols))
        for a, n in cal_cells
    )
    return Reachability(
        fit=_point(fit.params, paper, cols),
        minimax=_point(best(minimax), paper, cols),
        reachable=reached if reached.replay.meets_targets else None,
        left_out=left_out,
    )
