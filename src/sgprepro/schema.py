"""The job's configuration schema: one dataclass per config group, and the whole job (:class:`Config`).

Registered with Hydra's ConfigStore (``sgprepro.config.register_configs``), so a typo or a wrong
type fails at compose time; cross-field checks run in ``sgprepro.config.validate``. Library code
takes these dataclasses, never a DictConfig. Each group owns its keys; only the top-level keys
(``nodes``, ``seed``, ``study``) are shared.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING

from sgprepro.data.spec import DataSpec
from sgprepro.models.spec import ModelSpec
from sgprepro.network import NetworkConfig


@dataclass(frozen=True)
class AlgorithmConfig:
    """The ``algorithm`` group: which algorithm runs, its variant name and its own knobs.

    Attributes:
        name: a registered algorithm (``sgprepro.algorithms.algorithm_names()``).
        variant: the row this run is in tables and run names (e.g. ``allreduce_ddp``,
            ``sgp_2peer``); empty means ``name``.
        allreduce_mode: allreduce: ``param_avg`` (paper-era: average the parameters after the
            local step) or ``grad_bucket`` (modern: bucketed gradient all-reduce overlapped with
            backward).
        bucket_mb: allreduce ``grad_bucket``: bucket size.
        allreduce_algo: allreduce: the collective the timing engine emulates
            (``recursive_doubling``: the paper-era THD TCP all-reduce; ``ring``; ``tree``). The
            real run uses its backend's own collective; this only shapes emulated time.
        tau: sgp_delayed: a message sent at iteration k is mixed in at iteration k + tau.
        overlap_step: osgp: ``kept_share`` (the original's ``main`` branch: the optimizer step
            acts on the kept share, x_{k+1} = opt(lo x_k) + sum_j lo x_j) or ``lazy_halved``
            (tag ``sgp_pytorch0.5``: x_{k+1} = lo (opt(x_k) + x_j), which halves the step).
        clock: adpsgd: ``emulated`` (the timing engine decides the interleaving of gradients and
            gossip rounds, and the run follows it: deterministic on any machine) or ``real`` (a
            gossip thread and the trainer interleave in real time, as on a cluster).
        schedule_compute_s: adpsgd, emulated clock, under an absolute network condition: the
            compute seconds per gradient the schedule assumes (under a condition defined
            relative to compute, such as ``paper_regime``, only ratios matter).
        max_rounds_per_gradient: adpsgd: a gossip round lasts at least compute / this (its loop
            does CPU work every round).
        gossip_margin_rounds: adpsgd, real clock: extra handshake rounds reserved for a clean
            stop (0: derived from the graph, which is always safe).
        average_every: local_sgd: exact averaging every this many iterations.
    """

    name: str = "sgp"
    variant: str = ""
    allreduce_mode: str = "param_avg"
    bucket_mb: float = 25.0
    allreduce_algo: str = "recursive_doubling"
    tau: int = 1
    overlap_step: str = "kept_share"
    clock: str = "emulated"
    schedule_compute_s: float = 0.005
    max_rounds_per_gradient: int = 64
    gossip_margin_rounds: int = 0
    average_every: int = 8

    @property
    def row(self) -> str:
        """The variant name, or the algorithm name when no variant is set."""
        return self.variant or self.name


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
    # local runs: at most this many forked workers per CPU core (0: no bound); not in the hash
    max_nodes_per_core: int = 16


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
    eval_subset: int = 0  # >0: mid-run evaluations use the first N validation samples
    # Fault injection for testing failure handling: "" (none), "crash@R:S" (rank R raises before
    # its iteration S, counted from 0) or "hang@R:S" (rank R blocks forever there, so its peers'
    # waits hit comm.timeout_s). Part of the config, not of its hash (RESULT_NEUTRAL_KEYS): a
    # resumed run drops it.
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


RESULT_NEUTRAL_KEYS: tuple[str, ...] = (
    "seed",  # the nuisance variable of a cell: its runs differ by seed only
    "dry_run",
    "logger",  # where results are mirrored does not change them
    "slurm",
    "train.checkpoint_every_epochs",
    "train.inject_fault",  # a test knob: a resumed run drops it
    "comm.job_timeout_s",
    "comm.timeout_s",
    "comm.max_nodes_per_core",  # a guard on this machine, not a setting of the run
)
"""Keys (and whole groups) that do not change a run's result: the config hash leaves them out,
and an override of them does not make a study's run another experiment."""
PLACEMENT_KEYS: tuple[str, ...] = (
    "local",  # the site file: dataset paths, SLURM partition (conf/local/<site>.yaml)
    "data.root",  # where the data (or a generated dataset's cache) lives on this machine
)
"""Where a run finds its data: part of the config hash (another dataset folder may hold other
data), but an override of them alone does not make a study's run another experiment."""


def result_neutral(key: str) -> bool:
    """Whether the dotted ``key`` (``+``/``++``/``~`` prefixes allowed) is, or lies under, one of
    :data:`RESULT_NEUTRAL_KEYS` or :data:`PLACEMENT_KEYS`: an override of it leaves a study's
    run the study's."""
    key = key.lstrip("+~")
    return any(key == k or key.startswith(k + ".") for k in (*RESULT_NEUTRAL_KEYS, *PLACEMENT_KEYS))
