"""End to end with real gloo workers: every record of docs/records.md, the offline W&B run read back
from its files (and the table rebuilt from its artifact), skip/archive on re-runs, and emulated
time that the timing engine reproduces from the traces."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from sgprepro.app import run_job
from sgprepro.config import Config, cell_of, config_hash, validate
from sgprepro.emulation import emulate_run
from sgprepro.tracking import DONE, read_jsonl
from sgprepro.tracking.wandb_offline import read_offline_run
from sgprepro.tracking.wandb_run import identity, time_axes
from tests.e2e.offline_api import OfflineApi

pytestmark = [pytest.mark.dist, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "records.md"
NODES = 4
STEPS = 8  # debug=tiny caps the run at train.max_steps=8


def _documented_summary_keys() -> tuple[set[str], set[str]]:
    """(top-level keys, curve keys) of summary.json as docs/records.md lists them."""
    text = DOCS.read_text()
    block = text.split("## `summary.json`", 1)[1].split("```", 2)[1]
    top, curve = block.split('"curve"', 1)
    # keys, not example values such as "status": "ok"
    return set(re.findall(r'(?<!: )"([\w/]+)"', top)) | {"curve"}, set(
        re.findall(r'"([\w/]+)"', curve)
    )


def _tiny(compose_cfg, *overrides: str) -> Config:
    return validate(compose_cfg(["debug=tiny", *overrides]))


@pytest.fixture(scope="module")
def wandb_env(tmp_path_factory):
    """W&B offline, every file of it under a temp dir: tests never sync."""
    home = tmp_path_factory.mktemp("wandb_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANDB_MODE", "offline")
        mp.setenv("WANDB_SILENT", "true")
        for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
            mp.setenv(var, str(home / var.lower()))
        yield home


@pytest.fixture(scope="module")
def sgp_run(
    compose_cfg,
    wandb_env,  # noqa: ARG001 - requested for the W&B environment it sets up
    tmp_path_factory,
) -> tuple[Config, Path, dict]:
    cfg = _tiny(compose_cfg, f"nodes={NODES}", "algorithm=sgp", "logger.wandb_mode=offline")
    out = tmp_path_factory.mktemp("sgp") / "run"
    result = run_job(cfg, out)
    assert result["status"] == "ok", result
    return cfg, out, result


def test_sgp_run_writes_every_documented_record(sgp_run) -> None:
    cfg, out, result = sgp_run
    run = json.loads((out / "run.json").read_text())
    for key in ("run_id", "cell", "config", "config_hash", "git_commit", "versions", "host"):
        assert key in run, key
    kernels = {"aten", "mkl_cbwr", "onednn_max_cpu_isa", "pinned", "torch_loaded_first"}
    assert set(run["cpu_kernels"]) == kernels  # the kernels that set its bits
    assert "started_at" in run
    assert run["cell"] == cell_of(cfg)
    assert set(run["cell"]) == {"study", "algorithm", "nodes", "network", "seed"}
    assert run["config_hash"] == config_hash(cfg)
    assert run["config"]["nodes"] == NODES
    assert run["config"]["train"]["inject_fault"] == ""
    assert run["versions"]["torch"]

    for rank in range(NODES):
        metrics = read_jsonl(out / f"metrics_r{rank}.jsonl")
        kinds = {m["kind"] for m in metrics}
        assert {"train", "eval", "final"} <= kinds, kinds
        train = next(m for m in metrics if m["kind"] == "train")
        assert {"step", "epoch", "train/loss", "lr"} <= set(train)
        ev = next(m for m in metrics if m["kind"] == "eval")
        assert {"step", "epoch", "val/top1", "val/loss", "pushsum/weight"} <= set(ev)
        trace = read_jsonl(out / f"trace_r{rank}.jsonl")
        assert [t["step"] for t in trace] == list(range(STEPS))
        for t in trace:
            assert set(t) == {"step", "compute_s", "wall_s", "comm_s", "sent"}
            assert t["compute_s"] > 0
            assert t["wall_s"] > 0
            assert t["sent"]
            assert all(0 <= peer < NODES and b > 0 for peer, b in t["sent"])

    timing = json.loads((out / "timing.json").read_text())
    assert timing["network"] == cfg.network.name
    assert timing["program"]["label"] == "sgp"

    summary = json.loads((out / "summary.json").read_text())
    top_keys, curve_keys = _documented_summary_keys()
    assert len(top_keys) > 10
    assert "time/emulated_s_per_itr" in top_keys
    assert top_keys <= set(summary), top_keys - set(summary)
    assert summary["status"] == "ok"
    assert summary["iterations"] == STEPS
    assert summary["curve"], "empty eval curve"
    for point in summary["curve"]:
        assert curve_keys <= set(point), curve_keys - set(point)
    assert summary["curve"][-1]["step"] == STEPS
    assert summary == result["summary"]
    assert len(summary["time/emulated_s_per_itr_ranks"]) == NODES
    assert (out / DONE).exists()
    assert not (out / "error.txt").exists()


def test_the_job_files_the_run_with_wandb_read_back_from_the_offline_files(sgp_run) -> None:
    """The W&B run, as `wandb sync` would upload it: the nested config, emulated and wall time in
    the history with top-1 plotted against emulated seconds, and every record as an artifact."""
    cfg, out, result = sgp_run
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, list((out / "wandb").iterdir())
    wb = read_offline_run(out)
    run_json = json.loads((out / "run.json").read_text())
    ident = identity(run_json)
    assert result["wandb"]["id"] == wb.run["id"] == ident["id"]
    assert wb.run["id"] == f"{cfg.study}-sgp-n{NODES}-{cfg.network.name}-s0-{config_hash(cfg)[:8]}"
    assert wb.run["job_type"] == "train"
    assert wb.run["resume"]
    assert wb.run["group"] == f"{cfg.study}/sgp-n{NODES}-{cfg.network.name}"  # seeds aggregate
    assert wb.run["name"] == f"sgp-n{NODES}-{cfg.network.name}-s0"
    # the nested config: every group under its own name, the cell keys under "cell"
    assert wb.config["algorithm"]["name"] == "sgp"
    assert wb.config["algorithm"]["tau"] == 1
    assert wb.config["network"]["name"] == cfg.network.name
    assert "latency_s" in wb.config["network"]
    assert wb.config["cell"] == run_json["cell"]
    assert wb.config["config_hash"] == config_hash(cfg)
    # the history: emulated and wall-clock time on every row, top-1 at each evaluation
    assert {"time/emulated_s", "time/wall_s", "val/top1_node_mean", "train/loss"} <= set(
        wb.history_keys
    )
    emulated = [row["time/emulated_s"] for row in wb.history]
    assert emulated == sorted(emulated)
    assert emulated[-1] > 0
    summary = json.loads((out / "summary.json").read_text())
    last = [row for row in wb.history if "val/top1_node_mean" in row][-1]
    assert last["val/top1_node_mean"] == summary["val/top1_node_mean"]
    assert last["time/emulated_s"] == summary["curve"][-1]["time/emulated_s"]
    x_axis = {m["name"]: m["step_metric"] for m in wb.metrics}
    assert x_axis["val/*"] == x_axis["train/*"] == "time/emulated_s"
    assert wb.summary["time/emulated_s_per_itr"] == summary["time/emulated_s_per_itr"]
    # the time axes the end of the run handed over are the ones its records give again
    emulated_at, wall_at = time_axes(out, summary)
    train_rows = [row for row in wb.history if "train/loss" in row and row["iteration"] > 0]
    assert train_rows
    for row in train_rows:
        assert row["time/emulated_s"] == emulated_at[row["iteration"] - 1], row
        assert row["time/wall_s"] == wall_at[row["iteration"] - 1], row
    # where it trained, from run.json (W&B's own probes would describe the filing process)
    for key in ("host", "platform", "python", "cpus", "cpu_kernels", "git_commit"):
        assert wb.config[key] == run_json[key], key
    # the records, as an artifact a W&B-only user can re-emulate from
    (art,) = wb.artifacts
    assert art["type"] == "run-records"
    expected = {"run.json", "summary.json", "timing.json", "done"}
    expected |= {f"{p}_r{r}.jsonl" for p in ("metrics", "trace") for r in range(NODES)}
    assert set(art["files"]) == expected
    for name, local in art["files"].items():
        assert Path(local).read_bytes() == (out / name).read_bytes(), name


def test_the_table_from_wandb_re_emulates_from_the_artifacts(sgp_run, tmp_path) -> None:
    """`make table SOURCE=wandb:...`: the records come back from the artifact and re-emulate
    under other networks to the same numbers as the local folder."""
    from sgprepro.results import write_report
    from sgprepro.results.collect import collect_runs
    from sgprepro.results.networks import emulate_networks
    from sgprepro.results.wandb_source import load_wandb

    cfg, out, _ = sgp_run
    api = OfflineApi([out])
    collected, curves = load_wandb("wandb:lab/sgprepro", api, cache=tmp_path / "cache")
    assert api.paths == ["lab/sgprepro"]
    assert collected.counts()["ok"] == 1
    (run_dir,) = collected.ok["run_dir"]
    assert Path(run_dir).parent == tmp_path / "cache"
    assert (Path(run_dir) / "done").exists()
    assert len(curves) == len(json.loads((out / "summary.json").read_text())["curve"])
    from_wandb = emulate_networks(collected.ok, ["wan", "eth_10g"])
    local = emulate_networks(collect_runs(out.parent).ok, ["wan", "eth_10g"])
    assert from_wandb["s_per_itr"].tolist() == local["s_per_itr"].tolist()
    assert (from_wandb["s_per_itr"] > 0).all()

    study = tmp_path / "study"
    study.mkdir()
    layout = (REPO / "tests" / "fixtures" / "study" / "layout.yaml").read_text()
    layout = layout.replace("study: table1_eth10g", f"study: {cfg.study}").replace(
        "../../../experiments", str(REPO / "experiments")
    )
    (study / "layout.yaml").write_text(layout)
    report = write_report(
        None,
        tmp_path / "report",
        study,
        source="wandb:lab/sgprepro",
        api=OfflineApi([out]),
        formats=(),
        networks=("wan",),
        wandb_cache=tmp_path / "cache2",
    )
    assert (tmp_path / "report" / "timing_networks.csv").exists()
    assert report.collected.counts()["ok"] == 1


def test_emulated_time_is_reproduced_from_the_traces(sgp_run) -> None:
    cfg, out, _ = sgp_run
    summary = json.loads((out / "summary.json").read_text())
    again = emulate_run(
        out, cfg, summary["iterations_per_epoch"], summary["comm/message_bytes"]
    ).timing
    assert again.s_per_itr == summary["time/emulated_s_per_itr"]
    assert [float(v) for v in again.s_per_itr_ranks] == summary["time/emulated_s_per_itr_ranks"]


def _snapshot(out: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(out)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


def test_identical_rerun_is_skipped_and_touches_nothing(sgp_run) -> None:
    cfg, out, _ = sgp_run
    before = _snapshot(out)
    result = run_job(cfg, out)
    assert result["status"] == "skipped"
    assert config_hash(cfg) in result["reason"]
    assert _snapshot(out) == before
    assert not (out / "attempts").exists()


def test_changed_config_after_a_failed_run_archives_and_reruns(compose_cfg, tmp_path) -> None:
    out = tmp_path / "run"
    failed = _tiny(compose_cfg, "nodes=2", "train.max_steps=2", "train.inject_fault=crash@1:0")
    assert run_job(failed, out)["status"] == "failed"
    old_run = (out / "run.json").read_text()
    old_error = (out / "error.txt").read_text()

    fixed = _tiny(compose_cfg, "nodes=2", "train.max_steps=3")  # a changed config
    assert config_hash(fixed) != config_hash(failed)
    result = run_job(fixed, out)
    assert result["status"] == "ok", result
    (attempt,) = list((out / "attempts").iterdir())
    assert (attempt / "run.json").read_text() == old_run
    assert (attempt / "error.txt").read_text() == old_error
    assert not (out / "error.txt").exists()
    assert json.loads((out / "run.json").read_text())["config_hash"] == config_hash(fixed)
    assert (out / DONE).exists()
    assert (out / "summary.json").exists()


@pytest.mark.parametrize("algorithm", ["allreduce", "dpsgd", "adpsgd", "osgp"])
def test_every_algorithm_finishes_with_a_sane_summary(compose_cfg, tmp_path, algorithm) -> None:
    cfg = _tiny(compose_cfg, f"nodes={NODES}", f"algorithm={algorithm}")
    result = run_job(cfg, tmp_path)
    assert result["status"] == "ok", result
    assert (tmp_path / DONE).exists()
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["status"] == "ok"
    for key in ("val/top1_node_mean", "val/top1_node_min", "val/top1_node_max"):
        assert 0.0 <= s[key] <= 100.0, (key, s[key])
    assert 0.0 <= s["val/top1_avg_model"] <= 100.0
    assert s["val/top1_node_min"] <= s["val/top1_node_mean"] <= s["val/top1_node_max"]
    assert s["time/emulated_s_per_itr"] > 0
    assert s["time/wall_s_per_itr"] > 0
    assert math.isfinite(s["train/loss"])
    assert s["consensus/distance"] >= 0
    assert s["curve"]
    assert all(0 <= p["val/top1_node_mean"] <= 100 for p in s["curve"])
    if algorithm == "allreduce":  # exact averaging: every node holds the same parameters
        assert s["consensus/distance"] < 1e-4  # (BatchNorm statistics stay local to each node)
