"""Shared fixtures: compose the Hydra app's config the way ``python -m sgprepro.train`` does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from sgprepro.config import register_configs

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"

ComposeFn = Callable[..., DictConfig]


def compose_config(overrides: list[str], return_hydra_config: bool = False) -> DictConfig:
    """Compose ``conf/config.yaml`` with command-line style overrides."""
    register_configs()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        return compose("config", overrides=overrides, return_hydra_config=return_hydra_config)


@pytest.fixture(scope="session")
def compose_cfg() -> ComposeFn:
    return compose_config
