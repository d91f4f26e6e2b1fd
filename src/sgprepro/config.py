"""The schema's registration with Hydra's ConfigStore, validation, and the factories that turn a
validated :class:`~sgprepro.schema.Config` into library objects (graph, peers schedule, identity).

The schema (:mod:`sgprepro.schema`) makes a typo or a wrong type fail at compose time;
:func:`validate` then checks every cross-field constraint and returns plain dataclasses, before
any worker starts. Algorithm-specific rules are asked of the algorithm's class
(``Algorithm.check``), never re-checked by name here.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sgprepro.data import DataError, DataSpec, check_batch, validate_data_spec
from sgprepro.models import validate_model_spec
from sgprepro.schema import (
    AlgorithmConfig,
    CommConfig,
    Config,
    LoggerConfig,
    OptimConfig,
    SlurmConfig,
    TopologyConfig,
    TrainConfig,
)
from sgprepro.topology import PeersSchedule, Topology, TopologyError, make_topology

__all__ = [
    "AlgorithmConfig",
    "CommConfig",
    "Config",
    "ConfigError",
    "LoggerConfig",
    "OptimConfig",
    "SlurmConfig",
    "TopologyConfig",
    "TrainConfig",
    "build_topology",
    "cell_of",
    "config_hash",
    "peers_schedule",
    "register_configs",
    "resolve_topology_name",
    "validate",
]


class ConfigError(ValueError):
    """Bad input: one line naming the key, the value, the constraint and a fix."""


def _writable(node: DictConfig) -> DictConfig:
    """Frozen dataclasses make read-only nodes; clear the flag so overrides can merge."""
    OmegaConf.set_readonly(node, None)
    for key in node:
        child = node._get_node(key)
        if isinstance(child, DictConfig):
            _writable(child)
        else:
            child._set_flag("readonly", None)
    return node


def writable_schema() -> DictConfig:
    """The :class:`Config` schema as a DictConfig that overrides and records can merge into."""
    return _writable(OmegaConf.structured(Config))


def register_configs() -> None:
    """Register the schema as ``base_config`` (``conf/config.yaml`` lists it first)."""
    from hydra.core.config_store import ConfigStore

    if not OmegaConf.has_resolver("row"):
        # the run's row (its variant, else the algorithm's name): names run directories
        OmegaConf.register_new_resolver("row", lambda name, variant: variant or name)
    if not OmegaConf.has_resolver("suffix"):
        # "" -> "", "a=1,b=2" -> ",a=1,b=2": appends sweep overrides to a run directory name
        OmegaConf.register_new_resolver("suffix", lambda s: f",{s}" if s else "")
    ConfigStore.instance().store(name="base_config", node=writable_schema())


# -- validation ------------------------------------------------------------------------------


def _err(msg: str) -> ConfigError:
    return ConfigError(msg)


_FAULT_RE = re.compile(r"(crash|hang)@(\d+):(\d+)")


def parse_fault(spec: str) -> tuple[str, int, int] | None:
    """``train.inject_fault`` -> (kind, rank, step), or None for "" (no fault).

    Raises:
        ValueError: the string is not ``crash@RANK:STEP`` or ``hang@RANK:STEP``.
    """
    if not spec:
        return None
    m = _FAULT_RE.fullmatch(spec.strip())
    if m is None:
        raise ValueError(
            f"train.inject_fault={spec!r}: must be '' (no fault), 'crash@RANK:STEP' or "
            "'hang@RANK:STEP'; e.g. train.inject_fault=crash@1:3"
        )
    return m.group(1), int(m.group(2)), int(m.group(3))


def algorithm_class_of(cfg: Config) -> Any:
    """The registered class of ``cfg.algorithm.name`` (imports the algorithms: torch)."""
    from sgprepro.algorithms import algorithm_class

    return algorithm_class(cfg.algorithm.name)


def resolve_topology_name(cfg: Config) -> str | None:
    """The graph the run uses: ``topology.name``, or the algorithm's default for ``auto`` (None
    for an algorithm without a graph)."""
    if cfg.topology.name == "auto":
        return algorithm_class_of(cfg).default_topology
    return cfg.topology.name


def build_topology(cfg: Config) -> Topology | None:
    name = resolve_topology_name(cfg)
    if name is None:
        return None
    kwargs: dict[str, Any] = {"form": cfg.topology.form} if name == "exponential" else {}
    return make_topology(name, cfg.nodes, **kwargs)


def peers_schedule(cfg: Config) -> PeersSchedule:
    return PeersSchedule(dict(cfg.topology.peers_schedule))


def train_samples(data: DataSpec) -> int | None:
    """Training-set size known without loading (generated datasets), else None."""
    if data.name in ("mnist1d", "synthetic"):
        return int(data.num_samples * data.train_split)
    return None


def to_config(cfg: DictConfig | Config) -> Config:
    """DictConfig -> Config (runs each dataclass's own checks); errors become ConfigError."""
    if isinstance(cfg, Config):
        return cfg
    if OmegaConf.is_missing(cfg, "nodes"):
        raise _err(
            "nodes=???: the node count is explicit; set nodes=4 (or nodes=4,8,16,32 with -m)"
        )
    try:
        out = OmegaConf.to_object(cfg)
    except (ValueError, TypeError) as exc:
        raise _err(str(exc).splitlines()[0]) from exc
    if not isinstance(out, Config):
        raise _err(f"the composed config is a {type(out).__name__}, not a Config schema")
    return out


def validate(cfg: DictConfig | Config, check_paths: bool = True) -> Config:
    """Every check that can run before any worker starts.

    Args:
        cfg: the composed config.
        check_paths: check that dataset paths exist (off for dry runs of cluster presets).

    Raises:
        ConfigError: one line naming key, value, constraint and fix.
    """
    c = to_config(cfg)
    if c.nodes < 2:
        raise _err(f"nodes={c.nodes}: decentralized training needs at least 2 nodes; use nodes=4")
    try:
        cls = algorithm_class_of(c)
    except ValueError as exc:
        raise _err(str(exc)) from exc
    if cls.default_topology is None and c.topology.name != "auto":
        raise _err(
            f"topology.name={c.topology.name} with algorithm={c.algorithm.name}: this algorithm "
            "uses no communication graph; drop the topology override (topology=auto)"
        )
    try:
        topo = build_topology(c)
        sched = peers_schedule(c)
    except (TopologyError, ValueError) as exc:
        raise _err(f"{exc} (algorithm={c.algorithm.name}, nodes={c.nodes})") from exc
    if topo is not None:
        try:
            topo.check_peers(sched.max_peers)
        except TopologyError as exc:
            raise _err(
                f"topology.peers_schedule={dict(sched.milestones)} with topology={topo.name}, "
                f"nodes={c.nodes}: {sched.max_peers} peers per round, but the graph has at most "
                f"{topo.max_peers}; lower the peers in topology.peers_schedule to <= "
                f"{topo.max_peers} or use more nodes"
            ) from exc
    try:
        cls.check(c.algorithm, topo)
    except ValueError as exc:
        raise _err(str(exc).splitlines()[0]) from exc
    try:
        validate_model_spec(c.model)
        if check_paths or c.data.name not in ("cifar10", "imagenet"):  # the folder datasets
            validate_data_spec(c.data)
    except (DataError, ValueError) as exc:
        raise _err(str(exc).splitlines()[0]) from exc
    n_train = train_samples(c.data)
    if n_train is not None:
        try:
            check_batch(c.optim.batch_size, n_train, c.nodes)
        except DataError as exc:  # name the key as it is set: optim.batch_size
            msg = str(exc).splitlines()[0].replace("batch_size", "optim.batch_size")
            raise _err(f"{msg} (data.name={c.data.name})") from exc
    o = c.optim
    for key, val, ok, fix in (
        ("optim.batch_size", o.batch_size, o.batch_size >= 1, "use 32"),
        ("optim.lr_per_ref_batch", o.lr_per_ref_batch, o.lr_per_ref_batch > 0, "use 0.1"),
        ("optim.epochs", o.epochs, o.epochs > 0, "use 90 (paper) or 20 (MNIST-1D)"),
        ("optim.warmup_epochs", o.warmup_epochs, 0 <= o.warmup_epochs, "use 5"),
        ("optim.momentum", o.momentum, 0 <= o.momentum < 1, "use 0.9"),
        ("optim.weight_decay", o.weight_decay, o.weight_decay >= 0, "use 1e-4"),
        ("optim.gamma", o.gamma, 0 < o.gamma <= 1, "use 0.1"),
        ("optim.lr_update_every", o.lr_update_every, o.lr_update_every >= 1, "use 1"),
    ):
        if not ok or (isinstance(val, float) and not math.isfinite(val)):
            raise _err(f"{key}={val}: out of range; {fix}")
    if c.comm.backend not in ("auto", "gloo", "nccl"):
        raise _err(f"comm.backend={c.comm.backend!r}: must be auto, gloo or nccl")
    if c.comm.timeout_s <= 0 or c.comm.job_timeout_s <= 0:
        raise _err(
            f"comm.timeout_s={c.comm.timeout_s}, comm.job_timeout_s={c.comm.job_timeout_s}: "
            "timeouts must be > 0; use comm.timeout_s=120"
        )
    if c.logger.wandb_mode not in ("auto", "online", "offline", "disabled"):
        raise _err(
            f"logger.wandb_mode={c.logger.wandb_mode!r}: must be auto, online, offline or disabled"
        )
    if c.logger.progress not in ("auto", "on", "off"):
        raise _err(f"logger.progress={c.logger.progress!r}: must be auto, on or off")
    if c.train.eval_every_epochs <= 0:
        raise _err(f"train.eval_every_epochs={c.train.eval_every_epochs}: must be > 0; use 1")
    try:
        fault = parse_fault(c.train.inject_fault)
    except ValueError as exc:
        raise _err(str(exc)) from exc
    if fault is not None and fault[1] >= c.nodes:
        raise _err(
            f"train.inject_fault={c.train.inject_fault!r} with nodes={c.nodes}: rank {fault[1]} "
            f"does not exist; use a rank in [0, {c.nodes - 1}]"
        )
    return c


def config_dict(c: Config) -> dict[str, Any]:
    return asdict(c)


def config_hash(c: Config) -> str:
    """Hash of everything that defines a cell's result except the seed and the dry-run flag."""
    d = config_dict(c)
    d.pop("seed", None)
    d.pop("dry_run", None)
    d.pop("logger", None)  # where results are mirrored does not change them
    d.pop("slurm", None)
    d["train"].pop("checkpoint_every_epochs", None)
    d["train"].pop("inject_fault", None)  # a test knob: a resumed run drops it
    d["comm"].pop("job_timeout_s", None)
    d["comm"].pop("timeout_s", None)
    blob = json.dumps(d, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def cell_of(c: Config) -> dict[str, Any]:
    """A run's table cell and seed; ``algorithm`` is the variant (``allreduce_ddp``,
    ``sgp_2peer``, ...), so variants are rows of their own."""
    return {
        "study": c.study,
        "algorithm": c.algorithm.row,
        "nodes": c.nodes,
        "network": c.network.name,
        "seed": c.seed,
    }
