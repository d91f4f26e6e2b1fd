"""SLURM through submitit, one job per sweep cell with that cell's own resources.

Hydra's submitit launcher resolves its resources once, against the primary config, and submits
every cell as one job array of identical jobs: a sweep over ``nodes`` cannot run (``nodes`` is
``???`` there) and the array would give every cell the same node count. The launcher
(``hydra_plugins.sgprepro_slurm.launcher.CellSlurmLauncher``: Hydra takes launchers from the
``hydra_plugins`` package only; its schema and the cell logic are here) composes each cell,
checks it, and submits it as its own job:

- ``--nodes`` = the cell's ``nodes``, ``--ntasks-per-node=1`` (one task per node of the paper:
  one rank), ``--gpus-per-node``, ``--cpus-per-task``, ``--mem``, ``--time``, ``--partition`` and
  ``--constraint`` from the cell's ``slurm`` group (the experiment preset sets them); an empty
  partition or constraint, and zero GPUs, are left out of the script;
- ``--job-name`` says the cell: ``<study>.<algorithm>-n<nodes>-<network>-s<seed>``;
- ``srun --kill-on-bad-exit=1``: a rank that dies takes its job down at once.

Every cell is validated before the first job is submitted: a bad cell submits nothing. With
``hydra.launcher.wait=false`` the sweep returns once every job is submitted (finished cells are
skipped when the sweep is submitted again; ``sgprepro-report`` reads what has finished).
Inside a job, every task runs the Hydra task function as one rank (:func:`sgprepro.app.run_rank`);
tasks other than rank 0 write no ``.hydra/`` folder and no log file of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf, SlurmQueueConf
from omegaconf import DictConfig, OmegaConf

# launcher keys that a cell's own config decides (see cell_resources)
CELL_KEYS = (
    "nodes",
    "tasks_per_node",
    "gpus_per_node",
    "cpus_per_task",
    "mem_gb",
    "timeout_min",
    "partition",
    "constraint",
    "name",
)


@dataclass
class CellSlurmQueueConf(SlurmQueueConf):
    """Hydra's SLURM launcher schema, with this launcher's target and two keys of its own.

    Attributes:
        wait: wait for every job to finish (as Hydra's launcher does), or return once submitted.
        srun_args: extra arguments of the ``srun`` line of each job.
    """

    _target_: str = "hydra_plugins.sgprepro_slurm.launcher.CellSlurmLauncher"
    wait: bool = True
    srun_args: list[str] = field(default_factory=lambda: ["--kill-on-bad-exit=1"])


def register() -> None:
    """Register the schema as ``hydra/launcher/sgprepro_slurm`` (``conf/hydra/launcher/slurm.yaml``
    builds on it)."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(
        group="hydra/launcher", name="sgprepro_slurm", node=CellSlurmQueueConf, provider="sgprepro"
    )


def job_name(cell: DictConfig) -> str:
    """``<study>.<algorithm row>-n<nodes>-<network>-s<seed>``: the cell, in the queue."""
    row = cell.algorithm.variant or cell.algorithm.name
    return f"{cell.study}.{row}-n{cell.nodes}-{cell.network.name}-s{cell.seed}"


def cell_resources(cell: DictConfig) -> dict[str, Any]:
    """The launcher parameters of one cell (a composed job config), in Hydra's launcher names.

    One task per node; empty strings and zero GPUs become None, which submitit leaves out of
    the script.
    """
    s = cell.slurm
    return {
        "nodes": int(cell.nodes),
        "tasks_per_node": 1,
        "gpus_per_node": int(s.gpus_per_node) or None,
        "cpus_per_task": int(s.cpus_per_task) or None,
        "mem_gb": int(s.mem_gb) or None,
        "timeout_min": int(s.timeout_min),
        "partition": str(s.partition) or None,
        "constraint": str(s.constraint) or None,
        "name": job_name(cell),
    }


def submitit_parameters(params: dict[str, Any]) -> dict[str, Any]:
    """Hydra launcher names -> submitit's: the generic ones as they are, the rest ``slurm_``-
    prefixed (what Hydra's own launcher does)."""
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    return {k if k in base else f"slurm_{k}": v for k, v in params.items()}
