"""The table's clock (layout `time:`): speed-ups in units of each run's own compute."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from sgprepro.results.compare import comparison
from sgprepro.results.layout import load_layout
from sgprepro.results.table import paper_table

STUDY = Path(__file__).resolve().parents[2] / "experiments" / "table1_scaled"


def _runs() -> pd.DataFrame:
    """Two seeds of AllReduce and SGP at 4 nodes. AllReduce's seed 1 ran on a loaded machine: its
    measured compute, and so its emulated seconds, are 1.5 x those of seed 0; on the paper's clock
    (emulated / own compute x paper compute) both seeds are the same."""
    rows = []
    for alg, paper_s in (("allreduce", 0.70), ("sgp", 0.40)):
        for seed, load in ((0, 1.0), (1, 1.5)):
            compute = 0.002 * load if alg == "allreduce" else 0.002
            rows.append(
                {
                    "study": "table1_scaled",
                    "network": "paper_regime",
                    "algorithm": alg,
                    "nodes": 4,
                    "seed": seed,
                    "status": "ok",
                    "val/top1_node_mean": 70.0,
                    "time/emulated_s_per_itr": paper_s / 0.127 * compute,
                    "time/paper_equiv_s_per_itr": paper_s,
                }
            )
    return pd.DataFrame(rows)


def test_the_paper_clock_removes_each_run_s_compute_from_the_speed_up() -> None:
    layout = dataclasses.replace(load_layout(STUDY), nodes=(4,))
    assert layout.time == "paper_equivalent"
    sgp = comparison(_runs(), layout).set_index("algorithm").loc["sgp"]
    assert sgp.speedup == pytest.approx(0.70 / 0.40)
    assert (sgp.speedup_lo, sgp.speedup_hi) == pytest.approx((0.70 / 0.40, 0.70 / 0.40))
    emulated = comparison(_runs(), dataclasses.replace(layout, time="emulated"))
    sgp_e = emulated.set_index("algorithm").loc["sgp"]
    # on this machine's clock the loaded seed moves the ratio: 1.75 and 2.625
    assert (sgp_e.speedup_lo, sgp_e.speedup_hi) == pytest.approx((1.75, 2.625))
    table = paper_table(_runs(), layout)
    assert "s/itr (paper-equivalent, emulated)" in set(table["quantity"])
    assert "0.700 ± 0.000 (n=2 of 3)" in set(table["4 nodes: ours"])


def test_an_unknown_clock_is_refused_naming_the_key(tmp_path: Path) -> None:
    text = (STUDY / "layout.yaml").read_text().replace("time: paper_equivalent", "time: wallclock")
    paper = STUDY.parent / "table1_paper" / "paper.csv"
    (tmp_path / "layout.yaml").write_text(text.replace("../table1_paper/paper.csv", str(paper)))
    with pytest.raises(ValueError, match=r"time='wallclock' is not one of"):
        load_layout(tmp_path)
