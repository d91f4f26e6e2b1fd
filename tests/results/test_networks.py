"""The same runs under every network preset: the pure table, and the re-emulation of a real run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sgprepro.results.layout import load_layout
from sgprepro.results.networks import networks_table

STUDY = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "study"


def test_networks_table_shows_speedups_over_allreduce():
    layout = load_layout(STUDY)
    long = pd.DataFrame(
        [
            {"algorithm": "allreduce", "nodes": 4, "seed": 0, "network": "wan", "s_per_itr": 0.4},
            {"algorithm": "allreduce", "nodes": 4, "seed": 1, "network": "wan", "s_per_itr": 0.2},
            {"algorithm": "sgp", "nodes": 4, "seed": 0, "network": "wan", "s_per_itr": 0.1},
        ]
    )
    table = networks_table(long, layout, ["wan"])
    row = table[(table["algorithm"] == "SGP (1 peer)") & (table["network"] == "wan")].iloc[0]
    assert row["4 nodes"] == "0.1000 (3.00x)"  # baseline is the mean over seeds, 0.3
    base = table[(table["algorithm"] == "AllReduce SGD") & (table["network"] == "wan")].iloc[0]
    assert base["4 nodes"] == "0.3000"
    assert base["8 nodes"] == "missing"


@pytest.mark.dist
@pytest.mark.slow
def test_reemulation_reproduces_the_run_and_slower_networks_cost_more(compose_cfg, tmp_path):
    from sgprepro.app import run_job
    from sgprepro.config import validate
    from sgprepro.emulation import emulate_under
    from sgprepro.network import load_preset
    from sgprepro.train.emulate import main as emulate_cli

    cfg = validate(compose_cfg(["debug=tiny", "nodes=4", "algorithm=allreduce"]))
    result = run_job(cfg, tmp_path)
    assert result["status"] == "ok"
    own = emulate_under(tmp_path, load_preset(cfg.network.name)).timing.s_per_itr
    assert own == result["summary"]["time/emulated_s_per_itr"]  # identical, not approximately
    ideal = emulate_under(tmp_path, load_preset("ideal")).timing.s_per_itr
    wan = emulate_under(tmp_path, load_preset("wan")).timing.s_per_itr
    assert ideal <= own < wan
    assert emulate_cli([str(tmp_path)]) == 0
