"""Hydra callbacks of ``sgprepro-train`` (registered in ``conf/config.yaml``).

:class:`EarlyChecks` checks a single run's whole config, and the folder names of every cell of a
sweep, before Hydra creates any folder; at the end of a sweep it lists the cells that were
skipped (invalid, or their folder held by another job) and the runs that failed, and exits
non-zero (2 when a cell was bad input, else 1). The config module
(and torch) load only when a run starts, so ``--help`` stays fast.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

EXIT_BAD_INPUT = 2
BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"
# config keys whose value becomes a folder name (hydra.run.dir, hydra.sweep.dir/subdir)
FOLDER_KEYS: dict[str, tuple[str, str]] = {
    "study": ("study name", "my_study"),
    "network.name": ("network condition", "eth_10g"),
    "algorithm.variant": ("variant name", "sgp_2peer"),  # may be empty: the algorithm's name
}
MAY_BE_EMPTY = frozenset({"algorithm.variant"})


@dataclass(frozen=True)
class SkippedCell:
    """A cell of a sweep that did not run: its job number, overrides and the one-line reason."""

    num: int
    overrides: str
    reason: str
    code: int = EXIT_BAD_INPUT  # the exit status it asks of the sweep (1: a failure, 2: bad input)

    def __str__(self) -> str:
        return f"#{self.num} ({self.overrides}): {self.reason}"


SKIPPED: list[SkippedCell] = []
"""Cells skipped so far in this process's sweep (filled by the task function)."""
FAILED: list[SkippedCell] = []
"""Cells whose run started and failed (a worker crashed, hung or raised), same sweep."""


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    """One line on stderr, then exit: the CLI's way to refuse."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def job_config(config: DictConfig) -> DictConfig:
    """The task's config: Hydra's composed config without its ``hydra`` node."""
    cfg = copy.deepcopy(config)
    with read_write(cfg), open_dict(cfg):
        del cfg["hydra"]
    return cfg


def refused(config: DictConfig) -> bool:
    """Whether the task function will refuse this composed cell (Hydra's whole config): the
    check it runs first, :func:`sgprepro.config.validate`, on the same config and overrides."""
    from sgprepro.config import ConfigError, validate

    cfg = job_config(config)
    task = list(OmegaConf.select(config, "hydra.overrides.task", default=None) or [])
    try:
        validate(cfg, check_paths=not cfg.get("dry_run", False), overrides=task)
    except ConfigError:
        return True
    return False


def sweep_values(config: DictConfig) -> dict[str, list[str]]:
    """key -> every value it takes in this sweep (command line and ``hydra.sweeper.params``)."""
    params = OmegaConf.select(config, "hydra.sweeper.params", default=None) or {}
    overrides = [f"{k}={v}" for k, v in params.items()]
    overrides += list(OmegaConf.select(config, "hydra.overrides.task", default=None) or [])
    values: dict[str, list[str]] = {}
    for override in OverridesParser.create().parse_overrides(overrides):
        out = values.setdefault(override.key_or_group, [])
        if override.is_sweep_override():
            out.extend(override.sweep_string_iterator())
        else:
            out.append(override.get_value_element_as_str())
    return values


def check_sweep_folders(config: DictConfig) -> None:
    """Every folder a cell of this sweep would get stays a folder of the sweep.

    ``study`` and ``network.name`` are folder names (checked as such in the base config and in
    every swept value); any other override not in ``override_dirname.exclude_keys`` becomes part
    of the cell's folder name, so a ``..`` in its value would climb out of the sweep.

    Raises:
        ConfigError: one line naming the key and the value.
    """
    from sgprepro.config import ConfigError, check_folder_name

    swept = sweep_values(config)
    for key, (what, example) in FOLDER_KEYS.items():
        for value in [OmegaConf.select(config, key, default=None), *swept.get(key, [])]:
            if key in MAY_BE_EMPTY and value in (None, ""):
                continue
            check_folder_name(key, value, what, example)
    excluded = set(
        OmegaConf.select(config, "hydra.job.config.override_dirname.exclude_keys", default=None)
        or []
    )
    for key, values in swept.items():
        if key in excluded or key in FOLDER_KEYS:
            continue
        for value in values:
            if ".." in str(value).split("/"):
                raise ConfigError(
                    f"{key}={value} in a sweep: each override is part of its cell's folder name "
                    "(hydra.sweep.subdir), and '..' would put that folder outside the sweep; "
                    f"give {key} an absolute path"
                )


def check_nodes_given(config: DictConfig, swept: dict[str, list[str]]) -> None:
    """``nodes`` is explicit: set in the config, or swept (a sweep's base config may lack it)."""
    if OmegaConf.is_missing(config, "nodes") and "nodes" not in swept:
        from sgprepro.configstore import NODES_MISSING

        fail(NODES_MISSING)


def check_output_folder(key: str, folder: str | None) -> None:
    """``hydra.run.dir`` / ``hydra.sweep.dir`` must be a folder or creatable as one: Hydra makes
    it before the task runs, and a file on its path is a traceback there."""
    if not folder:
        return
    from sgprepro.paths import nearest_existing

    existing = nearest_existing(Path(folder).expanduser().absolute())
    if existing is not None and not existing.is_dir():
        fail(
            f"{key}={folder}: {existing} is a file, so the folder cannot be made; give the run "
            f"another folder ({key}=...)"
        )


class EarlyChecks(Callback):
    """Refuse bad input before Hydra writes anything, and close a sweep with its skipped cells."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        # first: the run folder's name holds ${nodes}, and before validate imports torch
        check_nodes_given(config, swept={})
        check_output_folder("hydra.run.dir", OmegaConf.select(config, "hydra.run.dir"))
        cfg = job_config(config)
        from sgprepro.config import ConfigError, validate

        try:
            validate(
                cfg,
                check_paths=not cfg.get("dry_run", False),
                overrides=list(OmegaConf.select(config, "hydra.overrides.task", default=[]) or []),
            )
        except ConfigError as exc:
            fail(str(exc))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        SKIPPED.clear()
        FAILED.clear()
        check_nodes_given(config, sweep_values(config))  # every cell's folder name holds ${nodes}
        check_output_folder("hydra.sweep.dir", OmegaConf.select(config, "hydra.sweep.dir"))
        from sgprepro.config import ConfigError

        try:
            check_sweep_folders(config)
        except ConfigError as exc:
            fail(f"{exc} (no cell was started)")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        parts = []
        if SKIPPED:
            cells = "; ".join(str(c) for c in SKIPPED)
            parts.append(f"{len(SKIPPED)} cell(s) of the sweep did not run: {cells}")
        if FAILED:
            cells = "; ".join(str(c) for c in FAILED)
            parts.append(
                f"{len(FAILED)} run(s) failed (each keeps its error.txt; run the sweep again to "
                f"redo them, finished runs are skipped): {cells}"
            )
        if parts:
            fail(" | ".join(parts), max(c.code for c in (*SKIPPED, *FAILED)))
