"""Figures of a study: pure functions, DataFrame in, `matplotlib.figure.Figure` out.

Figures are built on the Agg canvas directly (no pyplot, no global backend state) with a
constrained layout, so labels are not clipped; save them with `fig.savefig(path)`. Every time axis
says whether it shows emulated or wall-clock time; ours and the paper's seconds never share an
axis (only ratios do).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from sgprepro.results.layout import Layout
from sgprepro.results.table import cell_stats, resolve_rows, select_study

MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "*")
TIME_LABELS = {
    "emulated": "seconds per iteration, emulated under the run's condition",
    "wall": "seconds per iteration, wall-clock on this machine",
}
_TIME_ROWS = {"emulated": "s_per_itr", "wall": "wall_s_per_itr"}
_PAPER_CLOCK_LABEL = "seconds per iteration, paper-equivalent (emulated)"


def _time_axis(time: str, layout: Layout) -> tuple[str, str]:
    """(key of the stats row, axis label) of ``time`` ("emulated" or "wall") for this layout:
    its emulated time is read on the layout's clock."""
    key = resolve_rows((_TIME_ROWS[time],), layout)[0]
    paper_clock = time == "emulated" and layout.time == "paper_equivalent"
    return key, _PAPER_CLOCK_LABEL if paper_clock else TIME_LABELS[time]


_CURVE_TIME = {"emulated": "time/emulated_s", "wall": "time/wall_s"}


def _figure(
    nrows: int = 1, ncols: int = 1, width: float = 6.0, height: float = 4.2
) -> tuple[Figure, list]:
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, [ax for row in axes for ax in row]


def _colors(layout: Layout) -> dict[str, str]:
    return {alg: f"C{i}" for i, (alg, _) in enumerate(layout.algorithms)}


def _markers(layout: Layout) -> dict[int, str]:
    return {n: MARKERS[i % len(MARKERS)] for i, n in enumerate(layout.nodes)}


def _legend(fig: Figure, ax, layout: Layout, with_nodes: bool = True) -> None:
    colors, markers = _colors(layout), _markers(layout)
    handles = [
        ax.scatter([], [], color=colors[a], marker="o", label=label)
        for a, label in layout.algorithms
    ]
    if with_nodes:
        handles += [
            ax.scatter([], [], color="grey", marker=markers[n], label=f"{n} nodes")
            for n in layout.nodes
        ]
    fig.legend(handles=handles, loc="outside right upper", fontsize=8)


def accuracy_vs_time(runs: pd.DataFrame, layout: Layout, time: str = "emulated") -> Figure:
    """Top-1 against s/itr, one point per (algorithm, nodes); ours and the paper's in two panels
    (their seconds are different units). Colour = algorithm, marker = node count."""
    key, axis_label = _time_axis(time, layout)
    stats = cell_stats(runs, layout, ("top1", _TIME_ROWS[time]))
    fig, (ax_m, ax_p) = _figure(1, 2, width=5.2)
    colors, markers = _colors(layout), _markers(layout)
    for alg, _ in layout.algorithms:
        for n in layout.nodes:
            s = stats[(stats["algorithm"] == alg) & (stats["nodes"] == n)].set_index("row")
            x, y = s.loc[key, "mean"], s.loc["top1", "mean"]
            if not (math.isnan(x) or math.isnan(y)):
                ax_m.scatter([x], [y], color=colors[alg], marker=markers[n], s=50)
            px, py = layout.paper_value(alg, n, "s_per_itr"), layout.paper_value(alg, n, "top1")
            if px is not None and py is not None:
                ax_p.scatter(
                    [px], [py], facecolors="none", edgecolors=colors[alg], marker=markers[n], s=50
                )
    ax_m.set_title("This study (mean over seeds)")
    ax_m.set_xlabel(axis_label)
    ax_p.set_title("The paper's Table 1")
    ax_p.set_xlabel("seconds per iteration, wall-clock on the paper's 10 GbE cluster")
    for ax in (ax_m, ax_p):
        ax.set_ylabel("top-1 % (mean over nodes)")
        ax.grid(alpha=0.3)
    _legend(fig, ax_m, layout)
    fig.suptitle("Accuracy against time per iteration")
    return fig


def speedup_vs_nodes(runs: pd.DataFrame, layout: Layout) -> Figure:
    """Speed-up over the baseline against node count: ours (emulated ratio, solid, with the
    range over seeds) and the paper's (ratio of wall-clock times, dashed)."""
    from sgprepro.results.compare import comparison

    cmp = comparison(runs, layout)
    fig, (ax,) = _figure(1, 1, width=6.5, height=5.4)
    colors = _colors(layout)
    nodes = list(layout.nodes)
    for alg, label in layout.algorithms:
        if alg == layout.baseline:
            continue
        c = cmp[cmp.algorithm == alg].set_index("nodes").reindex(nodes)
        lo, hi = c["speedup"] - c["speedup_lo"], c["speedup_hi"] - c["speedup"]
        ax.errorbar(
            nodes,
            c["speedup"],
            yerr=[lo.fillna(0), hi.fillna(0)],
            fmt="o-",
            color=colors[alg],
            capsize=3,
            label=f"{label}, this study",
        )
        ax.plot(
            nodes, c["paper_speedup"], "o--", mfc="none", color=colors[alg], label=f"{label}, paper"
        )
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xticks(nodes, [str(n) for n in nodes])
    ax.set_xlabel("nodes")
    base = layout.labels.get(layout.baseline, layout.baseline)
    ax.set_ylabel(f"speed-up over {base} (s/itr ratio)")
    ax.grid(alpha=0.3)
    fig.legend(loc="outside lower center", ncols=2, fontsize=8)
    ours = "emulated, at equal compute" if layout.time == "paper_equivalent" else "emulated"
    fig.suptitle(f"Speed-up over {base}\n(this study: {ours}; paper: wall-clock)", fontsize=10)
    return fig


def time_vs_nodes(runs: pd.DataFrame, layout: Layout, time: str = "emulated") -> Figure:
    """Our s/itr against node count per algorithm (one panel), the paper's in another."""
    _, axis_label = _time_axis(time, layout)
    stats = cell_stats(runs, layout, (_TIME_ROWS[time],))
    fig, (ax_m, ax_p) = _figure(1, 2, width=5.0)
    colors = _colors(layout)
    nodes = list(layout.nodes)
    for alg, label in layout.algorithms:
        m = stats[stats["algorithm"] == alg].set_index("nodes")["mean"].reindex(nodes)
        p = [layout.paper_value(alg, n, "s_per_itr") for n in nodes]
        ax_m.plot(nodes, m.values, "o-", color=colors[alg], label=label)
        ax_p.plot(
            nodes, [np.nan if v is None else v for v in p], "o--", mfc="none", color=colors[alg]
        )
    for ax in (ax_m, ax_p):
        ax.set_xscale("log", base=2)
        ax.set_xticks(nodes, [str(n) for n in nodes])
        ax.set_xlabel("nodes")
        ax.grid(alpha=0.3)
    ax_m.set_ylabel(axis_label)
    ax_m.set_title("This study")
    ax_p.set_ylabel("seconds per iteration, wall-clock")
    ax_p.set_title("The paper's Table 1")
    fig.legend(loc="outside right upper", fontsize=8)
    clock = "emulated" if time == "emulated" else "wall-clock"
    fig.suptitle(f"Time per iteration against node count ({clock} for this study)")
    return fig


def accuracy_curves(curves: pd.DataFrame, layout: Layout, time: str = "emulated") -> Figure:
    """Validation top-1 (node mean) against cumulative time, one panel per node count, one line
    per algorithm and seed (colour = algorithm)."""
    clock = "emulated" if time == "emulated" else "wall-clock"
    return _curve_panels(
        curves,
        layout,
        _CURVE_TIME[time],
        "val/top1_node_mean",
        f"time since start (s, {clock})",
        "validation top-1 % (mean over nodes)",
        f"Validation accuracy against {clock} time",
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
        "How far the nodes' models are from their average",
    )


def _curve_panels(
    curves: pd.DataFrame, layout: Layout, x: str, y: str, xlabel: str, ylabel: str, title: str
) -> Figure:
    sel = select_study(curves.assign(status="ok"), layout) if len(curves) else curves
    fig, axes = _figure(1, len(layout.nodes), width=3.6)
    colors = _colors(layout)
    for ax, n in zip(axes, layout.nodes, strict=True):
        here = sel[(sel["nodes"] == n) & sel[y].notna() & sel[x].notna()] if len(sel) else sel
        for _, g in here.groupby("run_dir", sort=True) if len(here) else []:
            g = g.sort_values(x)
            ax.plot(
                g[x],
                g[y],
                "-",
                marker=".",
                color=colors.get(g["algorithm"].iloc[0], "k"),
                alpha=0.8,
            )
        ax.set_title(f"{n} nodes")
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(ylabel)
    _legend(fig, axes[0], layout, with_nodes=False)
    fig.suptitle(f"{title} (one line per run)")
    return fig


def consensus_vs_gap(frame: pd.DataFrame, layout: Layout) -> Figure:
    """Accuracy gap to the baseline against consensus distance, one point per (algorithm, nodes).

    Args:
        frame: output of `sgprepro.results.analysis.consensus_gap`.
    """
    fig, (ax,) = _figure(1, 1, width=6.5)
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
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xscale("symlog", linthresh=1e-4)
    ax.set_xlabel("final consensus distance (mean over nodes of ||z_i - z_bar||)")
    base = layout.labels.get(layout.baseline, layout.baseline)
    ax.set_ylabel(f"top-1 gap to {base} (points, same nodes)")
    ax.grid(alpha=0.3)
    _legend(fig, ax, layout)
    fig.suptitle("Does disagreement between nodes cost accuracy?")
    return fig


def replay_figure(table: pd.DataFrame) -> Figure:
    """The paper-scale replay: emulated (solid) vs published (dashed) s/itr per algorithm against
    node count, the calibration column shaded."""
    fig, (ax,) = _figure(1, 1, width=6.5)
    algos = list(dict.fromkeys(table.algorithm))
    nodes = sorted(set(table.nodes))
    for i, algo in enumerate(algos):
        t = table[table.algorithm == algo].sort_values("nodes")
        color = f"C{i}"
        ax.plot(
            t.nodes,
            t.emulated_s_per_itr,
            "o-",
            color=color,
            label=f"{algo}, emulated",
        )
        if t.published_s_per_itr.notna().any():
            ax.plot(
                t.nodes,
                t.published_s_per_itr,
                "s--",
                mfc="none",
                color=color,
                label=f"{algo}, published",
            )
    cal = table[table.used_for_calibration]
    if len(cal):
        n0 = cal.nodes.iloc[0]
        ax.axvspan(n0 / 1.15, n0 * 1.15, color="grey", alpha=0.15, label="calibration column")
    ax.set_xscale("log", base=2)
    ax.set_xticks(nodes, [str(n) for n in nodes])
    ax.set_xlabel("nodes")
    ax.set_ylabel("seconds per iteration (ResNet-50, 10 GbE)")
    ax.grid(alpha=0.3)
    fig.legend(loc="outside right upper", fontsize=8)
    fig.suptitle("The timing engine at the paper's scale against the published Table 1")
    return fig


def gossip_map(frame: pd.DataFrame) -> Figure:
    """Where gossip wins: each gossip algorithm's speed-up over AllReduce on a grid of latency and
    transfer time (both relative to compute), the paper's 10 GbE point marked."""
    algos = list(dict.fromkeys(frame.algorithm))
    fig, axes = _figure(1, len(algos), width=3.8, height=3.8)
    grid = frame[~frame.paper]
    lats = sorted(set(grid.latency_over_compute))
    trs = sorted(set(grid.transfer_over_compute))
    vmin, vmax = max(grid.speedup.min(), 1e-2), grid.speedup.max()
    image = None
    for ax, algo in zip(axes, algos, strict=True):
        g = (
            grid[grid.algorithm == algo]
            .pivot(index="latency_over_compute", columns="transfer_over_compute", values="speedup")
            .reindex(index=lats, columns=trs)
        )
        image = ax.pcolormesh(
            np.arange(len(trs) + 1),
            np.arange(len(lats) + 1),
            g.values,
            cmap="RdBu",
            norm=LogNorm(vmin=min(vmin, 1 / vmax), vmax=max(vmax, 1 / vmin)),
        )
        for i in range(len(lats)):
            for j in range(len(trs)):
                ax.text(
                    j + 0.5, i + 0.5, f"{g.values[i, j]:.1f}", ha="center", va="center", fontsize=6
                )
        p = frame[frame.paper & (frame.algorithm == algo)].iloc[0]
        px = np.interp(np.log(p.transfer_over_compute), np.log(trs), np.arange(len(trs))) + 0.5
        py = np.interp(np.log(p.latency_over_compute), np.log(lats), np.arange(len(lats))) + 0.5
        ax.plot([px], [py], marker="*", color="gold", markersize=14, markeredgecolor="black")
        ax.set_xticks(np.arange(len(trs)) + 0.5, [f"{t:g}" for t in trs], fontsize=7)
        ax.set_yticks(np.arange(len(lats)) + 0.5, [f"{v:g}" for v in lats], fontsize=7)
        ax.set_xlabel("message transfer time / compute")
        ax.set_title(f"{algo} ({p.speedup:.1f}x at the paper's point)", fontsize=9)
    axes[0].set_ylabel("latency / compute")
    if image is not None:
        fig.colorbar(image, ax=axes, label="speed-up over AllReduce (emulated)")
    n = int(frame.nodes.iloc[0])
    fig.suptitle(
        f"Where gossip wins: speed-up over AllReduce at {n} nodes (star: the paper's 10 GbE)"
    )
    return fig
