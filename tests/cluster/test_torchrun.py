"""External launchers: two torchrun invocations on 127.0.0.1 are one two-machine job (c10d
rendezvous), and the launch environment is read from submitit or RANK/WORLD_SIZE/MASTER_* only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from sgprepro.comm.launch import free_port, loopback_interface
from sgprepro.launchenv import LaunchEnvError, detect

TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]


def _env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLURM_", "SUBMITIT_", "TORCHELASTIC_"))
        and k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK")
    }
    # both "machines" are this one: rendezvous and gloo's sockets on loopback only
    return {
        **env,
        "WANDB_MODE": "disabled",
        "OMP_NUM_THREADS": "1",
        "GLOO_SOCKET_IFNAME": loopback_interface(),
    }


@pytest.mark.slow
@pytest.mark.dist
def test_two_torchrun_invocations_are_one_two_machine_job(tmp_path: Path) -> None:
    port, rdzv = free_port(), uuid.uuid4().hex[:8]
    run_dir = tmp_path / "run"
    cmd = [
        *TORCHRUN,
        "--nnodes",
        "2",
        "--nproc-per-node",
        "1",
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        f"127.0.0.1:{port}",
        "--rdzv-id",
        rdzv,
        "-m",
        "sgprepro.train",
        "nodes=2",
        "debug=tiny",
        f"hydra.run.dir={run_dir}",
    ]
    machines = [
        subprocess.Popen(
            cmd,
            cwd=tmp_path,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        for _ in range(2)
    ]
    try:
        outputs = [m.communicate(timeout=180)[0] for m in machines]
    finally:
        for m in machines:
            if m.poll() is None:
                os.killpg(m.pid, 9)
                m.wait()
    assert [m.returncode for m in machines] == [0, 0], "\n".join(outputs)[-4000:]
    # one run, with every record of both ranks
    runs = [p.parent for p in tmp_path.rglob("run.json")]
    assert runs == [run_dir], runs
    for name in ("run.json", "timing.json", "summary.json", "done", ".hydra/config.yaml"):
        assert (run_dir / name).is_file(), name
    for rank in (0, 1):
        assert (run_dir / f"trace_r{rank}.jsonl").read_text().count("\n") == 8
        assert (run_dir / f"metrics_r{rank}.jsonl").stat().st_size > 0
    assert not (run_dir / "metrics_r2.jsonl").exists()
    assert not (run_dir / "attempts").exists()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "ok"
    assert len(summary["time/emulated_s_per_itr_ranks"]) == 2
    assert json.loads((run_dir / "run.json").read_text())["cell"]["nodes"] == 2
    # no rank trained alone elsewhere: nothing else was written beside the run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


@pytest.mark.slow
def test_nodes_that_disagree_with_world_size_are_refused_before_training(tmp_path: Path) -> None:
    cmd = [
        *TORCHRUN,
        "--nproc-per-node",
        "2",
        "--master-port",
        str(free_port()),
        "-m",
        "sgprepro.train",
        "nodes=4",
        "debug=tiny",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    proc = subprocess.run(
        cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    refused = [e for e in errors if "nodes=4 with WORLD_SIZE=2" in e]
    # every rank refuses on its own; torchrun may stop a rank (SIGTERM) once the first exits
    others = [e for e in errors if e not in refused]
    assert refused, proc.stderr[-3000:]
    assert "use nodes=2" in refused[0], proc.stderr[-3000:]
    assert all(e.startswith("error: interrupted by SIGTERM") for e in others), others
    assert not (tmp_path / "run").exists()


def test_a_bare_slurm_procid_is_not_a_submitit_task(monkeypatch) -> None:
    """Inside any srun step (SLURM_PROCID set, no submitit) the job launches locally."""
    for var in ("SUBMITIT_EXECUTOR", "RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SLURM_PROCID", "3")
    monkeypatch.setenv("SLURM_NTASKS", "8")
    assert detect().kind == "local"
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "slurm")
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setenv("SLURM_JOB_NODELIST", "gpu[01-08]")
    monkeypatch.setenv("SLURM_LOCALID", "0")
    env = detect()
    assert (env.kind, env.rank, env.world_size, env.master_addr) == ("slurm", 3, 8, "gpu01")


def test_env_launcher_variables(monkeypatch) -> None:
    monkeypatch.delenv("SUBMITIT_EXECUTOR", raising=False)
    for var, value in (("RANK", "1"), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "10.0.0.1")):
        monkeypatch.setenv(var, value)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    with pytest.raises(LaunchEnvError, match="MASTER_PORT not"):
        detect()
    monkeypatch.setenv("MASTER_PORT", "29500")
    env = detect()
    assert (env.kind, env.rank, env.world_size, env.master_port) == ("env", 1, 2, 29500)
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(LaunchEnvError, match=r"RANK=2 with WORLD_SIZE=2"):
        detect()
