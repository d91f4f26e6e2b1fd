"""Random inputs and labels for throughput tests, deterministic by seed."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import Dataset


class SyntheticDataset(Dataset):
    """Gaussian inputs and uniform labels, each sample drawn from its own seeded generator.

    Sample ``i`` depends only on ``(seed, offset + i)``, so it is the same in every process and
    costs no memory until read; ImageNet-sized inputs can thus be served at any count.

    Args:
        num_samples: number of samples.
        input_shape: shape of one input, e.g. ``(3, 224, 224)``.
        num_classes: labels are drawn from ``[0, num_classes)``.
        seed: generation seed.
        offset: index of the first sample in the seeded stream (keeps train and val apart).
    """

    def __init__(
        self,
        num_samples: int,
        input_shape: tuple[int, ...],
        num_classes: int,
        seed: int,
        offset: int = 0,
    ) -> None:
        self.num_samples = num_samples
        self.input_shape = input_shape
        self.num_classes = num_classes
        self.seed = seed
        self.offset = offset

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        """Return sample ``index``: ``x`` float32 of shape ``input_shape``, ``y`` int64 scalar."""
        if not 0 <= index < self.num_samples:
            raise IndexError(f"index {index} out of range for {self.num_samples} samples")
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.offset + index)
        x = torch.randn(self.input_shape, generator=g)
        y = torch.randint(self.num_classes, (), generator=g)
        return x, y


def synthetic_datasets(
    num_samples: int,
    train_split: float,
    input_shape: tuple[int, ...],
    num_classes: int,
    seed: int,
) -> tuple[SyntheticDataset, SyntheticDataset]:
    """Split ``num_samples`` seeded samples into train and val sets.

    Args:
        num_samples: samples in total.
        train_split: fraction of samples in the train split.
        input_shape: shape of one input.
        num_classes: number of classes.
        seed: generation seed.

    Returns:
        ``(train, val)``; val continues the train set's sample stream.
    """
    n_train = int(num_samples * train_split)
    train = SyntheticDataset(n_train, input_shape, num_classes, seed)
    val = SyntheticDataset(num_samples - n_train, input_shape, num_classes, seed, offset=n_train)
    return train, val
