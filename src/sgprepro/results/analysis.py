"""Analyses beyond the paper's table (pure)."""

from __future__ import annotations

import pandas as pd

from sgprepro.results.layout import Layout
from sgprepro.results.table import cell_stats


def consensus_gap(runs: pd.DataFrame, layout: Layout) -> pd.DataFrame:
    """Per (algorithm, nodes): final consensus distance and the top-1 gap to the baseline.

    The gap is baseline top-1 minus the algorithm's (node means averaged over seeds, status "ok"
    only), in points, at the same node count: positive = the algorithm trails the baseline.

    Returns:
        Columns algorithm, label, nodes, consensus, top1, gap_top1, n (seeds behind the
        algorithm's cell); NaN where a cell or its baseline is missing.
    """
    stats = cell_stats(runs, layout, ("top1", "consensus"))
    keys = ["algorithm", "label", "nodes"]
    top1 = stats[stats["row"] == "top1"][[*keys, "mean", "n"]].rename(columns={"mean": "top1"})
    cons = stats[stats["row"] == "consensus"][[*keys, "mean"]].rename(columns={"mean": "consensus"})
    out = top1.merge(cons, on=keys, how="left", validate="one_to_one")
    base = out[out["algorithm"] == layout.baseline].set_index("nodes")["top1"]
    out["gap_top1"] = out["nodes"].map(base) - out["top1"]
    return out[["algorithm", "label", "nodes", "consensus", "top1", "gap_top1", "n"]].reset_index(
        drop=True
    )
