"""Who started this process: the local launcher, a SLURM job of submitit, or an env:// launcher.

- **submitit on SLURM**: detected through submitit's own job environment only
  (``SUBMITIT_EXECUTOR=slurm``, exported by the scripts submitit writes). A bare ``SLURM_PROCID``
  (any ``srun`` step, an interactive allocation) is not a submitit task: such a process launches
  its job locally, or joins an env:// job when the variables below are set.
- **env:// launchers** (torchrun, or any launcher that sets ``RANK``, ``WORLD_SIZE``,
  ``MASTER_ADDR`` and ``MASTER_PORT``): this process is one rank (one node) of one job.
- **local**: none of the above; the job process forks one worker per node.

No torch import here: the CLI asks before it decides anything else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

ENV_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


class LaunchEnvError(ValueError):
    """The launcher's variables are inconsistent (one line naming them and a fix)."""


@dataclass(frozen=True)
class LaunchEnv:
    """How this process was started.

    Attributes:
        kind: ``local`` (fork the workers here), ``slurm`` (a task of a submitit SLURM job) or
            ``env`` (a rank of an env:// launcher such as torchrun).
        rank: this process's rank (0 for ``local``).
        world_size: ranks in the job (None for ``local``: the config's ``nodes`` decides).
        local_rank: this process's index on its machine (selects its GPU).
        master_addr: where rank 0 serves the rendezvous store ("" for ``local``).
        master_port: its port (0 for ``local``; for ``slurm`` derived from the config).
        job_id: the SLURM job id ("" otherwise).
        source: what set ``world_size``, for error messages.
    """

    kind: str = "local"
    rank: int = 0
    world_size: int | None = None
    local_rank: int = 0
    master_addr: str = ""
    master_port: int = 0
    job_id: str = ""
    source: str = ""

    @property
    def distributed(self) -> bool:
        """This process is one rank of a job launched by someone else (SLURM or env://)."""
        return self.kind != "local"


def _int(name: str) -> int:
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise LaunchEnvError(
            f"{name}={value!r}: an env:// launcher sets it to an integer; unset it or launch "
            "with torchrun"
        ) from None


def detect() -> LaunchEnv:
    """The launch environment of this process (see the module docstring).

    Raises:
        LaunchEnvError: only some of RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT are set, or one
            is not a number.
    """
    if os.environ.get("SUBMITIT_EXECUTOR") == "slurm":
        import submitit

        env = submitit.JobEnvironment()
        return LaunchEnv(
            kind="slurm",
            rank=int(env.global_rank),
            world_size=int(env.num_tasks),
            local_rank=int(env.local_rank),
            master_addr=str(env.hostnames[0]),
            job_id=str(env.job_id),
            source=f"the SLURM job's {env.num_tasks} task(s)",
        )
    present = [v for v in ENV_VARS if os.environ.get(v)]
    if not present:
        return LaunchEnv()
    if len(present) < len(ENV_VARS):
        missing = [v for v in ENV_VARS if v not in present]
        raise LaunchEnvError(
            f"{', '.join(f'{v}={os.environ[v]}' for v in present)} set but {', '.join(missing)} "
            "not: an env:// launcher (torchrun) sets all of RANK, WORLD_SIZE, MASTER_ADDR and "
            f"MASTER_PORT; unset {', '.join(present)} to run locally, or launch with torchrun"
        )
    rank, world = _int("RANK"), _int("WORLD_SIZE")
    if not 0 <= rank < world:
        raise LaunchEnvError(
            f"RANK={rank} with WORLD_SIZE={world}: a rank lies in [0, WORLD_SIZE); fix the "
            "launcher's variables"
        )
    return LaunchEnv(
        kind="env",
        rank=rank,
        world_size=world,
        local_rank=int(os.environ.get("LOCAL_RANK", "0") or 0),
        master_addr=os.environ["MASTER_ADDR"],
        master_port=_int("MASTER_PORT"),
        source=f"WORLD_SIZE={world}",
    )
