"""Bad input fails before any worker starts, with one line naming key, value, constraint and fix."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra.errors import MissingConfigException

from sgprepro.config import validate

REPO = Path(__file__).resolve().parents[2]

# The table of bad inputs and their errors is tests/faults/bad_inputs.py (rendered into
# docs/bad_inputs.md); tests/faults/test_bad_inputs.py runs every row of it.


def test_unknown_network_preset_fails_at_compose(compose_cfg) -> None:
    with pytest.raises(MissingConfigException, match=r"network/infiniband_400g") as info:
        compose_cfg(["nodes=4", "network=infiniband_400g"])
    assert "eth_10g" in str(info.value)  # Hydra lists the presets that exist


def test_dataset_paths_are_checked_unless_disabled(compose_cfg) -> None:
    cfg = compose_cfg(["nodes=4", "data=imagenet", "data.root=/nonexistent"])
    assert validate(cfg, check_paths=False).data.root == "/nonexistent"  # dry runs of presets


def test_an_unwritable_cache_folder_is_refused(compose_cfg, tmp_path: Path, monkeypatch) -> None:
    """The permission branch of data.check_cache_dir (tests run as root here, for whom every
    folder is writable, so the permission answer is stubbed for this one folder)."""
    from sgprepro.config import ConfigError
    from sgprepro.data import spec as data_spec

    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(
        data_spec.os,
        "access",
        lambda path, mode: False if Path(path) == locked else real_access(path, mode),
    )
    cfg = compose_cfg(["nodes=4", f"data.root={locked}/mnist1d"])
    with pytest.raises(ConfigError, match=r"cannot be written") as info:
        validate(cfg)
    message = str(info.value)
    assert f"data.root={locked}/mnist1d" in message
    assert f"folder {locked} cannot be written" in message
    assert "\n" not in message
    assert validate(cfg, check_paths=False).data.root == f"{locked}/mnist1d"


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
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert "nodes=1" in errors[0], errors[0]
    assert "use nodes=" in errors[0], errors[0]
    assert "Traceback" not in proc.stderr
    assert elapsed < 60
    # refused before Hydra creates the run folder: nothing at all is written
    assert not run_dir.exists(), sorted(p.name for p in run_dir.iterdir())
