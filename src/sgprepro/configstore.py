"""The schema's registration with Hydra's ConfigStore, without importing torch.

``conf/config.yaml`` lists ``base_config`` first: the :class:`~sgprepro.schema.Config` schema, so a
typo or a wrong type fails at compose time. This module imports only the schema (plain
dataclasses), so printing ``--help`` or answering tab completion never loads torch.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from sgprepro.schema import Config

NODES_MISSING = "nodes=???: the node count is explicit; set nodes=4 (or nodes=4,8,16,32 with -m)"
"""The error of a run without ``nodes`` (checked before torch is imported: it is the first
thing a new user meets)."""


def _writable(node: DictConfig) -> DictConfig:
    """Frozen dataclasses make read-only nodes; clear the flag so overrides can merge."""
    OmegaConf.set_readonly(node, None)
    for key in node:
        child = node._get_node(key)
        assert child is not None  # key comes from iterating node
        if isinstance(child, DictConfig):
            _writable(child)
        else:
            child._set_flag("readonly", None)
    return node


def writable_schema() -> DictConfig:
    """The :class:`Config` schema as a DictConfig that overrides and records can merge into."""
    return _writable(OmegaConf.structured(Config))


def register_configs() -> None:
    """Register the schema as ``base_config`` and the resolvers that name run folders."""
    from hydra.core.config_store import ConfigStore

    if not OmegaConf.has_resolver("row"):
        # the run's row (its variant, else the algorithm's name): names run directories
        OmegaConf.register_new_resolver("row", lambda name, variant: variant or name)
    if not OmegaConf.has_resolver("suffix"):
        # "" -> "", "a=1,b=2" -> ",a=1,b=2": appends sweep overrides to a run directory name
        OmegaConf.register_new_resolver("suffix", lambda s: f",{s}" if s else "")
    ConfigStore.instance().store(name="base_config", node=writable_schema())
    from sgprepro.slurm_launcher import register

    register()  # hydra/launcher/sgprepro_slurm: the schema of conf/hydra/launcher/slurm.yaml
