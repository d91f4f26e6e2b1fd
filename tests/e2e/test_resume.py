"""Checkpoints: a run that crashed resumes from every rank's checkpoint and ends exactly where an
uninterrupted run ends."""

from __future__ import annotations

import json

import pytest
import torch

from sgprepro.app import run_job
from sgprepro.config import validate
from sgprepro.tracking import DONE, read_jsonl

pytestmark = [pytest.mark.dist, pytest.mark.slow]

BASE = [
    "debug=tiny",
    "nodes=4",
    "train.max_steps=12",
    "data.train_split=0.8",  # 1600 samples: 13 iterations per epoch at 4 nodes x 32
    "train.checkpoint_every_epochs=0.25",  # every 3 of the 13 iterations per epoch
    "logger.wandb_mode=disabled",
]


@pytest.mark.parametrize("algorithm", ["sgp", "osgp"])
def test_crashed_run_resumes_to_the_uninterrupted_result(compose_cfg, tmp_path, algorithm):
    ref_cfg = validate(compose_cfg([*BASE, f"algorithm={algorithm}"]))
    ref = run_job(ref_cfg, tmp_path / "ref")
    assert ref["status"] == "ok"

    out = tmp_path / "crashed"
    crash_cfg = validate(
        compose_cfg([*BASE, f"algorithm={algorithm}", "train.inject_fault=crash@2:10"])
    )
    failed = run_job(crash_cfg, out)
    assert failed["status"] == "failed"
    assert failed["rank"] == 2
    assert not (out / DONE).exists()
    assert all(torch.load(out / f"ckpt_r{r}.pt", weights_only=False)["step"] == 9 for r in range(4))

    resumed = run_job(ref_cfg, out)  # same config hash: resumes instead of starting over
    assert resumed["status"] == "ok"
    assert (out / DONE).exists()
    assert list((out / "attempts").glob("*/error.txt")), "the failure's record is kept"
    for r in range(4):  # the last checkpoints (step 9) are identical
        a = torch.load(out / f"ckpt_r{r}.pt", weights_only=False)["model"]
        b = torch.load(tmp_path / "ref" / f"ckpt_r{r}.pt", weights_only=False)["model"]
        assert all(torch.equal(a[k], b[k]) for k in a)
        steps = [rec["step"] for rec in read_jsonl(out / f"trace_r{r}.jsonl")]
        assert steps == list(range(12)), "one trace line per iteration, none repeated"
    # the end of training matches too (OSGP mixed its in-flight messages in at every
    # checkpoint in both runs, so it is deterministic as well)
    got = json.loads((out / "summary.json").read_text())
    want = ref["summary"]
    assert got["val/top1_nodes"] == want["val/top1_nodes"]
    assert got["consensus/distance"] == pytest.approx(want["consensus/distance"], rel=1e-9)
