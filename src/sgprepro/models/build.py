"""``build_model``: one entry point for every network, identical on every rank for one seed."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import torch
from torch import nn

from sgprepro.models.resnet import CifarResNet, resnet50
from sgprepro.models.small import MLP, Mnist1dCNN
from sgprepro.models.spec import MODEL_NAMES, ModelError, ModelSpec

LOG = logging.getLogger(__name__)

Builder = Callable[[ModelSpec, int, tuple[int, ...]], nn.Module]


def _require_dims(spec: ModelSpec, input_shape: tuple[int, ...], dims: int, what: str) -> None:
    if len(input_shape) != dims:
        raise ModelError(
            f"model.name={spec.name} with input shape {input_shape}: it takes {what} inputs; "
            f"pick a matching data.name or model.name=mlp"
        )


MIN_RESNET20_WIDTH = 2
"""The narrowest first stage the CIFAR ResNet-20 builder accepts (validation uses it too)."""

_INPUT_DIMS: dict[str, tuple[int, str]] = {
    "mnist1d_cnn": (2, "1-D (C, L)"),
    "resnet20": (3, "image (C, H, W)"),
    "resnet50": (3, "image (C, H, W)"),
}
"""Models that take inputs of one rank only (the MLP flattens any)."""


def check_model_input(spec: ModelSpec, input_shape: tuple[int, ...]) -> None:
    """Raise ``ModelError`` when ``spec``'s model cannot take inputs of ``input_shape``."""
    need = _INPUT_DIMS.get(spec.name)
    if need is not None:
        _require_dims(spec, input_shape, *need)


def _mnist1d_cnn(spec: ModelSpec, num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    check_model_input(spec, input_shape)
    if spec.cnn_channels < 1:
        raise ModelError(f"model.cnn_channels={spec.cnn_channels}: must be >= 1; set it to 32")
    channels, length = input_shape
    return Mnist1dCNN(channels, length, num_classes, spec.cnn_channels, spec.cnn_batchnorm)


def _mlp(spec: ModelSpec, num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    if spec.mlp_hidden < 1 or spec.mlp_layers < 0:
        raise ModelError(
            f"model.mlp_hidden={spec.mlp_hidden}, model.mlp_layers={spec.mlp_layers}: need "
            f"mlp_hidden>=1 and mlp_layers>=0; set model.mlp_hidden=32 model.mlp_layers=1"
        )
    return MLP(
        math.prod(input_shape), num_classes, spec.mlp_hidden, spec.mlp_layers, spec.mlp_batchnorm
    )


def _resnet20(spec: ModelSpec, num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    check_model_input(spec, input_shape)
    if spec.resnet20_width < MIN_RESNET20_WIDTH:
        raise ModelError(
            f"model.resnet20_width={spec.resnet20_width}: must be >= {MIN_RESNET20_WIDTH}; "
            "set it to 16"
        )
    return CifarResNet(input_shape[0], num_classes, blocks_per_stage=3, width=spec.resnet20_width)


def _resnet50(spec: ModelSpec, num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    check_model_input(spec, input_shape)
    if input_shape[0] != 3:
        raise ModelError(
            f"model.name=resnet50 with input shape {input_shape}: torchvision's ResNet-50 takes "
            f"3-channel images; use data.name=imagenet (or synthetic with 3 channels)"
        )
    return resnet50(num_classes)


_BUILDERS: dict[str, Builder] = {
    "mnist1d_cnn": _mnist1d_cnn,
    "mlp": _mlp,
    "resnet20": _resnet20,
    "resnet50": _resnet50,
}


def validate_model_spec(spec: ModelSpec) -> None:
    """Check the model name without building anything.

    Raises:
        ModelError: one line naming ``model.name``, its value and the choices.
    """
    if spec.name not in _BUILDERS:
        raise ModelError(
            f"model.name={spec.name}: unknown model; choose one of {', '.join(MODEL_NAMES)}"
        )


def build_model(
    spec: ModelSpec, num_classes: int, input_shape: tuple[int, ...], seed: int
) -> nn.Module:
    """Build a freshly initialised network; the same ``seed`` gives the same parameters anywhere.

    Initialisation draws from torch's CPU generator seeded with ``seed`` inside
    ``torch.random.fork_rng``, so the caller's global RNG state is left as it was. Every rank
    calls this with the run's seed to start from the same model (Sec. 4 of Assran et al. 2019).

    Args:
        spec: which network and its widths.
        num_classes: size of the output layer.
        input_shape: shape of one input, e.g. ``(1, 40)`` or ``(3, 224, 224)``.
        seed: initialisation seed.

    Returns:
        The model on CPU in float32, mapping ``(B, *input_shape)`` to logits ``(B, num_classes)``.

    Raises:
        ModelError: unknown name, bad width, or an input shape the model cannot take.
    """
    validate_model_spec(spec)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _BUILDERS[spec.name](spec, num_classes, tuple(input_shape))
    LOG.info(
        "model %s: %d parameters, input %s, %d classes, seed %d",
        spec.name,
        sum(p.numel() for p in model.parameters()),
        tuple(input_shape),
        num_classes,
        seed,
    )
    return model
