"""Datasets and per-node data shards.

``build_dataset(DataSpec)`` gives a train/val pair; ``validate_data_spec`` checks a spec without
reading data (run it before any worker starts); ``make_loader`` gives one rank's batches of its
disjoint shard for one epoch.

The names load on first use (PEP 562), so importing the schema (:mod:`sgprepro.data.spec`)
does not import torch: ``--help`` and tab completion stay fast.
"""

from __future__ import annotations

from sgprepro.lazy import lazy_getattr

_WHERE = {
    "build_dataset": "build",
    "input_shape_of": "build",
    "ShardLoader": "sharding",
    "batches_per_epoch": "sharding",
    "check_batch": "sharding",
    "epoch_order": "sharding",
    "make_loader": "sharding",
    "shard_indices": "sharding",
    "shard_size": "sharding",
    "DATASET_NAMES": "spec",
    "check_cache_dir": "spec",
    "DataError": "spec",
    "DatasetPair": "spec",
    "DataSpec": "spec",
    "validate_data_spec": "spec",
}

__all__ = sorted(_WHERE)


__getattr__ = lazy_getattr(__name__, _WHERE)
