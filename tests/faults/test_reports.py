"""The table builder never damages a report: it is built aside and renamed into place; zero runs
is an error that touches nothing; a bad trace names its file and line and excludes (and counts)
its run; copies in attempts/ are never runs."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from sgprepro import interrupt
from sgprepro.results import collect_runs, plots
from sgprepro.results import report as report_module
from sgprepro.results.__main__ import main
from sgprepro.results.report import NoRunsError, write_report
from tests.faults.helpers import snapshot

REPO = Path(__file__).resolve().parents[2]
FIXTURE_RUNS = REPO / "tests" / "fixtures" / "runs" / "table1_small"
STUDY_DIR = REPO / "tests" / "fixtures" / "study"  # the layout of the fixture study


@pytest.fixture
def old_report(tmp_path) -> Path:
    """A report folder with earlier content (as the committed reports/<study>/)."""
    out = tmp_path / "reports" / "table1_eth10g"
    out.mkdir(parents=True)
    (out / "table.md").write_text("the committed table\n")
    (out / "provenance.json").write_text("{}\n")
    return out


def _args(runs: Path, out: Path) -> list[str]:
    return ["--runs", str(runs), "--study", str(STUDY_DIR), "--out", str(out), "--formats", ""]


def test_zero_runs_is_an_error_that_touches_nothing(tmp_path, old_report, capsys) -> None:
    empty = tmp_path / "multirun" / "table1_eth10g"
    empty.mkdir(parents=True)
    before = snapshot(old_report.parent)
    assert main(_args(empty, old_report)) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    assert err.startswith("error: no run of study table1_eth10g in "), err
    assert f"{old_report} left as it was" in err
    assert snapshot(old_report.parent) == before  # nor any temporary folder left beside it


def test_a_missing_runs_folder_is_one_line_too(tmp_path, old_report, capsys) -> None:
    before = snapshot(old_report.parent)
    assert main(_args(tmp_path / "nope", old_report)) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert "is not a directory" in err
    assert snapshot(old_report.parent) == before


def test_a_failure_while_building_leaves_the_old_report_whole(old_report, monkeypatch) -> None:
    before = snapshot(old_report.parent)

    def broken(*args, **kwargs):
        raise RuntimeError("a figure failed half-way through the report")

    monkeypatch.setattr(plots, "consensus_curves", broken)
    with pytest.raises(RuntimeError, match="half-way"):
        write_report(FIXTURE_RUNS, old_report, STUDY_DIR, formats=())
    assert snapshot(old_report.parent) == before


def test_sigterm_while_building_leaves_the_old_report_and_no_build_folder(
    old_report, monkeypatch, capsys
) -> None:
    before = snapshot(old_report.parent)
    real = plots.consensus_curves

    def terminated(*args, **kwargs):  # a timeout's SIGTERM arrives half-way through the report
        assert any(p.name.startswith(".table1_eth10g.build-") for p in old_report.parent.iterdir())
        os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(plots, "consensus_curves", terminated)
    assert main(_args(FIXTURE_RUNS, old_report)) == 128 + signal.SIGTERM
    err = capsys.readouterr().err.strip()
    assert err == f"error: interrupted by SIGTERM; {old_report} left as it was", err
    assert snapshot(old_report.parent) == before  # the build folder went with the signal
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is not left behind


def test_sigterm_during_the_swap_waits_for_it(old_report, monkeypatch, capsys) -> None:
    real = report_module.replace_dir

    def swap(new, target):  # the signal arrives just as the new report is put in place
        os.kill(os.getpid(), signal.SIGTERM)
        real(new, target)

    monkeypatch.setattr(report_module, "replace_dir", swap)
    assert main(_args(FIXTURE_RUNS, old_report)) == 128 + signal.SIGTERM
    err = capsys.readouterr().err.strip()
    assert err.endswith(
        f"{old_report} holds the new report (the signal came while it was put in place)"
    )
    assert (old_report / "table.md").read_text() != "the committed table\n"  # the new one, whole
    assert (old_report / "provenance.json").read_text() != "{}\n"
    assert [p.name for p in old_report.parent.iterdir()] == [old_report.name]  # nothing aside


def test_a_swap_that_fails_still_delivers_the_held_signal(old_report, monkeypatch, capsys) -> None:
    before = snapshot(old_report.parent)

    def broken(_new, _target):  # a signal arrives, then the rename itself fails
        os.kill(os.getpid(), signal.SIGTERM)
        raise OSError("rename failed")

    monkeypatch.setattr(report_module, "replace_dir", broken)
    assert main(_args(FIXTURE_RUNS, old_report)) == 128 + signal.SIGTERM  # not swallowed
    assert capsys.readouterr().err.strip().endswith(f"{old_report} left as it was")
    assert snapshot(old_report.parent) == before
    assert interrupt._pending is None  # nothing left to fire at a later, clean swap
    monkeypatch.undo()
    assert main(_args(FIXTURE_RUNS, old_report)) == 0


def test_old_content_that_cannot_be_removed_does_not_undo_the_swap(old_report, monkeypatch) -> None:
    real_rmtree = shutil.rmtree

    def stubborn(path, ignore_errors=False, **kwargs):
        if not ignore_errors:
            raise PermissionError(f"cannot remove {path}")
        return real_rmtree(path, ignore_errors=True, **kwargs)

    monkeypatch.setattr(report_module.shutil, "rmtree", stubborn)
    assert main(_args(FIXTURE_RUNS, old_report)) == 0  # the new report is in place: success
    assert (old_report / "table.md").read_text() != "the committed table\n"


def test_a_report_over_fewer_runs_than_the_one_it_replaces_says_so(tmp_path, capsys) -> None:
    out = tmp_path / "reports" / "table1_eth10g"
    assert main(_args(FIXTURE_RUNS, out)) == 0
    full = json.loads((out / "provenance.json").read_text())["counts"]
    assert "warning" not in capsys.readouterr().err
    few = tmp_path / "few"
    for name in ("0", "1"):
        shutil.copytree(FIXTURE_RUNS / name, few / name)
    assert main(_args(few, out)) == 0
    part = json.loads((out / "provenance.json").read_text())["counts"]
    assert part["present"] < full["present"]
    err = capsys.readouterr().err
    assert (
        f"warning: this report of {out} covers {part['present']} of {part['expected']} runs; "
        f"the one it replaced covered {full['present']}"
    ) in err


def test_a_report_replaces_the_folder_as_a_whole(old_report) -> None:
    rep = write_report(FIXTURE_RUNS, old_report, STUDY_DIR, formats=())
    names = {p.name for p in old_report.iterdir()}
    assert names == {p.name for p in rep.files}  # nothing of the old content is mixed in
    assert (old_report / "table.md").read_text() != "the committed table\n"
    assert [p.name for p in old_report.parent.iterdir()] == [old_report.name]


def _trace(path: Path, steps: int, truncate: bool = False) -> None:
    lines = [
        json.dumps(
            {"step": s, "compute_s": 0.01, "wall_s": 0.02, "comm_s": 0.0, "sent": [[1, 100]]}
        )
        for s in range(steps)
    ]
    text = "\n".join(lines) + "\n"
    path.write_text(text[:-25] if truncate else text)  # a crash mid-line


def test_a_truncated_trace_names_its_file_and_line_and_excludes_the_run(tmp_path) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(FIXTURE_RUNS, runs)
    for rank in range(8):  # run 6: sgp n=8 seed 0, finished
        _trace(runs / "6" / f"trace_r{rank}.jsonl", 5, truncate=rank == 2)
    out = tmp_path / "report"
    rep = write_report(runs, out, STUDY_DIR, formats=())
    row = rep.collected.runs.set_index("run_dir").loc[str(runs / "6")]
    assert row["status"] == "invalid"
    (bad,) = [p for p in rep.collected.problems if p.kind == "bad_trace"]
    assert bad.run_dir == str(runs / "6")
    assert bad.detail.startswith("trace_r2.jsonl:5: invalid JSON")
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["counts"]["runs_invalid"] == 1
    assert any("trace_r2.jsonl:5" in p for p in prov["problems"])
    # the captions count it: missing from the main table (6 of 32 present without the damage),
    # and named among the excluded records under the extra table
    assert "Runs: 5 of 32 (algorithm, nodes, seed) present" in rep.caption
    assert "1 invalid" in prov["captions"]["table_extra"]
    # the run left the table: its cell is missing now, not filled from a damaged record
    assert {"algorithm": "sgp", "nodes": 8, "seed": 0, "status": "invalid"} in prov["missing_cells"]


def test_intact_traces_keep_the_run(tmp_path) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(FIXTURE_RUNS, runs)
    for rank in range(4):
        _trace(runs / "0" / f"trace_r{rank}.jsonl", 5)
    assert collect_runs(runs).runs.set_index("run_dir").loc[str(runs / "0"), "status"] == "ok"


def test_attempts_are_never_runs(tmp_path) -> None:
    """A finished run being re-run: its old records moved to attempts/, the new ones incomplete.
    The cell must read as incomplete, not silently fall back to the run that was replaced."""
    runs = tmp_path / "runs"
    shutil.copytree(FIXTURE_RUNS, runs)
    job = runs / "0"
    old = job / "attempts" / "20260101-000000"
    old.mkdir(parents=True)
    for p in list(job.iterdir()):
        if p.name != "attempts":
            shutil.move(str(p), old / p.name)
    shutil.copy(old / "run.json", job / "run.json")  # the re-run has started
    collected = collect_runs(runs)
    assert str(old) not in set(collected.runs["run_dir"])
    assert len(collected.runs) == 9
    assert collected.runs.set_index("run_dir").loc[str(job), "status"] == "incomplete"
    only_attempts = tmp_path / "only"
    shutil.copytree(old, only_attempts / "x" / "attempts" / "1")
    with pytest.raises(NoRunsError):
        write_report(only_attempts, tmp_path / "r", STUDY_DIR, formats=())


def _refused(argv: list[str], capsys, says: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    assert err.startswith("error: --"), err
    assert says in err, err
    assert err.endswith("nothing was written"), err


def test_an_out_that_is_a_file_is_refused_and_kept(tmp_path, capsys) -> None:
    out = tmp_path / "notes.txt"
    out.write_text("my notes\n")
    before = snapshot(tmp_path)
    _refused(_args(FIXTURE_RUNS, out), capsys, "is a file")
    assert snapshot(tmp_path) == before
    assert out.read_text() == "my notes\n"


def test_an_out_folder_that_is_not_a_report_is_refused_and_kept(tmp_path, capsys) -> None:
    """A folder holding other reports (or anything else) is never replaced as a whole."""
    out = tmp_path / "reports"
    (out / "table1_scaled").mkdir(parents=True)
    (out / "table1_scaled" / "provenance.json").write_text("{}\n")
    (out / "draft.md").write_text("a draft\n")
    before = snapshot(tmp_path)
    _refused(_args(FIXTURE_RUNS, out), capsys, "is not an earlier report")
    assert snapshot(tmp_path) == before


def test_an_out_holding_the_runs_is_refused(tmp_path, old_report, capsys) -> None:
    runs = old_report / "runs"
    shutil.copytree(FIXTURE_RUNS, runs)
    before = snapshot(tmp_path)
    _refused(_args(runs, old_report), capsys, "is or holds the runs folder")
    assert snapshot(tmp_path) == before


def test_study_dpi_and_formats_are_checked_before_anything_is_read(
    tmp_path, old_report, capsys
) -> None:
    before = snapshot(tmp_path)
    no_layout = tmp_path / "study"
    no_layout.mkdir()
    argv = _args(FIXTURE_RUNS, old_report)
    _refused([*argv[:2], "--study", str(no_layout), *argv[4:]], capsys, "table1_scaled")
    _refused([*argv, "--dpi", "0"], capsys, "--dpi=0: must be a positive")
    _refused([*argv[:-2], "--formats", "png,jpgg"], capsys, "jpgg is not a figure format")
    _refused([*argv, "--networks", ","], capsys, "'', '' is not a network preset")
    _refused([*argv, "--networks", "eth_10g,../network/wan"], capsys, "'../network/wan' is not")
    no_layout.rmdir()
    assert snapshot(tmp_path) == before
