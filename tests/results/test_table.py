from __future__ import annotations

import math
import re

import pandas as pd
import pytest
from results_helpers import EXPECTED, make_record

from sgprepro.results import (
    EXTRA_ROWS,
    assemble,
    cell_stats,
    coverage,
    paper_table,
    run_counts,
    table_caption,
    to_csv,
    to_latex,
    to_markdown,
)
from sgprepro.results.table import (
    comparison_caption,
    comparison_table,
    format_measured,
    select_study,
)


def test_golden_markdown_and_csv(collected, layout):
    """The main table (top-1, gap and speed-up beside the paper's) of the fixture runs."""
    table = comparison_table(collected.runs, layout)
    md = to_markdown(table, comparison_caption(collected.runs, layout))
    assert md == (EXPECTED / "table1_small.md").read_text()
    assert to_csv(table) == (EXPECTED / "table1_small.csv").read_text()


def test_main_table_gap_and_speedup_by_hand(collected, layout):
    t = comparison_table(collected.runs, layout).set_index(["algorithm", "quantity"])
    # AllReduce 61.40 +- 0.28 vs SGP 60.90 +- 0.14 over two seeds: gap 0.50, SE 0.22
    assert t.loc[("SGP (1 peer)", "gap to AllReduce SGD, points"), "4 nodes"] == "+0.50 ± 0.22"
    assert t.loc[("SGP (1 peer)", "gap to AllReduce SGD, points"), "4: paper"] == "-0.10"
    # emulated 0.5100 / 0.2820 = 1.81; the paper's wall-clock 0.704 / 0.377 = 1.87
    assert t.loc[("SGP (1 peer)", "speed-up over AllReduce SGD"), "4 nodes"] == "1.81x"
    assert t.loc[("SGP (1 peer)", "speed-up over AllReduce SGD"), "4: paper"] == "1.87x"
    assert not any("s/itr" in q for q in t.index.get_level_values("quantity"))
    sentences = re.split(r"(?<!\bal)\. ", comparison_caption(collected.runs, layout))
    assert len(sentences) <= 3, sentences


def test_layout_holds_labels_and_published_numbers(layout):
    assert layout.labels == {
        "allreduce": "AllReduce SGD",
        "dpsgd": "D-PSGD",
        "adpsgd": "AD-PSGD",
        "sgp": "SGP (1 peer)",
    }
    assert layout.nodes == (4, 8, 16, 32)
    assert layout.paper_value("sgp", 32, "s_per_itr") == 0.426
    assert layout.paper_value("allreduce", 32, "s_per_itr") == 1.308
    assert layout.paper_value("dpsgd", 32, "top1") == 74.35
    assert len(layout.paper) == 16
    assert "Table 1" in layout.paper_source


def test_missing_and_partial_cells_say_so(collected, layout):
    table = paper_table(collected.runs, layout).set_index(["algorithm", "quantity"])
    assert table.loc[("D-PSGD", "top-1 % (node mean)"), "4 nodes: ours"] == "missing"
    assert table.loc[("AD-PSGD", "s/itr (emulated)"), "8 nodes: ours"] == "missing"
    assert table.loc[("SGP (1 peer)", "top-1 % (node mean)"), "8 nodes: ours"] == (
        "59.70 (n=1 of 2)"
    )
    # the conflicting allreduce run (top-1 58.0) is not averaged in
    assert table.loc[("AllReduce SGD", "top-1 % (node mean)"), "8 nodes: ours"] == (
        "60.90 (n=1 of 2)"
    )


def test_caption_says_emulated_seeds_and_counts(collected, layout):
    cap = table_caption(collected.runs, layout)
    assert "EMULATED" in cap
    assert "not wall-clock" in cap
    assert "seeds [0, 1]" in cap
    assert "6 of 32 expected" in cap
    assert "1 incomplete" in cap
    assert "1 failed" in cap
    assert "1 conflicting" in cap
    extra = table_caption(collected.runs, layout, EXTRA_ROWS)
    assert "WALL-CLOCK" in extra
    assert "averaged model" in extra
    assert "Paper:" not in extra
    assert "paper-equivalent" in extra


def test_extra_table_has_no_paper_columns(collected, layout):
    extra = paper_table(collected.runs, layout, EXTRA_ROWS)
    assert not any(c.endswith("paper") for c in extra.columns)
    assert set(extra["quantity"]) == {
        "s/itr (emulated)",
        "s/itr (paper-equivalent, emulated)",
        "top-1 % (averaged model)",
        "s/itr (wall-clock)",
        "consensus distance",
    }


def test_counts_and_coverage(collected, layout):
    counts = run_counts(collected.runs, layout)
    assert counts["expected"] == 4 * 4 * 2
    assert counts["present"] == 6
    assert counts["missing_absent"] == 24
    assert counts["runs_conflict"] == 1
    cov = coverage(collected.runs, layout).set_index(["algorithm", "nodes", "seed"])["status"]
    assert cov[("dpsgd", 4, 0)] == "incomplete"
    assert cov[("dpsgd", 8, 0)] == "failed"
    assert cov[("allreduce", 8, 1)] == "absent"
    assert cov[("allreduce", 8, 0)] == "ok"


def test_cell_stats_mean_std_over_seeds(collected, layout):
    st = cell_stats(collected.runs, layout).set_index(["algorithm", "nodes", "row"])
    r = st.loc[("allreduce", 4, "top1")]
    assert r["mean"] == pytest.approx(61.4)
    assert r["n"] == 2
    assert r["std"] == pytest.approx(pd.Series([61.2, 61.6]).std())
    assert r["paper"] == 76.23
    assert math.isnan(st.loc[("adpsgd", 4, "s_per_itr"), "mean"])


def test_format_measured():
    assert format_measured(76.234, math.nan, 1, 1, 2) == "76.23 (n=1)"
    assert format_measured(76.234, 0.1, 3, 3, 2) == "76.23 ± 0.10 (n=3)"
    assert format_measured(0.5, math.nan, 1, 3, 3) == "0.500 (n=1 of 3)"
    assert format_measured(math.nan, math.nan, 0, 3, 2) == "missing"


def test_multiple_networks_need_a_layout_filter(layout):
    runs = assemble(
        [make_record("a", network="eth_10g"), make_record("b", network="ib_100g", config_hash="h2")]
    ).runs
    with pytest.raises(ValueError, match="networks=\\['eth_10g', 'ib_100g'\\]"):
        select_study(runs, layout)


def test_latex_escapes_and_carries_caption(collected, layout):
    table = paper_table(collected.runs, layout)
    tex = to_latex(table, "50% of runs_ok & more", "tab:x")
    assert r"\caption{50\% of runs\_ok \& more}" in tex
    assert r"$\pm$" in tex
    assert "SGP (1 peer)" in tex
    assert tex.count(r"\\") == len(table) + 1
    assert r"\begin{tabular}{ll" + "r" * 8 + "}" in tex


def test_markdown_escapes_pipes():
    md = to_markdown(pd.DataFrame({"a|b": ["x|y"]}))
    assert md.splitlines()[0] == "| a\\|b |"
    assert md.splitlines()[2] == "| x\\|y |"
