"""Flat parameter buffers: one contiguous tensor per model, the parameters become views into it."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def flatten_params_(params: Sequence[torch.nn.Parameter]) -> torch.Tensor:
    """Move ``params`` into one contiguous buffer and make each parameter a view of it.

    Args:
        params: the model's parameters (same dtype and device), in a fixed order.

    Returns:
        The flat buffer, shape (sum of numel,). Writing into it writes the parameters; the
        Parameter objects stay the same, so optimizers built before or after keep working.
    """
    params = list(params)
    if not params:
        raise ValueError("model has no parameters to communicate")
    dtypes = {p.dtype for p in params}
    devices = {p.device for p in params}
    if len(dtypes) != 1 or len(devices) != 1:
        raise ValueError(
            f"parameters have dtypes {dtypes} and devices {devices}: one flat buffer needs a single "
            "dtype and device; cast the model with model.to(dtype, device) first"
        )
    flat = torch.cat([p.detach().reshape(-1) for p in params]).contiguous()
    offset = 0
    with torch.no_grad():
        for p in params:
            n = p.numel()
            p.data = flat[offset : offset + n].view_as(p)
            offset += n
    return flat


def flat_grad(
    params: Sequence[torch.nn.Parameter], out: torch.Tensor | None = None
) -> torch.Tensor:
    """Concatenate the parameters' gradients (zeros where a gradient is missing)."""
    grads = [
        p.grad.reshape(-1)
        if p.grad is not None
        else torch.zeros(p.numel(), dtype=p.dtype, device=p.device)
        for p in params
    ]
    if out is None:
        return torch.cat(grads)
    return torch.cat(grads, out=out)
