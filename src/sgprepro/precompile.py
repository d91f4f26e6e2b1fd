"""Write the bytecode of the modules the harness uses, once, at the end of ``make install``.

Compiling every file of the 13,000-file environment (``uv pip install --compile-bytecode``) took
most of a minute of a fresh clone's install on 2 cores; installing without it takes seconds.
Importing what the harness, its report and its tests load writes their bytecode instead, in two
processes in parallel: torch's side, and the rest followed by every module of ``sgprepro``. A
module left out still works; Python compiles it when it is first imported.

Run: ``python -m sgprepro.precompile`` (bytecode is written even where ``PYTHONDONTWRITEBYTECODE``
is set in the environment: it applies to the runs, not to this step).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
import time
from collections.abc import Sequence

GROUPS: dict[str, tuple[str, ...]] = {
    "torch": (
        "torch",
        "torch.distributed",
        "torch.optim",
        "torch.utils.data",
        "torchvision",
        "mnist1d",
    ),
    "rest": (
        "hydra",
        "hydra._internal.logging_config",
        "hydra._internal.core_plugins.basic_launcher",
        "hydra._internal.core_plugins.basic_sweeper",
        "hydra._internal.core_plugins.bash_completion",
        "hydra._internal.core_plugins.fish_completion",
        "hydra._internal.core_plugins.zsh_completion",
        "hydra._internal.core_plugins.file_config_source",
        "hydra._internal.core_plugins.importlib_resources_config_source",
        "hydra._internal.core_plugins.structured_config_source",
        "hydra_plugins.hydra_submitit_launcher.submitit_launcher",
        "hydra_plugins.sgprepro_slurm.launcher",
        "hydra_plugins.sgprepro_sweeper.sweeper",
        "omegaconf",
        "omegaconf._impl",
        "antlr4.LL1Analyzer",
        "wandb",
        "wandb.sdk.wandb_init",
        "wandb.sdk.wandb_run",
        "wandb.sdk.artifacts.artifact",
        "wandb.sdk.launch.inputs.internal",  # every wandb.init imports it (and the public API)
        "wandb.apis.public",
        "pandas",
        "pandas.core.methods.to_dict",
        "pandas.core.reshape.reshape",
        "pandas.io.formats.csvs",
        "matplotlib.pyplot",
        "matplotlib.backends.backend_agg",
        "tqdm",
        "yaml",
        "submitit",
        "pytest",
        "_pytest.python",
        "pytest_timeout",
        "anyio.pytest_plugin",
        "matplotlib.backends.backend_pdf",
        "fontTools.subset",
        "nbformat",
        "nbclient",
        "jupytext",
        "ipykernel.kernelapp",
        "IPython",
        "psutil",
        "PIL.Image",
    ),
}
"""Modules imported per process; their imports follow. The lists come from what a training
job, a W&B filing, the report and the tests load (modules they import lazily are named here).
With ``torch.optim`` the torch process also runs the launcher's :func:`warm_imports`
(``torch._dynamo``); the ``rest`` process then imports every ``sgprepro`` module."""


def _import(names: Sequence[str]) -> list[str]:
    """Import each name; returns those that could not be imported (with why)."""
    missing = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - a missing optional module only costs speed
            missing.append(f"{name} ({type(exc).__name__}: {exc})")
    if "torch.optim" in names:
        from sgprepro.comm.launch import warm_imports

        warm_imports()  # what the job process loads before forking ranks (torch._dynamo)
    return missing


def _own_modules() -> list[str]:
    import sgprepro

    # not the ``__main__`` modules: importing one runs its command
    return [
        m.name
        for m in pkgutil.walk_packages(sgprepro.__path__, "sgprepro.")
        if not m.name.endswith(".__main__")
    ]


def _pytest_plugins() -> list[str]:
    """pytest's built-in plugins (it loads them at start-up)."""
    from _pytest.config import default_plugins

    return [f"_pytest.{name}" for name in default_plugins]


def _child(group: str) -> int:
    missing = _import(GROUPS[group])
    if group == "rest":
        missing += _import(_pytest_plugins() + _own_modules())
    for line in missing:
        print(f"precompile: not imported: {line}", file=sys.stderr)
    return 0


def main() -> int:
    t0 = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["WANDB_SILENT"] = "true"
    cmd = [sys.executable, "-m", "sgprepro.precompile", "--group"]
    procs = [subprocess.Popen([*cmd, g], env=env) for g in GROUPS]
    codes = [p.wait() for p in procs]
    print(f"precompile: bytecode written in {time.perf_counter() - t0:.0f} s")
    return max(codes)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--group":
        sys.exit(_child(sys.argv[2]))
    sys.exit(main())
