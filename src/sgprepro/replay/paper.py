"""The paper's published Table 1 and its workload, read from ``experiments/table1_paper/``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd
import yaml

from sgprepro.paths import study_dir

PAPER_STUDY = "table1_paper"
"""The study folder holding the published numbers (``paper.csv``) and ``workload.yaml``."""
ALGORITHMS: tuple[str, ...] = ("allreduce", "dpsgd", "adpsgd", "sgp")
"""Table 1's rows, in its order."""


@dataclass(frozen=True)
class PaperTable:
    """Table 1 of Assran et al. 2019 and the workload behind it.

    Attributes:
        s_per_itr: algorithm -> nodes -> published seconds per iteration (wall-clock on the
            authors' cluster).
        top1: algorithm -> nodes -> published top-1 %.
        nodes: the node counts.
        message_bytes: bytes of one message (the flat fp32 ResNet-50 vector).
        iters_per_epoch: nodes -> iterations per epoch.
        line_rate_gbps, latency_s: the network.
        pure_compute_s: NVIDIA's pure compute per 256-image iteration on 8 V100 (a floor).
        source: where the numbers come from.
    """

    s_per_itr: dict[str, dict[int, float]]
    top1: dict[str, dict[int, float]]
    nodes: tuple[int, ...]
    message_bytes: int
    iters_per_epoch: dict[int, int]
    line_rate_gbps: float
    latency_s: float
    pure_compute_s: float
    source: str


@lru_cache(maxsize=4)
def load_paper_table(folder: Path | None = None) -> PaperTable:
    """Read ``paper.csv`` and ``workload.yaml`` of the paper's study folder."""
    folder = Path(folder) if folder is not None else study_dir(PAPER_STUDY)
    frame = pd.read_csv(folder / "paper.csv", comment="#")
    work = yaml.safe_load((folder / "workload.yaml").read_text())
    s_per_itr: dict[str, dict[int, float]] = {}
    top1: dict[str, dict[int, float]] = {}
    for row in frame.itertuples():
        s_per_itr.setdefault(row.algorithm, {})[int(row.nodes)] = float(row.s_per_itr)
        top1.setdefault(row.algorithm, {})[int(row.nodes)] = float(row.top1)
    nodes = tuple(int(n) for n in work["nodes"])
    per_node = int(work["images_per_node"])
    return PaperTable(
        s_per_itr=s_per_itr,
        top1=top1,
        nodes=nodes,
        message_bytes=int(work["parameters"]) * int(work["bytes_per_parameter"]),
        iters_per_epoch={n: math.ceil(int(work["train_images"]) / (per_node * n)) for n in nodes},
        line_rate_gbps=float(work["line_rate_gbps"]),
        latency_s=float(work["latency_s"]),
        pure_compute_s=float(work["pure_compute_s"]),
        source=str(frame["source"].iloc[0]) if "source" in frame else "Assran et al. 2019",
    )
