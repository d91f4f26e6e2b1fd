# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Table 1 of Assran et al. 2019: analysis of our runs
#
# Loads the run records of the study `table1_scaled` through `sgprepro.results` and shows what
# `make reproduce-table` reports: the main table (top-1 mean +- std over seeds, the gap to
# AllReduce and the speed-up over it beside the paper's), the verdict on each of the paper's
# claims, the figures, AD-PSGD's two populations of ranks and its staleness, and one analysis the
# paper lacks: the final consensus distance against the accuracy gap to AllReduce.
#
# Inputs come from environment variables, so the same notebook runs on a real sweep and on the
# test fixtures:
#
# - `SGPREPRO_RUNS`: the sweep root (default `multirun/table1_scaled`);
# - `SGPREPRO_STUDY`: the study directory (default `experiments/table1_scaled`).
#
# Relative paths are taken from the repository root. s/itr is EMULATED
# (`time/emulated_s_per_itr`, the timing engine under the run's network) unless a label says
# wall-clock (`time/wall_s_per_itr`).

# %%
# %matplotlib inline
import os
from pathlib import Path

from IPython.display import Markdown, display

from sgprepro.results import (
    EXTRA_ROWS,
    MAIN_ROWS,
    collect_runs,
    consensus_gap,
    load_curves,
    load_layout,
    paper_table,
    plots,
    run_counts,
    table_caption,
    to_markdown,
)
from sgprepro.results.claims import claims_markdown, evaluate_claims, load_claims
from sgprepro.results.table import comparison_caption, comparison_table


def repo_root(start: Path) -> Path:
    """The first directory at or above `start` holding pyproject.toml."""
    for d in (start, *start.parents):
        if (d / "pyproject.toml").exists():
            return d
    return start


ROOT = repo_root(Path.cwd().resolve())
RUNS = ROOT / os.environ.get("SGPREPRO_RUNS", "multirun/table1_scaled")
STUDY = ROOT / os.environ.get("SGPREPRO_STUDY", "experiments/table1_scaled")
print(f"runs: {RUNS}\nstudy: {STUDY}")

# %% [markdown]
# ## Runs and problems
# Every record is listed with its status; only "ok" runs enter the table. Problems (truncated
# lines, missing `done` markers, conflicting config hashes) are listed, never hidden.

# %%
layout = load_layout(STUDY)
collected = collect_runs(RUNS)
runs = collected.runs
display(runs[["algorithm", "nodes", "network", "seed", "status", "config_hash"]])
for problem in collected.problems:
    print(problem)
run_counts(runs, layout)

# %% [markdown]
# ## The main table: top-1, gap to AllReduce and speed-up, beside the paper's
# Speed-ups are ratios of EMULATED s/itr under the study's condition (the paper's regime), so
# they compare with the paper's wall-clock ratios; seconds of the two clocks are never set side
# by side.

# %%
display(Markdown(to_markdown(comparison_table(runs, layout), comparison_caption(runs, layout))))

# %% [markdown]
# ## The paper's claims
# Each claim, how this study reads it (`experiments/<study>/claims.yaml`), and the verdict with
# the numbers and seed spread behind it.

# %%
if layout.claims is not None:
    verdicts = evaluate_claims(runs, layout, load_claims(layout.claims))
    display(Markdown(claims_markdown(verdicts, layout)))

# %% [markdown]
# ## The paper's layout: top-1 and s/itr per cell

# %%
table = paper_table(runs, layout, MAIN_ROWS)
display(Markdown(to_markdown(table, table_caption(runs, layout))))

# %% [markdown]
# ## What the paper lacks: averaged-model accuracy, wall-clock s/itr, consensus distance

# %%
display(Markdown(to_markdown(paper_table(runs, layout, EXTRA_ROWS),
                             table_caption(runs, layout, EXTRA_ROWS))))

# %% [markdown]
# ## Figures

# %%
plots.accuracy_vs_time(runs, layout, "emulated")

# %%
plots.time_vs_nodes(runs, layout, "emulated")

# %%
plots.speedup_vs_nodes(runs, layout)

# %%
curves = load_curves(collected.ok["run_dir"])
plots.accuracy_curves(curves, layout, "emulated")

# %%
plots.consensus_curves(curves, layout)

# %% [markdown]
# ## AD-PSGD: two populations of ranks, and the staleness of its gradients
# On the emulated clock the timing engine decides the interleaving: passive (even) ranks run at
# about compute speed, active (odd) ranks are throttled by their send-then-receive gossip, so
# passive ranks take more of the global gradient budget. Staleness counts the gossip-model
# versions between a gradient's read and its application.

# %%
cols = ["algorithm", "nodes", "seed", "adpsgd/staleness_mean", "time/emulated_s_per_itr"]
asyn = runs[[c for c in cols if c in runs.columns]]
if "adpsgd/staleness_mean" in asyn.columns:
    display(asyn.dropna(subset=["adpsgd/staleness_mean"]).sort_values(["nodes", "seed"]))

# %% [markdown]
# ## Consensus distance vs the accuracy gap to AllReduce
# Per node count: how far the nodes' models are from their average at the end of training, and
# how many top-1 points (node mean) the method trails AllReduce SGD by. If gossip error drives the
# paper's accuracy loss at 16-32 nodes, the gap should grow with the consensus distance.

# %%
gap = consensus_gap(runs, layout)
display(gap.dropna(subset=["gap_top1"]))
both = gap[(gap["algorithm"] != layout.baseline)].dropna(subset=["consensus", "gap_top1"])
if len(both) >= 3:
    corr = both[["consensus", "gap_top1"]].corr(method="spearman").iloc[0, 1]
    print(f"Spearman correlation over {len(both)} cells, consensus vs top-1 gap: {corr:.2f}")
else:
    print(f"{len(both)} cell(s) with both a method and its baseline: too few for a correlation")

# %%
plots.consensus_vs_gap(gap, layout)
