"""MNIST-1D (Greydanus 2020), generated locally with the ``mnist1d`` package and cached on disk.

The package's own ``get_dataset`` may download a pickle from the network; this module never calls
it. It calls the generator (``mnist1d.data.make_dataset``) with the package's default arguments,
overriding only the sample count, the train split and the seed, and caches the arrays in an
``.npz`` file keyed by those arguments and the package version. A file lock makes concurrent
processes (e.g. forked workers) wait for one generation instead of repeating it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import random
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

LOG = logging.getLogger(__name__)

NUM_CLASSES = 10
SEQ_LENGTH = 40
DEFAULT_CACHE_DIR = Path("~/.cache/sgprepro/mnist1d")


@dataclass(frozen=True)
class Mnist1dArrays:
    """The generated arrays.

    Attributes:
        x_train: float32, shape ``(N_train, 40)``, standardised over the whole dataset.
        y_train: int64, shape ``(N_train,)``, labels in ``[0, 10)``.
        x_val: float32, shape ``(N_val, 40)``.
        y_val: int64, shape ``(N_val,)``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def _generation_key(num_samples: int, train_split: float, seed: int) -> dict[str, object]:
    return {
        "mnist1d_version": version("mnist1d"),
        "num_samples": int(num_samples),
        "train_split": float(train_split),
        "seed": int(seed),
    }


def cache_path(
    num_samples: int, train_split: float, seed: int, cache_dir: str | Path | None
) -> Path:
    """Path of the cache file for one set of generation arguments.

    Args:
        num_samples: samples generated in total (train + val).
        train_split: fraction of samples in the train split.
        seed: generation seed.
        cache_dir: directory of the cache; ``None`` means ``~/.cache/sgprepro/mnist1d``.

    Returns:
        ``<cache_dir>/mnist1d_n<num_samples>_s<seed>_<hash>.npz``.
    """
    key = _generation_key(num_samples, train_split, seed)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    directory = Path(cache_dir if cache_dir is not None else DEFAULT_CACHE_DIR).expanduser()
    return directory / f"mnist1d_n{num_samples}_s{seed}_{digest}.npz"


def _generate(num_samples: int, train_split: float, seed: int) -> Mnist1dArrays:
    """Run the package's generator, leaving the global ``random``/``numpy`` RNG state untouched."""
    from mnist1d.data import get_dataset_args, make_dataset  # slow import (scipy, matplotlib)

    args = get_dataset_args()
    args.num_samples = num_samples
    args.train_split = train_split
    args.seed = seed
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        data = make_dataset(args)  # seeds `random` and `numpy` with args.seed
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return Mnist1dArrays(
        x_train=np.asarray(data["x"], dtype=np.float32),
        y_train=np.asarray(data["y"], dtype=np.int64),
        x_val=np.asarray(data["x_test"], dtype=np.float32),
        y_val=np.asarray(data["y_test"], dtype=np.int64),
    )


def _read(path: Path) -> Mnist1dArrays:
    with np.load(path) as f:
        return Mnist1dArrays(
            x_train=f["x_train"], y_train=f["y_train"], x_val=f["x_val"], y_val=f["y_val"]
        )


def load_mnist1d_arrays(
    num_samples: int, train_split: float, seed: int, cache_dir: str | Path | None = None
) -> Mnist1dArrays:
    """Load MNIST-1D from the cache, generating and caching it on a miss.

    Generation is deterministic in the arguments (about 0.45 ms per sample on one CPU core).

    Args:
        num_samples: samples generated in total (a multiple of 10).
        train_split: fraction of samples in the train split.
        seed: generation seed.
        cache_dir: directory of the cache; ``None`` means ``~/.cache/sgprepro/mnist1d``.

    Returns:
        The arrays; see ``Mnist1dArrays``.
    """
    path = cache_path(num_samples, train_split, seed, cache_dir)
    if path.is_file():
        return _read(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_suffix(".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if path.is_file():  # another process generated it while we waited
            return _read(path)
        start = time.perf_counter()
        arrays = _generate(num_samples, train_split, seed)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(
            tmp,
            x_train=arrays.x_train,
            y_train=arrays.y_train,
            x_val=arrays.x_val,
            y_val=arrays.y_val,
        )
        tmp.replace(path)
        LOG.info(
            "generated MNIST-1D (num_samples=%d, seed=%d) in %.1f s -> %s",
            num_samples,
            seed,
            time.perf_counter() - start,
            path,
        )
    return arrays


def mnist1d_datasets(
    num_samples: int, train_split: float, seed: int, cache_dir: str | Path | None = None
) -> tuple[TensorDataset, TensorDataset]:
    """MNIST-1D as in-memory tensor datasets.

    Args:
        num_samples: samples generated in total (a multiple of 10).
        train_split: fraction of samples in the train split.
        seed: generation seed.
        cache_dir: directory of the cache; ``None`` means ``~/.cache/sgprepro/mnist1d``.

    Returns:
        ``(train, val)``; each holds ``x`` float32 of shape ``(N, 1, 40)`` and ``y`` int64 of
        shape ``(N,)``.
    """
    a = load_mnist1d_arrays(num_samples, train_split, seed, cache_dir)
    train = TensorDataset(torch.from_numpy(a.x_train).unsqueeze(1), torch.from_numpy(a.y_train))
    val = TensorDataset(torch.from_numpy(a.x_val).unsqueeze(1), torch.from_numpy(a.y_val))
    return train, val
