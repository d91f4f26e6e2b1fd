"""End of a run (rank 0, after every rank's records are complete): emulated time and summary."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from sgprepro.algorithms import algorithm_class
from sgprepro.config import Config
from sgprepro.emulation import emulate_run, estimate_s_per_itr
from sgprepro.regime import paper_calibration, ratios
from sgprepro.tracking import read_jsonl, write_json_atomic
from sgprepro.tracking.wandb_run import mean_axes
from sgprepro.train.checkpoint import LOSS_WINDOW

__all__ = ["LOSS_WINDOW", "estimate_s_per_itr", "finalize_run"]


def _per_rank(run_dir: Path, prefix: str, n: int) -> list[list[dict]]:
    return [read_jsonl(run_dir / f"{prefix}_r{r}.jsonl") for r in range(n)]


def _curve(
    metrics: list[list[dict]],
    ends: tuple[np.ndarray, ...],
    walls: list[np.ndarray],
    ipe: int,
    synchronous: bool,
) -> list[dict[str, Any]]:
    """The evaluation points of the run with their emulated and wall-clock times (mean over
    ranks of each rank's time at that evaluation)."""

    def at(arr: np.ndarray, step: int) -> float:
        return float(arr[min(max(step, 1), len(arr)) - 1]) if len(arr) else float("nan")

    evals = [[m for m in ms if m["kind"] == "eval"] for ms in metrics]
    glob = [m for m in metrics[0] if m["kind"] == "global"]
    curve = []
    if synchronous:
        for g in glob:
            point = {k: v for k, v in g.items() if k != "kind"}
            point["time/emulated_s"] = float(np.mean([at(e, g["step"]) for e in ends]))
            point["time/wall_s"] = float(np.mean([at(w, g["step"]) for w in walls]))
            curve.append(point)
        return curve
    # no mid-run collectives: the k-th evaluation of every rank, each at its own step
    for k in range(min(len(e) for e in evals)):
        rows = [e[k] for e in evals]
        curve.append(
            {
                "step": round(float(np.mean([r["step"] for r in rows]))),
                "epoch": float(np.mean([r["step"] for r in rows])) / ipe,
                "val/top1_node_mean": float(np.mean([r["val/top1"] for r in rows])),
                "time/emulated_s": float(
                    np.mean([at(e, r["step"]) for e, r in zip(ends, rows, strict=True)])
                ),
                "time/wall_s": float(
                    np.mean([at(w, r["step"]) for w, r in zip(walls, rows, strict=True)])
                ),
            }
        )
    if glob and curve:  # the final, collective evaluation
        curve[-1].update({k: v for k, v in glob[-1].items() if k not in ("kind", "step", "epoch")})
    return curve


def _async_stats(finals: list[dict]) -> dict[str, Any]:
    """AD-PSGD: gradients and gossip rounds per rank, and the staleness distribution."""
    if not finals or "gradients" not in finals[0]:
        return {}
    stale = np.concatenate([np.asarray(f.get("staleness", []), dtype=int) for f in finals])
    values, counts = np.unique(stale, return_counts=True)
    return {
        "adpsgd/clock": finals[0].get("clock"),
        "adpsgd/gradients_ranks": [int(f["gradients"]) for f in finals],
        "adpsgd/gossip_rounds_ranks": [int(f["gossip_rounds"]) for f in finals],
        # [staleness, count] pairs in increasing staleness (JSON object keys would sort as text)
        "adpsgd/staleness_histogram": [
            [int(v), int(c)] for v, c in zip(values, counts, strict=True)
        ],
        "adpsgd/staleness_mean": float(stale.mean()) if stale.size else None,
    }


def _digests(finals: list[dict]) -> dict[str, Any]:
    """Every rank's final-model SHA-256 and one digest of them all (the run's final bits)."""
    ranks = [str(f["params/sha256"]) for f in finals if f.get("params/sha256")]
    if not ranks or len(ranks) != len(finals):
        return {}
    return {
        "params/sha256": hashlib.sha256("".join(ranks).encode()).hexdigest(),
        "params/sha256_ranks": ranks,
    }


def finalize_run(
    run_dir: Path, cfg: Config, iters_per_epoch: int, total_steps: int, param_bytes: int
) -> tuple[dict[str, Any], tuple[list[float], list[float]]]:
    """Write ``timing.json`` and ``summary.json`` (docs/records.md); returns the summary and
    the run's (emulated, wall-clock) time axes for its W&B history."""
    n = cfg.nodes
    emu = emulate_run(run_dir, cfg, iters_per_epoch, param_bytes)
    timing = emu.timing
    write_json_atomic(
        run_dir / "timing.json",
        {
            **timing.to_dict(),
            "network": cfg.network.name,
            "network_resolved": emu.network.to_dict(),
            "compute_s_resolved_against": emu.compute_s,
            "program": timing.spec.describe(),
        },
    )
    traces = _per_rank(run_dir, "trace", n)
    metrics = _per_rank(run_dir, "metrics", n)
    walls = [np.cumsum([t["wall_s"] for t in tr]) for tr in traces]
    synchronous = algorithm_class(cfg.algorithm.name).synchronous
    curve = _curve(metrics, timing.ends, walls, iters_per_epoch, synchronous)
    glob = [m for m in metrics[0] if m["kind"] == "global"]
    final = glob[-1]
    finals = [ms[-1] for ms in metrics if ms and ms[-1]["kind"] == "final"]
    evals = [[m for m in ms if m["kind"] == "eval"] for ms in metrics]
    compute = [np.mean([t["compute_s"] for t in tr]) for tr in traces]
    comm = [np.mean([t["comm_s"] for t in tr]) for tr in traces]
    wall = [np.mean([t["wall_s"] for t in tr]) for tr in traces]
    sent = [sum(b for t in tr for _, b in t["sent"]) / max(len(tr), 1) for tr in traces]
    summary: dict[str, Any] = {
        "status": "ok",
        "iterations": total_steps,
        "iterations_per_epoch": iters_per_epoch,
        "iterations_ranks": [len(tr) for tr in traces],
        "val/top1_node_mean": final["val/top1_node_mean"],
        "val/top1_node_min": final["val/top1_node_min"],
        "val/top1_node_max": final["val/top1_node_max"],
        "val/top1_nodes": [e[-1]["val/top1"] for e in evals],
        "val/top1_avg_model": final["val/top1_avg_model"],
        "consensus/distance": final["consensus/distance"],
        "pushsum/weight_min": final["pushsum/weight_min"],
        "pushsum/weight_max": final["pushsum/weight_max"],
        "train/loss": float(np.mean([f["train/loss_last"] for f in finals])) if finals else None,
        "time/emulated_s_per_itr": timing.s_per_itr,
        "time/emulated_s_per_itr_ranks": [float(v) for v in timing.s_per_itr_ranks],
        "time/wall_s_per_itr": float(np.mean(wall)),
        "time/wall_s_per_itr_ranks": [float(v) for v in wall],
        "time/compute_s_per_itr": float(np.mean(compute)),
        "time/comm_s_per_itr": float(np.mean(comm)),
        "comm/bytes_sent_per_itr": float(np.mean(sent)),
        "comm/message_bytes": param_bytes,
        **_async_stats(finals),
        **_digests(finals),
        "curve": curve,
    }
    if cfg.network.relative:
        summary["network/message_over_compute"] = ratios(cfg.network).message
    if cfg.network.ratios_from == "paper_replay":
        # emulated seconds on the paper's compute clock: x (paper compute / this run's compute)
        scale = paper_calibration().compute_s / emu.compute_s
        summary["time/paper_equiv_s_per_itr"] = timing.s_per_itr * scale
    write_json_atomic(run_dir / "summary.json", summary)
    return summary, mean_axes(timing.ends, walls)
