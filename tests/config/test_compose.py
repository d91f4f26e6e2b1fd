"""Every option of every config group, every experiment preset and every sweep composes and
validates; typos and wrong types fail at compose time (the structured-config schema)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from sgprepro.config import Config, ConfigError, validate

CONF = Path(__file__).resolve().parents[2] / "conf"
# groups composed as `group=option`; experiment/ and sweep/ are whole-job presets, tested below
SPECIAL = {"experiment", "sweep", "hydra"}


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def _group_options() -> list[tuple[str, str]]:
    groups = sorted(p.name for p in CONF.iterdir() if p.is_dir() and p.name not in SPECIAL)
    return [(g, o) for g in groups for o in _options(g)]


IMAGE_MODELS = {"resnet20": "cifar10", "resnet50": "imagenet"}


def _compatible(group: str, option: str) -> list[str]:
    """Overrides an option needs to form a valid job (graphs are tied to algorithms)."""
    if group == "topology":
        name = yaml.safe_load((CONF / group / f"{option}.yaml").read_text())["name"]
        return ["algorithm=dpsgd"] if name == "bipartite_exponential" else ["algorithm=sgp"]
    if group == "model" and option in IMAGE_MODELS:  # they take images, not MNIST-1D's sequences
        return [f"data={IMAGE_MODELS[option]}"]
    return []


def test_groups_are_discovered() -> None:
    found = {g for g, _ in _group_options()}
    assert {"algorithm", "topology", "network", "model", "data", "optim", "logger"} <= found
    assert len(_options("experiment")) >= 1
    assert len(_options("sweep")) >= 1


@pytest.mark.parametrize(("group", "option"), _group_options(), ids=lambda v: str(v))
def test_every_group_option_composes_and_validates(compose_cfg, group, option) -> None:
    cfg = compose_cfg(["nodes=8", f"{group}={option}", *_compatible(group, option)])
    c = validate(cfg, check_paths=False)
    assert isinstance(c, Config)
    assert c.nodes == 8
    if group in ("algorithm", "topology", "network", "model", "data", "logger"):
        # the option's own `name` (or mode) is what the job runs with
        spec = yaml.safe_load((CONF / group / f"{option}.yaml").read_text())
        if group in spec:  # a `# @package _global_` option (e.g. sgp_2peer sets its peers too)
            spec = spec[group]
        key = "wandb_mode" if group == "logger" else "name"
        assert getattr(getattr(c, group), key) == spec[key]


@pytest.mark.parametrize("preset", _options("experiment"))
def test_every_experiment_preset_composes_and_validates(compose_cfg, preset) -> None:
    cfg = compose_cfg(["nodes=8", f"experiment={preset}"])
    c = validate(cfg, check_paths=False)
    spec = yaml.safe_load((CONF / "experiment" / f"{preset}.yaml").read_text())
    # the preset's own values win over the primary config's (study, comm, ...)
    if "study" in spec:
        assert c.study == spec["study"]
    for override in spec.get("defaults", []):
        ((group, option),) = ((k.removeprefix("override /"), v) for k, v in override.items())
        if group == "algorithm":
            algo = yaml.safe_load((CONF / "algorithm" / f"{option}.yaml").read_text())
            assert c.algorithm.name == algo["name"]


def _sweep_params(compose_cfg, sweep: str) -> dict[str, list[str]]:
    cfg = compose_cfg([f"+sweep={sweep}"], return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.sweeper.params)
    assert params, f"conf/sweep/{sweep}.yaml sets no hydra.sweeper.params"
    return {k: [v.strip() for v in str(vals).split(",")] for k, vals in params.items()}


@pytest.mark.parametrize("sweep", _options("sweep"))
def test_every_sweep_is_a_grid_of_valid_cells(compose_cfg, sweep) -> None:
    params = _sweep_params(compose_cfg, sweep)
    assert next(iter(params)) == "nodes", "node counts vary slowest (jobs of one size run together)"
    assert {"nodes", "algorithm"} <= set(params)
    if sweep.startswith("table1"):  # the paper's Table 1 grid: 4 algorithms x 4 node counts
        assert params["nodes"] == ["4", "8", "16", "32"]
        assert len(params["algorithm"]) == 4
    other = [k for k in params if k not in ("nodes", "seed")]
    # one compose per algorithm (composing is slow); nodes and seeds are plain values
    for values in itertools.product(*(params[k] for k in other)):
        overrides = [f"+sweep={sweep}", *(f"{k}={v}" for k, v in zip(other, values, strict=True))]
        base = compose_cfg([*overrides, "nodes=4"])
        assert base.study == sweep  # the sweep names its study (run directory and table key)
        for nodes in params["nodes"]:
            cell = base.copy()
            cell.nodes = int(nodes)
            c = validate(cell, check_paths=False)
            assert (c.study, c.nodes) == (sweep, int(nodes))


@pytest.mark.parametrize(
    "override",
    [
        "algorithm.tua=2",
        "optim.lerning_rate=1",
        "network.latncy_s=0",
        "nodes=abc",
        "algorithm.tau=x",
    ],
)
def test_typo_or_wrong_type_fails_at_compose(compose_cfg, override) -> None:
    with pytest.raises(ConfigCompositionException) as info:
        compose_cfg(["nodes=4", override])
    assert override.split("=")[0] in str(info.value)


def test_missing_nodes_is_a_config_error(compose_cfg) -> None:
    cfg = compose_cfg([])
    with pytest.raises(ConfigError, match=r"nodes") as info:
        validate(cfg)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("preset", _options("experiment"))
def test_slurm_launcher_takes_each_cells_resources(compose_cfg, preset) -> None:
    from omegaconf import OmegaConf

    from sgprepro.slurm_launcher import cell_resources
    from sgprepro.train.callbacks import job_config

    cfg = compose_cfg(
        ["nodes=16", f"experiment={preset}", "hydra/launcher=slurm", "slurm.partition=gpu"],
        return_hydra_config=True,
    )
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.sgprepro_slurm.launcher.CellSlurmLauncher"
    assert launcher.submitit_folder.startswith(f"multirun/{cfg.study}/")
    res = cell_resources(job_config(cfg))
    assert res["nodes"] == 16
    assert res["tasks_per_node"] == 1  # one task per node of the paper (one rank)
    assert res["gpus_per_node"] == cfg.slurm.gpus_per_node == 8
    assert res["cpus_per_task"] == cfg.slurm.cpus_per_task
    assert res["mem_gb"] == cfg.slurm.mem_gb
    assert res["timeout_min"] == cfg.slurm.timeout_min
    assert res["partition"] == "gpu"
    assert res["constraint"] is None  # empty: left out
    assert res["name"] == f"{cfg.study}.sgp-n16-{cfg.network.name}-s0"
    # the launcher's own config reads nothing of the job's: it resolves with nodes swept (???)
    swept = compose_cfg(["experiment=" + preset, "hydra/launcher=slurm"], return_hydra_config=True)
    assert OmegaConf.is_missing(swept, "nodes")
    params = OmegaConf.to_container(swept.hydra.launcher, resolve=True)
    assert params["srun_args"] == ["--kill-on-bad-exit=1"]
    assert params["wait"] is True
