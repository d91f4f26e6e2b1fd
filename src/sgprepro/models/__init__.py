"""Networks: ``build_model(ModelSpec, num_classes, input_shape, seed)`` gives one, identical on
every rank for one seed.

The names load on first use (PEP 562), so importing the schema (:mod:`sgprepro.models.spec`)
does not import torch.
"""

from __future__ import annotations

from sgprepro.lazy import lazy_getattr

_WHERE = {
    "build_model": "build",
    "check_model_input": "build",
    "MIN_RESNET20_WIDTH": "build",
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


__getattr__ = lazy_getattr(__name__, _WHERE)
