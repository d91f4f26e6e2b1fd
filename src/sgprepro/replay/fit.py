"""A small deterministic minimiser (Nelder-Mead with the standard coefficients), numpy only."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

REFLECT, EXPAND, CONTRACT, SHRINK = 1.0, 2.0, 0.5, 0.5


def nelder_mead(
    f: Callable[[np.ndarray], float],
    x0: np.ndarray,
    step: np.ndarray,
    max_evals: int = 400,
    xtol: float = 1e-7,
) -> tuple[np.ndarray, float]:
    """Minimise ``f`` from ``x0`` (initial simplex: x0 and x0 + step_k e_k); returns (x, f(x))."""
    dim = len(x0)
    simplex = [np.asarray(x0, dtype=float)]
    simplex += [simplex[0] + np.eye(dim)[k] * step[k] for k in range(dim)]
    values = [f(x) for x in simplex]
    evals = len(values)
    while evals < max_evals:
        order = np.argsort(values, kind="stable")
        simplex = [simplex[k] for k in order]
        values = [values[k] for k in order]
        if max(np.abs(x - simplex[0]).max() for x in simplex[1:]) < xtol:
            break
        centroid = np.mean(simplex[:-1], axis=0)
        refl = centroid + REFLECT * (centroid - simplex[-1])
        fr = f(refl)
        evals += 1
        if fr < values[0]:
            exp = centroid + EXPAND * (centroid - simplex[-1])
            fe = f(exp)
            evals += 1
            simplex[-1], values[-1] = (exp, fe) if fe < fr else (refl, fr)
        elif fr < values[-2]:
            simplex[-1], values[-1] = refl, fr
        else:
            con = centroid + CONTRACT * (simplex[-1] - centroid)
            fc = f(con)
            evals += 1
            if fc < values[-1]:
                simplex[-1], values[-1] = con, fc
            else:  # shrink towards the best point
                for k in range(1, dim + 1):
                    simplex[k] = simplex[0] + SHRINK * (simplex[k] - simplex[0])
                    values[k] = f(simplex[k])
                    evals += 1
    k = int(np.argmin(values))
    return simplex[k], float(values[k])
