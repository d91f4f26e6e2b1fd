"""Networks: ``build_model(ModelSpec, num_classes, input_shape, seed)`` gives one, identical on
every rank for one seed."""

from sgprepro.models.build import build_model, validate_model_spec
from sgprepro.models.resnet import BasicBlock, CifarResNet, resnet50
from sgprepro.models.small import MLP, Mnist1dCNN
from sgprepro.models.spec import MODEL_NAMES, ModelError, ModelSpec

__all__ = [
    "MLP",
    "MODEL_NAMES",
    "BasicBlock",
    "CifarResNet",
    "ModelError",
    "ModelSpec",
    "Mnist1dCNN",
    "build_model",
    "resnet50",
    "validate_model_spec",
]
