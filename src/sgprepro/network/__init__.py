"""Network conditions: link model parameters, straggler model and YAML presets.

A :class:`NetworkConfig` is the schema of the Hydra group ``conf/network/``; :func:`load_preset`
reads a preset without Hydra. The timing engine (:mod:`sgprepro.timing`) replays a run under one.
"""

from sgprepro.network.config import (
    NetworkConfig,
    list_presets,
    load_preset,
    network_conf_dir,
)

__all__ = ["NetworkConfig", "list_presets", "load_preset", "network_conf_dir"]
