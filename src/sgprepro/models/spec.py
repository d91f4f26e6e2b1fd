"""The model schema (the ``model`` config group)."""

from __future__ import annotations

from dataclasses import dataclass

MODEL_NAMES: tuple[str, ...] = ("mnist1d_cnn", "mlp", "resnet20", "resnet50")


class ModelError(ValueError):
    """An invalid model setting; the message names the key, the value, the constraint, a fix."""


@dataclass(frozen=True)
class ModelSpec:
    """Which network to build (usable as a structured-config schema).

    The class is frozen, and OmegaConf makes a frozen dataclass read-only, which would refuse
    command-line overrides. Register it in the ConfigStore as an unfrozen node
    (``node = OmegaConf.structured(ModelSpec); OmegaConf.set_readonly(node, False)``).

    Attributes:
        name: one of ``mnist1d_cnn``, ``mlp``, ``resnet20``, ``resnet50``.
        cnn_channels: ``mnist1d_cnn`` only: channels of each of its three conv layers.
        cnn_batchnorm: ``mnist1d_cnn`` only: BatchNorm after each conv (statistics stay local to
            each node, as in the paper).
        mlp_hidden: ``mlp`` only: units per hidden layer.
        mlp_layers: ``mlp`` only: number of hidden layers (0 gives a linear classifier).
        mlp_batchnorm: ``mlp`` only: BatchNorm after each hidden layer (statistics local to
            each node).
        resnet20_width: ``resnet20`` only: channels of the first stage (stages use w, 2w, 4w;
            He et al. 2016 use 16).
    """

    name: str = "mnist1d_cnn"
    cnn_channels: int = 32
    cnn_batchnorm: bool = True
    mlp_hidden: int = 32
    mlp_layers: int = 1
    mlp_batchnorm: bool = False
    resnet20_width: int = 16
