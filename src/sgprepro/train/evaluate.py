"""Validation of one node's own model, and the cross-node statistics the paper lacks."""

from __future__ import annotations

import copy
from collections.abc import Sized

import torch
from torch import nn
from torch.utils.data import Dataset

from sgprepro.comm import Communicator
from sgprepro.data import make_loader


@torch.no_grad()
def evaluate(
    model: nn.Module, dataset: Dataset, batch_size: int, device: torch.device
) -> tuple[float, float]:
    """Top-1 accuracy (percent) and mean cross-entropy of ``model`` on the whole ``dataset``."""
    was_training = model.training
    model.eval()
    correct, total, loss_sum = 0, 0, 0.0
    if not isinstance(dataset, Sized):
        raise TypeError(f"evaluate needs a dataset with a length, got {type(dataset).__name__}")
    batch_size = min(batch_size, len(dataset))
    for x, y in make_loader(dataset, 0, 1, batch_size, seed=0, epoch=0, shuffle=False):
        x, y = x.to(device), y.to(device)
        out = model(x)
        loss_sum += float(nn.functional.cross_entropy(out, y, reduction="sum"))
        correct += int((out.argmax(1) == y).sum())
        total += y.numel()
    model.train(was_training)
    return 100.0 * correct / total, loss_sum / total


@torch.no_grad()
def consensus_distance(z: torch.Tensor, comm: Communicator, step: int) -> float:
    """mean_i ||z_i - z_bar||. Collective: every rank calls this at the same step."""
    n = comm.world_size
    zbar = z.detach().clone()
    comm.all_reduce_(zbar, step, "consensus all-reduce", record=False)
    zbar.div_(n)
    dist_i = torch.tensor([float((z - zbar).norm())], dtype=torch.float64, device=z.device)
    comm.all_reduce_(dist_i, step, "consensus distance all-reduce", record=False)
    return float(dist_i) / n


@torch.no_grad()
def consensus_and_average(
    model: nn.Module, z: torch.Tensor, comm: Communicator, step: int
) -> tuple[float, list[float], nn.Module]:
    """Collective: every rank calls this at the same step.

    Returns:
        (mean_i ||z_i - z_bar||, every rank's distance, a copy of ``model`` holding the averaged
        parameters z_bar and the averaged BatchNorm statistics).
    """
    n = comm.world_size
    zbar = z.detach().clone()
    comm.all_reduce_(zbar, step, "consensus all-reduce", record=False)
    zbar.div_(n)
    dist_i = torch.tensor([float((z - zbar).norm())], dtype=torch.float64, device=z.device)
    dists = [float(t) for t in comm.all_gather(dist_i, step)]
    avg = copy.deepcopy(model)
    torch.nn.utils.vector_to_parameters(zbar, avg.parameters())
    for buf in avg.buffers():
        if buf.is_floating_point():
            comm.all_reduce_(buf, step, "BatchNorm statistics all-reduce", record=False)
            buf.div_(n)
    return sum(dists) / n, dists, avg
