"""Bad input fails before any worker starts, with one line naming key, value, constraint and fix."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra.errors import MissingConfigException

from sgprepro.config import ConfigError, validate

REPO = Path(__file__).resolve().parents[2]

# (overrides, key, value, constraint words, fix words): each piece must appear in the message
CASES = [
    (["nodes=4", "algorithm.name=foo"], "algorithm.name", "foo", "unknown", "choose one of"),
    (["nodes=4", "topology.name=torus"], "topology.name", "torus", "unknown", "choose one of"),
    (["nodes=1"], "nodes", "1", "at least 2", "use nodes=4"),
    (["nodes=0", "algorithm=allreduce"], "nodes", "0", "at least 2", "use nodes=4"),
    (["nodes=5", "algorithm=dpsgd"], "nodes", "5", "even node count", "use nodes=6"),
    (["nodes=7", "algorithm=adpsgd"], "nodes", "7", "even node count", "use nodes=8"),
    (
        ["nodes=4", "topology.peers_schedule={0:9}"],
        "topology.peers_schedule",
        "{0: 9}",
        "at most 2",
        "lower the peers",
    ),
    (
        ["nodes=4", "algorithm=sgp_delayed", "algorithm.tau=-1"],
        "algorithm.tau",
        "-1",
        ">= 0",
        "use tau=1",
    ),
    (["nodes=4", "network.latency_s=-1"], "network.latency_s", "-1", ">= 0", "use a non-negative"),
    (["nodes=4", "network.bandwidth_gbps=-5"], "network.bandwidth_gbps", "-5", "> 0", "use the"),
    (
        ["nodes=32", "data=mnist1d", "optim.batch_size=100000"],
        "optim.batch_size",
        "100000",
        "1 to 250",
        "set optim.batch_size<=250",
    ),
    (
        ["nodes=4", "data=imagenet", "data.root=/nonexistent"],
        "data.root",
        "/nonexistent",
        "train/ and val/",
        "set data.root=",
    ),
    (["nodes=4", "data=cifar10"], "data.root", "None", "needs a directory", "set data.root="),
    (
        ["nodes=4", "train.inject_fault=explode"],
        "train.inject_fault",
        "explode",
        "crash@RANK:STEP",
        "e.g.",
    ),
    (
        ["nodes=4", "train.inject_fault=crash@4:1"],
        "train.inject_fault",
        "crash@4:1",
        "does not exist",
        "use a rank in [0, 3]",
    ),
    (["nodes=4", "comm.timeout_s=0"], "comm.timeout_s", "0", "> 0", "use comm.timeout_s=120"),
]


@pytest.mark.parametrize(
    ("overrides", "key", "value", "constraint", "fix"), CASES, ids=[" ".join(c[0]) for c in CASES]
)
def test_bad_input_is_one_line_config_error(
    compose_cfg, overrides, key, value, constraint, fix
) -> None:
    cfg = compose_cfg(overrides)
    with pytest.raises(ConfigError) as info:
        validate(cfg)
    msg = str(info.value)
    assert "\n" not in msg, msg
    assert f"{key}=" in msg, msg
    assert value in msg.split(f"{key}=", 1)[1][: len(value) + 2], msg
    assert constraint in msg, msg
    assert fix in msg, msg


def test_unknown_network_preset_fails_at_compose(compose_cfg) -> None:
    with pytest.raises(MissingConfigException, match=r"network/infiniband_400g") as info:
        compose_cfg(["nodes=4", "network=infiniband_400g"])
    assert "eth_10g" in str(info.value)  # Hydra lists the presets that exist


def test_dataset_paths_are_checked_unless_disabled(compose_cfg) -> None:
    cfg = compose_cfg(["nodes=4", "data=imagenet", "data.root=/nonexistent"])
    assert validate(cfg, check_paths=False).data.root == "/nonexistent"  # dry runs of presets


@pytest.mark.slow
def test_cli_rejects_bad_input_before_any_worker(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    env = {**os.environ, "WANDB_MODE": "disabled", "WANDB_DIR": str(tmp_path)}
    t0 = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sgprepro.train",
            "nodes=1",
            "debug=tiny",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - t0
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert "nodes=1" in errors[0] and "use nodes=" in errors[0], errors[0]
    assert "Traceback" not in proc.stderr
    assert elapsed < 60
    written = {p.name for p in run_dir.iterdir()} if run_dir.exists() else set()
    assert not any(n.startswith(("metrics_r", "trace_r")) for n in written), written
    assert not written & {"run.json", "summary.json", "done", "error.txt"}, written
