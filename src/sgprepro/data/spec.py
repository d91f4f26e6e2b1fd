"""The dataset schema, the dataset pair it builds, and checks that run before any worker starts."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the schema imports no torch (fast --help)
    from torch.utils.data import Dataset

DATASET_NAMES: tuple[str, ...] = ("mnist1d", "cifar10", "imagenet", "synthetic")


class DataError(ValueError):
    """An invalid dataset setting; the message names the key, the value, the constraint, a fix."""


@dataclass(frozen=True)
class DataSpec:
    """Which dataset to build (the ``data`` config group; usable as a structured-config schema).

    The class is frozen, and OmegaConf makes a frozen dataclass read-only, which would refuse
    command-line overrides. Register it in the ConfigStore as an unfrozen node
    (``node = OmegaConf.structured(DataSpec); OmegaConf.set_readonly(node, False)``); typos and
    wrong types still fail at compose time, and ``OmegaConf.to_object`` returns a ``DataSpec``.

    Attributes:
        name: one of ``mnist1d``, ``cifar10``, ``imagenet``, ``synthetic``.
        root: dataset directory. For ``cifar10`` the torchvision folder (holds
            ``cifar-10-batches-py/``); for ``imagenet`` an ImageFolder tree with ``train/`` and
            ``val/``; for ``mnist1d`` the cache directory (default ``~/.cache/sgprepro/mnist1d``);
            unused by ``synthetic``.
        download: let torchvision download CIFAR-10 into ``root`` (never done at test time).
        num_samples: ``mnist1d``/``synthetic`` only: samples generated in total, train + val.
            For ``mnist1d`` a multiple of 10 (equal samples per class); the package default is 5000.
        train_split: ``mnist1d``/``synthetic`` only: fraction of ``num_samples`` in the train split
            (the package default 0.8 gives 4000 train / 1000 val).
        seed: ``mnist1d``/``synthetic`` only: generation seed of the data itself (the package
            default is 42). Keep it fixed across training seeds so every run sees the same data;
            the shard and order seeds are the training seed given to ``make_loader``.
        synthetic_classes: ``synthetic`` only: number of classes.
        synthetic_channels: ``synthetic`` only: input channels.
        synthetic_size: ``synthetic`` only: spatial side length (length for 1-D, H = W for 2-D).
        synthetic_dims: ``synthetic`` only: 1 for ``(C, L)`` inputs, 2 for ``(C, H, W)`` inputs.
    """

    name: str = "mnist1d"
    root: str | None = None
    download: bool = False
    num_samples: int = 5000
    train_split: float = 0.8
    seed: int = 42
    synthetic_classes: int = 10
    synthetic_channels: int = 3
    synthetic_size: int = 32
    synthetic_dims: int = 2


@dataclass(frozen=True)
class DatasetPair:
    """A train and a validation set with the facts a model builder needs.

    Attributes:
        train: training set; items are ``(x, y)`` with ``x`` of shape ``input_shape`` and ``y`` a
            class index (int64 scalar tensor or int).
        val: validation set, items as in ``train`` (no augmentation).
        num_classes: number of classes.
        input_shape: shape of one input, e.g. ``(1, 40)`` or ``(3, 224, 224)``.
    """

    train: Dataset
    val: Dataset
    num_classes: int
    input_shape: tuple[int, ...]


MAX_GENERATED_SAMPLES = 10_000_000
"""Most samples a generated dataset may have (MNIST-1D: 1.6 GB of float32 at this size)."""


def _check_generated_sizes(spec: DataSpec) -> None:
    if spec.num_samples > MAX_GENERATED_SAMPLES:
        raise DataError(
            f"data.num_samples={spec.num_samples} with data.name={spec.name}: at most "
            f"{MAX_GENERATED_SAMPLES:,} samples are generated (in memory, on every node); set "
            "data.num_samples=40000"
        )
    if not 0 <= spec.seed < 2**32:
        raise DataError(
            f"data.seed={spec.seed} with data.name={spec.name}: the generation seed must be in "
            "[0, 2**32 - 1]; set data.seed=42"
        )
    if spec.num_samples < 2:
        raise DataError(
            f"data.num_samples={spec.num_samples} with data.name={spec.name}: at least 2 samples "
            f"are needed for a train and a val split; set data.num_samples=10000"
        )
    if not 0.0 < spec.train_split < 1.0:
        raise DataError(
            f"data.train_split={spec.train_split} with data.name={spec.name}: the train fraction "
            f"must lie strictly between 0 and 1; set data.train_split=0.8"
        )
    n_train = int(spec.num_samples * spec.train_split)
    if n_train < 1 or n_train >= spec.num_samples:
        raise DataError(
            f"data.num_samples={spec.num_samples}, data.train_split={spec.train_split}: the split "
            f"leaves {n_train} train and {spec.num_samples - n_train} val samples, both must be "
            f"non-empty; raise data.num_samples or set data.train_split=0.8"
        )


def check_cache_dir(root: str) -> None:
    """``data.root`` of a generated dataset is its cache folder: a folder, or creatable."""
    from sgprepro.paths import nearest_existing

    existing = nearest_existing(Path(root).expanduser())
    if existing is not None and not existing.is_dir():
        raise DataError(
            f"data.root={root}: the generated dataset's cache must be a folder, and {existing} is "
            "a file; set data.root to a folder (or leave it unset: ~/.cache/sgprepro)"
        )
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise DataError(
            f"data.root={root}: the generated dataset's cache folder {existing} cannot be "
            "written; set data.root to a writable folder (or leave it unset: ~/.cache/sgprepro)"
        )


def _validate_mnist1d(spec: DataSpec) -> None:
    _check_generated_sizes(spec)
    if spec.num_samples % 10 != 0:
        raise DataError(
            f"data.num_samples={spec.num_samples} with data.name=mnist1d: MNIST-1D draws equal "
            f"samples for its 10 classes, so the count must be a multiple of 10; "
            f"set data.num_samples={max(10, spec.num_samples // 10 * 10)}"
        )


def _validate_synthetic(spec: DataSpec) -> None:
    _check_generated_sizes(spec)
    for key, value in (
        ("synthetic_classes", spec.synthetic_classes),
        ("synthetic_channels", spec.synthetic_channels),
        ("synthetic_size", spec.synthetic_size),
    ):
        if value < 1:
            raise DataError(
                f"data.{key}={value} with data.name=synthetic: must be a positive integer; "
                f"set data.{key} to 1 or more"
            )
    if spec.synthetic_dims not in (1, 2):
        raise DataError(
            f"data.synthetic_dims={spec.synthetic_dims} with data.name=synthetic: inputs are 1-D "
            f"(C, L) or 2-D (C, H, W); set data.synthetic_dims=1 or 2"
        )


def _validate_cifar10(spec: DataSpec) -> None:
    if spec.root is None:
        raise DataError(
            f"data.root=None with data.name=cifar10 (data.download={spec.download}): CIFAR-10 "
            f"needs a directory to read (or download) it; set data.root=/path/to/cifar10 "
            f"(or put it in conf/local/)"
        )
    batches = Path(spec.root).expanduser() / "cifar-10-batches-py"
    if not spec.download and not batches.is_dir():
        raise DataError(
            f"data.root={spec.root} with data.name=cifar10: no cifar-10-batches-py/ there and "
            f"data.download=false; set data.root to the torchvision CIFAR-10 folder "
            f"(or put it in conf/local/), or set data.download=true"
        )


def _validate_imagenet(spec: DataSpec) -> None:
    root = None if spec.root is None else Path(spec.root).expanduser()
    if root is None or not (root / "train").is_dir() or not (root / "val").is_dir():
        raise DataError(
            f"data.root={spec.root}: ImageNet needs an ImageFolder with train/ and val/ there; "
            f"set data.root=/path/to/imagenet (or put it in conf/local/)"
        )


_VALIDATORS = {
    "mnist1d": _validate_mnist1d,
    "cifar10": _validate_cifar10,
    "imagenet": _validate_imagenet,
    "synthetic": _validate_synthetic,
}


def validate_data_spec(spec: DataSpec) -> None:
    """Check a spec without loading any data, so it can run before any worker starts.

    Args:
        spec: the dataset to check.

    Raises:
        DataError: one line naming the key, the value, the constraint and a fix (unknown name,
            missing or nonexistent ``root``, bad sizes).
    """
    validator = _VALIDATORS.get(spec.name)
    if validator is None:
        raise DataError(
            f"data.name={spec.name}: unknown dataset; choose one of {', '.join(DATASET_NAMES)}"
        )
    validator(spec)
