"""Results: run records -> runs frame -> paper-layout tables, figures and a report.

Public API:
    collect_runs(root) -> CollectResult        local sweep directory
    collect_wandb(source, api=None)            the same frame from W&B
    load_curves(run_dirs) -> DataFrame         summary.json curves
    load_layout(study_dir) -> Layout           layout.yaml + paper.csv
    paper_table(runs, layout, rows) -> DataFrame
    write_report(runs_root, out_dir, study_dir, replay_df=None, *, source=None, api=None)
"""

from sgprepro.results.analysis import consensus_gap
from sgprepro.results.collect import (
    CELL_KEYS,
    STATUSES,
    CollectResult,
    Problem,
    RunRecord,
    assemble,
    collect_runs,
    load_curves,
)
from sgprepro.results.layout import Layout, load_layout
from sgprepro.results.table import (
    EXTRA_ROWS,
    MAIN_ROWS,
    cell_stats,
    coverage,
    paper_table,
    run_counts,
    table_caption,
    to_csv,
    to_latex,
    to_markdown,
)
from sgprepro.results.wandb_source import collect_wandb, record_from_wandb

__all__ = [
    "CELL_KEYS",
    "EXTRA_ROWS",
    "MAIN_ROWS",
    "STATUSES",
    "CollectResult",
    "Layout",
    "Problem",
    "RunRecord",
    "assemble",
    "cell_stats",
    "collect_runs",
    "collect_wandb",
    "consensus_gap",
    "coverage",
    "load_curves",
    "load_layout",
    "paper_table",
    "record_from_wandb",
    "run_counts",
    "table_caption",
    "to_csv",
    "to_latex",
    "to_markdown",
]


def write_report(*args, **kwargs):
    from sgprepro.results.report import write_report as _write_report

    return _write_report(*args, **kwargs)
