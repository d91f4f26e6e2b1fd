from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from results_helpers import FIXTURE_RUNS, make_record

from sgprepro.results import assemble, collect_runs, load_curves
from sgprepro.results.collect import read_jsonl


def _status(collected, job: str) -> str:
    runs = collected.runs
    return runs.loc[runs["run_dir"] == str(FIXTURE_RUNS / job), "status"].item()


def test_fixture_statuses_and_counts(collected):
    assert {job: _status(collected, job) for job in map(str, range(9))} == {
        "0": "ok",
        "1": "ok",
        "2": "ok",
        "3": "conflict",
        "4": "ok",
        "5": "ok",
        "6": "ok",
        "7": "incomplete",
        "8": "failed",
    }
    assert collected.counts() == {
        "ok": 6,
        "incomplete": 1,
        "failed": 1,
        "invalid": 0,
        "conflict": 1,
        "duplicate": 0,
    }
    assert sorted(p.kind for p in collected.problems) == [
        "bad_jsonl_line",
        "conflict",
        "failed",
        "incomplete",
    ]


def test_runs_frame_has_cell_keys_hash_and_summary_scalars(collected):
    row = collected.ok.iloc[0]
    for col in (
        "study",
        "algorithm",
        "nodes",
        "network",
        "seed",
        "config_hash",
        "run_dir",
        "status",
        "val/top1_node_mean",
        "time/emulated_s_per_itr",
        "time/wall_s_per_itr",
        "consensus/distance",
    ):
        assert col in collected.runs.columns, col
    assert "curve" not in collected.runs.columns
    assert row["ranks_logged"] == row["nodes"]


def test_truncated_jsonl_line_is_skipped_and_named_by_file_and_line(collected):
    (bad,) = [p for p in collected.problems if p.kind == "bad_jsonl_line"]
    assert bad.run_dir == str(FIXTURE_RUNS / "6")
    assert "metrics_r5.jsonl:6" in bad.detail
    assert _status(collected, "6") == "ok"  # the summary is intact; the bad line is reported
    lines = read_jsonl(FIXTURE_RUNS / "6" / "metrics_r5.jsonl")
    assert len(lines) == 5
    assert all(isinstance(x, dict) for x in lines)


def test_run_without_done_is_incomplete_or_failed_and_excluded(collected):
    assert _status(collected, "7") == "incomplete"
    assert _status(collected, "8") == "failed"
    failed = next(p for p in collected.problems if p.kind == "failed")
    assert "gloo recv timed out" in failed.detail
    assert "dpsgd" not in set(collected.ok["algorithm"])


def test_conflict_tie_goes_to_most_recent(collected):
    ar8 = collected.runs[
        (collected.runs["algorithm"] == "allreduce") & (collected.runs["nodes"] == 8)
    ]
    assert dict(zip(ar8["run_dir"].map(lambda p: Path(p).name), ar8["status"], strict=True)) == {
        "2": "ok",
        "3": "conflict",
    }


def test_conflict_majority_wins_over_recency():
    recs = [
        make_record("a", seed=0, config_hash="old", started_at="2026-01-01"),
        make_record("b", seed=1, config_hash="old", started_at="2026-01-02"),
        make_record("c", seed=2, config_hash="new", started_at="2026-02-01"),
    ]
    res = assemble(recs)
    assert dict(zip(res.runs["run_dir"], res.runs["status"], strict=True)) == {
        "a": "ok",
        "b": "ok",
        "c": "conflict",
    }
    (p,) = res.problems
    assert p.kind == "conflict"
    assert "config_hash=new" in p.detail


def test_conflict_full_tie_goes_to_smaller_hash_and_order_does_not_matter():
    recs = [
        make_record("x", config_hash="bbb", started_at="2026-01-01"),
        make_record("y", config_hash="aaa", started_at="2026-01-01"),
    ]
    for order in (recs, recs[::-1]):
        res = assemble(order)
        assert dict(zip(res.runs["run_dir"], res.runs["status"], strict=True)) == {
            "x": "conflict",
            "y": "ok",
        }


def test_hashes_of_different_cells_do_not_conflict():
    res = assemble(
        [
            make_record("a", nodes=4, config_hash="h4"),
            make_record("b", nodes=8, config_hash="h8"),
            make_record("c", alg="allreduce", config_hash="hA"),
        ]
    )
    assert set(res.runs["status"]) == {"ok"}


def test_duplicate_seed_keeps_most_recent():
    res = assemble(
        [
            make_record("old", started_at="2026-01-01", top1=1.0),
            make_record("new", started_at="2026-01-02", top1=2.0),
        ]
    )
    assert dict(zip(res.runs["run_dir"], res.runs["status"], strict=True)) == {
        "new": "ok",
        "old": "duplicate",
    }


def test_failed_summary_and_missing_cell_key_are_excluded():
    bad_cell = make_record("nokey")
    bad_cell.run_json["cell"].pop("seed")  # type: ignore[union-attr]
    res = assemble([make_record("f", status="diverged"), bad_cell, make_record("ok", seed=3)])
    status = dict(zip(res.runs["run_dir"], res.runs["status"], strict=True))
    assert status == {"f": "failed", "nokey": "invalid", "ok": "ok"}
    kinds = {p.run_dir: p.kind for p in res.problems}
    assert kinds == {"f": "failed", "nokey": "missing_key"}
    assert "cell.seed" in next(p for p in res.problems if p.run_dir == "nokey").detail


def test_unreadable_summary_with_done_is_invalid(tmp_path):
    shutil.copytree(FIXTURE_RUNS / "0", tmp_path / "0")
    (tmp_path / "0" / "summary.json").write_text('{"status": "ok", "val/top1')
    res = collect_runs(tmp_path)
    assert res.runs["status"].tolist() == ["invalid"]
    assert [p.kind for p in res.problems] == ["unreadable_file"]


def test_empty_root_gives_empty_frame_and_missing_root_fails(tmp_path):
    res = collect_runs(tmp_path)
    assert len(res.runs) == 0
    assert res.counts()["ok"] == 0
    with pytest.raises(FileNotFoundError, match="runs root="):
        collect_runs(tmp_path / "nope")


def test_load_curves(collected):
    curves = load_curves(collected.ok["run_dir"])
    assert len(curves) == 2 * len(collected.ok)
    assert {"algorithm", "nodes", "seed", "time/emulated_s", "consensus/distance"} <= set(
        curves.columns
    )
    first = json.loads((FIXTURE_RUNS / "0" / "summary.json").read_text())["curve"]
    got = curves[curves["run_dir"] == str(FIXTURE_RUNS / "0")]
    assert got["val/top1_node_mean"].tolist() == [pt["val/top1_node_mean"] for pt in first]


def test_load_curves_skips_unreadable_runs(tmp_path):
    assert len(load_curves([tmp_path])) == 0


def test_the_cpu_kernels_a_run_recorded_are_a_column_and_none_is_empty():
    pinned = make_record("a", seed=0)
    pinned.run_json["cpu_kernels"] = {
        "aten": "AVX2",
        "mkl_cbwr": "AVX2",
        "onednn_max_cpu_isa": "AVX2",
        "pinned": True,
        "torch_loaded_first": False,
    }
    own = make_record("b", seed=1)
    own.run_json["cpu_kernels"] = {"aten": "AVX512", "mkl_cbwr": "", "onednn_max_cpu_isa": ""}
    early = make_record("d", seed=3)  # the record before it kept oneDNN's setting
    early.run_json["cpu_kernels"] = {"aten": "AVX2", "mkl_cbwr": "AVX2"}
    runs = assemble([pinned, own, make_record("c", seed=2), early]).runs.set_index("run_dir")
    assert runs.loc["a", "cpu_kernels"] == "aten AVX2, MKL AVX2, oneDNN AVX2"
    assert runs.loc["b", "cpu_kernels"] == "aten AVX512, MKL default, oneDNN default"
    assert runs.loc["c", "cpu_kernels"] == ""  # recorded before the kernels were
    assert runs.loc["d", "cpu_kernels"] == "aten AVX2, MKL AVX2, oneDNN not recorded"
