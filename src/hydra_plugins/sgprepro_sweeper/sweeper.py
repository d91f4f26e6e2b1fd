"""The sweeper of sgprepro's sweeps (``hydra/sweeper=sgprepro``, the default).

Hydra's basic sweeper composes every cell's config twice: once to check, before the first job
starts, that every cell composes (a bad cell fails the sweep before any job runs), and again in
the launcher when the cell's job starts. Composition is ~0.25 s of one core per cell on a small
machine, so the default study's 48 cells spent ~12 s composing configs that had been composed
already. This sweeper is the basic sweeper (same parameters, same order of cells, same checks)
whose launcher takes each cell's config from the check instead of composing it again: every
config is composed once, at the start, from the config files as they were then.

Hydra instantiates sweepers from the ``hydra_plugins`` package only, so the class lives here;
importing this module imports no torch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict, read_write

MAX_KEPT = 4096  # cells whose checked config is kept for their launch; beyond, they compose again


class _ComposeOnce:
    """A config loader that hands each cell config composed by the check to the cell's launch.

    Every other attribute is the wrapped loader's. While ``checking`` (the sweeper's check of a
    batch), ``load_sweep_config`` composes and keeps what it composed (up to ``MAX_KEPT`` cells),
    in order per overrides; outside it (a launch), it hands over the oldest kept config for the
    overrides (not a copy: nothing else holds it) and forgets it, or composes afresh. A cell listed
    twice is composed twice by the check, so each launch gets an object of its own.
    """

    def __init__(self, loader: Any) -> None:
        self._loader = loader
        self._kept: dict[tuple[str, ...], list[DictConfig]] = {}
        self.checking = False
        self._guard = True  # a launch's config of a refused cell gets no .hydra/

    def __getattr__(self, name: str) -> Any:
        if name == "_loader":  # not set yet (while unpickling): not the wrapped loader's either
            raise AttributeError(name)
        return getattr(self._loader, name)

    @contextlib.contextmanager
    def composing_only(self) -> Iterator[None]:
        """Launches that only compose (a SLURM launcher checking its cells on the login node,
        where the host checks of a refusal do not apply): no refusal check."""
        self._guard = False
        try:
            yield
        finally:
            self._guard = True

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (a launcher sending itself to a cluster job) without the kept configs."""
        return (_ComposeOnce, (self._loader,))

    def load_sweep_config(
        self, master_config: DictConfig, sweep_overrides: Sequence[str]
    ) -> DictConfig:
        key = tuple(sweep_overrides)
        if not self.checking:
            kept = self._kept.get(key)
            if kept:
                cfg = kept.pop(0)
                if not kept:
                    del self._kept[key]
            else:
                cfg = self._loader.load_sweep_config(master_config, list(sweep_overrides))
            if self._guard:
                _no_hydra_files_if_refused(cfg)
            return cfg
        cfg = self._loader.load_sweep_config(master_config, list(sweep_overrides))
        if self.checking and sum(len(v) for v in self._kept.values()) < MAX_KEPT:
            self._kept.setdefault(key, []).append(cfg)
        return cfg


def _no_hydra_files_if_refused(cfg: DictConfig) -> None:
    """A cell the task function will refuse gets no ``.hydra/`` from Hydra's job runner, which
    writes it before the task function starts: the cell's folder may hold an earlier run, whose
    ``.hydra/`` would be replaced by the refused config. The task function refuses the cell with
    the same one-line error and skips it as before."""
    from sgprepro.train.callbacks import refused  # at the first launch, not at Hydra's scan

    if refused(cfg):
        with read_write(cfg), open_dict(cfg):
            cfg.hydra.output_subdir = None


class ComposeOnceSweeper(BasicSweeper):
    """Hydra's basic sweeper whose launcher reuses the configs composed by the check, and which
    checks every cell before it writes anything (the basic sweeper writes the sweep folder's
    ``multirun.yaml`` first, so a sweep that fails to compose replaced an earlier sweep's)."""

    def setup(
        self,
        *,
        hydra_context: HydraContext,
        task_function: TaskFunction,
        config: DictConfig,
    ) -> None:
        self._once = _ComposeOnce(hydra_context.config_loader)
        self._checked = False
        once = HydraContext(
            config_loader=self._once,  # type: ignore[arg-type]
            callbacks=hydra_context.callbacks,
        )
        super().setup(hydra_context=once, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        assert self.hydra_context is not None
        params = [*self._parse_config(), *arguments]
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        for batch in self.split_arguments(parser.parse_overrides(params), self.max_batch_size):
            self._check(batch)
        self._checked = True
        return super().sweep(arguments)

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        if not self._checked:  # every batch was checked before anything was written
            self._check(batch)

    def _check(self, batch: Sequence[Sequence[str]]) -> None:
        self._once.checking = True
        try:
            super().validate_batch_is_legal(batch)
        finally:
            self._once.checking = False
