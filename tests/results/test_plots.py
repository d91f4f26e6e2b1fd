from __future__ import annotations

import pytest
from matplotlib.figure import Figure

from sgprepro.results import consensus_gap, load_curves, plots


@pytest.fixture(scope="module")
def curves(collected):
    return load_curves(collected.ok["run_dir"])


def _xlabels(fig: Figure) -> list[str]:
    return [ax.get_xlabel() for ax in fig.axes if ax.get_xlabel()]


def test_accuracy_vs_time_measured_and_paper_side_by_side(collected, layout):
    fig = plots.accuracy_vs_time(collected.runs, layout)
    measured, paper = fig.axes
    assert len(measured.collections) - len(layout.algorithms) - len(layout.nodes) == 4  # cells
    assert len(paper.collections) == 16  # every published cell, hollow
    assert "emulated" in measured.get_xlabel()
    assert "wall-clock" in paper.get_xlabel()
    assert (
        "wall-clock" in plots.accuracy_vs_time(collected.runs, layout, "wall").axes[0].get_xlabel()
    )


def test_time_vs_nodes_lines(collected, layout):
    fig = plots.time_vs_nodes(collected.runs, layout)
    assert len(fig.axes) == 2
    # ours (left) and the paper's (right): seconds of different clocks never share an axis
    assert [len(ax.lines) for ax in fig.axes] == [len(layout.algorithms)] * 2
    assert "emulated" in fig.axes[0].get_ylabel()
    assert "wall-clock" in fig.axes[1].get_ylabel()


def test_curve_figures_one_panel_per_nodes_one_line_per_run(curves, layout):
    acc = plots.accuracy_curves(curves, layout)
    assert len(acc.axes) == len(layout.nodes)
    assert [len(ax.lines) for ax in acc.axes] == [4, 2, 0, 0]
    assert all("emulated" in x for x in _xlabels(acc))
    assert "wall-clock" in _xlabels(plots.accuracy_curves(curves, layout, "wall"))[0]
    cons = plots.consensus_curves(curves, layout)
    assert [len(ax.lines) for ax in cons.axes] == [4, 2, 0, 0]
    assert all(x == "iteration" for x in _xlabels(cons))


def test_consensus_vs_gap(collected, layout):
    gap = consensus_gap(collected.runs, layout).set_index(["algorithm", "nodes"])
    assert gap.loc[("sgp", 4), "gap_top1"] == pytest.approx(0.5)
    assert gap.loc[("sgp", 8), "gap_top1"] == pytest.approx(1.2)
    assert gap.loc[("allreduce", 4), "gap_top1"] == 0.0
    fig = plots.consensus_vs_gap(gap.reset_index(), layout)
    legend = len(layout.algorithms) + len(layout.nodes)  # empty handles for the legend
    assert len(fig.axes) == 1
    assert len(fig.axes[0].collections) == 4 + legend


def test_speedup_figure_ours_beside_the_papers(collected, layout):
    fig = plots.speedup_vs_nodes(collected.runs, layout)
    (ax,) = fig.axes
    assert "speed-up" in ax.get_ylabel()
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "SGP (1 peer), this study" in labels
    assert "SGP (1 peer), paper" in labels
    paper_sgp = next(line for line in ax.lines if line.get_label() == "SGP (1 peer), paper")
    assert paper_sgp.get_ydata()[-1] == pytest.approx(1.308 / 0.426)


def test_figures_on_empty_inputs_and_saving(tmp_path, collected, layout, curves):
    empty = collected.runs.iloc[0:0]
    figs = [
        plots.accuracy_vs_time(empty, layout),
        plots.time_vs_nodes(empty, layout),
        plots.accuracy_curves(curves.iloc[0:0], layout),
    ]
    assert all(isinstance(fig, Figure) for fig in figs)
    figs[0].savefig(tmp_path / "f.png", dpi=30)
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    figs[1].savefig(tmp_path / "f.pdf")
    assert (tmp_path / "f.pdf").read_bytes()[:4] == b"%PDF"
