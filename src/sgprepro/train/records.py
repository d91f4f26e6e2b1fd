"""What one rank writes while it trains: its metrics and trace lines, and rank 0's progress
display (docs/records.md). W&B is filed by the job process once the run is done
(:mod:`sgprepro.tracking.wandb_run`), never by a rank."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import torch

from sgprepro.algorithms import StepInfo
from sgprepro.config import Config
from sgprepro.tracking import JsonlWriter
from sgprepro.train.finalize import estimate_s_per_itr

PROGRESS_WINDOW = 50
"""Recent iterations whose compute feeds the progress display's emulated s/itr estimate."""


def _progress_enabled(mode: str) -> bool:
    if mode == "on":
        return True
    if mode == "off":
        return False
    return sys.stderr.isatty() and not os.environ.get("CI")


class RankRecords:
    """One rank's record writers. :meth:`close` is safe to call after any failure."""

    def __init__(
        self, out: Path, rank: int, cfg: Config, ipe: int, total_steps: int, message_bytes: int
    ) -> None:
        self.rank, self.cfg, self.ipe = rank, cfg, ipe
        self.message_bytes = message_bytes
        self.metrics = JsonlWriter(out / f"metrics_r{rank}.jsonl")
        self.traces = JsonlWriter(out / f"trace_r{rank}.jsonl")
        self.bar: Any = None
        self.postfix: dict[str, str] = {}
        self.recent: list[float] = []
        if rank != 0:
            return
        if _progress_enabled(cfg.logger.progress):
            from tqdm import tqdm

            name = f"{cfg.algorithm.row}-n{cfg.nodes}-{cfg.network.name}-s{cfg.seed}"
            self.bar = tqdm(total=total_steps, desc=name, unit="itr", leave=False)

    def trace(self, step: int, info: StepInfo, wall_s: float) -> None:
        """One trace line per iteration (what the timing engine replays)."""
        rec: dict[str, Any] = {
            "step": step,
            "compute_s": info.compute_s,
            "wall_s": wall_s,
            "comm_s": info.comm_s,
            "sent": info.sent,
        }
        rec.update(info.extra)
        self.traces.write(rec)
        if self.bar is not None:
            self.recent.append(info.compute_s)
            self.postfix["loss"] = f"{info.loss:.3f}"
            self.bar.update(1)

    def train_point(self, step: int, epoch: float, info: StepInfo) -> None:
        if step % self.cfg.train.log_every and step != 1:
            if self.bar is not None:
                self.bar.set_postfix(self.postfix, refresh=False)
            return
        rec: dict[str, Any] = {
            "kind": "train",
            "step": step,
            "epoch": epoch,
            "train/loss": info.loss,
            "lr": info.lr,
        }
        if info.global_step is not None:
            rec["global_step"] = info.global_step
        self.metrics.write(rec)
        if self.bar is not None:
            est = estimate_s_per_itr(
                self.cfg, self.ipe, self.message_bytes, self.recent[-PROGRESS_WINDOW:]
            )
            self.postfix["emulated s/itr (est)"] = f"{est:.4f}"
            self.bar.set_postfix(self.postfix, refresh=False)

    def eval_point(self, step: int, epoch: float, top1: float, vloss: float, weight: float) -> None:
        self.metrics.write(
            {
                "kind": "eval",
                "step": step,
                "epoch": epoch,
                "val/top1": top1,
                "val/loss": vloss,
                "pushsum/weight": weight,
            }
        )

    def global_point(
        self,
        step: int,
        epoch: float,
        gathered: torch.Tensor,
        avg_top1: float | None,
        distance: float,
    ) -> None:
        """Rank 0: the cross-node statistics of one evaluation (``gathered``: [n, 3] of top-1,
        validation loss and PushSum weight of every node; ``avg_top1``: the averaged model's,
        evaluated at the end only)."""
        rec = {
            "kind": "global",
            "step": step,
            "epoch": epoch,
            "val/top1_node_mean": float(gathered[:, 0].mean()),
            "val/top1_node_min": float(gathered[:, 0].min()),
            "val/top1_node_max": float(gathered[:, 0].max()),
            "val/loss_node_mean": float(gathered[:, 1].mean()),
            "consensus/distance": distance,
            "pushsum/weight_min": float(gathered[:, 2].min()),
            "pushsum/weight_max": float(gathered[:, 2].max()),
        }
        if avg_top1 is not None:
            rec["val/top1_avg_model"] = avg_top1
        self.metrics.write(rec)
        if self.bar is not None:
            self.postfix["top1"] = f"{rec['val/top1_node_mean']:.1f}"
            self.bar.set_postfix(self.postfix)

    def final(self, step: int, loss_last: float, extra: dict[str, Any]) -> None:
        """The rank's last metrics line: final train loss and what the algorithm reports."""
        self.metrics.write({"kind": "final", "step": step, "train/loss_last": loss_last, **extra})

    def close(self) -> None:
        self.metrics.close()
        self.traces.close()
        if self.bar is not None:
            self.bar.close()
            self.bar = None
