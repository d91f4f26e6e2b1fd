"""``build_dataset``: one entry point for every dataset the harness trains on."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sgprepro.data.mnist1d import NUM_CLASSES as MNIST1D_CLASSES
from sgprepro.data.mnist1d import SEQ_LENGTH, mnist1d_datasets
from sgprepro.data.spec import DatasetPair, DataSpec, validate_data_spec
from sgprepro.data.synthetic import synthetic_datasets

LOG = logging.getLogger(__name__)


_SHAPES: dict[str, tuple[int, ...]] = {
    "mnist1d": (1, SEQ_LENGTH),
    "cifar10": (3, 32, 32),
    "imagenet": (3, 224, 224),  # after the crop of the training and validation transforms
}


def input_shape_of(spec: DataSpec) -> tuple[int, ...]:
    """The shape of one input of the dataset ``spec`` names, without reading any data."""
    if spec.name == "synthetic":
        return (spec.synthetic_channels, *(spec.synthetic_size,) * spec.synthetic_dims)
    return _SHAPES[spec.name]


def _build_mnist1d(spec: DataSpec) -> DatasetPair:
    train, val = mnist1d_datasets(spec.num_samples, spec.train_split, spec.seed, spec.root)
    return DatasetPair(train, val, num_classes=MNIST1D_CLASSES, input_shape=input_shape_of(spec))


def _build_cifar10(spec: DataSpec) -> DatasetPair:
    from sgprepro.data.vision import cifar10_datasets  # torchvision imports in ~2 s

    assert spec.root is not None  # checked by validate_data_spec
    train, val = cifar10_datasets(spec.root, spec.download)
    return DatasetPair(train, val, num_classes=10, input_shape=input_shape_of(spec))


def _build_imagenet(spec: DataSpec) -> DatasetPair:
    from sgprepro.data.vision import imagenet_datasets  # torchvision imports in ~2 s

    assert spec.root is not None  # checked by validate_data_spec
    train, val = imagenet_datasets(spec.root)
    num_classes = len(train.classes)  # type: ignore[attr-defined]
    return DatasetPair(train, val, num_classes=num_classes, input_shape=input_shape_of(spec))


def _build_synthetic(spec: DataSpec) -> DatasetPair:
    input_shape = input_shape_of(spec)
    train, val = synthetic_datasets(
        spec.num_samples, spec.train_split, input_shape, spec.synthetic_classes, spec.seed
    )
    return DatasetPair(train, val, num_classes=spec.synthetic_classes, input_shape=input_shape)


_BUILDERS: dict[str, Callable[[DataSpec], DatasetPair]] = {
    "mnist1d": _build_mnist1d,
    "cifar10": _build_cifar10,
    "imagenet": _build_imagenet,
    "synthetic": _build_synthetic,
}


def build_dataset(spec: DataSpec) -> DatasetPair:
    """Build the train and validation sets a spec names.

    Args:
        spec: which dataset, where, and (for generated data) how many samples and which seed.

    Returns:
        The train/val pair with ``num_classes`` and ``input_shape`` (e.g. ``(1, 40)`` for
        MNIST-1D, ``(3, 32, 32)`` for CIFAR-10, ``(3, 224, 224)`` for ImageNet).

    Raises:
        DataError: as ``validate_data_spec``, before anything is read.
    """
    validate_data_spec(spec)
    pair = _BUILDERS[spec.name](spec)
    LOG.info(
        "dataset %s: %d train, %d val, %d classes, input %s",
        spec.name,
        len(pair.train),  # type: ignore[arg-type]
        len(pair.val),  # type: ignore[arg-type]
        pair.num_classes,
        pair.input_shape,
    )
    return pair
