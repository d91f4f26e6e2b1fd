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

from collections.abc import Sequence
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

MAX_KEPT = 4096  # cells whose checked config is kept for their launch; beyond, they compose again


class _ComposeOnce:
    """A config loader that hands each checked cell config to the cell's launch once.

    Every other attribute is the wrapped loader's. ``load_sweep_config`` keeps what it composes
    (up to ``MAX_KEPT`` cells); the next request for the same overrides gets that object (not a
    copy: nothing else holds it) and forgets it, so a cell listed twice is composed afresh.
    """

    def __init__(self, loader: Any) -> None:
        self._loader = loader
        self._kept: dict[tuple[str, ...], DictConfig] = {}

    def __getattr__(self, name: str) -> Any:
        if name == "_loader":  # not set yet (while unpickling): not the wrapped loader's either
            raise AttributeError(name)
        return getattr(self._loader, name)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (a launcher sending itself to a cluster job) without the kept configs."""
        return (_ComposeOnce, (self._loader,))

    def load_sweep_config(
        self, master_config: DictConfig, sweep_overrides: Sequence[str]
    ) -> DictConfig:
        key = tuple(sweep_overrides)
        kept = self._kept.pop(key, None)
        if kept is not None:
            return kept
        cfg = self._loader.load_sweep_config(master_config, list(sweep_overrides))
        if len(self._kept) < MAX_KEPT:
            self._kept[key] = cfg
        return cfg


class ComposeOnceSweeper(BasicSweeper):
    """Hydra's basic sweeper whose launcher reuses the configs composed by the batch check."""

    def setup(
        self,
        *,
        hydra_context: HydraContext,
        task_function: TaskFunction,
        config: DictConfig,
    ) -> None:
        once = HydraContext(
            config_loader=_ComposeOnce(hydra_context.config_loader),  # type: ignore[arg-type]
            callbacks=hydra_context.callbacks,
        )
        super().setup(hydra_context=once, task_function=task_function, config=config)
