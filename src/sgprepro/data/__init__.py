"""Datasets and per-node data shards.

``build_dataset(DataSpec)`` gives a train/val pair; ``validate_data_spec`` checks a spec without
reading data (run it before any worker starts); ``make_loader`` gives one rank's batches of its
disjoint shard for one epoch.
"""

from sgprepro.data.build import build_dataset
from sgprepro.data.sharding import (
    ShardLoader,
    batches_per_epoch,
    check_batch,
    epoch_order,
    make_loader,
    shard_indices,
    shard_size,
)
from sgprepro.data.spec import DATASET_NAMES, DataError, DatasetPair, DataSpec, validate_data_spec

__all__ = [
    "DATASET_NAMES",
    "DataError",
    "DataSpec",
    "DatasetPair",
    "ShardLoader",
    "batches_per_epoch",
    "build_dataset",
    "check_batch",
    "epoch_order",
    "make_loader",
    "shard_indices",
    "shard_size",
    "validate_data_spec",
]
