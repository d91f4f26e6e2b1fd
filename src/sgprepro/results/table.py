"""The paper-layout table: measured (mean over seeds) beside published, and its writers.

Pure functions on the runs frame of `sgprepro.results.collect`. Only rows with status "ok" enter a
cell; a cell with no such row shows "missing", and a cell with fewer seeds than the study ran shows
"(n=k of m)", never a silent average over fewer runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from sgprepro.results.collect import STATUSES
from sgprepro.results.layout import Layout
from sgprepro.schema import result_neutral

MISSING = "missing"
NOT_PUBLISHED = "n/a"


@dataclass(frozen=True)
class RowSpec:
    """One quantity of the table.

    Attributes:
        metric: summary key averaged over seeds.
        label: row label; says emulated or wall-clock for times.
        paper_column: column of paper.csv holding the published value, or None.
        decimals: printed decimals.
    """

    metric: str
    label: str
    paper_column: str | None
    decimals: int


ROWS: dict[str, RowSpec] = {
    "top1": RowSpec("val/top1_node_mean", "top-1 % (node mean)", "top1", 2),
    "s_per_itr": RowSpec("time/emulated_s_per_itr", "s/itr (emulated)", "s_per_itr", 4),
    "paper_s_per_itr": RowSpec(
        "time/paper_equiv_s_per_itr", "s/itr (paper-equivalent, emulated)", "s_per_itr", 3
    ),
    "top1_avg_model": RowSpec("val/top1_avg_model", "top-1 % (averaged model)", None, 2),
    "wall_s_per_itr": RowSpec("time/wall_s_per_itr", "s/itr (wall-clock)", None, 4),
    "consensus": RowSpec("consensus/distance", "consensus distance", None, 4),
    "emulated_s_per_itr": RowSpec("time/emulated_s_per_itr", "s/itr (emulated)", None, 4),
    "paper_equiv_s_per_itr": RowSpec(
        "time/paper_equiv_s_per_itr", "s/itr (paper-equivalent, emulated)", None, 3
    ),
}
MAIN_ROWS: tuple[str, ...] = ("top1", "s_per_itr")
"""The paper's Table 1: node-mean top-1 and s/itr (on the layout's clock: :func:`resolve_rows`)."""
EXTRA_ROWS: tuple[str, ...] = (
    "emulated_s_per_itr",
    "paper_equiv_s_per_itr",
    "wall_s_per_itr",
    "top1_avg_model",
    "consensus",
)
"""Beside the main table: our emulated s/itr (and on the paper's compute clock), wall-clock
s/itr, what the paper lacks (averaged-model top-1, consensus distance); no published seconds."""

_MISSING_REASONS: tuple[str, ...] = ("conflict", "failed", "incomplete", "invalid", "duplicate")


def time_row(layout: Layout) -> str:
    """The key of `ROWS` holding the layout's s/itr: its clock (`Layout.time`)."""
    return "paper_s_per_itr" if layout.time == "paper_equivalent" else "s_per_itr"


def resolve_rows(rows: tuple[str, ...], layout: Layout) -> tuple[str, ...]:
    """`rows` with the table's s/itr ("s_per_itr") read on the layout's clock."""
    return tuple(time_row(layout) if r == "s_per_itr" else r for r in rows)


def select_study(runs: pd.DataFrame, layout: Layout) -> pd.DataFrame:
    """Rows of `runs` belonging to the layout's study (and network, when the layout names one).

    Raises:
        ValueError: the study's runs span several networks and the layout names none.
    """
    sel = runs[runs["study"] == layout.study]
    if layout.network is not None:
        sel = sel[sel["network"] == layout.network]
    networks = sorted(str(n) for n in sel["network"].dropna().unique())
    if len(networks) > 1:
        raise ValueError(
            f"study={layout.study} has runs on networks={networks}; one table holds one network "
            "condition: set `network:` in the study's layout.yaml"
        )
    return sel.reset_index(drop=True)


def expected_seeds(runs: pd.DataFrame, layout: Layout) -> list:
    """Seeds the study runs: the layout's, else every seed seen in any of its records."""
    if layout.seeds:
        return list(layout.seeds)
    return sorted(select_study(runs, layout)["seed"].dropna().unique().tolist())


def coverage(runs: pd.DataFrame, layout: Layout) -> pd.DataFrame:
    """One row per expected (algorithm, nodes, seed) of the layout and what became of it.

    Returns:
        Columns algorithm, nodes, seed, status: "ok", or why it is missing: the status of the
        records found for it ("conflict", "failed", "incomplete", "invalid") or "absent" when no
        record exists at all.
    """
    sel = select_study(runs, layout)
    seeds = expected_seeds(runs, layout) or [None]
    rows = []
    for alg, _ in layout.algorithms:
        for n in layout.nodes:
            here = sel[(sel["algorithm"] == alg) & (sel["nodes"] == n)]
            for seed in seeds:
                st = set(here.loc[here["seed"] == seed, "status"]) if seed is not None else set()
                if "ok" in st:
                    status = "ok"
                else:
                    status = next((r for r in _MISSING_REASONS if r in st), "absent")
                rows.append({"algorithm": alg, "nodes": n, "seed": seed, "status": status})
    return pd.DataFrame(rows, columns=["algorithm", "nodes", "seed", "status"])


def run_counts(runs: pd.DataFrame, layout: Layout) -> dict[str, int]:
    """Counts for captions and provenance.

    Returns:
        expected / present / missing seed-cells of the layout; `missing_<reason>` per reason; and
        the number of run records per status within the study (`runs_<status>`), including runs
        outside the layout's algorithms and nodes (`runs_outside_layout`).
    """
    cov = coverage(runs, layout)
    sel = select_study(runs, layout)
    out = {
        "expected": len(cov),
        "present": int((cov["status"] == "ok").sum()),
        "missing": int((cov["status"] != "ok").sum()),
    }
    for reason in (*_MISSING_REASONS, "absent"):
        out[f"missing_{reason}"] = int((cov["status"] == reason).sum())
    for status in STATUSES:
        out[f"runs_{status}"] = int((sel["status"] == status).sum())
    inside = sel["algorithm"].isin([a for a, _ in layout.algorithms]) & sel["nodes"].isin(
        layout.nodes
    )
    out["runs_outside_layout"] = int((~inside).sum())
    return out


def cell_stats(
    runs: pd.DataFrame, layout: Layout, rows: tuple[str, ...] = MAIN_ROWS
) -> pd.DataFrame:
    """Tidy per-cell statistics over seeds (status "ok" only).

    Returns:
        One row per (algorithm, nodes, row): algorithm, label, nodes, row, metric, mean, std
        (across seeds; NaN for one seed), n (seeds present), n_expected, paper (published value or
        NaN).
    """
    rows = resolve_rows(rows, layout)
    sel = select_study(runs, layout)
    ok = sel[sel["status"] == "ok"]
    n_expected = len(expected_seeds(runs, layout))
    out = []
    for alg, label in layout.algorithms:
        for n in layout.nodes:
            here = ok[(ok["algorithm"] == alg) & (ok["nodes"] == n)]
            for name in rows:
                spec = ROWS[name]
                vals = (
                    pd.to_numeric(here[spec.metric], errors="coerce").dropna()
                    if spec.metric in here.columns
                    else pd.Series(dtype=float)
                )
                paper = layout.paper_value(alg, n, spec.paper_column) if spec.paper_column else None
                out.append(
                    {
                        "algorithm": alg,
                        "label": label,
                        "nodes": n,
                        "row": name,
                        "metric": spec.metric,
                        "mean": float(vals.mean()) if len(vals) else math.nan,
                        "std": float(vals.std(ddof=1)) if len(vals) > 1 else math.nan,
                        "n": len(vals),
                        "n_expected": n_expected,
                        "paper": math.nan if paper is None else paper,
                    }
                )
    return pd.DataFrame(out)


def format_measured(mean: float, std: float, n: int, n_expected: int, decimals: int) -> str:
    """'76.23 ± 0.10 (n=3)', '76.23 (n=1 of 3)' or 'missing'."""
    if n == 0 or math.isnan(mean):
        return MISSING
    text = f"{mean:.{decimals}f}"
    if n > 1 and not math.isnan(std):
        text += f" ± {std:.{decimals}f}"
    return text + (f" (n={n})" if n >= n_expected else f" (n={n} of {n_expected})")


def paper_table(
    runs: pd.DataFrame, layout: Layout, rows: tuple[str, ...] = MAIN_ROWS
) -> pd.DataFrame:
    """The table in the paper's layout: rows per algorithm and quantity, node counts as columns.

    Args:
        runs: the runs frame (`CollectResult.runs`); statuses other than "ok" are not averaged.
        layout: the study layout (labels, node columns, published values).
        rows: keys of `ROWS`; `MAIN_ROWS` is the paper's Table 1, `EXTRA_ROWS` what it lacks.

    Returns:
        String frame: columns "algorithm", "quantity", then per node count N
        "N nodes: ours" (from this study's runs; each row's label says which clock) and, when
        any row has a published value, "N nodes: paper".
    """
    rows = resolve_rows(rows, layout)
    stats = cell_stats(runs, layout, rows)
    with_paper = any(ROWS[r].paper_column for r in rows)
    out = []
    for alg, label in layout.algorithms:
        for name in rows:
            spec = ROWS[name]
            rec = {"algorithm": label, "quantity": spec.label}
            for n in layout.nodes:
                s = stats[
                    (stats["algorithm"] == alg) & (stats["nodes"] == n) & (stats["row"] == name)
                ].iloc[0]
                rec[f"{n} nodes: ours"] = format_measured(
                    s["mean"], s["std"], int(s["n"]), int(s["n_expected"]), spec.decimals
                )
                if with_paper:
                    rec[f"{n} nodes: paper"] = (
                        NOT_PUBLISHED
                        if math.isnan(s["paper"])
                        else f"{s['paper']:.{spec.decimals}f}"
                    )
            out.append(rec)
    return pd.DataFrame(out)


def _runs_sentence(counts: dict[str, int]) -> str:
    reasons = [
        f"{counts[f'missing_{r}']} {r}"
        for r in ("incomplete", "failed", "conflict", "invalid", "duplicate", "absent")
        if counts[f"missing_{r}"]
    ]
    missing = f"{counts['missing']} missing" + (f" ({', '.join(reasons)})" if reasons else "")
    return (
        f"Runs: {counts['present']} of {counts['expected']} expected (algorithm, nodes, seed) "
        f"present, {missing}; run records: {counts['runs_failed']} failed, "
        f"{counts['runs_incomplete']} incomplete, {counts['runs_conflict']} conflicting "
        f"(config_hash differs within its cell), {counts['runs_duplicate']} duplicate, "
        f"{counts['runs_invalid']} invalid, all excluded."
    )


def table_caption(runs: pd.DataFrame, layout: Layout, rows: tuple[str, ...] = MAIN_ROWS) -> str:
    """Caption saying what was measured, emulated vs wall-clock, seeds and run counts."""
    rows = resolve_rows(rows, layout)
    sel = select_study(runs, layout)
    counts = run_counts(runs, layout)
    seeds = expected_seeds(runs, layout)
    networks = ", ".join(sorted(str(n) for n in sel["network"].dropna().unique())) or "none"
    parts = [
        (
            f"{layout.title}. Study {layout.study}, network condition {networks}. "
            f"Measured: mean over seeds {seeds} (± sample std across seeds; n = seeds present); "
            "workload and recipe as in each run's run.json."
        )
    ]
    for name in rows:
        spec = ROWS[name]
        parts.append(f"'{spec.label}' = {spec.metric}: {_DESCRIPTIONS[name]}")
    if any(ROWS[r].paper_column for r in rows):
        parts.append(
            f"Paper: {layout.paper_source}; its s/itr is wall-clock on the authors' 10 GbE cluster."
        )
    parts.append(_runs_sentence(counts))
    return " ".join(parts)


_DESCRIPTIONS = {
    "top1": "mean over nodes of each node's own model (the paper's statistic).",
    "s_per_itr": (
        "EMULATED seconds per iteration, the timing engine's replay of the run's traces under its "
        "network condition (not wall-clock)."
    ),
    "paper_s_per_itr": (
        "EMULATED seconds per iteration in units of the run's own compute per iteration, times "
        "the paper's (the replay's 4-node fit): the paper's clock, so machines agree and the "
        "paper's s/itr stands beside it; not measured, not wall-clock."
    ),
    "top1_avg_model": "top-1 of the average of the nodes' models (flatters gossip methods).",
    "wall_s_per_itr": (
        "WALL-CLOCK seconds per iteration measured on the machine that ran the job (not emulated)."
    ),
    "consensus": "mean over nodes of ||z_i - z_bar|| at the end of training.",
    "emulated_s_per_itr": (
        "EMULATED seconds per iteration under the run's condition (not wall-clock)."
    ),
    "paper_equiv_s_per_itr": (
        "EMULATED s/itr converted to the paper's compute clock (x the replay's compute per "
        "iteration / this run's): paper-equivalent seconds, not measured."
    ),
}


# ---------------------------------------------------------------------------------------------
# Writers (pure: frame -> text)
# ---------------------------------------------------------------------------------------------


def to_markdown(df: pd.DataFrame, caption: str | None = None) -> str:
    """GitHub pipe table, preceded by the caption as a paragraph."""

    def cell(v: object) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    cols = [cell(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    head = f"{caption}\n\n" if caption else ""
    return head + "\n".join(lines) + "\n"


_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "|": r"\textbar{}",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters (and '±')."""
    return "".join(_LATEX_ESCAPES.get(c, c) for c in str(text))


def to_latex(df: pd.DataFrame, caption: str, label: str) -> str:
    """A booktabs `table` environment with the caption (needs `\\usepackage{booktabs}`)."""
    align = "ll" + "r" * (len(df.columns) - 2) if len(df.columns) >= 2 else "l" * len(df.columns)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        rf"\caption{{{latex_escape(caption)}}}",
        rf"\label{{{label}}}",
        rf"\begin{{tabular}}{{{align}}}",
        r"\toprule",
        " & ".join(latex_escape(c) for c in df.columns) + r" \\",
        r"\midrule",
    ]
    lines += [
        " & ".join(latex_escape(v) for v in row) + r" \\" for row in df.itertuples(index=False)
    ]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def to_csv(df: pd.DataFrame) -> str:
    """CSV text (no index). Row labels carry 'emulated' / 'wall-clock'; the caption is in the
    Markdown and LaTeX files and in provenance.json."""
    return df.to_csv(index=False, lineterminator="\n")


# ---------------------------------------------------------------------------------------------
# The main table: top-1, gap and speed-up beside the paper's gap and speed-up
# ---------------------------------------------------------------------------------------------


def comparison_table(runs: pd.DataFrame, layout: Layout) -> pd.DataFrame:
    """The study's main table: per algorithm, top-1 (mean +- sample std, seeds), its gap to the
    baseline beside the paper's gap, and its speed-up over the baseline beside the paper's;
    node counts as columns. No absolute seconds: ours are emulated on a small workload, the
    paper's wall-clock on its cluster."""
    from sgprepro.results.compare import comparison

    cmp = comparison(runs, layout)
    n_expected = len(expected_seeds(runs, layout))
    base = layout.labels.get(layout.baseline, layout.baseline)
    out = []
    for alg, label in layout.algorithms:
        here = cmp[cmp.algorithm == alg].set_index("nodes")
        rows: dict[str, tuple[dict[int, Any], dict[int, Any]]] = {"top-1 %": ({}, {})}
        if alg != layout.baseline:
            rows[f"gap to {base}, points"] = ({}, {})
            rows[f"speed-up over {base}"] = ({}, {})
        for n in layout.nodes:
            r = here.loc[n]
            top, _ = rows["top-1 %"]
            top[n] = format_measured(r.top1, r.top1_std, int(r.n), n_expected, 2)
            rows["top-1 %"][1][n] = ""
            if alg == layout.baseline:
                continue
            gap, pgap = rows[f"gap to {base}, points"]
            gap[n] = (
                MISSING
                if math.isnan(r.gap)
                else f"{r.gap:+.2f}" + ("" if math.isnan(r.gap_se) else f" ± {r.gap_se:.2f}")
            )
            pgap[n] = NOT_PUBLISHED if math.isnan(r.paper_gap) else f"{r.paper_gap:+.2f}"
            sp, psp = rows[f"speed-up over {base}"]
            sp[n] = MISSING if math.isnan(r.speedup) else f"{r.speedup:.2f}x"
            psp[n] = NOT_PUBLISHED if math.isnan(r.paper_speedup) else f"{r.paper_speedup:.2f}x"
        for quantity, (ours, paper) in rows.items():
            rec = {"algorithm": label, "quantity": quantity}
            for n in layout.nodes:
                rec[f"{n} nodes"] = ours[n]
                rec[f"{n}: paper"] = paper[n]
            out.append(rec)
    return pd.DataFrame(out)


def _clock_note(layout: Layout) -> str:
    """How the caption names the paper-equivalent clock (empty on the raw emulated one)."""
    if layout.time != "paper_equivalent":
        return ""
    return " on the paper-equivalent clock (every algorithm at the paper's compute per iteration)"


def result_changing(overrides: str) -> str:
    """The part of a run's ``overrides`` (:func:`sgprepro.config.recorded_overrides`:
    ``key=value`` items joined by commas) that can change its result: items of
    :data:`~sgprepro.schema.RESULT_NEUTRAL_KEYS` (a checkpoint period, SLURM settings, ...)
    dropped. A comma inside brackets or quotes (``{0:2,30:1}``) stays with its item."""
    items: list[str] = []
    for part in overrides.split(",") if overrides else []:
        if items and _open(items[-1]):
            items[-1] += "," + part
        else:
            items.append(part)
    return ",".join(i for i in items if not result_neutral(i.split("=", 1)[0]))


def _open(item: str) -> bool:
    """Whether ``item`` ends inside brackets or quotes (its value goes on after a comma: outside
    them a comma in Hydra's overrides separates items)."""
    depth, quote = 0, ""
    for ch in item:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
    return depth > 0 or bool(quote)


def changed_settings(runs: pd.DataFrame, layout: Layout) -> dict[str, int]:
    """The settings the study's finished runs changed beyond its own (their overrides that can
    change a result, e.g. ``optim.epochs=36``) -> how many runs changed them; empty for the
    study as its sweep defines it."""
    sel = select_study(runs, layout)
    if "overrides" not in sel.columns:
        return {}
    done = sel[sel["status"] == "ok"]
    changed = done["overrides"].fillna("").astype(str).map(result_changing)
    return {str(k): int(v) for k, v in changed[changed != ""].value_counts().sort_index().items()}


def changed_settings_note(changed: dict[str, int]) -> str:
    """' These runs change the study's settings: optim.epochs=36 (9 runs).' or ''."""
    if not changed:
        return ""
    items = "; ".join(f"{k} ({v} run{'s' if v != 1 else ''})" for k, v in changed.items())
    return f" These runs change the study's settings: {items}."


def comparison_caption(runs: pd.DataFrame, layout: Layout) -> str:
    """What the numbers are, what is emulated, how many runs, and any settings the runs changed."""
    sel = select_study(runs, layout)
    networks = ", ".join(sorted(str(n) for n in sel["network"].dropna().unique())) or "none"
    counts = run_counts(runs, layout)
    base = layout.labels.get(layout.baseline, layout.baseline)
    return (
        f"{layout.title}: top-1 is the mean over seeds (± sample std, n seeds) of the mean over "
        f"nodes of each node's own model, and the gap is {base}'s top-1 minus the algorithm's "
        "(points; ± the standard error of the difference; positive = behind). "
        f"Speed-up is {base}'s s/itr over the algorithm's, both EMULATED under the {networks} "
        f"condition{_clock_note(layout)}, beside the paper's ratio of wall-clock times (Table 1 "
        "of Assran et al. "
        "2019, whose top-1 is on ImageNet and not comparable). "
        f"Runs: {counts['present']} of {counts['expected']} (algorithm, nodes, seed) present, "
        f"{counts['missing']} missing.{changed_settings_note(changed_settings(runs, layout))}"
    )
