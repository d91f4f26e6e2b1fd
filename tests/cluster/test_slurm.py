"""SLURM sweeps through Hydra and submitit, against a stand-in cluster (tests/cluster/standins.py):
the scripts each cell gets, and a real two-task job that trains, then is skipped on every rank."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cluster.standins import install, sbatch_flags, scripts

pytestmark = [pytest.mark.slow]

ALGORITHMS = ("allreduce", "dpsgd", "adpsgd", "sgp")
NODES = (4, 8, 16, 32)


def _train(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 180):
    return subprocess.run(
        [sys.executable, "-m", "sgprepro.train", *args],
        cwd=cwd,
        env={**env, "WANDB_MODE": "disabled", "HYDRA_FULL_ERROR": "1"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_paper_sweep_submits_16_jobs_each_with_its_cells_resources(tmp_path: Path) -> None:
    state = tmp_path / "cluster"
    env = install(tmp_path / "bin", state, run=False)
    sweep = tmp_path / "multirun"
    proc = _train(
        [
            "-m",
            "+sweep=table1_paper",
            "hydra/launcher=slurm",
            "hydra.launcher.wait=false",
            f"hydra.sweep.dir={sweep}",
        ],
        tmp_path,
        env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "submitted 16 SLURM job(s)" in proc.stdout, proc.stdout
    captured = scripts(state)
    assert len(captured) == 16
    seen = set()
    for script in captured.values():
        flags = sbatch_flags(script)
        algorithm, rest = flags["job-name"].removeprefix("table1_paper.").split("-n", 1)
        nodes = int(rest.split("-", 1)[0])
        seen.add((algorithm, nodes))
        assert flags["job-name"] == f"table1_paper.{algorithm}-n{nodes}-eth_10g-s0"
        assert flags["nodes"] == str(nodes)
        assert flags["ntasks-per-node"] == "1"  # one task per node: one rank
        assert flags["gpus-per-node"] == "8"  # the experiment's GPUs per node
        assert flags["cpus-per-task"] == "80"
        assert flags["mem"] == "400GB"
        assert flags["time"] == "4320"
        assert "partition" not in flags, flags  # empty: left out
        assert "constraint" not in flags, flags
        assert "export SUBMITIT_EXECUTOR=slurm" in script
        srun = next(line for line in script.splitlines() if line.startswith("srun "))
        assert "--kill-on-bad-exit=1" in srun
        assert "submitit.core._submit" in srun
    assert seen == {(a, n) for a in ALGORITHMS for n in NODES}
    assert not any(p.name == "run.json" for p in sweep.rglob("*"))  # nothing ran here


@pytest.mark.parametrize(
    ("cells", "named"),
    [
        (["algorithm=dpsgd", "nodes=4,5"], "nodes=5"),  # the bipartite graph needs even n
        (  # Hydra merges the schedule into the preset's {0:2,30:1}: not what was written
            ["nodes=16", "topology=exponential_2peer_early", "+topology.peers_schedule={0:3}"],
            "would use {0:3,30:1}",
        ),
    ],
)
def test_a_bad_cell_submits_nothing(tmp_path: Path, cells: list[str], named: str) -> None:
    state = tmp_path / "cluster"
    env = install(tmp_path / "bin", state, run=False)
    proc = _train(
        [
            "-m",
            "hydra/launcher=slurm",
            "hydra.launcher.wait=false",
            *cells,
            f"hydra.sweep.dir={tmp_path / 'multirun'}",
        ],
        tmp_path,
        env,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cell #"), last
    assert named in last
    assert last.endswith("(no job was submitted)")
    assert not (state / "scripts").exists() or not scripts(state)


def test_a_machine_without_slurm_is_told_so_in_one_line(tmp_path: Path) -> None:
    env = install(tmp_path / "bin", tmp_path / "cluster", run=False)
    for tool in ("sbatch", "srun"):
        (tmp_path / "bin" / tool).unlink()  # a machine with sacct but no submission tools
    env["PATH"] = str(tmp_path / "bin")  # nothing else: a cluster's own sbatch stays out of it
    proc = _train(
        ["-m", "hydra/launcher=slurm", "nodes=4", f"hydra.sweep.dir={tmp_path / 'multirun'}"],
        tmp_path,
        env,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    expected = (
        "error: hydra/launcher=slurm: sbatch and srun not found on PATH, so this machine cannot "
        "submit SLURM jobs (no job was submitted); run from a SLURM login node, or drop "
        "hydra/launcher=slurm to run here"
    )
    assert proc.stderr.strip().splitlines() == [expected]


def _job_log(state: Path, job: int) -> str:
    logs = sorted((state.parent / "multirun" / ".submitit" / str(job)).glob("*_log.*"))
    return "\n".join(f"== {p.name}\n{p.read_text()}" for p in logs)


@pytest.mark.dist
def test_a_two_task_job_trains_then_a_resubmission_is_skipped_on_every_rank(
    tmp_path: Path,
) -> None:
    state = tmp_path / "cluster"
    env = install(tmp_path / "bin", state, run=True)
    sweep = tmp_path / "multirun"
    args = [
        "-m",
        "hydra/launcher=slurm",
        "nodes=2",
        "debug=tiny",
        "slurm.gpus_per_node=0",
        "slurm.cpus_per_task=1",
        "slurm.mem_gb=1",
        "slurm.timeout_min=10",
        "slurm.master_port=23456",
        f"hydra.sweep.dir={sweep}",
    ]
    first = _train(args, tmp_path, env)
    job = max(scripts(state))
    assert first.returncode == 0, first.stderr[-3000:] + _job_log(state, job)
    run_dir = next(p.parent for p in sweep.rglob("run.json"))
    assert (run_dir / "done").exists(), _job_log(state, job)
    for rank in (0, 1):  # each task wrote its own rank's records into the one folder
        assert (run_dir / f"metrics_r{rank}.jsonl").stat().st_size > 0
        assert (run_dir / f"trace_r{rank}.jsonl").read_text().count("\n") == 8
    assert json.loads((run_dir / "run.json").read_text())["cell"]["nodes"] == 2
    assert (run_dir / "sgprepro.log").exists()  # rank 0's only
    assert (run_dir / ".hydra").is_dir()  # rank 0's only
    done_before = (run_dir / "done").read_text()

    t0 = time.monotonic()
    again = _train(args, tmp_path, env)
    elapsed = time.monotonic() - t0
    job2 = max(scripts(state))
    assert job2 == job + 1, again.stderr[-3000:]
    assert again.returncode == 0, again.stderr[-3000:] + _job_log(state, job2)
    log = _job_log(state, job2)
    assert log.count("skipping") >= 2, log  # both ranks skipped it
    assert elapsed < 30, f"the skip took {elapsed:.0f} s (debug=tiny waits up to 30 s)"
    assert (run_dir / "done").read_text() == done_before
    assert not (run_dir / "attempts").exists()


@pytest.mark.dist
def test_a_failed_job_is_waited_for_listed_and_ends_the_sweep_with_status_1(
    tmp_path: Path,
) -> None:
    state = tmp_path / "cluster"
    env = install(tmp_path / "bin", state, run=True)
    sweep = tmp_path / "multirun"
    proc = _train(
        [
            "-m",
            "hydra/launcher=slurm",
            "nodes=2",
            "debug=tiny",
            "train.inject_fault='crash@1:1',''",  # job 0 crashes on rank 1, job 1 runs clean
            "slurm.gpus_per_node=0",
            "slurm.cpus_per_task=1",
            "slurm.mem_gb=1",
            "slurm.timeout_min=10",
            "slurm.master_port=23466",
            f"hydra.sweep.dir={sweep}",
        ],
        tmp_path,
        env,
    )
    first = min(scripts(state))
    logs = _job_log(state, first)
    assert proc.returncode == 1, proc.stderr[-3000:] + logs
    assert "Traceback" not in proc.stderr.split("error:")[-1]
    summary = proc.stderr.strip().splitlines()[-1]
    assert summary.startswith("error: 1 run(s) failed"), summary
    assert "#0 (" in summary
    assert f"SLURM job {first} failed" in summary
    clean = [p.parent for p in sweep.rglob("done")]  # the other job was waited for, and finished
    assert len(clean) == 1, proc.stderr[-3000:]
    assert "crash" not in clean[0].name
