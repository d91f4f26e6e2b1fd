"""The paper's learning-rate schedule (Goyal et al. 2017, as in Sec. 6 of Assran et al. 2019)."""

from __future__ import annotations

import math
from collections.abc import Callable

from sgprepro.config import OptimConfig


def peak_lr(optim: OptimConfig, nodes: int) -> float:
    """lr_per_ref_batch x global batch / ref_batch (0.1 x n for 256 images per node)."""
    return optim.lr_per_ref_batch * optim.batch_size * nodes / optim.ref_batch


def make_lr_fn(optim: OptimConfig, nodes: int, iters_per_epoch: int) -> Callable[[float], float]:
    """Learning rate as a function of the (fractional) iteration index.

    Linear warm-up from min(lr_per_ref_batch, peak) to the peak over ``warmup_epochs``, then x
    ``gamma`` at each milestone; warm-up and milestones are on the ``schedule_epochs`` clock,
    scaled to ``epochs`` when ``scale_to_epochs``. Updated every ``lr_update_every`` iterations.
    """
    peak = peak_lr(optim, nodes)
    start = min(optim.lr_per_ref_batch, peak)
    scale = optim.epochs / optim.schedule_epochs if optim.scale_to_epochs else 1.0
    warmup = optim.warmup_epochs * scale
    milestones = sorted(m * scale for m in optim.milestones)
    every = optim.lr_update_every

    def lr_at(iteration: float) -> float:
        it = math.floor(iteration / every) * every
        epoch = it / iters_per_epoch
        if warmup > 0 and epoch < warmup:
            return start + (peak - start) * epoch / warmup
        return peak * optim.gamma ** sum(epoch >= m for m in milestones)

    return lr_at
