"""The claims' verdicts and the agreement check, on hand-made runs (missing cells included)."""

from __future__ import annotations

import pandas as pd
from results_helpers import make_record

from sgprepro.results import assemble
from sgprepro.results.agreement import (
    agreement,
    agreement_markdown,
    not_compared_markdown,
    reference_frame,
)
from sgprepro.results.claims import FAILS, HOLDS, MISSING, NOISE, evaluate_claims

GAP = {"kind": "gap_at_most", "algorithm": "sgp", "nodes": [4, 8], "points": 0.5}
FASTER = {"kind": "faster", "algorithm": "sgp", "than": "allreduce"}
ORDER = {"kind": "accuracy_order", "nodes": 4, "order": ["allreduce", "sgp"]}


def _runs(
    cells: dict[tuple[str, int], list[tuple[float, float]]], overrides: str = ""
) -> pd.DataFrame:
    """(algorithm, nodes) -> [(top1, s/itr) per seed] as a runs frame."""
    recs = [
        make_record(f"{alg}-{n}-{seed}", alg, n, seed, top1=top1, s_itr=s, overrides=overrides)
        for (alg, n), seeds in cells.items()
        for seed, (top1, s) in enumerate(seeds)
    ]
    return assemble(recs).runs


def _verdicts(runs: pd.DataFrame, layout, *tests: dict) -> list[str]:
    claims = [{"id": f"c{i}", "claim": "", "reading": "", "test": t} for i, t in enumerate(tests)]
    return [v.verdict for v in evaluate_claims(runs, layout, claims)]


FULL = {
    ("allreduce", 4): [(70.0, 1.0), (70.2, 1.0)],
    ("allreduce", 8): [(70.0, 1.2), (70.2, 1.2)],
    ("sgp", 4): [(70.0, 0.4), (70.2, 0.4)],
    ("sgp", 8): [(70.1, 0.4), (70.1, 0.4)],
}


def test_claims_hold_fail_and_noise_on_complete_cells(layout):
    runs = _runs(FULL)
    assert _verdicts(runs, layout, GAP) == [HOLDS]  # gaps 0.00 and -0.05 points, seeds close
    behind = {**FULL, ("sgp", 8): [(60.0, 0.4), (60.2, 0.4)]}  # 10 points behind at 8 nodes
    assert _verdicts(_runs(behind), layout, GAP) == [FAILS]
    close = {**FULL, ("sgp", 4): [(69.0, 0.4), (70.6, 0.4)]}  # gap 0.3 +- 0.8: cannot tell
    assert _verdicts(_runs(close), layout, GAP) == [NOISE]
    assert _verdicts(runs, layout, ORDER) == [NOISE]  # equal means


def test_a_claim_whose_cells_have_no_runs_is_not_tested(layout):
    partial = {k: v for k, v in FULL.items() if k[1] == 4}  # the 8-node cells are missing
    verdicts = evaluate_claims(
        _runs(partial), layout, [{"id": "g", "claim": "", "reading": "", "test": GAP}]
    )
    assert verdicts[0].verdict == MISSING
    assert "8 nodes: missing" in verdicts[0].evidence
    # faster is tested at every node count of the layout: 16 and 32 have no runs
    assert _verdicts(_runs(FULL), layout, FASTER) == [MISSING]
    no_sgp = {k: v for k, v in FULL.items() if k[0] != "sgp"}
    assert _verdicts(_runs(no_sgp), layout, ORDER) == [MISSING]
    # a present cell that fails still fails the claim
    behind = {("allreduce", 4): FULL[("allreduce", 4)], ("sgp", 4): [(60.0, 0.4), (60.2, 0.4)]}
    assert _verdicts(_runs(behind), layout, GAP) == [FAILS]


def test_log_growth_fails_on_what_is_present_and_is_untested_only_otherwise(layout):
    growth = {"kind": "log_growth", "flat": ["sgp"], "r2": 0.9, "growth": 0.5, "flat_growth": 0.25}
    grows = {("allreduce", n): [(70.0, 1.0 + 0.5 * k)] * 2 for k, n in enumerate(layout.nodes)}
    flat = {("sgp", n): [(70.0, 0.4)] * 2 for n in layout.nodes}
    assert _verdicts(_runs({**grows, **flat}), layout, growth) == [HOLDS]
    no_sgp32 = {k: v for k, v in flat.items() if k[1] != 32}
    assert _verdicts(_runs({**grows, **no_sgp32}), layout, growth) == [MISSING]
    level = {("allreduce", n): [(70.0, 1.0)] * 2 for n in layout.nodes}  # AllReduce does not grow
    assert _verdicts(_runs({**level, **flat}), layout, growth) == [FAILS]
    assert _verdicts(_runs({**level, **no_sgp32}), layout, growth) == [FAILS]


def test_agreement_counts_only_cells_with_runs(layout, tmp_path):
    full = _runs(FULL)
    reference = reference_frame(full, layout)
    partial = _runs({k: v for k, v in FULL.items() if k[1] == 4})
    frame = agreement(partial, layout, reference)
    missing = frame[frame.agrees.isna()]
    assert set(zip(missing.algorithm, missing.nodes, strict=True)) >= {
        ("allreduce", 8),
        ("sgp", 8),
    }
    assert (missing.ours == "missing").all()
    present = frame[frame.agrees.notna()]
    assert len(present)
    assert present.agrees.astype(bool).all()  # the same runs as the reference's
    md = agreement_markdown(frame, layout, tmp_path / "reference.csv")
    assert f"**{len(present)} of {len(present)} cells agree.**" in md
    assert f"{len(missing)} row(s) have no finished run here" in md
    assert "nan" not in md.split("Every cell:")[0]
    # SGP at 8 nodes has runs, AllReduce none: SGP's speed-up there is missing, not a miss
    no_base8 = agreement(
        _runs({k: v for k, v in FULL.items() if k != ("allreduce", 8)}), layout, reference
    )
    row = no_base8[(no_base8.algorithm == "sgp") & (no_base8.nodes == 8)]
    assert row.set_index("quantity").agrees.to_dict() == {"top-1 %": True, "speed-up": None}
    # a cell that moved by 10 points does not agree
    moved = _runs({**FULL, ("sgp", 4): [(60.0, 0.4), (60.2, 0.4)]})
    f2 = agreement(moved, layout, reference)
    row = f2[(f2.algorithm == "sgp") & (f2.nodes == 4) & (f2.quantity == "top-1 %")]
    assert row.agrees.tolist() == [False]


def test_runs_that_change_the_studys_settings_are_named_and_not_compared(layout, tmp_path):
    """A budget variant (optim.epochs=36 on the study's sweep) is another experiment: the
    caption names the change and agreement.md compares no cell with the reference."""
    from sgprepro.results.table import changed_settings, comparison_caption, result_changing

    plain = _runs(FULL)
    assert (plain.overrides == "").all()
    assert changed_settings(plain, layout) == {}
    assert "change the study's settings" not in comparison_caption(plain, layout)

    variant = _runs(FULL, overrides="optim.epochs=36")
    assert changed_settings(variant, layout) == {"optim.epochs=36": 8}
    assert comparison_caption(variant, layout).endswith(
        "These runs change the study's settings: optim.epochs=36 (8 runs)."
    )
    # settings that cannot change a result (the config hash leaves them out) are not a variant
    neutral = _runs(FULL, overrides="data.root=/scratch,local=site,slurm.partition=gpu")
    assert changed_settings(neutral, layout) == {}
    mixed = _runs(FULL, overrides="slurm.mem_gb=8,+topology.peers_schedule={0:2,30:1}")
    assert changed_settings(mixed, layout) == {"+topology.peers_schedule={0:2,30:1}": 8}
    # items are split at commas outside brackets and quotes; a deletion is an item of its own
    assert result_changing("slurm.partition=gpu,~optim") == "~optim"
    assert result_changing("optim.milestones=[30,60],logger.entity='a,b=c'") == (
        "optim.milestones=[30,60]"
    )
    md = not_compared_markdown(changed_settings(variant, layout), layout, tmp_path / "ref.csv")
    assert "**Not compared.** These runs change the study's settings: optim.epochs=36" in md
    assert "agree" not in md
