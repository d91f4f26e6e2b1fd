"""Models: shapes, the paper's ResNet-50 initialisation, identical init by seed, and a toy fit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from sgprepro.data import DataSpec, build_dataset, make_loader
from sgprepro.models import ModelError, ModelSpec, build_model

SMALL_MODELS = [
    ("mnist1d_cnn", (1, 40)),
    ("mlp", (1, 40)),
    ("resnet20", (3, 32, 32)),
]


@pytest.fixture(scope="module")
def resnet50() -> nn.Module:
    return build_model(ModelSpec(name="resnet50"), 1000, (3, 224, 224), seed=0)


@pytest.mark.parametrize(("name", "input_shape"), SMALL_MODELS)
def test_output_shape(name: str, input_shape: tuple[int, ...]) -> None:
    model = build_model(ModelSpec(name=name), 10, input_shape, seed=0)
    assert model(torch.randn(5, *input_shape)).shape == (5, 10)


def test_mlp_runs_in_float64() -> None:
    model = build_model(ModelSpec(name="mlp", mlp_layers=2), 3, (7,), seed=0).double()
    assert model(torch.randn(4, 7, dtype=torch.float64)).dtype == torch.float64


def test_parameter_counts() -> None:
    count = {
        name: sum(p.numel() for p in build_model(ModelSpec(name=name), 10, shape, 0).parameters())
        for name, shape in SMALL_MODELS
    }
    assert count["resnet20"] == 269_722  # He et al. 2016, Table 6: 0.27M
    assert 5_000 <= count["mnist1d_cnn"] <= 50_000


def test_resnet50_has_the_paper_init_and_size(resnet50: nn.Module) -> None:
    assert sum(p.numel() for p in resnet50.parameters()) == 25_557_032
    bottlenecks = [m for m in resnet50.modules() if type(m).__name__ == "Bottleneck"]
    assert len(bottlenecks) == 16
    for block in bottlenecks:  # zero-init gamma of the last BN of each bottleneck
        assert torch.count_nonzero(block.bn3.weight) == 0
        assert torch.count_nonzero(block.bn1.weight - 1) == 0
    fc = resnet50.fc
    assert torch.count_nonzero(fc.bias) == 0
    assert abs(fc.weight.std().item() - 0.01) < 2e-4  # N(0, 0.01^2) over 2.05M weights
    assert abs(fc.weight.mean().item()) < 1e-4
    resnet50.eval()
    with torch.no_grad():
        assert resnet50(torch.randn(2, 3, 64, 64)).shape == (2, 1000)


@pytest.mark.parametrize(("name", "input_shape"), SMALL_MODELS)
def test_same_seed_gives_the_same_model(name: str, input_shape: tuple[int, ...]) -> None:
    spec = ModelSpec(name=name)
    a = build_model(spec, 10, input_shape, seed=3).state_dict()
    torch.manual_seed(999)  # the caller's global RNG state must not matter
    b = build_model(spec, 10, input_shape, seed=3).state_dict()
    c = build_model(spec, 10, input_shape, seed=4).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_build_leaves_global_rng_alone() -> None:
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    build_model(ModelSpec(name="resnet20"), 10, (3, 32, 32), seed=0)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(
    ("spec", "input_shape", "needles"),
    [
        (ModelSpec(name="resnet18"), (3, 32, 32), ("model.name=resnet18", "mnist1d_cnn, mlp")),
        (ModelSpec(name="mnist1d_cnn"), (3, 32, 32), ("model.name=mnist1d_cnn", "(3, 32, 32)")),
        (ModelSpec(name="resnet20"), (1, 40), ("model.name=resnet20",)),
        (ModelSpec(name="resnet50"), (1, 28, 28), ("model.name=resnet50", "3-channel")),
        (ModelSpec(name="mlp", mlp_hidden=0), (4,), ("model.mlp_hidden=0",)),
    ],
)
def test_bad_model_specs_name_the_key(
    spec: ModelSpec, input_shape: tuple[int, ...], needles: tuple[str, ...]
) -> None:
    with pytest.raises(ModelError) as err:
        build_model(spec, 10, input_shape, seed=0)
    msg = str(err.value)
    assert "\n" not in msg
    assert all(n in msg for n in needles), msg


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Run torch on one CPU thread: tiny models gain nothing from more, and spinning OpenMP
    threads slow down tenfold when other processes share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_mnist1d_cnn_learns(tmp_path: Path) -> None:
    """300 SGD steps of batch 64 on 1600 MNIST-1D samples reach well above 80% val accuracy.

    Measured on val (400 samples): 0.923 / 0.887 / 0.918 for seeds 0 / 1 / 2, in about 1.4 s.
    """
    pair = build_dataset(DataSpec(name="mnist1d", root=str(tmp_path), num_samples=2000))
    model = build_model(ModelSpec(name="mnist1d_cnn"), pair.num_classes, pair.input_shape, seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    step, epoch = 0, 0
    model.train()
    while step < 300:
        for x, y in make_loader(
            pair.train, rank=0, world_size=1, batch_size=64, seed=0, epoch=epoch
        ):
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step == 300:
                break
        epoch += 1
    model.eval()
    x_val, y_val = pair.val.tensors
    with torch.no_grad():
        accuracy = (model(x_val).argmax(1) == y_val).float().mean().item()
    assert accuracy > 0.85, accuracy
