"""Collect run records (docs/records.md) into one DataFrame row per run.

The reading is split in two: thin readers turn a run directory (or a W&B run, see
`sgprepro.results.wandb_source`) into a `RunRecord`, and the pure `assemble` turns records into
the runs frame, deciding each run's status. Nothing here raises on a bad record: every problem is
reported as a `Problem` and the run is excluded from the table cells unless its status is "ok".

Statuses:
    ok          the run finished (`done` marker, summary status "ok") and is used in its cell.
    incomplete  no `done` marker and no `error.txt`: still running, or killed. Counted as missing.
    failed      `error.txt` present, or the summary's status is not "ok". Counted as missing.
    invalid     `done` present but `run.json`/`summary.json` unreadable or lacking a cell key, or a
                `trace_r*.jsonl` with a bad line (named by file:line) or a missing rank: its
                timing cannot be replayed.
    conflict    finished, but its `config_hash` differs from the hash chosen for its cell.
    duplicate   finished, same cell, seed and hash as a more recent finished run.

Anything under an `attempts/` folder (earlier records a re-run moved aside) is never a run.

Conflict rule (deterministic): within a table cell (study, algorithm, nodes, network; seeds are
the nuisance variable and are excluded from `config_hash`), the hash shared by the most finished
runs wins; a tie goes to the hash whose latest `started_at` is most recent, then to the
lexicographically smaller hash. Every run with another hash gets status "conflict".
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sgprepro.kernels import kernels_label
from sgprepro.tracking.records import read_jsonl as tracking_read_jsonl

logger = logging.getLogger(__name__)

CELL_KEYS: tuple[str, ...] = ("study", "algorithm", "nodes", "network", "seed")
"""Keys of `run.json["cell"]`: one table cell and one seed."""
GROUP_KEYS: tuple[str, ...] = ("study", "algorithm", "nodes", "network")
"""Keys of one table cell: runs sharing them differ only by seed and must share `config_hash`."""
STATUSES: tuple[str, ...] = ("ok", "incomplete", "failed", "invalid", "conflict", "duplicate")
BASE_COLUMNS: tuple[str, ...] = (
    *CELL_KEYS,
    "status",
    "config_hash",
    "run_id",
    "run_dir",
    "started_at",
    "git_commit",
    "overrides",
    "cpu_kernels",
    "ranks_logged",
    "bad_lines",
)
_METRICS_RE = re.compile(r"^metrics_r(\d+)\.jsonl$")
_TRACE_RE = re.compile(r"^trace_r(\d+)\.jsonl$")
ATTEMPTS = "attempts"


@dataclass(frozen=True)
class Problem:
    """One defect found in the records.

    Attributes:
        run_dir: the run directory (or `wandb:<entity>/<project>/<id>`).
        kind: one of "bad_jsonl_line", "bad_trace", "unreadable_file", "missing_file",
            "missing_key", "incomplete", "failed", "conflict", "duplicate", "no_rank_metrics".
        detail: what failed, with file:line where it applies.
    """

    run_dir: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.run_dir}: {self.detail}"


@dataclass(frozen=True)
class RunRecord:
    """What one run left behind, source-independent (local directory or W&B)."""

    run_dir: str
    run_json: Mapping[str, Any] | None
    summary: Mapping[str, Any] | None
    done: bool
    error: str | None = None
    ranks_logged: int | None = 0  # None: not available (W&B)
    bad_lines: int = 0
    problems: tuple[Problem, ...] = ()
    bad_trace: str | None = None  # why the traces cannot be replayed (file:line), if they cannot


@dataclass(frozen=True)
class CollectResult:
    """The runs frame and every problem met while building it.

    Attributes:
        runs: one row per run; columns `BASE_COLUMNS` then the summary's scalar metrics
            (e.g. `val/top1_node_mean`, `time/emulated_s_per_itr`).
        problems: defects, in a deterministic order.
    """

    runs: pd.DataFrame
    problems: tuple[Problem, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> pd.DataFrame:
        """Rows with status "ok": the only ones that enter table cells."""
        return self.runs[self.runs["status"] == "ok"].reset_index(drop=True)

    def counts(self) -> dict[str, int]:
        """Number of runs per status (every status present, zeros included)."""
        return status_counts(self.runs)


def status_counts(runs: pd.DataFrame) -> dict[str, int]:
    """Number of runs per status in `runs`, every status listed (zeros included)."""
    vc = runs["status"].value_counts() if len(runs) else pd.Series(dtype=int)
    return {s: int(vc.get(s, 0)) for s in STATUSES}


# ---------------------------------------------------------------------------------------------
# Readers (I/O)
# ---------------------------------------------------------------------------------------------


def _read_json(path: Path, problems: list[Problem], run_dir: str) -> dict[str, Any] | None:
    if not path.exists():
        problems.append(Problem(run_dir, "missing_file", f"{path.name} not found"))
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        problems.append(Problem(run_dir, "unreadable_file", f"{path.name}: {exc}"))
        return None
    if not isinstance(data, dict):
        problems.append(Problem(run_dir, "unreadable_file", f"{path.name}: not a JSON object"))
        return None
    return data


def read_jsonl(path: Path, problems: list[Problem] | None = None) -> list[dict[str, Any]]:
    """Read a JSONL file, skipping (and reporting) lines that are not JSON objects.

    Args:
        path: the file, e.g. `<run_dir>/metrics_r0.jsonl`.
        problems: appended with one "bad_jsonl_line" `Problem` naming `file:line` per bad line.

    Returns:
        The valid objects in file order.
    """

    def bad(lineno: int, reason: str) -> None:
        if problems is not None:
            problems.append(
                Problem(
                    str(path.parent), "bad_jsonl_line", f"{path.name}:{lineno}: {reason}; skipped"
                )
            )

    try:
        return tracking_read_jsonl(path, on_bad=bad)
    except (OSError, UnicodeDecodeError) as exc:
        if problems is not None:
            problems.append(Problem(str(path.parent), "unreadable_file", f"{path.name}: {exc}"))
        return []


def check_traces(run_dir: Path, nodes: Any) -> str | None:
    """Why the run's `trace_r*.jsonl` cannot be replayed (naming file and line), or None.

    A run without any trace file (W&B, hand-made fixtures) is not checked. Each line must be a
    JSON object with a numeric `compute_s`, and every rank 0..nodes-1 must have its file.
    """
    files = {int(m.group(1)): p for p in run_dir.iterdir() if (m := _TRACE_RE.match(p.name))}
    if not files:
        return None
    if isinstance(nodes, int) and sorted(files) != list(range(nodes)):
        missing = sorted(set(range(nodes)) - set(files))
        return f"trace_r*.jsonl of ranks {missing} missing (nodes={nodes})"
    for rank in sorted(files):
        path = files[rank]
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            return f"{path.name}: unreadable ({exc})"
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                return f"{path.name}:{lineno}: invalid JSON ({exc.msg})"
            if not isinstance(rec, dict) or not isinstance(rec.get("compute_s"), int | float):
                return f"{path.name}:{lineno}: not a trace record (no numeric compute_s)"
    return None


def read_run_dir(run_dir: Path) -> RunRecord:
    """Read one run directory into a `RunRecord` (never raises on bad content)."""
    rd = str(run_dir)
    problems: list[Problem] = []
    done = (run_dir / "done").exists()
    error_path = run_dir / "error.txt"
    error = None
    if error_path.exists():
        error = error_path.read_text(errors="replace").strip() or "(empty error.txt)"
    run_json = _read_json(run_dir / "run.json", problems, rd)
    summary = None
    if done or (run_dir / "summary.json").exists():
        summary = _read_json(run_dir / "summary.json", problems, rd)
    rank_files = sorted(
        (p for p in run_dir.iterdir() if _METRICS_RE.match(p.name)),
        key=lambda p: int(_METRICS_RE.match(p.name).group(1)),  # type: ignore[union-attr]
    )
    n_before = len(problems)
    for p in rank_files:
        read_jsonl(p, problems)
    bad = sum(1 for p in problems[n_before:] if p.kind == "bad_jsonl_line")
    bad_trace = None
    if done:
        cell = (run_json or {}).get("cell")
        bad_trace = check_traces(run_dir, cell.get("nodes") if isinstance(cell, dict) else None)
    return RunRecord(
        run_dir=rd,
        run_json=run_json,
        summary=summary,
        done=done,
        error=error,
        ranks_logged=len(rank_files),
        bad_lines=bad,
        problems=tuple(problems),
        bad_trace=bad_trace,
    )


def find_run_dirs(root: Path) -> list[Path]:
    """Every directory under `root` (at any depth) that holds a `run.json`, sorted by path;
    never one inside an `attempts/` folder (earlier records of a run, moved aside)."""
    root = Path(root)
    return sorted(
        p.parent for p in root.rglob("run.json") if ATTEMPTS not in p.parent.relative_to(root).parts
    )


def collect_runs(root: Path) -> CollectResult:
    """Collect every run under a sweep root (e.g. a Hydra multirun directory).

    Args:
        root: directory searched recursively for `run.json` files (`<root>/<job>/run.json`).

    Returns:
        The runs frame and the problems; see the module docstring for statuses.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"runs root={root} is not a directory; pass the sweep's output dir, e.g. "
            "--runs multirun/table1_scaled"
        )
    return assemble(read_run_dir(d) for d in find_run_dirs(root))


# ---------------------------------------------------------------------------------------------
# Assembly (pure)
# ---------------------------------------------------------------------------------------------


def _is_scalar(v: Any) -> bool:
    return isinstance(v, bool | int | float | str) or v is None


def _row(rec: RunRecord, problems: list[Problem]) -> dict[str, Any]:
    rj = rec.run_json or {}
    raw_cell = rj.get("cell")
    cell: Mapping[str, Any] = raw_cell if isinstance(raw_cell, Mapping) else {}
    row: dict[str, Any] = {k: cell.get(k) for k in CELL_KEYS}
    row.update(
        config_hash=rj.get("config_hash"),
        run_id=rj.get("run_id"),
        run_dir=rec.run_dir,
        started_at=rj.get("started_at"),
        git_commit=rj.get("git_commit"),
        overrides=str(rj.get("overrides") or ""),
        cpu_kernels=kernels_label(rj.get("cpu_kernels")),
        ranks_logged=rec.ranks_logged,
        bad_lines=rec.bad_lines,
    )
    summary = rec.summary or {}
    for k, v in summary.items():
        if k in ("status", "curve") or k in row:
            continue
        if _is_scalar(v):
            row[k] = v

    missing_keys = [k for k in CELL_KEYS if cell.get(k) is None]
    if rec.error is not None:
        status = "failed"
        problems.append(Problem(rec.run_dir, "failed", f"error.txt: {rec.error.splitlines()[0]}"))
    elif not rec.done:
        status = "incomplete"
        problems.append(Problem(rec.run_dir, "incomplete", "no `done` marker; excluded"))
    elif rec.run_json is None or rec.summary is None:
        status = "invalid"
    elif rec.bad_trace is not None:
        status = "invalid"
        problems.append(
            Problem(
                rec.run_dir,
                "bad_trace",
                f"{rec.bad_trace}; its timing cannot be replayed; excluded",
            )
        )
    elif missing_keys or rj.get("config_hash") is None:
        status = "invalid"
        keys = [f"cell.{k}" for k in missing_keys]
        if rj.get("config_hash") is None:
            keys.append("config_hash")
        problems.append(Problem(rec.run_dir, "missing_key", f"run.json lacks {', '.join(keys)}"))
    elif summary.get("status") != "ok":
        status = "failed"
        problems.append(
            Problem(rec.run_dir, "failed", f"summary.json status={summary.get('status')!r}")
        )
    else:
        status = "ok"
        if rec.ranks_logged == 0:
            problems.append(Problem(rec.run_dir, "no_rank_metrics", "no metrics_r*.jsonl files"))
    row["status"] = status
    return row


def _sort_key(v: Any) -> tuple[int, Any]:
    return (1, "") if v is None or (isinstance(v, float) and math.isnan(v)) else (0, str(v))


def resolve_conflicts(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[Problem]]:
    """Apply the conflict and duplicate rules of the module docstring to rows with status "ok".

    Args:
        runs: frame with `GROUP_KEYS`, "seed", "config_hash", "started_at", "status", "run_dir".

    Returns:
        A copy with losing rows set to "conflict" or "duplicate", and one `Problem` per such row.
    """
    runs = runs.copy()
    problems: list[Problem] = []
    ok = runs[runs["status"] == "ok"]
    for key, grp in ok.groupby(list(GROUP_KEYS), dropna=False, sort=True):
        by_hash = grp.groupby("config_hash", sort=True)
        if by_hash.ngroups > 1:

            def rank(h: str, by_hash=by_hash) -> tuple[int, str]:
                started = by_hash.get_group(h)["started_at"].dropna().astype(str)
                return len(started.index), (started.max() if len(started) else "")

            # max() keeps the first maximum: ties on (count, latest start) go to the smaller hash
            winner = max(sorted(str(h) for h in by_hash.groups), key=rank)
            cell = dict(zip(GROUP_KEYS, key, strict=True))
            for idx, r in grp[grp["config_hash"] != winner].iterrows():
                runs.loc[idx, "status"] = "conflict"
                problems.append(
                    Problem(
                        r["run_dir"],
                        "conflict",
                        f"cell {cell} has config_hash={winner} in the majority (or most recent) "
                        f"but this run has config_hash={r['config_hash']}; excluded",
                    )
                )
    ok = runs[runs["status"] == "ok"]
    for _, grp in ok.groupby([*GROUP_KEYS, "seed"], dropna=False, sort=True):
        if len(grp) < 2:
            continue
        order = sorted(
            grp.index,
            key=lambda i: (_sort_key(grp.loc[i, "started_at"]), str(grp.loc[i, "run_dir"])),
        )
        keep = order[-1]
        for idx in order[:-1]:
            runs.loc[idx, "status"] = "duplicate"
            problems.append(
                Problem(
                    runs.loc[idx, "run_dir"],
                    "duplicate",
                    "same cell, seed and config_hash as the more recent "
                    f"{runs.loc[keep, 'run_dir']}; excluded",
                )
            )
    return runs, problems


def assemble(records: Iterable[RunRecord]) -> CollectResult:
    """Turn run records into the runs frame (pure; the order of `records` does not matter)."""
    records = sorted(records, key=lambda r: r.run_dir)
    problems: list[Problem] = []
    rows = []
    for rec in records:
        problems.extend(rec.problems)
        rows.append(_row(rec, problems))
    metric_cols = sorted({k for r in rows for k in r} - set(BASE_COLUMNS))
    runs = pd.DataFrame(rows, columns=[*BASE_COLUMNS, *metric_cols])
    if len(runs):
        runs, conflict_problems = resolve_conflicts(runs)
        problems.extend(conflict_problems)
        runs = runs.sort_values(
            ["study", "algorithm", "nodes", "network", "seed", "run_dir"],
            key=lambda s: s.map(_sort_key),
            kind="stable",
        )
        runs = runs.reset_index(drop=True)
    for p in problems:
        logger.warning("%s", p)
    return CollectResult(runs=runs, problems=tuple(problems))


# ---------------------------------------------------------------------------------------------
# Curves
# ---------------------------------------------------------------------------------------------

CURVE_COLUMNS: tuple[str, ...] = (
    "step",
    "epoch",
    "val/top1_node_mean",
    "val/top1_avg_model",
    "consensus/distance",
    "time/emulated_s",
    "time/wall_s",
)


def curves_frame(
    items: Iterable[tuple[str, Mapping[str, Any], Iterable[Mapping[str, Any]]]],
) -> pd.DataFrame:
    """Build the long curve frame from `(run_dir, cell, curve points)` triples (pure).

    Returns:
        One row per eval point: `run_dir`, the `CELL_KEYS`, then `CURVE_COLUMNS`.
    """
    rows = []
    for run_dir, cell, points in items:
        for pt in points:
            row = {"run_dir": run_dir, **{k: cell.get(k) for k in CELL_KEYS}}
            row.update({k: pt.get(k) for k in CURVE_COLUMNS})
            rows.append(row)
    return pd.DataFrame(rows, columns=["run_dir", *CELL_KEYS, *CURVE_COLUMNS])


def load_curves(run_dirs: Iterable[Path | str]) -> pd.DataFrame:
    """Read `summary.json["curve"]` of each run directory into one long frame.

    Runs whose `run.json` or `summary.json` cannot be read are skipped with a warning; pass only
    the "ok" runs (`CollectResult.ok["run_dir"]`) to plot what the table uses.
    """
    items = []
    for d in run_dirs:
        d = Path(d)
        problems: list[Problem] = []
        rj = _read_json(d / "run.json", problems, str(d))
        sm = _read_json(d / "summary.json", problems, str(d))
        if rj is None or sm is None:
            for p in problems:
                logger.warning("curve skipped: %s", p)
            continue
        items.append((str(d), rj.get("cell") or {}, sm.get("curve") or []))
    return curves_frame(items)
