"""Read run records from W&B into the same runs frame as local directories.

A run filed by sgprepro (:mod:`sgprepro.tracking.wandb_run`) carries its records as an artifact
of type ``run-records``: :func:`load_wandb` downloads it into a cache folder and reads it like a
local run directory, so the report re-emulates those runs under other network conditions from
their traces exactly as it does for local runs. A run without that artifact is read from its
`config` (the cell keys under "cell", or at top level, and `config_hash`) and its `summary` (the
keys of summary.json): it enters the tables, but cannot be re-emulated. The Api is injectable so
tests use a recorded fixture and never touch the network: `collect_wandb("entity/project",
api=FakeApi(...))`.

State mapping: "finished" -> done; "failed"/"crashed"/"killed" -> failed (error text = the state);
anything else ("running", "pending", "preempting", ...) -> incomplete.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from sgprepro.results.collect import (
    CELL_KEYS,
    CollectResult,
    RunRecord,
    assemble,
    curves_frame,
    load_curves,
    read_run_dir,
)

log = logging.getLogger(__name__)
RECORDS_TYPE = "run-records"

SOURCE_PREFIX = "wandb:"
_FAILED_STATES = ("failed", "crashed", "killed")


class WandbRun(Protocol):
    """The attributes of `wandb.apis.public.Run` this module reads."""

    id: str
    name: str
    state: str
    config: Mapping[str, Any]
    summary: Any
    created_at: str


class WandbArtifact(Protocol):
    """The attributes of `wandb.Artifact` (as the public Api returns it) this module reads."""

    type: str
    name: str

    def download(self, root: str | None = None) -> str: ...


class WandbApi(Protocol):
    """The part of `wandb.Api` this module uses."""

    def runs(self, path: str) -> Iterable[WandbRun]: ...


def parse_source(source: str) -> str:
    """'wandb:<entity>/<project>' -> '<entity>/<project>'.

    Raises:
        ValueError: the source is not of that form.
    """
    path = source[len(SOURCE_PREFIX) :] if source.startswith(SOURCE_PREFIX) else ""
    if path.count("/") != 1 or not all(path.split("/")):
        raise ValueError(
            f"source={source!r} is not 'wandb:<entity>/<project>'; e.g. "
            "--source wandb:my-team/sgprepro"
        )
    return path


def _plain(value: Any) -> Any:
    """W&B raw config entries look like {"value": x, "desc": ...}; unwrap them."""
    if isinstance(value, Mapping) and "value" in value and set(value) <= {"value", "desc"}:
        return value["value"]
    return value


def _summary_dict(run: Any) -> dict[str, Any]:
    summary = getattr(run, "summary_metrics", None)
    if summary is None:
        summary = run.summary
    if hasattr(summary, "_json_dict"):
        summary = summary._json_dict
    return {str(k): v for k, v in dict(summary).items()}


def record_from_wandb(run: Any, path: str) -> RunRecord:
    """Convert one W&B run (real or recorded) into a `RunRecord` (pure)."""
    config = {str(k): _plain(v) for k, v in dict(run.config).items()}
    nested = config.get("cell")
    source: Mapping[str, Any] = nested if isinstance(nested, Mapping) else config
    cell = {k: source.get(k) for k in CELL_KEYS}
    for k in CELL_KEYS:  # W&B config may hold the algorithm/network as groups: keep their name
        group = cell[k]
        if isinstance(group, Mapping):
            cell[k] = group.get("name")
    run_dir = f"{SOURCE_PREFIX}{path}/{run.id}"
    summary = _summary_dict(run)
    state = str(run.state).lower()
    done = state == "finished"
    error = f"W&B state={state}" if state in _FAILED_STATES else None
    if done and "status" not in summary:
        summary = {"status": "ok", **summary}
    run_json = {
        "run_id": config.get("run_id") or run.id,
        "cell": cell,
        "config_hash": config.get("config_hash"),
        "overrides": config.get("overrides") or "",
        "cpu_kernels": config.get("cpu_kernels"),
        "git_commit": config.get("git_commit"),
        "started_at": str(run.created_at) if run.created_at is not None else None,
    }
    return RunRecord(
        run_dir=run_dir,
        run_json=run_json,
        summary=summary if done else None,
        done=done,
        error=error,
        ranks_logged=None,
    )


def records_from_wandb(runs: Iterable[Any], path: str) -> list[RunRecord]:
    """Convert W&B runs (real or recorded) into records."""
    return [record_from_wandb(r, path) for r in runs]


def collect_wandb(source: str, api: WandbApi | None = None) -> CollectResult:
    """Collect the runs of `wandb:<entity>/<project>` (or `<entity>/<project>`).

    Args:
        source: the project, with or without the "wandb:" prefix.
        api: a `wandb.Api`-like object; None creates `wandb.Api()` (needs network and login).
    """
    path = parse_source(source if source.startswith(SOURCE_PREFIX) else SOURCE_PREFIX + source)
    return assemble(records_from_wandb(_project_runs(path, api), path))


def _project_runs(path: str, api: WandbApi | None) -> list[Any]:
    """The runs of the W&B project ``path``, read through ``api`` (None: ``wandb.Api()``).

    Raises:
        ValueError: W&B could not be read (no login, no network, no such project), one line
            naming the source and a fix.
    """
    import wandb

    try:
        api = api if api is not None else wandb.Api()
        return list(api.runs(path))
    except (wandb.errors.Error, OSError, ValueError) as exc:
        why = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise ValueError(
            f"--source=wandb:{path}: W&B could not be read ({why}); log in (wandb login, or "
            "WANDB_API_KEY) where W&B is reachable, or report local records with --runs <dir>"
        ) from exc


def curves_from_wandb(runs: Iterable[Any], path: str) -> pd.DataFrame:
    """Curves from each W&B run's `summary["curve"]` (same frame as `load_curves`)."""
    items = []
    for r in runs:
        rec = record_from_wandb(r, path)
        curve = _summary_dict(r).get("curve") or []
        items.append((rec.run_dir, rec.run_json["cell"], curve))  # type: ignore[index]
    return curves_frame(items)


def default_cache(path: str) -> Path:
    """Where the records of `<entity>/<project>` are downloaded: ``$SGPREPRO_CACHE`` (default
    ``~/.cache/sgprepro``) ``/wandb/<entity>/<project>``."""
    root = Path(os.environ.get("SGPREPRO_CACHE", Path.home() / ".cache" / "sgprepro"))
    return root / "wandb" / path


def download_records(run: Any, cache: Path) -> Path | None:
    """Download a W&B run's ``run-records`` artifact into ``cache/<run id>/``; the folder, or None
    when the run has none (or it cannot be read: logged)."""
    try:
        arts = [a for a in run.logged_artifacts() if a.type == RECORDS_TYPE]
    except Exception as exc:  # noqa: BLE001 - a run without artifacts is read from its summary
        log.warning("W&B run %s: its artifacts cannot be listed (%s)", run.id, exc)
        return None
    if not arts:
        return None
    dest = Path(cache) / str(run.id)
    dest.mkdir(parents=True, exist_ok=True)
    arts[-1].download(root=str(dest))
    return dest if (dest / "run.json").is_file() else None


def load_wandb(
    source: str, api: WandbApi | None = None, cache: Path | None = None
) -> tuple[CollectResult, pd.DataFrame]:
    """The runs of `wandb:<entity>/<project>` and their curves: from each run's records artifact
    when it has one (a local folder under `cache`: re-emulable), else from its config and
    summary."""
    path = parse_source(source if source.startswith(SOURCE_PREFIX) else SOURCE_PREFIX + source)
    runs = _project_runs(path, api)
    cache = Path(cache) if cache is not None else default_cache(path)
    records, curve_items, local = [], [], []
    for run in runs:
        folder = download_records(run, cache)
        if folder is not None:
            records.append(read_run_dir(folder))
            local.append(folder)
            continue
        rec = record_from_wandb(run, path)
        records.append(rec)
        curve = _summary_dict(run).get("curve") or []
        curve_items.append((rec.run_dir, rec.run_json["cell"], curve))  # type: ignore[index]
    curves = pd.concat(
        [load_curves(local), curves_frame(curve_items)], ignore_index=True
    )  # fmt: skip
    return assemble(records), curves
