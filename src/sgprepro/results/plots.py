"""Figures of a study: pure functions, DataFrame in, `matplotlib.figure.Figure` out.

Figures are built on the Agg canvas directly (no pyplot, no global backend state); save them with
`fig.savefig(path)`. Every time axis says whether it shows emulated or wall-clock time.
"""

from __future__ import annotations

import math

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sgprepro.results.layout import Layout
from sgprepro.results.table import cell_stats, select_study

MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "*")
TIME_LABELS = {
    "emulated": "s/itr (emulated under the run's network)",
    "wall": "s/itr (wall-clock, measured)",
}
_TIME_ROWS = {"emulated": "s_per_itr", "wall": "wall_s_per_itr"}
_CURVE_TIME = {"emulated": "time/emulated_s", "wall": "time/wall_s"}


def _figure(
    nrows: int = 1, ncols: int = 1, width: float = 6.0, height: float = 4.0
) -> tuple[Figure, list]:
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, [ax for row in axes for ax in row]


def _colors(layout: Layout) -> dict[str, str]:
    return {alg: f"C{i}" for i, (alg, _) in enumerate(layout.algorithms)}


def _markers(layout: Layout) -> dict[int, str]:
    return {n: MARKERS[i % len(MARKERS)] for i, n in enumerate(layout.nodes)}


def accuracy_vs_time(runs: pd.DataFrame, layout: Layout, time: str = "emulated") -> Figure:
    """Top-1 (node mean) against s/itr, one point per (algorithm, nodes).

    Two panels side by side: measured (filled markers, s/itr `time`) and the paper (hollow
    markers, its wall-clock s/itr). Colour = algorithm, marker = node count, each point labelled.

    Args:
        runs: runs frame (status "ok" rows are used).
        layout: the study layout.
        time: "emulated" (`time/emulated_s_per_itr`) or "wall" (`time/wall_s_per_itr`).
    """
    stats = cell_stats(runs, layout, ("top1", _TIME_ROWS[time]))
    fig, (ax_m, ax_p) = _figure(1, 2)
    colors, markers = _colors(layout), _markers(layout)
    for alg, _ in layout.algorithms:
        for n in layout.nodes:
            s = stats[(stats["algorithm"] == alg) & (stats["nodes"] == n)].set_index("row")
            x, y = s.loc[_TIME_ROWS[time], "mean"], s.loc["top1", "mean"]
            if not (math.isnan(x) or math.isnan(y)):
                ax_m.scatter([x], [y], color=colors[alg], marker=markers[n], s=50)
                ax_m.annotate(f"{n}", (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
            px, py = layout.paper_value(alg, n, "s_per_itr"), layout.paper_value(alg, n, "top1")
            if px is not None and py is not None:
                ax_p.scatter(
                    [px], [py], facecolors="none", edgecolors=colors[alg], marker=markers[n], s=50
                )
                ax_p.annotate(
                    f"{n}", (px, py), textcoords="offset points", xytext=(5, 4), fontsize=8
                )
    ax_m.set_title("measured (filled)")
    ax_m.set_xlabel(TIME_LABELS[time])
    ax_p.set_title("paper, Table 1 (hollow)")
    ax_p.set_xlabel("s/itr (wall-clock on the paper's 10 GbE cluster)")
    for ax in (ax_m, ax_p):
        ax.set_ylabel("top-1 % (mean over nodes)")
        ax.grid(alpha=0.3)
    handles = [
        ax_m.scatter([], [], color=colors[a], marker="o", label=lab) for a, lab in layout.algorithms
    ]
    handles += [
        ax_m.scatter([], [], color="grey", marker=markers[n], label=f"{n} nodes")
        for n in layout.nodes
    ]
    fig.legend(handles=handles, loc="outside right upper", fontsize=8)
    fig.suptitle(f"{layout.study}: top-1 vs s/itr (point labels = nodes)")
    return fig


def time_vs_nodes(runs: pd.DataFrame, layout: Layout, time: str = "emulated") -> Figure:
    """s/itr against node count per algorithm, measured (solid) vs paper (dashed, hollow).

    Left: absolute s/itr. Right: speed-up over the layout's baseline (baseline s/itr divided by
    the algorithm's) at each node count: absolute times of a small or emulated workload are not
    comparable with the paper's, ratios are.
    """
    stats = cell_stats(runs, layout, (_TIME_ROWS[time],))
    fig, (ax_t, ax_r) = _figure(1, 2)
    colors = _colors(layout)
    nodes = list(layout.nodes)
    base_m = stats[stats["algorithm"] == layout.baseline].set_index("nodes")["mean"]
    base_p = {n: layout.paper_value(layout.baseline, n, "s_per_itr") for n in nodes}
    for alg, label in layout.algorithms:
        m = stats[stats["algorithm"] == alg].set_index("nodes")["mean"].reindex(nodes)
        p = pd.Series(
            [layout.paper_value(alg, n, "s_per_itr") for n in nodes], index=nodes, dtype=float
        )
        kw = {"color": colors[alg]}
        ax_t.plot(nodes, m.values, "o-", label=f"{label} measured", **kw)
        ax_t.plot(nodes, p.values, "o--", mfc="none", label=f"{label} paper", **kw)
        ax_r.plot(nodes, (base_m.reindex(nodes) / m).values, "o-", **kw)
        bp = pd.Series(base_p, dtype=float)
        ax_r.plot(nodes, (bp / p).values, "o--", mfc="none", **kw)
    for ax in (ax_t, ax_r):
        ax.set_xscale("log", base=2)
        ax.set_xticks(nodes, [str(n) for n in nodes])
        ax.set_xlabel("nodes")
        ax.grid(alpha=0.3)
    clock = "emulated" if time == "emulated" else "wall-clock"
    ax_t.set_ylabel(f"s/itr (log; ours {clock}, paper wall-clock)")
    ax_t.set_yscale("log")
    ax_r.set_ylabel(
        f"speed-up over {layout.labels.get(layout.baseline, layout.baseline)} (s/itr ratio)"
    )
    ax_t.legend(fontsize=7)
    fig.suptitle(f"{layout.study}: s/itr vs nodes (solid = measured {time}, dashed = paper)")
    return fig


def accuracy_curves(curves: pd.DataFrame, layout: Layout, time: str = "emulated") -> Figure:
    """Validation top-1 (node mean) against cumulative time, one panel per node count, one line
    per run (colour = algorithm).

    Args:
        curves: frame of `sgprepro.results.collect.load_curves`.
        time: "emulated" (`time/emulated_s`) or "wall" (`time/wall_s`).
    """
    return _curve_panels(
        curves,
        layout,
        _CURVE_TIME[time],
        "val/top1_node_mean",
        f"time (s, {'emulated' if time == 'emulated' else 'wall-clock'})",
        "val top-1 % (mean over nodes)",
    )


def consensus_curves(curves: pd.DataFrame, layout: Layout) -> Figure:
    """Consensus distance (mean_i ||z_i - z_bar||) against iteration, one panel per node count."""
    return _curve_panels(
        curves,
        layout,
        "step",
        "consensus/distance",
        "iteration",
        "consensus distance (mean over nodes of ||z_i - z_bar||)",
    )


def _curve_panels(
    curves: pd.DataFrame, layout: Layout, x: str, y: str, xlabel: str, ylabel: str
) -> Figure:
    sel = select_study(curves.assign(status="ok"), layout) if len(curves) else curves
    fig, axes = _figure(1, len(layout.nodes), width=4.0)
    colors = _colors(layout)
    for ax, n in zip(axes, layout.nodes, strict=True):
        here = sel[sel["nodes"] == n] if len(sel) else sel
        labelled: set[str] = set()
        for _, g in here.groupby("run_dir", sort=True) if len(here) else []:
            alg = g["algorithm"].iloc[0]
            g = g.sort_values(x)
            label = layout.labels.get(alg, alg)
            ax.plot(
                g[x],
                g[y],
                "-",
                marker=".",
                color=colors.get(alg, "black"),
                label=None if label in labelled else label,
            )
            labelled.add(label)
        ax.set_title(f"{n} nodes")
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        if labelled:
            ax.legend(fontsize=7)
    axes[0].set_ylabel(ylabel)
    fig.suptitle(f"{layout.study}: {ylabel} vs {xlabel} (one line per run)")
    return fig


def consensus_vs_gap(frame: pd.DataFrame, layout: Layout) -> Figure:
    """Accuracy gap to the baseline against consensus distance, one point per (algorithm, nodes).

    Args:
        frame: output of `sgprepro.results.analysis.consensus_gap`.
    """
    fig, (ax,) = _figure(1, 1)
    colors, markers = _colors(layout), _markers(layout)
    for _, r in frame.iterrows():
        if math.isnan(r["consensus"]) or math.isnan(r["gap_top1"]):
            continue
        ax.scatter(
            [r["consensus"]],
            [r["gap_top1"]],
            color=colors.get(r["algorithm"], "black"),
            marker=markers.get(int(r["nodes"]), "o"),
            s=50,
        )
        ax.annotate(
            f"{layout.labels.get(r['algorithm'], r['algorithm'])}, {int(r['nodes'])}",
            (r["consensus"], r["gap_top1"]),
            textcoords="offset points",
            xytext=(5, 4),
            fontsize=7,
        )
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xlabel("final consensus distance (mean over nodes of ||z_i - z_bar||)")
    base = layout.labels.get(layout.baseline, layout.baseline)
    ax.set_ylabel(f"top-1 gap to {base} (points; node mean, same nodes)")
    ax.grid(alpha=0.3)
    fig.suptitle(f"{layout.study}: consensus distance vs accuracy gap")
    return fig
