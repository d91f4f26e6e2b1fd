"""The default sweeper (``hydra/sweeper=sgprepro``): Hydra's basic sweeper, composing each cell's
config once instead of twice, and still refusing a sweep with a bad cell before any job runs."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

from omegaconf import OmegaConf

from hydra_plugins.sgprepro_sweeper import sweeper as sweeper_mod

REPO = Path(__file__).resolve().parents[2]

# a dry-run sweep in a subprocess that counts Hydra's compositions of a cell config
_COUNTING_SWEEP = """
import sys
from hydra._internal.config_loader_impl import ConfigLoaderImpl
calls = []
real = ConfigLoaderImpl.load_sweep_config
def counted(self, master_config, sweep_overrides):
    calls.append(tuple(sweep_overrides))
    return real(self, master_config, sweep_overrides)
ConfigLoaderImpl.load_sweep_config = counted
sys.argv = ['sgprepro-train', '-m', 'nodes=4,8', 'seed=0,1', 'dry_run=true',
            'hydra.sweep.dir=' + sys.argv[1]]
from sgprepro.cli import train
try:
    train()
finally:
    print('COMPOSED', len(calls), len(set(calls)))
"""


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        env={**os.environ, "WANDB_MODE": "disabled", "HYDRA_FULL_ERROR": "0"},
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_the_default_sweeper_is_the_compose_once_sweeper(compose_cfg) -> None:
    cfg = compose_cfg(["+sweep=table1_scaled"], return_hydra_config=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == "hydra_plugins.sgprepro_sweeper.sweeper.ComposeOnceSweeper"
    assert sweeper.max_batch_size is None
    assert set(sweeper.params) == {"nodes", "algorithm", "seed"}  # the study's grid


def test_a_sweep_composes_each_cell_once_and_runs_every_cell(tmp_path: Path) -> None:
    proc = _run(_COUNTING_SWEEP, str(tmp_path / "sweep"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    # Hydra's basic sweeper composes 8 times here: a check of every cell, then every launch
    assert "COMPOSED 4 4" in proc.stdout, proc.stdout[-2000:]
    assert proc.stdout.count("would launch sgp on nodes=") == 4
    cells = sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    assert cells == [f"sgp-n{n}-paper_regime-s{s}" for n in (4, 8) for s in (0, 1)]


def test_a_sweep_with_a_cell_that_does_not_compose_runs_no_job(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    code = (
        "import sys; sys.argv = ['sgprepro-train', '-m', 'nodes=4', 'algorithm=sgp,nosuch', "
        f"'dry_run=true', 'hydra.sweep.dir={sweep}']\n"
        "from sgprepro.cli import train; train()"
    )
    proc = _run(code)
    assert proc.returncode != 0
    assert "nosuch" in proc.stderr
    assert "would launch" not in proc.stdout  # the good cell did not run either
    assert not sweep.exists() or not [p for p in sweep.iterdir() if p.is_dir()]


class _CountingLoader:  # module level: picklable
    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.other = "delegated"

    def load_sweep_config(self, master_config, sweep_overrides):
        self.calls.append(tuple(sweep_overrides))
        return OmegaConf.create({"overrides": list(sweep_overrides), "n": len(self.calls)})


def _check(once, master, seeds) -> list:
    once.checking = True
    try:
        return [once.load_sweep_config(master, [f"seed={s}"]) for s in seeds]
    finally:
        once.checking = False


def test_a_checked_config_is_handed_to_its_launch_once(monkeypatch) -> None:
    # these stand-in configs are no cells (tests/faults/test_sweeps.py checks the refusal path)
    monkeypatch.setattr(sweeper_mod, "_no_hydra_files_if_refused", lambda _cfg: None)
    loader = _CountingLoader()
    once = sweeper_mod._ComposeOnce(loader)
    master = OmegaConf.create({})
    checked = _check(once, master, (0, 1))  # the batch check
    launched = [once.load_sweep_config(master, [f"seed={s}"]) for s in (0, 1)]  # the launches
    assert loader.calls == [("seed=0",), ("seed=1",)]
    assert [a is b for a, b in zip(checked, launched, strict=True)] == [True, True]
    # asked again after its launch: composed afresh, not the launched object
    again = once.load_sweep_config(master, ["seed=0"])
    assert again is not launched[0]
    assert len(loader.calls) == 3
    assert once.other == "delegated"  # everything else is the wrapped loader's
    # a cell listed twice (seed=0,0): two checked configs, one for each launch
    twice = _check(once, master, (0, 0))
    first, second = (once.load_sweep_config(master, ["seed=0"]) for _ in range(2))
    assert first is twice[0]
    assert second is twice[1]
    assert first is not second
    # pickled (the SLURM launcher sends itself to its jobs): the loader, without kept configs
    _check(once, master, (2,))
    copy = pickle.loads(pickle.dumps(once))
    assert copy._kept == {}
    assert copy._loader.calls == loader.calls
    # beyond MAX_KEPT cells, a cell's launch composes it again (memory stays bounded)
    monkeypatch.setattr(sweeper_mod, "MAX_KEPT", 1)
    bounded = sweeper_mod._ComposeOnce(_CountingLoader())
    _check(bounded, master, (0, 1))
    for s in (0, 1):
        bounded.load_sweep_config(master, [f"seed={s}"])
    assert bounded._loader.calls == [("seed=0",), ("seed=1",), ("seed=1",)]


def test_a_repeated_cell_runs_twice_and_a_bad_sweep_keeps_the_earlier_record(tmp_path) -> None:
    """seed=0,0 is two cells; a sweep that does not compose writes nothing into the folder of
    an earlier sweep (Hydra's basic sweeper replaced its multirun.yaml before checking)."""
    sweep = tmp_path / "sweep"
    code = (
        "import sys; sys.argv = ['sgprepro-train', '-m', 'nodes=4', 'seed=0,0', "
        f"'dry_run=true', 'hydra.sweep.dir={sweep}']\n"
        "from sgprepro.cli import train; train()"
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("would launch sgp on nodes=") == 2
    record = (sweep / "multirun.yaml").read_text()
    bad = code.replace("'seed=0,0'", "'algorithm=sgp,nosuch'")
    proc = _run(bad)
    assert proc.returncode != 0
    assert "nosuch" in proc.stderr
    assert (sweep / "multirun.yaml").read_text() == record


def test_a_launch_checks_for_refusal_unless_it_only_composes(monkeypatch) -> None:
    guarded: list = []
    monkeypatch.setattr(sweeper_mod, "_no_hydra_files_if_refused", guarded.append)
    once = sweeper_mod._ComposeOnce(_CountingLoader())
    master = OmegaConf.create({})
    launched = once.load_sweep_config(master, ["seed=0"])  # a launch that runs the cell here
    with once.composing_only():  # the SLURM launcher's check of its cells on the login node
        once.load_sweep_config(master, ["seed=1"])
    after = once.load_sweep_config(master, ["seed=2"])
    assert [id(c) for c in guarded] == [id(launched), id(after)]
