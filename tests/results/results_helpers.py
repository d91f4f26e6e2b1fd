"""Paths and record builders shared by the results tests."""

from __future__ import annotations

from pathlib import Path

from sgprepro.results.collect import RunRecord

REPO = Path(__file__).resolve().parents[2]
FIXTURE_RUNS = REPO / "tests" / "fixtures" / "runs" / "table1_small"
EXPECTED = REPO / "tests" / "fixtures" / "expected"
STUDY_DIR = REPO / "tests" / "fixtures" / "study"
WANDB_FIXTURE = REPO / "tests" / "fixtures" / "wandb" / "table1_small_runs.json"


def make_record(
    run_dir: str,
    alg: str = "sgp",
    nodes: int = 4,
    seed: int = 0,
    *,
    config_hash: str = "h1",
    started_at: str = "2026-01-01T00:00:00",
    done: bool = True,
    error: str | None = None,
    top1: float = 70.0,
    s_itr: float = 0.3,
    network: str = "eth_10g",
    status: str = "ok",
    overrides: str = "",
) -> RunRecord:
    """A hand-made record for unit tests of the assembly rules."""
    return RunRecord(
        run_dir=run_dir,
        run_json={
            "run_id": run_dir,
            "cell": {
                "study": "table1_eth10g",
                "algorithm": alg,
                "nodes": nodes,
                "network": network,
                "seed": seed,
            },
            "config_hash": config_hash,
            "started_at": started_at,
            **({"overrides": overrides} if overrides else {}),
        },
        summary={
            "status": status,
            "val/top1_node_mean": top1,
            "time/emulated_s_per_itr": s_itr,
            "time/wall_s_per_itr": s_itr / 10,
            "val/top1_avg_model": top1 + 0.5,
            "consensus/distance": 0.01,
            "curve": [],
        }
        if done
        else None,
        done=done,
        error=error,
        ranks_logged=nodes,
    )
