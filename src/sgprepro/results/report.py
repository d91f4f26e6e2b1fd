"""Write a study's report directory: tables, figures, provenance (the I/O around the pure parts).

`out_dir/` receives table.{md,csv,tex} (the paper's Table 1 layout, emulated s/itr),
table_extra.{md,csv,tex} (averaged-model top-1, wall-clock s/itr, consensus distance), runs.csv
(one row per run record, status included), figures as PNG and PDF, provenance.json and, when a
replay frame is given, timing_replay.{md,csv}.

The report is built in a temporary folder beside `out_dir` and renamed into place at the end:
`out_dir` is replaced as a whole, and any failure before that leaves it as it was. A source with
no run of the study is an error (:class:`NoRunsError`) that touches nothing.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from sgprepro.interrupt import JobInterrupted, signals_held
from sgprepro.results import plots
from sgprepro.results.agreement import (
    agreement,
    agreement_markdown,
    not_compared_markdown,
    read_reference,
    reference_frame,
)
from sgprepro.results.analysis import consensus_gap
from sgprepro.results.claims import claims_markdown, evaluate_claims, load_claims
from sgprepro.results.collect import CollectResult, collect_runs, load_curves
from sgprepro.results.layout import Layout, inferred_layout, load_layout
from sgprepro.results.table import (
    EXTRA_ROWS,
    changed_settings,
    comparison_caption,
    comparison_table,
    coverage,
    paper_table,
    run_counts,
    select_study,
    table_caption,
    to_csv,
    to_latex,
    to_markdown,
)
from sgprepro.results.wandb_source import SOURCE_PREFIX, WandbApi, load_wandb
from sgprepro.tracking import git_commit, package_versions

logger = logging.getLogger(__name__)

CALIBRATION_COLUMNS: tuple[str, ...] = ("used_for_calibration", "calibration")
"""Boolean column of a replay frame marking the cells the timing engine was fitted on."""
REPLAY_CAPTION = (
    "Timing replay at the paper's scale: EMULATED by the timing engine (a model of the paper's "
    "cluster and 10 GbE network), not measured. predicted/emulated = the engine's s/itr; published = "
    "Table 1 of Assran et al. 2019 (wall-clock on the authors' cluster)."
)


class NoRunsError(ValueError):
    """The source holds no run of the study: there is nothing to report (and nothing is written)."""


@dataclass(frozen=True)
class Report:
    """What `write_report` produced."""

    collected: CollectResult
    table: pd.DataFrame
    caption: str
    markdown: str
    files: tuple[Path, ...] = field(default_factory=tuple)


def replay_caption(replay: pd.DataFrame) -> str:
    """Caption of the timing-replay table; notes calibration rows when the column exists."""
    text = REPLAY_CAPTION
    flag = next((c for c in CALIBRATION_COLUMNS if c in replay.columns), None)
    if flag is not None:
        n_cal = int(replay[flag].astype(bool).sum())
        text += (
            f" {n_cal} of {len(replay)} rows have {flag}=True: their published values "
            "were used to fit the engine, so they are not independent checks."
        )
    return text


def format_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Floats to 4 significant digits, NaN as 'n/a', everything else as str (for text tables)."""

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return "n/a" if pd.isna(v) else f"{v:.4g}"
        return str(v)

    return df.map(fmt)


def provenance(
    collected: CollectResult, layout: Layout, source: str, captions: dict[str, str]
) -> dict[str, Any]:
    """The provenance record: code, versions, date, source and what became of every run."""
    runs = collected.runs
    sel = select_study(runs, layout) if len(runs) else runs
    cov = coverage(runs, layout) if len(runs) else pd.DataFrame(columns=["status"])
    cols = ["algorithm", "nodes", "network", "seed", "status", "config_hash", "run_dir"]
    return {
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(Path(__file__).parent),  # with -dirty for uncommitted changes
        "versions": {"python": platform.python_version(), **package_versions()},
        "source": source,
        "study": layout.study,
        "paper_source": layout.paper_source,
        "counts": run_counts(runs, layout) if len(runs) else {},
        "runs": sel[cols].astype(object).where(sel[cols].notna(), None).to_dict("records"),
        "missing_cells": cov[cov["status"] != "ok"].astype(object).to_dict("records"),
        "run_git_commits": sorted({str(c) for c in sel.get("git_commit", []) if pd.notna(c)}),
        # the CPU kernels that set the runs' bits (sgprepro/kernels.py)
        "run_cpu_kernels": sorted(
            {str(k) or "not recorded" for k in sel.get("cpu_kernels", []) if pd.notna(k)}
        ),
        "problems": [str(p) for p in collected.problems],
        "captions": captions,
    }


def save_figure(
    fig: Figure, out_dir: Path, name: str, formats: tuple[str, ...] = ("png", "pdf"), dpi: int = 150
) -> list[Path]:
    """Save `fig` as `<name>.<format>` for each format."""
    paths = [out_dir / f"{name}.{fmt}" for fmt in formats]
    for p in paths:
        fig.savefig(p, dpi=dpi)
    return paths


def load_source(
    runs_root: Path | None,
    source: str | None,
    api: WandbApi | None,
    wandb_cache: Path | None = None,
) -> tuple[CollectResult, pd.DataFrame, str]:
    """Collect runs and their ok runs' curves from a directory or `wandb:<entity>/<project>`
    (whose records artifacts are downloaded into `wandb_cache`)."""
    if source is not None and source.startswith(SOURCE_PREFIX):
        collected, curves = load_wandb(source, api, wandb_cache)
        label = source
    elif source is not None:
        raise ValueError(f"source={source!r}: only 'wandb:<entity>/<project>' is supported")
    elif runs_root is None:
        raise ValueError("give a runs directory (--runs) or a source (--source wandb:<e>/<p>)")
    else:
        collected = collect_runs(Path(runs_root))
        curves = load_curves(collected.ok["run_dir"])
        label = str(runs_root)
    ok_dirs = set(collected.ok["run_dir"]) if len(collected.runs) else set()
    curves = curves[curves["run_dir"].isin(ok_dirs)].reset_index(drop=True)
    return collected, curves, label


_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directory entries atomically (Linux renameat2); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    return fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0


REPORT_MARK = "provenance.json"
"""Every report folder holds this file; the CLI replaces no non-empty folder without it."""


def replace_dir(new: Path, target: Path) -> None:
    """Put folder `new` in place of `target` (which may not exist), as one rename where possible.

    With an old `target`, the two are exchanged atomically (renameat2), else the old one is
    renamed aside first; either way the old content is deleted only once the new one is in place.
    """
    if not target.exists():
        new.rename(target)
        return
    if not target.is_dir():
        raise NotADirectoryError(f"{target} is a file, not a report folder; nothing replaced")
    if _exchange(new, target):
        shutil.rmtree(new, ignore_errors=True)  # now the old content; the swap is done
        return
    aside = target.with_name(f".{target.name}.old-{os.getpid()}")
    target.rename(aside)
    try:
        new.rename(target)
    except OSError:
        aside.rename(target)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def write_report(
    runs_root: Path | None,
    out_dir: Path,
    study_dir: Path,
    replay: Any = None,
    *,
    gossip: pd.DataFrame | None = None,
    source: str | None = None,
    api: WandbApi | None = None,
    formats: tuple[str, ...] = ("png", "pdf"),
    dpi: int = 150,
    networks: tuple[str, ...] = (),
    wandb_cache: Path | None = None,
) -> Report:
    """Collect the runs and write the study's report directory.

    Args:
        runs_root: sweep root with the run directories (ignored when `source` is given).
        out_dir: replaced as a whole once every file is written (built beside it first).
        study_dir: `experiments/<study>/` holding layout.yaml (and the files it names); a
            study without one (``experiments/adhoc``) gets the layout of its runs
            (`inferred_layout`).
        replay: a `sgprepro.replay.Replay` of the paper-scale timing (EMULATED), rendered.
        gossip: `sgprepro.replay.gossip_map.speedups` frame: where gossip wins (EMULATED).
        source: "wandb:<entity>/<project>" to read W&B instead of `runs_root`.
        api: injectable `wandb.Api`-like object (tests pass a recorded fixture).
        formats, dpi: figure file formats and resolution.
        networks: network presets to re-emulate every run under (needs its traces: a local run
            directory, or a W&B run's records artifact; empty: skip).
        wandb_cache: where W&B runs' records artifacts are downloaded (None: the default,
            ``sgprepro.results.wandb_source.default_cache``).

    Returns:
        The collected runs, the main table, its caption and Markdown, and the files written.

    Raises:
        NoRunsError: the source has no run of the study; nothing was written.
    """
    study_dir = Path(study_dir)
    has_layout = (study_dir / "layout.yaml").is_file()
    layout = load_layout(study_dir) if has_layout else None
    study = layout.study if layout is not None else study_dir.name
    collected, curves, label = load_source(runs_root, source, api, wandb_cache)
    runs = collected.runs
    if not len(runs) or not (runs["study"] == study).any():
        studies = sorted({str(s) for s in runs["study"].dropna()}) if len(runs) else []
        others = f"; for the runs there, give --study {studies[0]}" if studies else ""
        raise NoRunsError(
            f"no run of study {study} in {label} ({len(runs)} run record(s)"
            + (f", of studies {studies}" if studies else "")
            + "): nothing to report; train first (make reproduce-table) or point --runs at the "
            f"study's sweep folder{others}"
        )
    if layout is None:  # a study without a layout: its runs say what the table holds
        layout = inferred_layout(study, runs)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.build-", dir=out_dir.parent))
    try:
        report = _write_files(
            build,
            out_dir,
            layout,
            collected,
            curves,
            label,
            replay=replay,
            gossip=gossip,
            formats=formats,
            dpi=dpi,
            networks=networks,
        )
        swapped = False
        try:
            with signals_held():  # a stop signal waits until the swap (and its clean-up) is done
                replace_dir(build, out_dir)
                swapped = True
        except JobInterrupted as exc:
            exc.report_replaced = swapped  # type: ignore[attr-defined]
            raise
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    return report


def _write_files(
    build: Path,
    out_dir: Path,
    layout: Layout,
    collected: CollectResult,
    curves: pd.DataFrame,
    label: str,
    *,
    replay: Any,
    gossip: pd.DataFrame | None,
    formats: tuple[str, ...],
    dpi: int,
    networks: tuple[str, ...],
) -> Report:
    """Write every file of the report into `build`; the Report names them as under `out_dir`."""
    runs = collected.runs
    files: list[Path] = []

    def write(name: str, text: str) -> None:
        (build / name).write_text(text)
        files.append(out_dir / name)

    captions = {}
    main = comparison_table(runs, layout)
    captions["table"] = comparison_caption(runs, layout)
    extra = paper_table(runs, layout, EXTRA_ROWS)
    captions["table_extra"] = table_caption(runs, layout, EXTRA_ROWS)
    for stem, df in (("table", main), ("table_extra", extra)):
        cap = captions[stem]
        write(f"{stem}.md", to_markdown(df, cap))
        write(f"{stem}.csv", to_csv(df))
        write(f"{stem}.tex", to_latex(df, cap, f"tab:{layout.study}:{stem}"))
    write("runs.csv", to_csv(runs))
    write("cells.csv", to_csv(reference_frame(runs, layout)))
    if layout.claims is not None:
        verdicts = evaluate_claims(runs, layout, load_claims(layout.claims))
        write("claims.md", claims_markdown(verdicts, layout))
    if layout.reference is not None and layout.reference.exists():
        changed = changed_settings(runs, layout)
        if changed:  # another experiment than the one the reference records
            write("agreement.md", not_compared_markdown(changed, layout, layout.reference))
        else:
            agree = agreement(runs, layout, read_reference(layout.reference))
            write("agreement.md", agreement_markdown(agree, layout, layout.reference))
            write("agreement.csv", to_csv(agree))

    figures: dict[str, Figure] = {}
    if replay is not None:
        from sgprepro.replay.render import format_replay

        write("timing_replay.md", format_replay(replay, "markdown") + "\n")
        write("timing_replay.csv", format_replay(replay, "csv"))
        figures["replay_emulated_vs_published"] = plots.replay_figure(replay.table)
    if gossip is not None:
        write("where_gossip_wins.csv", to_csv(gossip))
        write("where_gossip_wins.md", gossip_markdown(gossip))
        figures["where_gossip_wins"] = plots.gossip_map(gossip)

    # runs with their traces at hand: local folders, or W&B records artifacts downloaded
    replayable = runs[runs["run_dir"].map(lambda d: (Path(str(d)) / "run.json").is_file())]
    if networks and not replayable.empty:
        from sgprepro.results.networks import emulate_networks, networks_caption, networks_table

        long = emulate_networks(replayable, networks)
        cap = networks_caption(long, networks)
        captions["timing_networks"] = cap
        write("timing_networks.md", to_markdown(networks_table(long, layout, networks), cap))
        write("timing_networks.csv", to_csv(long))

    gap = consensus_gap(runs, layout)
    write("consensus_gap.csv", to_csv(gap))
    figures.update(
        {
            "speedup_vs_nodes": plots.speedup_vs_nodes(runs, layout),
            "top1_vs_s_per_itr_emulated": plots.accuracy_vs_time(runs, layout, "emulated"),
            "s_per_itr_vs_nodes_emulated": plots.time_vs_nodes(runs, layout, "emulated"),
            "s_per_itr_vs_nodes_wall": plots.time_vs_nodes(runs, layout, "wall"),
            "val_top1_vs_emulated_time": plots.accuracy_curves(curves, layout, "emulated"),
            "consensus_vs_iteration": plots.consensus_curves(curves, layout),
            "consensus_vs_accuracy_gap": plots.consensus_vs_gap(gap, layout),
        }
    )
    for name, fig in figures.items():
        files.extend(out_dir / p.name for p in save_figure(fig, build, name, formats, dpi))

    prov = provenance(collected, layout, label, captions)
    write(REPORT_MARK, json.dumps(prov, indent=2, default=str) + "\n")
    md = to_markdown(main, captions["table"])
    return Report(
        collected=collected, table=main, caption=captions["table"], markdown=md, files=tuple(files)
    )


def gossip_markdown(frame: pd.DataFrame) -> str:
    """The where-gossip-wins grids as Markdown, one per algorithm."""
    from sgprepro.replay.gossip_map import paper_speedups, speedup_grid

    n = int(frame.nodes.iloc[0])
    at_paper = paper_speedups(frame)
    paper = frame[frame.paper].iloc[0]
    parts = [
        f"# Where gossip wins: EMULATED speed-up over AllReduce at {n} nodes",
        "",
        "Rows: one-way latency / compute; columns: transfer time of one full message / compute "
        "(each relative to a node's compute per iteration); the paper-era programs with the "
        "calibrated CPU passes. The paper's 10 GbE point is latency "
        f"{paper.latency_over_compute:.2g}, transfer {paper.transfer_over_compute:.2g}: "
        + ", ".join(f"{a} {v:.2f}x" for a, v in at_paper.items())
        + ".",
    ]
    for algo in dict.fromkeys(frame.algorithm):
        grid = speedup_grid(frame, algo).map(lambda v: f"{v:.2f}")
        grid.index = [f"latency {v:g}" for v in grid.index]
        grid.columns = [f"transfer {v:g}" for v in grid.columns]
        parts += ["", f"## {algo}", "", to_markdown(grid.reset_index(names="")).strip()]
    return "\n".join(parts) + "\n"
