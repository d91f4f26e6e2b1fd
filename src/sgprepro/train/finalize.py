"""End of a run (rank 0, after every rank's records are complete): emulated time and summary."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from sgprepro.config import (
    Config,
    build_topology,
    cell_of,
    config_dict,
    config_hash,
    peers_schedule,
)
from sgprepro.network import NetworkConfig
from sgprepro.timing import ProgramSpec, TimingResult, emulate_trace
from sgprepro.tracking import read_jsonl, write_json_atomic


def run_identity(cfg: Config) -> dict[str, Any]:
    """W&B name, group and tags, derived from the config (never hand-typed)."""
    cell = cell_of(cfg)
    return {
        "name": f"{cfg.algorithm.name}-n{cfg.nodes}-{cfg.network.name}-s{cfg.seed}",
        "group": f"{cfg.study}/{cfg.network.name}",
        "tags": [cfg.study, cfg.algorithm.name, f"nodes={cfg.nodes}", cfg.network.name],
        "config": {**config_dict(cfg), "cell": cell, "config_hash": config_hash(cfg), **cell},
    }


def program_spec(cfg: Config, iters_per_epoch: int, param_bytes: int) -> ProgramSpec:
    """The communication program the run executed, for the timing engine."""
    a = cfg.algorithm
    sched = peers_schedule(cfg)
    buckets = max(1, math.ceil(param_bytes / (a.bucket_mb * 2**20)))
    return ProgramSpec(
        algorithm=a.name,
        allreduce_mode=a.allreduce_mode,
        allreduce_algo=a.allreduce_algo,
        buckets=buckets,
        tau=a.tau,
        peers=lambda step: sched.peers_at(step / iters_per_epoch),
    )


def emulate_run(run_dir: Path, cfg: Config, iters_per_epoch: int, param_bytes: int) -> TimingResult:
    """Emulated timing of a recorded run: re-running this on the traces gives identical numbers."""
    spec = program_spec(cfg, iters_per_epoch, param_bytes)
    return emulate_trace(
        run_dir, spec, cfg.network, build_topology(cfg), message_bytes=param_bytes, seed=cfg.seed
    )


def estimate_s_per_itr(
    cfg: Config, iters_per_epoch: int, param_bytes: int, recent_compute_s: list[float]
) -> float:
    """A running estimate for the progress display: the timing engine with this rank's recent
    compute times on every rank (no stragglers). EMULATED; the run's figure is in summary.json."""
    import numpy as np

    from sgprepro.timing import simulate

    compute = np.tile(np.asarray(recent_compute_s, dtype=float), (cfg.nodes, 1))
    spec = program_spec(cfg, iters_per_epoch, param_bytes)
    return simulate(spec, compute, param_bytes, cfg.network, build_topology(cfg)).s_per_itr


def load_run_config(run_dir: Path) -> Config:
    """The validated Config a finished run ran with (from its run.json)."""
    from omegaconf import OmegaConf

    from sgprepro.config import _writable, to_config

    recorded = json.loads((Path(run_dir) / "run.json").read_text())["config"]
    sched = recorded["topology"]["peers_schedule"]  # JSON made its int keys strings
    recorded["topology"]["peers_schedule"] = {int(k): int(v) for k, v in sched.items()}
    return to_config(OmegaConf.merge(_writable(OmegaConf.structured(Config)), recorded))


def emulate_under(run_dir: Path, network: NetworkConfig) -> TimingResult:
    """Re-emulate a finished run under another network condition, from its recorded traces.

    Accuracy does not depend on the network under emulation, so one training run answers "how
    long per iteration on network X" for every X.
    """
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    cfg = dataclasses.replace(cfg, network=network)
    return emulate_run(run_dir, cfg, summary["iterations_per_epoch"], summary["comm/message_bytes"])


def _per_rank(run_dir: Path, prefix: str, n: int) -> list[list[dict]]:
    return [read_jsonl(run_dir / f"{prefix}_r{r}.jsonl") for r in range(n)]


def finalize_run(
    run_dir: Path, cfg: Config, iters_per_epoch: int, total_steps: int, param_bytes: int
) -> dict[str, Any]:
    """Write ``timing.json`` and ``summary.json`` (docs/records.md); returns the summary."""
    n = cfg.nodes
    timing = emulate_run(run_dir, cfg, iters_per_epoch, param_bytes)
    write_json_atomic(
        run_dir / "timing.json",
        {
            **timing.to_dict(),
            "message_bytes": param_bytes,
            "network": cfg.network.name,
            "program": {
                "algorithm": cfg.algorithm.name,
                "allreduce_mode": cfg.algorithm.allreduce_mode,
                "allreduce_algo": cfg.algorithm.allreduce_algo,
                "tau": cfg.algorithm.tau,
            },
        },
    )
    traces = _per_rank(run_dir, "trace", n)
    metrics = _per_rank(run_dir, "metrics", n)
    emu_end = timing.iter_end.mean(axis=0)  # mean over ranks of each iteration's end
    wall_end = np.mean(
        [np.cumsum([t["wall_s"] for t in tr][: timing.iter_end.shape[1]]) for tr in traces], axis=0
    )

    def at(arr: np.ndarray, step: int) -> float:
        return float(arr[min(max(step, 1), len(arr)) - 1])

    evals = [[m for m in ms if m["kind"] == "eval"] for ms in metrics]
    glob = [m for m in metrics[0] if m["kind"] == "global"]
    curve = []
    if cfg.algorithm.name == "adpsgd":  # no mid-run collectives: the k-th evaluation of every rank
        for k in range(min(len(e) for e in evals)):
            rows = [e[k] for e in evals]
            step = round(float(np.mean([r["step"] for r in rows])))
            curve.append(
                {
                    "step": step,
                    "epoch": step / iters_per_epoch,
                    "val/top1_node_mean": float(np.mean([r["val/top1"] for r in rows])),
                }
            )
        if glob:  # the final, collective evaluation
            curve[-1].update(
                {k: v for k, v in glob[-1].items() if k not in ("kind", "step", "epoch")}
            )
    else:
        curve = [{k: v for k, v in g.items() if k != "kind"} for g in glob]
    for point in curve:
        point["time/emulated_s"] = at(emu_end, point["step"])
        point["time/wall_s"] = at(wall_end, point["step"])
    final = glob[-1]
    finals = [ms[-1] for ms in metrics if ms and ms[-1]["kind"] == "final"]
    t_len = timing.iter_end.shape[1]
    compute = [np.mean([t["compute_s"] for t in tr]) for tr in traces]
    comm = [np.mean([t["comm_s"] for t in tr]) for tr in traces]
    wall = [np.mean([t["wall_s"] for t in tr]) for tr in traces]
    sent = [sum(b for t in tr for _, b in t["sent"]) / max(len(tr), 1) for tr in traces]
    summary = {
        "status": "ok",
        "iterations": total_steps,
        "iterations_per_epoch": iters_per_epoch,
        "iterations_replayed": t_len,
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
        "curve": curve,
    }
    write_json_atomic(run_dir / "summary.json", summary)
    return summary
