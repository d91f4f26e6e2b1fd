"""A finished run filed with Weights & Biases, from its local records (docs/records.md).

The job process (rank 0 under a launcher) calls :func:`log_run` once the run is done: the
workers never talk to W&B. What the W&B run holds:

- **config**: the resolved config, nested as in ``run.json`` (``algorithm.tau``,
  ``network.latency_s``, ...), plus ``cell`` (study, algorithm, nodes, network, seed),
  ``config_hash``, ``overrides``, ``git_commit`` and ``versions``.
- **history**: one row per iteration that rank 0 logged or evaluated, with ``iteration``,
  ``epoch``, ``time/emulated_s`` (the timing engine's replay of the run's traces: EMULATED) and
  ``time/wall_s`` (measured on the machine that ran it), and ``train/*``, ``val/*``,
  ``consensus/*``, ``pushsum/*``. ``define_metric`` makes ``time/emulated_s`` the x-axis of
  every metric, so W&B charts show top-1 against emulated seconds.
- **summary**: ``summary.json`` (its ``curve`` included).
- **artifact** ``records-<id>`` of type ``run-records``: run.json, summary.json, timing.json,
  every rank's metrics and traces and the ``done`` marker; ``make table
  SOURCE=wandb:<entity>/<project>`` downloads them and re-emulates the runs from them.
- **identity**: the id is derived from the cell, the seed and the config hash (a re-run of the
  same cell and seed resumes the same W&B run); the name is the cell with its overrides; the
  group is the cell without the seed, so seeds aggregate; ``job_type="train"``.

Offline unless the user is logged in (or sets ``logger.wandb_mode=online``); the W&B files live
in ``<run_dir>/wandb/``, and ``wandb sync <run_dir>/wandb/offline-run-*`` uploads them later.
Any W&B failure is logged and ignored: the local records are the source of truth.
"""

from __future__ import annotations

import hashlib
import json
import logging
import netrc
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from sgprepro.schema import LoggerConfig
from sgprepro.tracking.records import DONE, read_jsonl

log = logging.getLogger(__name__)

ARTIFACT_TYPE = "run-records"
JOB_TYPE = "train"
X_AXIS = "time/emulated_s"
_METRIC_GLOBS = ("train/*", "val/*", "consensus/*", "pushsum/*", "lr", "epoch", "iteration")
_ID_MAX = 64
_ID_BAD = re.compile(r"[^A-Za-z0-9._-]+")


def _logged_in() -> bool:
    """Whether W&B has an API key: ``WANDB_API_KEY``, or a password for the W&B host in the
    netrc file (``NETRC``, else ``~/.netrc``), as ``wandb login`` writes it."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        rc = netrc.netrc(os.environ.get("NETRC", str(Path.home() / ".netrc")))
    except (OSError, netrc.NetrcParseError):
        return False
    url = urlsplit(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai"))
    host = url.netloc or url.path.split("/")[0]  # "api.wandb.ai/" given without a scheme
    entry = rc.authenticators(host)
    return entry is not None and bool(entry[2])


WandbMode = Literal["online", "offline", "disabled"]
_MODES: tuple[WandbMode, ...] = ("online", "offline", "disabled")


def _as_mode(value: str | None) -> WandbMode | None:
    return next((m for m in _MODES if m == value), None)


def resolve_wandb_mode(mode: str) -> WandbMode:
    """``auto`` -> ``WANDB_MODE`` if set, else online when logged in, else offline."""
    if mode != "auto":
        known = _as_mode(mode)
        if known is None:
            raise ValueError(
                f"logger.wandb_mode={mode!r}: must be auto, online, offline or disabled"
            )
        return known
    env = os.environ.get("WANDB_MODE")
    env = "offline" if env == "dryrun" else env  # W&B's older name for offline
    return _as_mode(env) or ("online" if _logged_in() else "offline")


# -- identity (pure) -------------------------------------------------------------------------


def _suffix(overrides: str) -> str:
    return f",{overrides}" if overrides else ""


def run_id(run_json: dict[str, Any]) -> str:
    """Deterministic W&B id of a run: its cell, seed and config hash (at most 64 characters of
    ``[A-Za-z0-9._-]``; a longer one keeps a hash of the whole)."""
    c = run_json["cell"]
    raw = (
        f"{c['study']}-{c['algorithm']}-n{c['nodes']}-{c['network']}-s{c['seed']}-"
        f"{str(run_json['config_hash'])[:8]}"
    )
    clean = _ID_BAD.sub("_", raw)
    if len(clean) <= _ID_MAX:
        return clean
    digest = hashlib.sha256(raw.encode()).hexdigest()[:12]
    return f"{clean[: _ID_MAX - 13]}-{digest}"


def identity(run_json: dict[str, Any]) -> dict[str, Any]:
    """id, name, group, tags and job_type of a run, derived from its run.json (never typed)."""
    c = run_json["cell"]
    suffix = _suffix(str(run_json.get("overrides") or ""))
    cell = f"{c['algorithm']}-n{c['nodes']}-{c['network']}"
    return {
        "id": run_id(run_json),
        "name": f"{cell}-s{c['seed']}{suffix}",
        "group": f"{c['study']}/{cell}{suffix}",
        "tags": [c["study"], c["algorithm"], f"nodes={c['nodes']}", c["network"]],
        "job_type": JOB_TYPE,
    }


def wandb_config(run_json: dict[str, Any]) -> dict[str, Any]:
    """The W&B config: the resolved config nested as recorded, and the cell under ``cell``."""
    return {
        **run_json["config"],
        "cell": dict(run_json["cell"]),
        "config_hash": run_json.get("config_hash"),
        "overrides": run_json.get("overrides") or "",
        "run_id": run_json.get("run_id"),
        "git_commit": run_json.get("git_commit"),
        "versions": run_json.get("versions"),
        # where it trained (W&B's own system metadata would describe the filing process)
        "host": run_json.get("host"),
        "platform": run_json.get("platform"),
        "python": run_json.get("python"),
        "cpus": run_json.get("cpus"),
        "cpu_kernels": run_json.get("cpu_kernels"),  # which kernels set its bits (kernels.py)
    }


def online_without_key(mode: str) -> list[str]:
    """One line when the run is to file online (``logger.wandb_mode=online``, or ``auto`` with
    ``WANDB_MODE=online``) but no API key is configured: W&B would refuse it at the end of
    training, leaving local records only; said before the run starts instead."""
    try:
        if resolve_wandb_mode(mode) != "online" or _logged_in():
            return []
    except ValueError:  # an unknown mode: validation names it
        return []
    line = (
        f"logger.wandb_mode={mode} files the run online, but no W&B API key is configured "
        "(WANDB_API_KEY or ~/.netrc): the run will keep local records only; run `wandb login` "
        "first, or use logger.wandb_mode=offline to file it offline"
    )
    return [line]


def history_rows(
    metrics_r0: list[dict[str, Any]],
    curve: list[dict[str, Any]],
    emulated_at: list[float],
    wall_at: list[float],
) -> list[dict[str, Any]]:
    """The W&B history: one row per iteration rank 0 logged (``train``) or evaluated (the
    run's curve), in iteration order, each with emulated and wall-clock seconds.

    Args:
        metrics_r0: rank 0's metrics lines (``kind`` train/eval/global/final).
        curve: ``summary.json["curve"]``: the run's evaluations (node means, consensus).
        emulated_at: mean over ranks of the emulated end time of iteration ``k`` (index k-1).
        wall_at: mean over ranks of the wall-clock end time of iteration ``k`` (index k-1).
    """

    def at(series: list[float], step: int) -> float | None:
        if not series:
            return None
        return float(series[min(max(step, 1), len(series)) - 1]) if step > 0 else 0.0

    rows: dict[int, dict[str, Any]] = {}
    for m in metrics_r0:
        if m.get("kind") != "train":
            continue
        row = rows.setdefault(int(m["step"]), {})
        row.update({k: v for k, v in m.items() if k not in ("kind", "step")})
    for point in curve:
        row = rows.setdefault(int(point["step"]), {})
        row.update({k: v for k, v in point.items() if k != "step"})
    out = []
    for step in sorted(rows):
        row = {"iteration": step, **rows[step]}
        row.setdefault(X_AXIS, at(emulated_at, step))
        row.setdefault("time/wall_s", at(wall_at, step))
        out.append({k: v for k, v in row.items() if v is not None})
    return out


def artifact_files(run_dir: Path) -> list[Path]:
    """What the run-records artifact holds: every record a re-emulation or a table needs."""
    names = ["run.json", "summary.json", "timing.json", DONE]
    files = [run_dir / n for n in names if (run_dir / n).is_file()]
    for prefix in ("metrics_r", "trace_r"):
        files += sorted(run_dir.glob(f"{prefix}*.jsonl"), key=lambda p: int(p.stem[len(prefix) :]))
    return files


# -- the time axes (I/O) ----------------------------------------------------------------------


def time_axes(run_dir: Path, summary: dict[str, Any]) -> tuple[list[float], list[float]]:
    """(emulated, wall-clock) end time of each iteration, mean over ranks: the timing engine
    replayed on the run's traces (the same replay as timing.json) and the traces' wall_s.
    The end of a run computes the same axes once (:func:`mean_axes`) and hands them to
    :func:`log_run`; this re-derives them from the records alone."""
    import numpy as np

    from sgprepro.emulation import emulate_run, load_run_config

    cfg = load_run_config(run_dir)
    timing = emulate_run(
        run_dir, cfg, summary["iterations_per_epoch"], summary["comm/message_bytes"]
    ).timing
    walls = []
    for r in range(cfg.nodes):
        trace = read_jsonl(run_dir / f"trace_r{r}.jsonl")
        walls.append(np.cumsum([t["wall_s"] for t in trace]))
    return mean_axes(timing.ends, walls)


def mean_axes(ends: Sequence[Any], walls: Sequence[Any]) -> tuple[list[float], list[float]]:
    """Mean over ranks of each iteration's emulated end (``ends``) and wall-clock end
    (``walls``: cumulative wall_s), over the iterations every rank took."""
    import numpy as np

    n = min(len(e) for e in ends)
    emulated = np.mean([np.asarray(e[:n], dtype=float) for e in ends], axis=0)
    m = min(len(w) for w in walls)
    wall = np.mean([np.asarray(w[:m], dtype=float) for w in walls], axis=0)
    return [float(v) for v in emulated], [float(v) for v in wall]


# -- logging (I/O) -----------------------------------------------------------------------------


def log_run(
    run_dir: Path,
    logger: LoggerConfig,
    axes: tuple[list[float], list[float]] | None = None,
) -> dict[str, Any] | None:
    """File a finished run (its ``done`` marker written) with W&B. Returns its id, mode and
    folder, or None when W&B is disabled or failed (logged; never raised).

    ``axes``: the run's (emulated, wall-clock) time axes when the caller has them (the end of
    a run does); None re-derives them from the records (:func:`time_axes`)."""
    mode = resolve_wandb_mode(logger.wandb_mode)
    if mode == "disabled":
        return None
    run_dir = Path(run_dir)
    try:
        return _log_run(run_dir, logger, mode, axes)
    except Exception as exc:  # noqa: BLE001 - W&B must never break a run
        log.warning("W&B: the run was not filed (%s); local records only", _first_line(exc))
        return None


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _log_run(
    run_dir: Path,
    logger: LoggerConfig,
    mode: WandbMode,
    axes: tuple[list[float], list[float]] | None,
) -> dict[str, Any]:
    run_json = json.loads((run_dir / "run.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    emulated, wall = axes if axes is not None else time_axes(run_dir, summary)
    rows = history_rows(
        read_jsonl(run_dir / "metrics_r0.jsonl"), summary.get("curve") or [], emulated, wall
    )
    ident = identity(run_json)
    os.environ.setdefault("WANDB_SILENT", "true")
    import wandb

    run = wandb.init(
        mode=mode,
        dir=str(run_dir),
        project=logger.project,
        entity=logger.entity,
        id=ident["id"],
        resume="allow",
        name=ident["name"],
        group=ident["group"],
        tags=ident["tags"],
        job_type=ident["job_type"],
        config=wandb_config(run_json),
        reinit="finish_previous",
        # the run trained earlier, maybe elsewhere: its host, git commit and package versions
        # are in the config (run.json); W&B's own probes would describe this filing process
        # (and reading every installed package's metadata took a third of the filing time)
        settings=wandb.Settings(
            x_disable_stats=True,
            x_disable_meta=True,
            x_save_requirements=False,
            disable_git=True,
        ),
    )
    try:
        run.define_metric(X_AXIS, summary="max")
        run.define_metric("time/wall_s", summary="max")
        for glob in _METRIC_GLOBS:
            run.define_metric(glob, step_metric=X_AXIS)
        run.define_metric("val/top1_node_mean", step_metric=X_AXIS, summary="last")
        for row in rows:
            run.log(row)
        for k, v in summary.items():
            run.summary[k] = v
        art = wandb.Artifact(
            f"records-{ident['id']}",
            type=ARTIFACT_TYPE,
            description="sgprepro run records (docs/records.md): re-emulate with make table "
            "SOURCE=wandb:<entity>/<project>",
            metadata={"cell": run_json["cell"], "config_hash": run_json.get("config_hash")},
        )
        for path in artifact_files(run_dir):
            art.add_file(str(path), name=path.name)
        run.log_artifact(art)
    except BaseException:
        run.finish(exit_code=1)
        raise
    run.finish()
    log.info("W&B (%s): run %s filed in %s", mode, ident["id"], run_dir / "wandb")
    return {"mode": mode, "id": ident["id"], "dir": str(run_dir / "wandb")}
