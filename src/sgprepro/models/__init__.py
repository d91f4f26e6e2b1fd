"""Networks: ``build_model(ModelSpec, num_classes, input_shape, seed)`` gives one, identical on
every rank for one seed.

The names load on first use (PEP 562), so importing the schema (:mod:`sgprepro.models.spec`)
does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "build_model": "build",
    "validate_model_spec": "build",
    "BasicBlock": "resnet",
    "CifarResNet": "resnet",
    "resnet50": "resnet",
    "MLP": "small",
    "Mnist1dCNN": "small",
    "MODEL_NAMES": "spec",
    "ModelError": "spec",
    "ModelSpec": "spec",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
