"""Structured-config schemas, their registration with Hydra's ConfigStore, and validation.

The schema makes a typo or a wrong type fail at compose time; :func:`validate` then checks every
cross-field constraint and returns plain dataclasses (a :class:`Config`), before any worker starts.
Library code takes these dataclasses, never a DictConfig.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf

from sgprepro.algorithms import AlgorithmConfig
from sgprepro.data import DataError, DataSpec, check_batch, validate_data_spec
from sgprepro.models import ModelSpec, validate_model_spec
from sgprepro.network import NetworkConfig
from sgprepro.topology import BipartiteGraph, PeersSchedule, Topology, TopologyError, make_topology

# algorithm -> graph used when topology.name=auto
AUTO_TOPOLOGY = {
    "allreduce": "complete",
    "sgp": "exponential",
    "osgp": "exponential",
    "dpsgd": "bipartite_exponential",
    "adpsgd": "bipartite_exponential",
}


class ConfigError(ValueError):
    """Bad input: one line naming the key, the value, the constraint and a fix."""


@dataclass
class TopologyConfig:
    """The ``topology`` group. ``name=auto`` picks the paper's graph for the algorithm:
    exponential for sgp/osgp, bipartite_exponential for dpsgd/adpsgd (allreduce needs none)."""

    name: str = "auto"
    form: str = "paper"  # exponential only: paper (2^k hops forward) or phonebook (+-2^i)
    peers_schedule: dict[int, int] = field(default_factory=lambda: {0: 1})  # epoch -> peers


@dataclass
class OptimConfig:
    """The ``optim`` group: the paper's recipe (Goyal et al. 2017 as used by Assran et al. 2019).

    lr = lr_per_ref_batch x (global batch / ref_batch), linear warm-up from lr_per_ref_batch over
    ``warmup_epochs``, x ``gamma`` at each milestone. Milestones and warm-up are given on the
    paper's 90-epoch clock and scaled to ``epochs`` when ``scale_to_epochs`` is true.
    """

    batch_size: int = 32  # per node per iteration
    lr_per_ref_batch: float = 0.1
    ref_batch: int = 256
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    epochs: float = 90.0
    warmup_epochs: float = 5.0
    milestones: list[float] = field(default_factory=lambda: [30.0, 60.0, 80.0])
    gamma: float = 0.1
    schedule_epochs: float = 90.0  # the clock the milestones are written on
    scale_to_epochs: bool = True
    lr_update_every: int = 1  # iterations between lr updates (the original code: 100)


@dataclass
class LoggerConfig:
    """The ``logger`` group: W&B mirror of the local records and the progress display."""

    wandb_mode: str = "auto"  # auto: online if logged in, else offline; offline; online; disabled
    project: str = "sgprepro"
    entity: str | None = None
    progress: str = "auto"  # auto: a bar on a terminal, quiet in CI; on; off


@dataclass
class CommConfig:
    """Backend and timeouts (every wait is bounded)."""

    backend: str = "auto"  # auto: nccl when CUDA is present, else gloo
    timeout_s: float = 120.0  # bound on any single communication wait
    job_timeout_s: float = 3600.0  # bound on a whole job on the local launcher
    threads_per_worker: int = 1
    gpus_per_rank: int = 0  # >1: one process drives several GPUs with nn.DataParallel (paper: 8)


@dataclass
class SlurmConfig:
    """Cluster resources for ``hydra/launcher=slurm`` (one task per node of the paper)."""

    partition: str = ""
    gpus_per_node: int = 8
    cpus_per_task: int = 80
    mem_gb: int = 400
    timeout_min: int = 4320
    constraint: str = ""
    master_port: int = 29500


@dataclass
class TrainConfig:
    """The training loop's own knobs."""

    eval_every_epochs: float = 1.0
    log_every: int = 20
    max_steps: int = 0  # >0 caps the iterations per node (debug runs)
    checkpoint_every_epochs: float = 0.0  # 0: no checkpoints
    eval_batch_size: int = 1000
    # Fault injection for testing failure handling: "" (none), "crash@R:S" (rank R raises before
    # its iteration S, counted from 0) or "hang@R:S" (rank R blocks forever there, so its peers'
    # waits hit comm.timeout_s). Part of the config and of its hash, like every other key.
    inject_fault: str = ""


@dataclass
class Config:
    """The whole job. ``nodes`` is explicit: there is no host-dependent default."""

    nodes: int = MISSING
    seed: int = 0
    study: str = "adhoc"
    dry_run: bool = False
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    topology: TopologyConfig = field(default_factory=TopologyConfig)
    network: NetworkConfig = field(
        default_factory=lambda: NetworkConfig(name="eth_10g", latency_s=0.0, bandwidth_gbps=10.0)
    )
    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataSpec = field(default_factory=DataSpec)
    optim: OptimConfig = field(default_factory=OptimConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    comm: CommConfig = field(default_factory=CommConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    slurm: SlurmConfig = field(default_factory=SlurmConfig)


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


def register_configs() -> None:
    """Register the schema as ``base_config`` (``conf/config.yaml`` lists it first)."""
    from hydra.core.config_store import ConfigStore

    if not OmegaConf.has_resolver("suffix"):
        # "" -> "", "a=1,b=2" -> ",a=1,b=2": appends sweep overrides to a run directory name
        OmegaConf.register_new_resolver("suffix", lambda s: f",{s}" if s else "")
    ConfigStore.instance().store(name="base_config", node=_writable(OmegaConf.structured(Config)))


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


def resolve_topology_name(cfg: Config) -> str:
    return AUTO_TOPOLOGY[cfg.algorithm.name] if cfg.topology.name == "auto" else cfg.topology.name


def build_topology(cfg: Config) -> Topology:
    name = resolve_topology_name(cfg)
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
        topo = build_topology(c)
        sched = peers_schedule(c)
    except (TopologyError, ValueError) as exc:
        raise _err(f"{exc} (algorithm={c.algorithm.name}, nodes={c.nodes})") from exc
    if c.algorithm.name != "allreduce":
        try:
            topo.check_peers(sched.max_peers)
        except TopologyError as exc:
            raise _err(
                f"topology.peers_schedule={dict(sched.milestones)} with topology={topo.name}, "
                f"nodes={c.nodes}: {sched.max_peers} peers per round, but the graph has at most "
                f"{topo.max_peers}; lower the peers in topology.peers_schedule to <= "
                f"{topo.max_peers} or use more nodes"
            ) from exc
    if c.algorithm.name == "dpsgd" and not topo.undirected:
        raise _err(
            f"topology.name={topo.name} with algorithm=dpsgd: D-PSGD averages symmetrically and "
            "needs an undirected graph; use topology=bipartite_exponential (or auto)"
        )
    if c.algorithm.name == "adpsgd" and not isinstance(topo, BipartiteGraph):
        raise _err(
            f"topology.name={topo.name} with algorithm=adpsgd: AD-PSGD pairs active and passive "
            "nodes; use topology=bipartite_exponential (or auto)"
        )
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
    return {
        "study": c.study,
        "algorithm": c.algorithm.name,
        "nodes": c.nodes,
        "network": c.network.name,
        "seed": c.seed,
    }
