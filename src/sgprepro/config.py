"""The schema's registration with Hydra's ConfigStore, validation, and the factories that turn a
validated :class:`~sgprepro.schema.Config` into library objects (graph, peers schedule, identity).

The schema (:mod:`sgprepro.schema`) makes a typo or a wrong type fail at compose time;
:func:`validate` then checks every cross-field constraint and returns plain dataclasses, before
any worker starts. Algorithm-specific rules are asked of the algorithm's class
(``Algorithm.check``), never re-checked by name here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
from dataclasses import asdict, dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sgprepro.configstore import NODES_MISSING, register_configs, writable_schema
from sgprepro.data import (
    DataError,
    DataSpec,
    batches_per_epoch,
    check_batch,
    check_cache_dir,
    input_shape_of,
    validate_data_spec,
)
from sgprepro.models import MIN_RESNET20_WIDTH, ModelError, check_model_input, validate_model_spec
from sgprepro.overrides import not_a_setting
from sgprepro.schema import (
    RESULT_NEUTRAL_KEYS,
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
    "HostFacts",
    "LoggerConfig",
    "OptimConfig",
    "SlurmConfig",
    "TopologyConfig",
    "TrainConfig",
    "build_topology",
    "cell_of",
    "check_folder_name",
    "config_hash",
    "peers_schedule",
    "register_configs",
    "resolve_topology_name",
    "validate",
    "writable_schema",
]


class ConfigError(ValueError):
    """Bad input: one line naming the key, the value, the constraint and a fix."""


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


def unread_settings(cfg: Config, overrides: list[str] | tuple[str, ...]) -> list[str]:
    """One line per ``algorithm.<key>=value`` in ``overrides`` that the run's algorithm does not
    read (``algorithm.tau=3`` with ``algorithm=sgp``): such a run is the plain algorithm, which
    the user may not expect. Not an error: a sweep over algorithms may set one's knob for all."""
    from sgprepro.algorithms import algorithm_class, algorithm_names

    reads = set(algorithm_class_of(cfg).settings) | {"name", "variant"}
    variant = f" (variant {cfg.algorithm.variant})" if cfg.algorithm.variant else ""
    out = []
    for item in overrides:
        key, sep, value = item.lstrip("+~").partition("=")
        if not sep or not key.startswith("algorithm.") or key.count(".") != 1:
            continue
        setting = key.split(".", 1)[1]
        if setting in reads:
            continue
        users = [a for a in algorithm_names() if setting in algorithm_class(a).settings]
        where = f"it is a setting of {', '.join(users)}" if users else "no algorithm reads it"
        out.append(
            f"{key}={value} has no effect with algorithm={cfg.algorithm.name}{variant} ({where}); "
            f"drop it{f' or use algorithm={users[0]}' if users else ''}"
        )
    return out


def unscaled_schedule(cfg: Config) -> list[str]:
    """One line when ``optim.scale_to_epochs=false`` leaves part of the schedule outside the run
    (``optim.epochs=9``: the warm-up of 5 epochs ends in it, the milestones 30, 60 and 80 never
    come): the run is the first epochs of a longer schedule. Only what scaling would bring into
    the run counts (a milestone at the schedule's last epoch never applies either way). Not an
    error: that may be the point; the line says how to compress the schedule instead."""
    o = cfg.optim
    if o.scale_to_epochs:
        return []
    late = [m for m in sorted(o.milestones) if o.epochs <= m < o.schedule_epochs]
    parts = []
    if 0 < o.warmup_epochs < o.schedule_epochs and o.warmup_epochs >= o.epochs:
        parts.append(f"the end of its {o.warmup_epochs:g}-epoch warm-up")
    if late:
        word = "milestone" if len(late) == 1 else "milestones"
        parts.append(f"its {word} {', '.join(f'{m:g}' for m in late)}")
    if not parts:
        return []
    line = (
        f"optim.scale_to_epochs=false with optim.epochs={o.epochs:g}: the run ends before "
        f"{' and '.join(parts)} (a {o.schedule_epochs:g}-epoch schedule), so it trains on the "
        "first epochs of it; use optim.scale_to_epochs=true to fit the schedule to the run"
    )
    return [line]


def overridden_choices(cfg: Config, overrides: list[str] | tuple[str, ...]) -> list[str]:
    """One line per setting of a ``logger=<choice>`` on the command line that a later preset
    (``debug=tiny`` turns W&B off) replaced, so the run does not do what the choice says. Not an
    error: the preset's choice is deliberate; the line says how to keep the logger's."""
    given = {o.lstrip("+").partition("=")[0] for o in overrides if "=" in o}
    out = []
    for item in overrides:
        key, sep, choice = item.lstrip("+").partition("=")
        if not sep or key != "logger":
            continue
        preset = _preset("logger", choice)
        if preset is None:
            continue
        for name, value in preset.items():
            if name == "progress":  # how the run's progress shows, not what it records
                continue
            have = getattr(cfg.logger, name, value)
            if have != value and f"logger.{name}" not in given:
                out.append(
                    f"logger={choice} sets logger.{name}={value}, but a later preset "
                    f"(debug=...) set it to {have}; add logger.{name}={value} to keep it"
                )
    return out


def _schedule_text(schedule: dict) -> str:
    """A peers schedule as typed on the command line: ``{0:2,30:1}``."""
    return (
        "{"
        + ",".join(f"{k}:{v}" for k, v in sorted(schedule.items(), key=lambda kv: int(kv[0])))
        + "}"
    )


PRESET_GROUPS: tuple[str, ...] = ("debug", "experiment")
"""Config groups a run's folder name leaves out (``hydra.job.config.override_dirname``) that
change what it computes all the same: its recorded overrides keep them (see
:func:`recorded_overrides` for when an experiment preset does not count)."""


def _preset(group: str, choice: str) -> dict | None:
    """The preset ``conf/<group>/<choice>.yaml`` as a dict (None: missing or unreadable)."""
    import yaml

    from sgprepro.paths import conf_dir

    try:
        preset = yaml.safe_load((conf_dir() / group / f"{choice}.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    return preset if isinstance(preset, dict) else None


def _preset_study(group: str, choice: str) -> str | None:
    """The ``study`` the preset ``conf/<group>/<choice>.yaml`` sets (None: none, or unreadable)."""
    study = (_preset(group, choice) or {}).get("study")
    return str(study) if study is not None else None


def recorded_overrides(
    task: list[str] | tuple[str, ...], exclude_keys: list[str] | tuple[str, ...], study: str
) -> str:
    """A run's overrides beyond its cell, as run.json and W&B record them: Hydra's
    ``override_dirname`` (``task`` less ``exclude_keys``, sorted, comma-joined) with the
    :data:`PRESET_GROUPS` kept, so that a ``debug=tiny`` run of a study reads as a variant of it.

    A preset that selects nothing (``debug=null``, ``~debug``) is left out, and so is an
    ``experiment`` preset that sets the run's own ``study``: ``experiment=paper_imagenet`` is how
    one cell of ``table1_paper`` is run, not a variant of it.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    out_keys = set(exclude_keys) - set(PRESET_GROUPS)
    kept = []
    for o in OverridesParser.create().parse_overrides(list(task)):
        group = o.key_or_group
        if group in out_keys:
            continue
        if group in PRESET_GROUPS:
            choice = None if o.is_delete() else o.value()
            if choice is None or (
                group == "experiment" and _preset_study(group, str(choice)) == study
            ):
                continue
        kept.append(str(o.input_line))
    return ",".join(sorted(kept))


def merged_schedule(cfg: Config, overrides: list[str] | tuple[str, ...]) -> str | None:
    """The error for a ``topology.peers_schedule`` given on the command line that Hydra merged
    into a preset's schedule with more epochs (``{0:4}`` over ``{0:2,30:1}`` gives ``{0:4,30:1}``,
    not the constant 4 peers the user wrote); None when the run uses the schedule as given."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    given: dict | None = None
    for item in overrides:
        key, sep, _ = item.lstrip("+").partition("=")
        if sep and key == "topology.peers_schedule":
            (parsed,) = OverridesParser.create().parse_overrides([item])
            value = parsed.value()
            given = value if isinstance(value, dict) else given
    if not given:
        return None
    composed = {int(k): int(v) for k, v in cfg.topology.peers_schedule.items()}
    extra = sorted(set(composed) - {int(k) for k in given})
    if not extra:
        return None
    as_meant = {int(k): v for k, v in given.items()}
    for epoch in extra:  # what the given schedule has in effect at that epoch
        before = [g for g in as_meant if g <= epoch and g not in extra]
        as_meant[epoch] = as_meant[max(before)] if before else composed[epoch]
    if as_meant == composed:  # the merged epochs change nothing (e.g. {0:3,5:1} over {30:1})
        return None
    return (
        f"topology.peers_schedule={_schedule_text(given)}: Hydra merged it into the schedule the "
        f"config already had (from a topology or algorithm preset), so the run would use "
        f"{_schedule_text(composed)}; give those epochs too, e.g. "
        f"'+topology.peers_schedule={_schedule_text(as_meant)}' (quoted for the shell)"
    )


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


def _unknown_key(node: DictConfig, path: str = "") -> ConfigError | None:
    """The first key of ``node`` that is not a field of its schema dataclass (``+optim.lr=0.1``
    adds one; the schema would drop it silently), as a ConfigError naming it; else None."""
    kind = OmegaConf.get_type(node)
    if kind is None or not dataclasses.is_dataclass(kind):
        return None  # a plain dict (e.g. topology.peers_schedule): any key is data
    fields = [f.name for f in dataclasses.fields(kind)]
    for key in map(str, node):
        name = f"{path}{key}"
        if key not in fields:
            container = OmegaConf.to_container(node, resolve=False)
            assert isinstance(container, dict)  # node is a DictConfig
            raw = container[key]
            shown = raw if isinstance(raw, str) else json.dumps(raw)
            group = path.rstrip(".") or "the config"
            return _err(not_a_setting(name, shown, group, list(fields), plus=True))
        child = node._get_node(key)
        if isinstance(child, DictConfig):
            found = _unknown_key(child, f"{name}.")
            if found is not None:
                return found
    return None


def to_config(cfg: DictConfig | Config) -> Config:
    """DictConfig -> Config (runs each dataclass's own checks); errors become ConfigError."""
    if isinstance(cfg, Config):
        return cfg
    if OmegaConf.is_missing(cfg, "nodes"):
        raise _err(NODES_MISSING)
    unknown = _unknown_key(cfg)
    if unknown is not None:
        raise unknown
    try:
        out = OmegaConf.to_object(cfg)
    except (ValueError, TypeError) as exc:
        raise _err(str(exc).splitlines()[0]) from exc
    if not isinstance(out, Config):
        raise _err(f"the composed config is a {type(out).__name__}, not a Config schema")
    return out


@dataclass(frozen=True)
class HostFacts:
    """What validation needs to know about the machine that launches the job.

    Attributes:
        cpu_cores: CPU cores this process may run on.
        cuda: a CUDA device is usable.
        slurm_task: this process is a task of a submitit SLURM job (one task per node), not a
            local launch.
        world_size: ranks in the job when a launcher started this process as one of them
            (torchrun or another env:// launcher, or SLURM); None for a local launch.
        world_source: what set ``world_size`` (for the error), e.g. ``WORLD_SIZE=2``.
    """

    cpu_cores: int
    cuda: bool
    slurm_task: bool
    world_size: int | None = None
    world_source: str = ""

    @classmethod
    def detect(cls) -> HostFacts:
        """Raises ConfigError when the launcher's variables are inconsistent."""
        from sgprepro.launchenv import LaunchEnvError
        from sgprepro.launchenv import detect as detect_launch

        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            cores = os.cpu_count() or 1
        try:
            launch = detect_launch()
        except LaunchEnvError as exc:
            raise _err(str(exc)) from exc
        import torch

        return cls(
            cpu_cores=max(1, cores),
            cuda=torch.cuda.is_available(),
            slurm_task=launch.kind == "slurm",
            world_size=launch.world_size,
            world_source=launch.source,
        )


# A name used as a folder: letters, digits, '.', '_' and '-', not starting with '.' or '-'.
_FOLDER_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")
MIN_TIMEOUT_S = 1.0
WANDB_FORBIDDEN = "/\\#?%:"
"""Characters W&B refuses in a project name."""
MAX_TIMEOUT_S = 1e6
"""Longest wait (about 11.6 days): gloo's timeout clock overflows far above it."""


def check_folder_name(key: str, value: Any, what: str, example: str) -> None:
    """``value`` becomes a folder name (a path component): refuse separators, ``..``, odd characters.

    Raises:
        ConfigError: e.g. ``study=../../x: a study name is a folder name: ...; use study=my_study``.
    """
    text = "" if value is None else str(value)
    if _FOLDER_NAME_RE.fullmatch(text) is None or ".." in text:
        raise _err(
            f"{key}={text}: a {what} is a folder name: letters, digits, '.', '_' and '-' only "
            f"(at most 100, not starting with '.' or '-'), no '/' or '..'; use {key}={example}"
        )


def _check_range(checks) -> None:
    """(key, value, ok, rule, a good value): the first failing one raises, naming all four."""
    for key, val, ok, rule, good in checks:
        finite = not isinstance(val, float) or math.isfinite(val)
        if not (ok and finite):
            raise _err(f"{key}={val}: {rule}; use {key}={good}")


def _check_graphless(c: Config, cls: Any) -> None:
    """An algorithm without a graph: any topology setting would only change the config hash."""
    if cls.default_topology is not None:
        return
    default = TopologyConfig()
    given = [
        f"topology.{key}={getattr(c.topology, key)}"
        for key in ("name", "form", "peers_schedule")
        if getattr(c.topology, key) != getattr(default, key)
    ]
    if given:
        raise _err(
            f"{', '.join(given)} with algorithm={c.algorithm.name}: this algorithm uses no "
            "communication graph, so the setting would only change the config hash; drop the "
            "topology override (topology=auto)"
        )


def _check_host(c: Config, host: HostFacts) -> None:
    """Checks of the machine that launches the job (skipped by dry runs of cluster presets)."""
    if c.comm.backend == "nccl" and not host.cuda:
        raise _err(
            "comm.backend=nccl: NCCL needs a CUDA device and this machine has none; "
            "use comm.backend=gloo (or auto, which picks gloo on CPU)"
        )
    if host.world_size is not None and c.nodes != host.world_size:
        raise _err(
            f"nodes={c.nodes} with {host.world_source}: a launcher started this process as one "
            f"rank of a {host.world_size}-rank job, one process per node, so nodes must equal "
            f"its world size; use nodes={host.world_size}, or launch {c.nodes} processes (e.g. "
            f"torchrun --nnodes {c.nodes} --nproc-per-node 1, or --nproc-per-node {c.nodes} on "
            "one machine)"
        )
    launched_here = not host.slurm_task and host.world_size is None
    if launched_here and c.comm.gpus_per_rank > 0 and not host.cuda:
        raise _err(
            f"comm.gpus_per_rank={c.comm.gpus_per_rank}: this machine has no CUDA device for "
            "the ranks it would start; use comm.gpus_per_rank=0 (CPU) here, or launch on GPU "
            "machines (hydra/launcher=slurm, torchrun)"
        )
    local = launched_here and c.comm.gpus_per_rank == 0
    bound = c.comm.max_nodes_per_core
    if local and bound > 0 and c.nodes > bound * host.cpu_cores:
        raise _err(
            f"nodes={c.nodes} on {host.cpu_cores} CPU core(s): a local run forks one worker per "
            f"node, at most comm.max_nodes_per_core={bound} per core ({bound * host.cpu_cores} "
            f"here); use nodes<={bound * host.cpu_cores}, or raise the bound with "
            f"comm.max_nodes_per_core={math.ceil(c.nodes / host.cpu_cores)} (0: no bound)"
        )


def run_iterations(c: Config, train_size: int) -> tuple[int, int]:
    """(iterations per epoch per node, total iterations per node) of a run on a training set
    of ``train_size`` samples (``train.max_steps`` > 0 caps the total)."""
    ipe = batches_per_epoch(train_size, c.nodes, c.optim.batch_size)
    total = max(1, math.ceil(c.optim.epochs * ipe))
    if c.train.max_steps > 0:
        total = min(total, c.train.max_steps)
    return ipe, total


def validate(
    cfg: DictConfig | Config,
    check_paths: bool = True,
    host: HostFacts | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> Config:
    """Every check that can run before any worker starts.

    Args:
        cfg: the composed config.
        check_paths: check what depends on this machine: that dataset paths exist, that NCCL has
            CUDA, the nodes-per-core bound (off for dry runs of cluster presets).
        host: the machine's facts (None: detect them); tests pass fixed ones.
        overrides: the command line's overrides that composed ``cfg`` (Hydra's
            ``overrides.task``), for the checks of what Hydra did with them.

    Raises:
        ConfigError: one line naming key, value, constraint and fix.
    """
    c = to_config(cfg)
    check_folder_name("study", c.study, "study name", "my_study")
    if c.algorithm.variant:  # the row's name in run folders and tables (empty: the algorithm's)
        check_folder_name("algorithm.variant", c.algorithm.variant, "variant name", "sgp_2peer")
        from sgprepro.algorithms import algorithm_names

        if c.algorithm.variant in algorithm_names() and c.algorithm.variant != c.algorithm.name:
            raise _err(
                f"algorithm.variant={c.algorithm.variant} with algorithm={c.algorithm.name}: the "
                f"variant names the run's row in tables, and {c.algorithm.variant} is another "
                f"algorithm's row; use algorithm={c.algorithm.variant}, or a new name such as "
                f"algorithm.variant={c.algorithm.name}_{c.algorithm.variant}"
            )
    if c.nodes < 2:
        raise _err(f"nodes={c.nodes}: decentralized training needs at least 2 nodes; use nodes=4")
    if c.comm.max_nodes_per_core < 0:
        raise _err(
            f"comm.max_nodes_per_core={c.comm.max_nodes_per_core}: must be >= 0 (0: no bound); "
            "use comm.max_nodes_per_core=16"
        )
    if check_paths:
        _check_host(c, host if host is not None else HostFacts.detect())
    if c.seed < 0:
        raise _err(f"seed={c.seed}: data order is seeded with seed + rank, >= 0; use seed=0")
    _check_algorithm(c)
    _check_model_and_data(c, check_paths)
    _check_optim(c)
    _check_comm_train_logger(c)
    _check_within_run(c)
    merged = merged_schedule(c, overrides)
    if merged:
        raise _err(merged)
    return c


def _check_algorithm(c: Config) -> None:
    """The algorithm, its graph and its peers per round."""
    try:
        cls = algorithm_class_of(c)
    except ValueError as exc:
        raise _err(str(exc)) from exc
    _check_graphless(c, cls)
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


def _check_model_and_data(c: Config, check_paths: bool) -> None:
    """The model, the dataset (its paths when ``check_paths``) and the batch it allows."""
    check_folder_name("network.name", c.network.name, "network condition", "eth_10g")
    m = c.model
    _check_range(
        (
            ("model.cnn_channels", m.cnn_channels, m.cnn_channels >= 1, "must be >= 1", 32),
            ("model.mlp_hidden", m.mlp_hidden, m.mlp_hidden >= 1, "must be >= 1", 32),
            ("model.mlp_layers", m.mlp_layers, m.mlp_layers >= 0, "must be >= 0", 1),
            (
                "model.resnet20_width",
                m.resnet20_width,
                m.resnet20_width >= MIN_RESNET20_WIDTH,
                f"must be >= {MIN_RESNET20_WIDTH}",
                16,
            ),
        )
    )
    try:
        validate_model_spec(c.model)
        if check_paths or c.data.name not in ("cifar10", "imagenet"):  # the folder datasets
            validate_data_spec(c.data)
        if check_paths and c.data.name == "mnist1d" and c.data.root:  # its cache folder
            check_cache_dir(c.data.root)
        check_model_input(c.model, input_shape_of(c.data))
    except (DataError, ModelError, ValueError) as exc:
        raise _err(str(exc).splitlines()[0]) from exc
    n_train = train_samples(c.data)
    if n_train is not None:
        try:
            check_batch(c.optim.batch_size, n_train, c.nodes)
        except DataError as exc:  # name the key as it is set: optim.batch_size
            msg = str(exc).splitlines()[0].replace("batch_size", "optim.batch_size")
            raise _err(f"{msg} (data.name={c.data.name})") from exc


def _check_within_run(c: Config) -> None:
    """What must happen within the run happens before it ends: a delayed algorithm's messages are
    mixed in (not only drained at the end), local SGD averages at least once, an injected fault
    fires (checked where the training-set size is known without loading: generated data)."""
    n_train = train_samples(c.data)
    if n_train is None:
        return
    _, total = run_iterations(c, n_train)
    length = (
        f"train.max_steps={c.train.max_steps}"
        if 0 < c.train.max_steps == total
        else f"optim.epochs={c.optim.epochs:g}, nodes={c.nodes}, "
        f"optim.batch_size={c.optim.batch_size}"
    )
    run = f"a run of {total} iteration{'s' if total > 1 else ''} per node ({length})"
    cls = algorithm_class_of(c)
    tau = c.algorithm.tau
    if "tau" in cls.settings and tau > 0 and tau >= total:
        fix = f"algorithm.tau<={max(1, total // 4)}" if total > 1 else "algorithm.tau=0 (SGP)"
        raise _err(
            f"algorithm.tau={tau} with {run}: every message would be mixed in only when the run "
            f"drains them at its end; use {fix} or a longer run"
        )
    every = c.algorithm.average_every
    if "average_every" in cls.settings and every > total:
        raise _err(
            f"algorithm.average_every={every} with {run}: the nodes would never average; use "
            f"algorithm.average_every<={max(1, total // 4)} or a longer run"
        )
    fault = parse_fault(c.train.inject_fault)
    if fault is not None and cls.synchronous and fault[2] >= total:
        raise _err(
            f"train.inject_fault={c.train.inject_fault!r} with {run}: step {fault[2]} is never "
            f"reached; use a step in [0, {total - 1}]"
        )


def _check_optim(c: Config) -> None:
    """The optimizer and its learning-rate schedule."""
    o = c.optim
    _check_range(
        (
            ("optim.batch_size", o.batch_size, o.batch_size >= 1, "must be >= 1", 32),
            (
                "optim.lr_per_ref_batch",
                o.lr_per_ref_batch,
                o.lr_per_ref_batch > 0,
                "must be > 0 and finite",
                0.1,
            ),
            ("optim.ref_batch", o.ref_batch, o.ref_batch >= 1, "must be >= 1", 256),
            ("optim.epochs", o.epochs, o.epochs > 0, "must be > 0 and finite", 20),
            (
                "optim.schedule_epochs",
                o.schedule_epochs,
                o.schedule_epochs > 0,
                "must be > 0 and finite",
                90,
            ),
            (
                "optim.warmup_epochs",
                o.warmup_epochs,
                o.warmup_epochs >= 0,
                "must be >= 0 and finite",
                5,
            ),
            ("optim.momentum", o.momentum, 0 <= o.momentum < 1, "must be in [0, 1)", 0.9),
            (
                "optim.weight_decay",
                o.weight_decay,
                o.weight_decay >= 0,
                "must be >= 0 and finite",
                1e-4,
            ),
            ("optim.gamma", o.gamma, 0 < o.gamma <= 1, "must be in (0, 1]", 0.1),
            ("optim.lr_update_every", o.lr_update_every, o.lr_update_every >= 1, "must be >= 1", 1),
        )
    )
    if o.warmup_epochs > o.schedule_epochs:
        raise _err(
            f"optim.warmup_epochs={o.warmup_epochs} with optim.schedule_epochs="
            f"{o.schedule_epochs}: the warm-up is on the same clock and must fit in it, or the "
            "learning rate never reaches its peak; use optim.warmup_epochs=5"
        )
    if any(not (math.isfinite(m) and 0 <= m <= o.schedule_epochs) for m in o.milestones):
        raise _err(
            f"optim.milestones={list(o.milestones)}: epochs on the optim.schedule_epochs clock "
            f"({o.schedule_epochs:g}), each in [0, {o.schedule_epochs:g}] (a later one never "
            "takes effect); use optim.milestones=[30,60,80]"
        )
    if o.nesterov and o.momentum == 0:
        raise _err(
            "optim.nesterov=true with optim.momentum=0: Nesterov momentum needs a momentum; "
            "use optim.momentum=0.9 or optim.nesterov=false"
        )


def _check_comm_train_logger(c: Config) -> None:
    """Communication, the training loop, the logger and an injected fault."""
    if c.comm.backend not in ("auto", "gloo", "nccl"):
        raise _err(
            f"comm.backend={c.comm.backend!r}: must be auto, gloo or nccl; use comm.backend=auto "
            "(nccl with CUDA, else gloo)"
        )
    for key, val, fix in (
        ("comm.timeout_s", c.comm.timeout_s, 120),
        ("comm.job_timeout_s", c.comm.job_timeout_s, 3600),
    ):
        if not (math.isfinite(val) and MIN_TIMEOUT_S <= val <= MAX_TIMEOUT_S):
            raise _err(
                f"{key}={val}: must be in [{MIN_TIMEOUT_S:g}, {MAX_TIMEOUT_S:g}] s (a shorter "
                f"wait fails healthy steps; a longer one overflows gloo's clock); use {key}={fix}"
            )
    t = c.train
    _check_range(
        (
            (
                "comm.threads_per_worker",
                c.comm.threads_per_worker,
                1 <= c.comm.threads_per_worker <= 1024,
                "each worker needs 1 to 1024 threads",
                1,
            ),
            (
                "comm.gpus_per_rank",
                c.comm.gpus_per_rank,
                c.comm.gpus_per_rank >= 0,
                "must be >= 0 (0: CPU; the paper drives 8 GPUs per node)",
                0,
            ),
            (
                "train.log_every",
                t.log_every,
                t.log_every >= 1,
                "iterations between train records, >= 1",
                20,
            ),
            (
                "train.eval_every_epochs",
                t.eval_every_epochs,
                t.eval_every_epochs > 0,
                "must be > 0",
                1,
            ),
            (
                "train.eval_batch_size",
                t.eval_batch_size,
                t.eval_batch_size >= 1,
                "must be >= 1",
                1000,
            ),
            ("train.max_steps", t.max_steps, t.max_steps >= 0, "must be >= 0 (0: no cap)", 0),
            (
                "train.eval_subset",
                t.eval_subset,
                t.eval_subset >= 0,
                "validation samples of mid-run evaluations, >= 0 (0: all of them)",
                0,
            ),
            (
                "slurm.timeout_min",
                c.slurm.timeout_min,
                c.slurm.timeout_min >= 1,
                "minutes a job may run, >= 1",
                4320,
            ),
            (
                "slurm.gpus_per_node",
                c.slurm.gpus_per_node,
                c.slurm.gpus_per_node >= 0,
                "must be >= 0",
                8,
            ),
            (
                "slurm.cpus_per_task",
                c.slurm.cpus_per_task,
                c.slurm.cpus_per_task >= 1,
                "CPUs of a node's task, >= 1",
                80,
            ),
            ("slurm.mem_gb", c.slurm.mem_gb, c.slurm.mem_gb >= 1, "GB of a node, >= 1", 400),
            (
                "train.checkpoint_every_epochs",
                t.checkpoint_every_epochs,
                t.checkpoint_every_epochs >= 0,
                "must be >= 0 (0: no checkpoints)",
                1,
            ),
            (
                "slurm.master_port",
                c.slurm.master_port,
                1024 <= c.slurm.master_port <= 64535,
                "must be in [1024, 64535] (the job adds up to 999)",
                29500,
            ),
        )
    )
    if c.logger.wandb_mode not in ("auto", "online", "offline", "disabled"):
        raise _err(
            f"logger.wandb_mode={c.logger.wandb_mode!r}: must be auto, online, offline or "
            "disabled; use logger.wandb_mode=auto (online when logged in, else offline)"
        )
    if c.logger.wandb_mode != "disabled" and not c.logger.project:
        raise _err(
            "logger.project='': W&B files every run under a project; use logger.project=sgprepro "
            "(or logger=disabled)"
        )
    bad = sorted({ch for ch in c.logger.project if ch in WANDB_FORBIDDEN})
    if c.logger.wandb_mode != "disabled" and (bad or len(c.logger.project) > 128):
        why = f"contains {' '.join(bad)}" if bad else "is longer than 128 characters"
        raise _err(
            f"logger.project={c.logger.project!r}: W&B refuses a project name that {why} (it "
            f"forbids {' '.join(WANDB_FORBIDDEN)} and names over 128 characters); use "
            "logger.project=sgprepro (the team goes in logger.entity)"
        )
    if c.logger.progress not in ("auto", "on", "off"):
        raise _err(
            f"logger.progress={c.logger.progress!r}: must be auto, on or off; use "
            "logger.progress=auto (a bar on a terminal)"
        )
    try:
        fault = parse_fault(c.train.inject_fault)
    except ValueError as exc:
        raise _err(str(exc)) from exc
    if fault is not None and fault[1] >= c.nodes:
        raise _err(
            f"train.inject_fault={c.train.inject_fault!r} with nodes={c.nodes}: rank {fault[1]} "
            f"does not exist; use a rank in [0, {c.nodes - 1}]"
        )


def config_dict(c: Config) -> dict[str, Any]:
    return asdict(c)


def config_hash(c: Config) -> str:
    """Hash of everything that defines a cell's result except the seed and the dry-run flag."""
    d = config_dict(c)
    for key in RESULT_NEUTRAL_KEYS:
        *parents, leaf = key.split(".")
        node = d
        for p in parents:
            node = node[p]
        node.pop(leaf, None)
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
