"""Datasets, per-node shards and loaders: determinism, disjointness, and one-line errors."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sgprepro.data import (
    DataError,
    DataSpec,
    batches_per_epoch,
    build_dataset,
    check_batch,
    make_loader,
    shard_indices,
    validate_data_spec,
)
from sgprepro.data import mnist1d as mnist1d_module
from sgprepro.data.mnist1d import cache_path, load_mnist1d_arrays

SMALL = 200  # MNIST-1D samples for fast tests (about 0.1 s to generate)


@pytest.fixture(scope="module")
def mnist1d_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mnist1d")


def _assert_one_line(err: pytest.ExceptionInfo[DataError], *needles: str) -> None:
    msg = str(err.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, (needle, msg)


# --- MNIST-1D ------------------------------------------------------------------------------------


def test_mnist1d_generation_is_deterministic_and_cached(
    mnist1d_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = load_mnist1d_arrays(SMALL, 0.8, 7, mnist1d_dir)
    assert cache_path(SMALL, 0.8, 7, mnist1d_dir).is_file()
    b = load_mnist1d_arrays(SMALL, 0.8, 7, tmp_path)  # fresh directory: generated again
    for field in ("x_train", "y_train", "x_val", "y_val"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))

    def no_generation(*args: object) -> None:
        raise AssertionError("cache miss: MNIST-1D was generated again")

    monkeypatch.setattr(mnist1d_module, "_generate", no_generation)
    c = load_mnist1d_arrays(SMALL, 0.8, 7, mnist1d_dir)
    np.testing.assert_array_equal(a.x_train, c.x_train)


def test_mnist1d_seed_changes_data_and_cache_key(mnist1d_dir: Path) -> None:
    a = load_mnist1d_arrays(SMALL, 0.8, 7, mnist1d_dir)
    b = load_mnist1d_arrays(SMALL, 0.8, 8, mnist1d_dir)
    assert cache_path(SMALL, 0.8, 7, None) != cache_path(SMALL, 0.8, 8, None)
    assert not np.array_equal(a.x_train, b.x_train)


def test_mnist1d_generation_leaves_global_rng_alone(tmp_path: Path) -> None:
    random.seed(123)
    np.random.seed(123)
    expected = (random.random(), np.random.rand())
    random.seed(123)
    np.random.seed(123)
    load_mnist1d_arrays(SMALL, 0.8, 11, tmp_path)
    assert (random.random(), np.random.rand()) == expected


def test_mnist1d_dataset_shapes(mnist1d_dir: Path) -> None:
    pair = build_dataset(DataSpec(name="mnist1d", root=str(mnist1d_dir), num_samples=SMALL, seed=7))
    assert (len(pair.train), len(pair.val)) == (160, 40)
    assert pair.num_classes == 10
    assert pair.input_shape == (1, 40)
    x, y = pair.train[0]
    assert x.shape == (1, 40)
    assert x.dtype == torch.float32
    assert y.dtype == torch.int64
    labels = pair.train.tensors[1]
    assert set(labels.tolist()) == set(range(10))


# --- synthetic -----------------------------------------------------------------------------------


def test_synthetic_is_deterministic_and_shaped() -> None:
    spec = DataSpec(name="synthetic", num_samples=20, synthetic_classes=5, seed=3)
    a, b = build_dataset(spec), build_dataset(spec)
    assert a.input_shape == (3, 32, 32)
    assert a.num_classes == 5
    assert (len(a.train), len(a.val)) == (16, 4)
    assert torch.equal(a.train[5][0], b.train[5][0])
    assert not torch.equal(a.train[0][0], a.val[0][0])
    other = build_dataset(DataSpec(name="synthetic", num_samples=20, seed=4))
    assert not torch.equal(a.train[5][0], other.train[5][0])
    one_d = build_dataset(DataSpec(name="synthetic", num_samples=20, synthetic_dims=1))
    assert one_d.input_shape == (3, 32)
    assert one_d.train[0][0].shape == (3, 32)


# --- shards and loaders --------------------------------------------------------------------------


@pytest.mark.parametrize("world_size", [1, 4, 8, 16, 32])
@pytest.mark.parametrize("num_samples", [1000, 8003])
def test_shards_are_disjoint_equal_and_cover(num_samples: int, world_size: int) -> None:
    shards = [shard_indices(num_samples, r, world_size, seed=5) for r in range(world_size)]
    per_node = num_samples // world_size
    assert all(len(s) == per_node for s in shards)
    union = np.concatenate(shards)
    assert len(np.unique(union)) == per_node * world_size  # disjoint, and cover floor(N/W)*W
    assert union.min() >= 0
    assert union.max() < num_samples
    np.testing.assert_array_equal(
        shards[-1], shard_indices(num_samples, world_size - 1, world_size, 5)
    )
    if world_size > 1:
        assert not np.array_equal(shards[0], shard_indices(num_samples, 0, world_size, seed=6))


def _epoch_indices(dataset: torch.utils.data.TensorDataset, **kw: int) -> np.ndarray:
    """Sample ids a loader yields, read back from a dataset whose inputs are their own index."""
    return np.concatenate([x[:, 0].numpy() for x, _ in make_loader(dataset, **kw)])


@pytest.fixture
def indexed_dataset() -> torch.utils.data.TensorDataset:
    n = 103
    return torch.utils.data.TensorDataset(
        torch.arange(n).unsqueeze(1), torch.zeros(n, dtype=torch.long)
    )


def test_epochs_reshuffle_within_a_fixed_shard(
    indexed_dataset: torch.utils.data.TensorDataset,
) -> None:
    kw = {"rank": 2, "world_size": 4, "batch_size": 8, "seed": 0}
    e0 = _epoch_indices(indexed_dataset, epoch=0, **kw)
    e0_again = _epoch_indices(indexed_dataset, epoch=0, **kw)
    e1 = _epoch_indices(indexed_dataset, epoch=1, **kw)
    shard = shard_indices(103, 2, 4, seed=0)
    np.testing.assert_array_equal(e0, e0_again)
    assert sorted(e0) == sorted(e1) == sorted(shard.tolist())
    assert not np.array_equal(e0, e1)
    other_rank = _epoch_indices(indexed_dataset, epoch=0, **{**kw, "rank": 1})
    assert not set(other_rank) & set(e0)
    in_order = _epoch_indices(indexed_dataset, epoch=3, shuffle=False, **kw)
    np.testing.assert_array_equal(in_order, shard)


def test_loader_length_and_last_batch(indexed_dataset: torch.utils.data.TensorDataset) -> None:
    # shard of 103 // 4 = 25 samples at batch 8: 4 batches (the last of 1) or 3 with drop_last
    loader = make_loader(indexed_dataset, rank=0, world_size=4, batch_size=8, seed=0, epoch=0)
    sizes = [len(y) for _, y in loader]
    assert len(loader) == 4
    assert sizes == [8, 8, 8, 1]
    dropped = make_loader(
        indexed_dataset, rank=0, world_size=4, batch_size=8, seed=0, epoch=0, drop_last=True
    )
    assert len(dropped) == 3
    assert [len(y) for _, y in dropped] == [8, 8, 8]


def test_iterations_per_epoch_match_the_paper() -> None:
    # Sec. 4: ImageNet (1,281,167 images) at 256 per node: 1252 / 626 / 313 / 157 iterations
    counts = [batches_per_epoch(1_281_167, n, 256) for n in (4, 8, 16, 32)]
    assert counts == [1252, 626, 313, 157]


def test_loader_reads_other_datasets_through_dataloader() -> None:
    pair = build_dataset(DataSpec(name="synthetic", num_samples=40, synthetic_size=4))
    loader = make_loader(pair.train, rank=1, world_size=2, batch_size=4, seed=0, epoch=0)
    batches = list(loader)
    assert len(batches) == len(loader) == 4
    x, y = batches[0]
    assert x.shape == (4, 3, 4, 4)
    assert y.shape == (4,)
    first = int(loader.index_batches[0][0])
    assert torch.equal(x[0], pair.train[first][0])


# --- errors --------------------------------------------------------------------------------------


def test_batch_larger_than_shard_names_the_key_and_the_max() -> None:
    check_batch(250, 8000, 32)
    with pytest.raises(DataError) as err:
        check_batch(251, 8000, 32)
    _assert_one_line(err, "batch_size=251", "nodes=32", "batch_size<=250")
    ds = torch.utils.data.TensorDataset(torch.zeros(10, 1))
    with pytest.raises(DataError, match="batch_size=6"):
        make_loader(ds, rank=0, world_size=2, batch_size=6, seed=0, epoch=0)


@pytest.mark.parametrize(
    ("spec", "needles"),
    [
        (
            DataSpec(name="imagenet", root="/nope"),
            ("data.root=/nope", "train/ and val/", "set data.root="),
        ),
        (DataSpec(name="imagenet"), ("data.root=None", "set data.root=")),
        (DataSpec(name="cifar10"), ("data.root=None", "set data.root=")),
        (DataSpec(name="cifar10", root="/nope"), ("data.root=/nope", "data.download=true")),
        (DataSpec(name="mnist"), ("data.name=mnist", "mnist1d, cifar10, imagenet, synthetic")),
        (DataSpec(num_samples=1234), ("data.num_samples=1234", "data.num_samples=1230")),
        (DataSpec(train_split=1.0), ("data.train_split=1.0",)),
        (DataSpec(name="synthetic", synthetic_dims=3), ("data.synthetic_dims=3",)),
    ],
)
def test_bad_specs_fail_before_loading(spec: DataSpec, needles: tuple[str, ...]) -> None:
    with pytest.raises(DataError) as err:
        validate_data_spec(spec)
    _assert_one_line(err, *needles)
    with pytest.raises(DataError):
        build_dataset(spec)


def test_valid_roots_pass_without_loading(tmp_path: Path) -> None:
    (tmp_path / "cifar-10-batches-py").mkdir()
    validate_data_spec(DataSpec(name="cifar10", root=str(tmp_path)))
    validate_data_spec(DataSpec(name="cifar10", root=str(tmp_path / "empty"), download=True))
    (tmp_path / "train").mkdir()
    (tmp_path / "val").mkdir()
    validate_data_spec(DataSpec(name="imagenet", root=str(tmp_path)))


def test_imagenet_reads_an_image_folder_with_the_paper_crops(tmp_path: Path) -> None:
    for split in ("train", "val"):
        for label in ("n01", "n02"):
            (tmp_path / split / label).mkdir(parents=True)
            Image.new("RGB", (300, 260), color=(10, 200, 30)).save(
                tmp_path / split / label / "a.png"
            )
    pair = build_dataset(DataSpec(name="imagenet", root=str(tmp_path)))
    assert pair.num_classes == 2
    assert pair.input_shape == (3, 224, 224)
    for dataset in (pair.train, pair.val):
        x, y = dataset[0]
        assert x.shape == (3, 224, 224)
        assert y == 0
