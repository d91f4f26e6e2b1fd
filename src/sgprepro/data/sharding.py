"""Disjoint per-node shards and per-rank batch loaders (Sec. 4 of Assran et al. 2019).

Every node trains on its own fixed shard of the training set, as torch's ``DistributedSampler``
with ``drop_last=True`` gives: one permutation of all sample indices seeded by ``seed`` (the same
on every rank), truncated to ``floor(N / world_size) * world_size`` samples and split rank-strided,
so the shards are disjoint and all of one size. Within its shard, a rank reshuffles every epoch
with a generator seeded by ``(seed + rank, epoch)``.

Batches within a shard keep the last partial batch by default, which reproduces the paper's
iteration counts: ImageNet's 1,281,167 images at 256 per node give 1252 / 626 / 313 / 157
iterations per epoch on 4 / 8 / 16 / 32 nodes.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, TensorDataset

from sgprepro.data.spec import DataError


def _check_rank(rank: int, world_size: int) -> None:
    if world_size < 1:
        raise DataError(f"world_size={world_size}: needs at least one node; set nodes>=1")
    if not 0 <= rank < world_size:
        raise DataError(
            f"rank={rank} with world_size={world_size}: ranks run from 0 to {world_size - 1}"
        )


def shard_size(num_samples: int, world_size: int) -> int:
    """Samples in each node's shard: ``floor(num_samples / world_size)``."""
    return num_samples // world_size


def check_batch(batch_size: int, num_samples: int, world_size: int) -> None:
    """Check that a per-node batch fits in one node's shard.

    Args:
        batch_size: samples per node per iteration.
        num_samples: size of the training set being sharded.
        world_size: number of nodes.

    Raises:
        DataError: one line naming ``batch_size``, the largest allowed value and a fix.
    """
    shard = shard_size(num_samples, world_size)
    if not 1 <= batch_size <= shard:
        raise DataError(
            f"batch_size={batch_size} with {num_samples} training samples over nodes={world_size}: "
            f"each node's shard holds {shard} samples and a batch must hold 1 to {shard}; "
            f"set batch_size<={shard}, use fewer nodes, or use more data"
        )


def shard_indices(num_samples: int, rank: int, world_size: int, seed: int) -> np.ndarray:
    """Indices of ``rank``'s fixed shard of a dataset.

    Args:
        num_samples: size of the dataset.
        rank: this node, in ``[0, world_size)``.
        world_size: number of nodes.
        seed: permutation seed; must be equal on every rank.

    Returns:
        int64 array of shape ``(floor(num_samples / world_size),)``. Over all ranks the shards are
        disjoint and cover ``floor(num_samples / world_size) * world_size`` samples.
    """
    _check_rank(rank, world_size)
    perm = np.random.default_rng(np.random.SeedSequence([seed])).permutation(num_samples)
    total = shard_size(num_samples, world_size) * world_size
    return perm[rank:total:world_size].astype(np.int64)


def epoch_order(shard: np.ndarray, rank: int, seed: int, epoch: int) -> np.ndarray:
    """``shard`` reshuffled for one epoch, by a generator seeded with ``(seed + rank, epoch)``.

    Args:
        shard: the rank's sample indices, shape ``(S,)``.
        rank: this node.
        seed: training seed.
        epoch: epoch index (0-based).

    Returns:
        A permutation of ``shard``, shape ``(S,)``.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed + rank, epoch]))
    return shard[rng.permutation(len(shard))]


def batches_per_epoch(
    num_samples: int, world_size: int, batch_size: int, drop_last: bool = False
) -> int:
    """Iterations per epoch on every node (equal on all ranks, as the shards are equal).

    Args:
        num_samples: size of the training set.
        world_size: number of nodes.
        batch_size: samples per node per iteration.
        drop_last: drop each shard's last partial batch.

    Returns:
        ``floor(S / batch_size)`` if ``drop_last`` else ``ceil(S / batch_size)``, with
        ``S = floor(num_samples / world_size)``.
    """
    shard = shard_size(num_samples, world_size)
    return shard // batch_size if drop_last else -(-shard // batch_size)


class ShardLoader:
    """Batches of one rank's shard for one epoch.

    In-memory ``TensorDataset``s are sliced directly in the calling process (no worker
    processes: cheap for MNIST-1D on CPU); any other dataset is read through a ``DataLoader``
    with the same index batches.

    Args:
        dataset: the full dataset (not the shard).
        index_batches: the epoch's batches of dataset indices, each of shape ``(B,)``.
        num_workers: ``DataLoader`` worker processes (ignored for ``TensorDataset``).
        pin_memory: pin batches for faster host-to-GPU copies (ignored for ``TensorDataset``).
    """

    def __init__(
        self,
        dataset: Dataset,
        index_batches: list[np.ndarray],
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        self.dataset = dataset
        self.index_batches = index_batches
        self.num_workers = num_workers
        self.pin_memory = pin_memory

    def __len__(self) -> int:
        return len(self.index_batches)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield ``(x, y)`` batches: ``x`` of shape ``(B, *input_shape)``, ``y`` int64 ``(B,)``."""
        if isinstance(self.dataset, TensorDataset):
            x_all, y_all = self.dataset.tensors
            for idx in self.index_batches:
                index = torch.from_numpy(idx)
                yield x_all[index], y_all[index]
            return
        loader = DataLoader(
            self.dataset,
            batch_sampler=[idx.tolist() for idx in self.index_batches],
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
        )
        yield from loader


def make_loader(
    dataset: Dataset,
    rank: int,
    world_size: int,
    batch_size: int,
    seed: int,
    epoch: int,
    shuffle: bool = True,
    num_workers: int = 0,
    drop_last: bool = False,
    pin_memory: bool = False,
) -> ShardLoader:
    """The batches ``rank`` reads in ``epoch``: its fixed shard, reshuffled for the epoch.

    Args:
        dataset: the full dataset; its length is the ``num_samples`` that is sharded.
        rank: this node, in ``[0, world_size)``.
        world_size: number of nodes (1 for a single process or a full evaluation pass).
        batch_size: samples per node per iteration.
        seed: training seed: the shard permutation uses ``seed`` (equal on every rank) and the
            epoch order ``(seed + rank, epoch)``.
        epoch: epoch index (0-based).
        shuffle: reshuffle within the shard; ``False`` keeps the shard's fixed order.
        num_workers: ``DataLoader`` worker processes (not used for in-memory tensor datasets).
        drop_last: drop the shard's last partial batch (default keeps it, as the paper did).
        pin_memory: pin batches in page-locked memory (not used for in-memory tensor datasets).

    Returns:
        A sized iterable of ``(x, y)`` batches, ``x`` of shape ``(B, *input_shape)``.

    Raises:
        DataError: if ``batch_size`` exceeds the shard or the rank is out of range.
    """
    num_samples = len(dataset)  # type: ignore[arg-type]
    check_batch(batch_size, num_samples, world_size)
    shard = shard_indices(num_samples, rank, world_size, seed)
    order = epoch_order(shard, rank, seed, epoch) if shuffle else shard
    n_batches = batches_per_epoch(num_samples, world_size, batch_size, drop_last)
    index_batches = [order[i * batch_size : (i + 1) * batch_size] for i in range(n_batches)]
    return ShardLoader(dataset, index_batches, num_workers=num_workers, pin_memory=pin_memory)
