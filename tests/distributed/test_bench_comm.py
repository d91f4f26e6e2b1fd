"""`make bench-comm` runs: every case on real gloo groups, with the bytes theory predicts."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.dist]


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_comm", REPO / "benchmarks" / "bench_comm.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_every_case_runs_and_sends_what_theory_says() -> None:
    bench = _bench()
    # 10 measured steps: on the real clock AD-PSGD's gossip loop runs at the OS's pace, and a
    # window of 3 steps held no completed round in 2 of 25 tries on a loaded 2-core machine (none
    # of 25 with 10)
    args = argparse.Namespace(model="mlp", batch=8, warmup=1, steps=10, job_timeout=120.0)
    params, elem = bench.warm_parent(args.model, args.batch)
    rows = [bench.measure(case, 4, args, params, elem) for case in bench.CASES]
    failed = [(r.label, r.error) for r in rows if r.error]
    assert not failed, failed
    assert [r.label for r in rows if not r.exact] == []
    silent = [r.label for r in rows if r.label != "local SGD (no comm)" and not r.sent > 0]
    assert silent == []
