"""The launcher class of ``hydra/launcher=slurm`` (see :mod:`sgprepro.slurm_launcher`).

Hydra instantiates launchers from the ``hydra_plugins`` package only, so the class lives here;
importing this module (Hydra scans the package at every start) imports no torch.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides, run_job, setup_globals
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
from omegaconf import open_dict

from sgprepro.slurm_launcher import cell_resources, submitit_parameters

log = logging.getLogger(__name__)


class CellSlurmLauncher(SlurmLauncher):
    """Hydra's submitit SLURM launcher, submitting each cell as its own job with its own resources
    (:mod:`sgprepro.slurm_launcher`)."""

    def launch(self, job_overrides: Any, initial_job_idx: int) -> list[JobReturn]:
        import submitit

        from sgprepro.config import ConfigError, validate
        from sgprepro.train.callbacks import fail, job_config

        assert self.config is not None
        assert self.hydra_context is not None
        params = dict(self.params)
        wait = bool(params.pop("wait", True))
        srun_args = list(params.pop("srun_args", None) or [])
        missing = [tool for tool in ("sbatch", "srun") if shutil.which(tool) is None]
        if missing:  # one line and exit 2, as for any bad input (not Hydra's traceback)
            fail(
                f"hydra/launcher=slurm: {' and '.join(missing)} not found on PATH, so this "
                "machine cannot submit SLURM jobs (no job was submitted); run from a SLURM login "
                "node, or drop hydra/launcher=slurm to run here"
            )
        executor = submitit.AutoExecutor(
            cluster="slurm",
            folder=params.pop("submitit_folder"),
            slurm_max_num_timeout=params.pop("max_num_timeout", 0),
        )
        cells = []
        loader = self.hydra_context.config_loader
        # the login node checks each cell itself, without the host checks (no .hydra/ is written
        # here; a compute node's launch of a refused cell writes none either)
        composing = getattr(loader, "composing_only", contextlib.nullcontext)
        for i, overrides in enumerate(job_overrides):
            with composing():
                cell = loader.load_sweep_config(self.config, list(overrides))
            job_cfg = job_config(cell)
            try:
                validate(job_cfg, check_paths=False, overrides=list(overrides))
            except ConfigError as exc:
                fail(
                    f"cell #{initial_job_idx + i} ({' '.join(overrides)}): {exc} (no job was "
                    "submitted)"
                )
            cells.append((list(overrides), cell_resources(job_cfg)))
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log.info("SLURM sweep of %d cell(s) into %s", len(cells), sweep_dir)
        jobs = []
        for i, (overrides, resources) in enumerate(cells):
            idx = initial_job_idx + i
            executor.update_parameters(
                **submitit_parameters({**params, **resources}), slurm_srun_args=srun_args
            )
            job = executor.submit(
                self, overrides, "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state()
            )
            log.info(
                "\t#%d: job %s (%s): %s", idx, job.job_id, resources["name"],
                " ".join(filter_overrides(overrides)),
            )  # fmt: skip
            jobs.append(job)
        if not wait:
            print(
                f"submitted {len(jobs)} SLURM job(s): {' '.join(j.job_id for j in jobs)}; not "
                "waiting (hydra.launcher.wait=false): squeue shows them, and sgprepro-report "
                f"--runs {sweep_dir} reads what has finished",
                flush=True,
            )
            return [
                JobReturn(overrides=o, status=JobStatus.COMPLETED, _return_value=None)
                for o, _ in cells
            ]
        return self._collect(jobs, cells, initial_job_idx)

    @staticmethod
    def _collect(jobs: list[Any], cells: list[Any], initial_job_idx: int) -> list[JobReturn]:
        """Wait for every job; a failed one is listed in ``FAILED`` (the sweep then ends with
        status 1 naming it, as a local sweep does) instead of stopping the wait at the first."""
        from submitit.core.utils import FailedJobError, UncompletedJobError

        from sgprepro.train.callbacks import FAILED, SkippedCell

        returns = []
        for i, (job, (overrides, _)) in enumerate(zip(jobs, cells, strict=True)):
            try:
                returns.append(job.results()[0])
            except (FailedJobError, UncompletedJobError) as exc:
                lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
                # submitit's "(state: TIMEOUT)" line when it has one, else the log's last line
                state = [ln for ln in lines if "state:" in ln]
                why = (state or lines or [type(exc).__name__])[-1]
                FAILED.append(
                    SkippedCell(
                        initial_job_idx + i,
                        " ".join(filter_overrides(overrides)),
                        f"SLURM job {job.job_id} failed: {why} (its log: {job.paths.stderr})",
                        1,
                    )
                )
                returns.append(
                    JobReturn(overrides=overrides, status=JobStatus.COMPLETED, _return_value=None)
                )
        return returns

    def __call__(
        self,
        sweep_overrides: list[str],
        job_dir_key: str,
        job_num: int,
        job_id: str,
        singleton_state: dict[type, Singleton],
    ) -> JobReturn:
        """In each task of a job: the cell's config, then Hydra's task function (one rank)."""
        import submitit

        assert self.hydra_context is not None
        assert self.config is not None
        assert self.task_function is not None
        Singleton.set_state(singleton_state)
        setup_globals()
        env = submitit.JobEnvironment()
        sweep_config = self.hydra_context.config_loader.load_sweep_config(
            self.config, sweep_overrides
        )
        with open_dict(sweep_config.hydra.job):
            sweep_config.hydra.job.id = env.job_id
            sweep_config.hydra.job.num = job_num
        if env.global_rank > 0:  # rank 0 keeps the run's .hydra/ and log file
            with open_dict(sweep_config.hydra):
                sweep_config.hydra.output_subdir = None
                logging_cfg = sweep_config.hydra.job_logging
                if "handlers" in logging_cfg and "file" in logging_cfg.handlers:
                    del logging_cfg.handlers["file"]
                    logging_cfg.root.handlers = [
                        h for h in logging_cfg.root.handlers if h != "file"
                    ]
        return run_job(
            hydra_context=self.hydra_context,
            task_function=self.task_function,
            config=sweep_config,
            job_dir_key=job_dir_key,
            job_subdir_key="hydra.sweep.subdir",
        )
