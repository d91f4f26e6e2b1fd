from __future__ import annotations

import json

import pandas as pd
import pytest
from results_helpers import EXPECTED, FIXTURE_RUNS, STUDY_DIR

from sgprepro.paths import experiments_dir
from sgprepro.results import load_layout, plots
from sgprepro.results.__main__ import main
from sgprepro.results.report import save_figure, write_report


def test_write_report_files_and_provenance(tmp_path):
    rep = write_report(FIXTURE_RUNS, tmp_path, STUDY_DIR, formats=())
    names = {p.name for p in rep.files}
    assert {
        "table.md",
        "table.csv",
        "table.tex",
        "table_extra.md",
        "table_extra.csv",
        "table_extra.tex",
        "runs.csv",
        "cells.csv",
        "provenance.json",
        "consensus_gap.csv",
    } <= names
    assert not [n for n in names if n.endswith(".png")]  # figures: see test_save_figure
    assert (tmp_path / "table.md").read_text() == (EXPECTED / "table1_small.md").read_text()
    prov = json.loads((tmp_path / "provenance.json").read_text())
    assert prov["counts"]["present"] == 6
    assert prov["counts"]["runs_conflict"] == 1
    assert {r["status"] for r in prov["runs"]} == {"ok", "incomplete", "failed", "conflict"}
    assert {"python", "pandas", "matplotlib"} <= set(prov["versions"])
    assert prov["created_at"]
    assert prov["run_cpu_kernels"] == ["not recorded"]  # the fixture's runs predate the record
    assert len(prov["problems"]) == 4
    assert {"algorithm": "dpsgd", "nodes": 4, "seed": 0, "status": "incomplete"} in prov[
        "missing_cells"
    ]


def test_cli_prints_the_markdown_table(tmp_path, capsys):
    out = tmp_path / "report"
    rc = main(
        ["--runs", str(FIXTURE_RUNS), "--study", str(STUDY_DIR), "--out", str(out), "--formats", ""]
    )
    captured = capsys.readouterr()
    assert rc == 0
    assert captured.out.strip() == (EXPECTED / "table1_small.md").read_text().strip()
    assert "4 problem(s)" in captured.err
    assert "metrics_r5.jsonl:6" in captured.err
    assert (out / "provenance.json").exists()
    assert not list(out.glob("*.png"))  # --formats "" builds the figures but saves none


def test_save_figure_png_and_pdf(tmp_path, collected):
    fig = plots.time_vs_nodes(collected.runs, load_layout(STUDY_DIR))
    paths = save_figure(fig, tmp_path, "s_per_itr_vs_nodes_emulated", dpi=30)
    assert [p.name for p in paths] == [
        "s_per_itr_vs_nodes_emulated.png",
        "s_per_itr_vs_nodes_emulated.pdf",
    ]
    assert paths[0].read_bytes()[:4] == b"\x89PNG"
    assert paths[1].read_bytes()[:4] == b"%PDF"


def test_a_variant_of_the_study_is_not_scored_against_its_reference(tmp_path):
    """Runs with overrides beyond the study's sweep (their run.json `overrides`) get a report
    whose agreement.md compares nothing, and no agreement.csv; the plain runs are compared."""
    import shutil

    import yaml

    study = tmp_path / "study"
    shutil.copytree(STUDY_DIR, study)
    raw = yaml.safe_load((study / "layout.yaml").read_text())
    raw["paper"]["file"] = str((STUDY_DIR / raw["paper"]["file"]).resolve())
    raw["reference"] = "reference.csv"
    (study / "layout.yaml").write_text(yaml.safe_dump(raw))
    write_report(FIXTURE_RUNS, tmp_path / "plain", study, formats=())  # the reference: its cells
    (tmp_path / "plain" / "cells.csv").replace(study / "reference.csv")
    plain = write_report(FIXTURE_RUNS, tmp_path / "plain", study, formats=())
    assert "agreement.csv" in {p.name for p in plain.files}
    assert "cells agree" in (tmp_path / "plain" / "agreement.md").read_text()

    runs = tmp_path / "runs"
    shutil.copytree(FIXTURE_RUNS, runs)
    for path in runs.glob("*/run.json"):
        rj = json.loads(path.read_text())
        path.write_text(json.dumps({**rj, "overrides": "optim.epochs=36"}))
    variant = write_report(runs, tmp_path / "variant", study, formats=())
    names = {p.name for p in variant.files}
    assert "agreement.md" in names
    assert "agreement.csv" not in names
    text = (tmp_path / "variant" / "agreement.md").read_text()
    assert "**Not compared.** These runs change the study's settings: optim.epochs=36" in text
    assert "optim.epochs=36" in (tmp_path / "variant" / "table.md").read_text().split("\n")[0]


def test_a_study_without_a_layout_is_laid_out_as_its_runs_are(tmp_path, capsys):
    """An ad-hoc sweep (no experiments/<study>/layout.yaml): the table holds its rows, node
    counts and seeds, with the shipped layouts' labels and the paper beside it."""
    out = tmp_path / "report"
    study = "table1_eth10g"  # the fixture runs' study, with no folder in experiments/
    rc = main(["--runs", str(FIXTURE_RUNS), "--study", study, "--out", str(out), "--formats", ""])
    table = capsys.readouterr().out
    assert rc == 0
    assert table.startswith(
        "Study table1_eth10g (layout inferred from its runs; no experiments/table1_eth10g/"
        "layout.yaml): "
    )
    rows = [line.split(" | ")[0].lstrip("| ") for line in table.splitlines() if "top-1 %" in line]
    assert rows == ["AllReduce SGD", "D-PSGD", "SGP (1 peer)"]  # the shipped order; no AD-PSGD run
    assert "| 4 nodes | 4: paper | 8 nodes | 8: paper |" in table
    assert not (experiments_dir() / study).exists()  # nothing is written into experiments/
    elsewhere = tmp_path / "table1_eth10g"  # a path, not a name: it must hold a layout
    assert main(["--runs", str(FIXTURE_RUNS), "--study", str(elsewhere), "--out", str(out)]) == 2
    assert "no layout.yaml there" in capsys.readouterr().err


def test_a_study_without_a_layout_spanning_networks_is_refused():
    from sgprepro.results.layout import inferred_layout

    runs = pd.DataFrame(
        {
            "study": ["adhoc", "adhoc"],
            "algorithm": ["sgp", "sgp"],
            "nodes": [4, 4],
            "network": ["wan", "eth_10g"],
            "seed": [0, 0],
        }
    )
    with pytest.raises(ValueError, match=r"^--study=adhoc: its runs span the network conditions "):
        inferred_layout("adhoc", runs.assign(status="ok"))


def test_an_inferred_layouts_baseline_is_a_row_with_a_finished_run():
    from sgprepro.results.layout import inferred_layout

    runs = pd.DataFrame(
        {
            "study": ["adhoc"] * 3,
            "algorithm": ["dpsgd", "sgp", "allreduce"],
            "nodes": [4, 4, 4],
            "network": ["wan"] * 3,
            "seed": [0, 0, 0],
            "status": ["failed", "ok", "incomplete"],
        }
    )
    layout = inferred_layout("adhoc", runs)
    assert [k for k, _ in layout.algorithms] == ["allreduce", "dpsgd", "sgp"]
    assert layout.baseline == "sgp"  # AllReduce and D-PSGD finished no run
    assert layout.time == "emulated"
    assert inferred_layout("adhoc", runs.assign(status="ok")).baseline == "allreduce"


def test_no_run_of_the_study_names_the_studies_there(tmp_path, capsys):
    rc = main(["--runs", str(FIXTURE_RUNS), "--study", "adhoc", "--out", str(tmp_path / "r")])
    assert rc == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: no run of study adhoc in ")
    assert "of studies ['table1_eth10g']): nothing to report;" in line
    assert "; for the runs there, give --study table1_eth10g;" in line
