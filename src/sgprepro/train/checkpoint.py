"""Per-rank checkpoints that let an interrupted run resume where it stopped.

Each rank saves its own state (model with its local BatchNorm statistics, optimizer with its
local momentum, the algorithm's PushSum weight, the step) at the same step; a run resumes only
when every rank holds a checkpoint of the same step (agreed collectively), else it starts over.
Records written after the checkpoint are cut back to it, so the traces stay one line per step.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from sgprepro.algorithms import Algorithm

LOSS_WINDOW = 20
"""Last iterations whose mean training loss is a run's ``train/loss`` (kept in checkpoints)."""

log = logging.getLogger(__name__)


def ckpt_path(run_dir: Path, rank: int) -> Path:
    return Path(run_dir) / f"ckpt_r{rank}.pt"


def save_checkpoint(
    run_dir: Path,
    rank: int,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    algo: Algorithm,
    losses: list[float],
) -> None:
    """Write this rank's state at ``step`` atomically (a crash mid-write leaves the old one)."""
    path = ckpt_path(run_dir, rank)
    tmp = path.with_suffix(".pt.tmp")
    torch.save(
        {
            "step": step,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "algorithm": algo.state_dict(),
            "losses": losses[-LOSS_WINDOW:],
            "rng": torch.get_rng_state(),
        },
        tmp,
    )
    tmp.replace(path)


def load_checkpoint(run_dir: Path, rank: int) -> dict[str, Any] | None:
    path = ckpt_path(run_dir, rank)
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - an unreadable checkpoint means starting over
        log.warning("rank %d: unreadable checkpoint %s (%s); starting over", rank, path, exc)
        return None


def restore(
    state: dict[str, Any], model: torch.nn.Module, optimizer: torch.optim.Optimizer, algo: Algorithm
) -> None:
    model.load_state_dict(state["model"])  # copies into the flat buffer's views in place
    optimizer.load_state_dict(state["optimizer"])
    algo.load_state_dict(state["algorithm"])
    torch.set_rng_state(state["rng"])


def cut_records(run_dir: Path, rank: int, step: int) -> None:
    """Keep only the lines of this rank's records up to ``step`` (iterations completed)."""
    for name, keep in (
        (f"trace_r{rank}.jsonl", lambda r: r["step"] < step),  # trace steps are 0-based
        (f"metrics_r{rank}.jsonl", lambda r: r["step"] <= step and r["kind"] != "final"),
    ):
        path = Path(run_dir) / name
        if not path.exists():
            continue
        kept = []
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by the crash
            if keep(rec):
                kept.append(line)
        tmp = path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(x + "\n" for x in kept))
        tmp.replace(path)
