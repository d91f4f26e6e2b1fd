"""The record helpers every writer shares: git state (with its dirty flag), package versions,
and JSON Lines read back by the efficiency record."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from sgprepro.callbacks import efficiency, trained_cpu_s, where_the_wall_went
from sgprepro.timing.trace import GOSSIP_CPU_KEY
from sgprepro.tracking import environment_info, git_commit, package_versions

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@needs_git
def test_git_commit_carries_the_dirty_flag(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    (tmp_path / "f.txt").write_text("a\n")
    _git(tmp_path, "add", "f.txt")
    _git(tmp_path, "commit", "-q", "-m", "first")
    head = _git(tmp_path, "rev-parse", "HEAD")
    assert git_commit(tmp_path) == head
    (tmp_path / "untracked.txt").write_text("not part of the commit\n")
    assert git_commit(tmp_path) == head  # untracked files leave it clean
    (tmp_path / "f.txt").write_text("b\n")
    assert git_commit(tmp_path) == f"{head}-dirty"


def test_git_commit_outside_a_repository_is_none(tmp_path: Path) -> None:
    assert git_commit(tmp_path / "missing") is None


def test_package_versions_name_missing_packages_none() -> None:
    versions = package_versions(("sgprepro", "no-such-package-sgprepro-test"))
    assert versions["sgprepro"]
    assert versions["no-such-package-sgprepro-test"] is None
    assert set(environment_info()["versions"]) == set(package_versions())


def test_trained_cpu_sums_every_rank_and_skips_bad_lines(tmp_path: Path) -> None:
    assert trained_cpu_s(tmp_path) is None  # no trace at all
    (tmp_path / "trace_r0.jsonl").write_text(
        "".join(json.dumps({"step": k, "compute_s": 0.5}) + "\n" for k in range(3))
    )
    (tmp_path / "trace_r1.jsonl").write_text(
        json.dumps({"step": 0, "compute_s": 1.0}) + "\n"
        '{"step": 1}\n'  # no compute_s
        "[1, 2]\n"  # not an object
        '{"step": 2, "compute_s": 0.2'  # cut by a crash
    )
    assert trained_cpu_s(tmp_path) == pytest.approx(2.5)
    # AD-PSGD: its gossip loop's CPU, reported with a step, is training work too
    (tmp_path / "trace_r2.jsonl").write_text(
        json.dumps({"step": 0, "compute_s": 0.25, GOSSIP_CPU_KEY: 0.125}) + "\n"
    )
    assert trained_cpu_s(tmp_path) == pytest.approx(2.5 + 0.25 + 0.125)


def test_efficiency_counts_only_the_sweeps_own_runs(tmp_path: Path) -> None:
    def run(name: str, mtime: float) -> Path:
        d = tmp_path / name
        d.mkdir()
        (d / "trace_r0.jsonl").write_text(json.dumps({"step": 0, "compute_s": 2.0}) + "\n")
        (d / "done").write_text("")
        os.utime(d / "done", (mtime, mtime))
        return d

    started = 1_000_000.0
    new, old = run("new", started + 5), run("old", started - 5)
    run("other_sweep_old", started - 50)  # another sweep's run in the same folder
    rec = efficiency(tmp_path, started, wall_s=4.0, cores=2, run_dirs=[new, old])
    assert (rec["runs_trained"], rec["runs_already_done"]) == (1, 1)
    assert rec["efficiency"] == pytest.approx(2.0 / (4.0 * 2))
    twice = efficiency(tmp_path, started, wall_s=4.0, cores=2, run_dirs=[new, old, new])
    assert (twice["runs_trained"], twice["runs_already_done"]) == (1, 1)  # seed=0,0: one folder
    everything = efficiency(tmp_path, started, wall_s=4.0, cores=2)  # a cluster sweep's view
    assert (everything["runs_trained"], everything["runs_already_done"]) == (1, 2)
    assert everything["jobs_s"] is None
    assert where_the_wall_went(everything) is None  # its jobs ran elsewhere


def test_the_wall_splits_into_loops_the_rest_of_the_jobs_and_between_jobs(tmp_path: Path) -> None:
    started = 1_000_000.0
    dirs = []
    for name, walls in (("a", [2.0, 1.0]), ("b", [5.0])):
        d = tmp_path / name
        d.mkdir()
        lines = [{"step": k, "compute_s": 0.1, "wall_s": w} for k, w in enumerate(walls)]
        (d / "trace_r0.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        (d / "trace_r1.jsonl").write_text(json.dumps({"step": 0, "compute_s": 0.1, "wall_s": 9.0}))
        (d / "done").write_text("")
        os.utime(d / "done", (started + 1, started + 1))
        dirs.append(d)
    jobs = {dirs[0].resolve(): 6.0, dirs[1].resolve(): 12.0}
    rec = efficiency(tmp_path, started, wall_s=40.0, cores=2, run_dirs=dirs, job_s=jobs)
    assert rec["loops_s"] == pytest.approx(8.0)  # rank 0's steps only
    assert rec["jobs_s"] == pytest.approx(18.0)
    assert rec["runs"] == [
        {"run": "a", "loop_s": pytest.approx(3.0), "job_s": 6.0},
        {"run": "b", "loop_s": pytest.approx(5.0), "job_s": 12.0},
    ]
    line = where_the_wall_went(rec)
    assert line is not None
    assert "8 s in the iteration loops (rank 0's steps, 20 %)" in line
    assert "10 s in the rest of the jobs" in line
    assert line.endswith("22 s between and before jobs")


def test_the_staleness_histogram_is_in_increasing_staleness_through_the_json_records(tmp_path):
    from sgprepro.tracking.records import write_json_atomic
    from sgprepro.train.finalize import _async_stats

    finals = [
        {"gradients": 5, "gossip_rounds": 9, "staleness": [2, 10, 2, 0, 1], "clock": "emulated"},
        {"gradients": 2, "gossip_rounds": 9, "staleness": [10, 1], "clock": "emulated"},
    ]
    stats = _async_stats(finals)
    write_json_atomic(tmp_path / "summary.json", stats)
    back = json.loads((tmp_path / "summary.json").read_text())
    assert back["adpsgd/staleness_histogram"] == [[0, 1], [1, 2], [2, 2], [10, 2]]
    assert back["adpsgd/staleness_mean"] == sum([2, 10, 2, 0, 1, 10, 1]) / 7
    assert back["adpsgd/gradients_ranks"] == [5, 2]
