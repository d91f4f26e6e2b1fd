"""Local run records: JSON Lines per rank, atomic JSON files, the ``done`` marker."""

from __future__ import annotations

import json
import logging
import os
import platform
import socket
import subprocess
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from sgprepro.kernels import cpu_kernels

log = logging.getLogger(__name__)

DONE = "done"
PACKAGES: tuple[str, ...] = (
    "torch",
    "torchvision",
    "hydra-core",
    "wandb",
    "pandas",
    "numpy",
    "matplotlib",
    "mnist1d",
    "sgprepro",
)
"""The packages whose versions shape a run's numbers (recorded in run.json)."""


class JsonlWriter:
    """Append one JSON object per line, flushed after every write (a crash loses at most a line)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fh = self.path.open("a", buffering=1)

    def write(self, record: dict[str, Any]) -> None:
        self._fh.write(json.dumps(record, default=float) + "\n")

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()


def read_jsonl(
    path: Path, on_bad: Callable[[int, str], None] | None = None
) -> list[dict[str, Any]]:
    """Every line of ``path`` that is a JSON object, in file order. A bad line (a truncated last
    line from a crash, or JSON that is not an object) is skipped: reported to ``on_bad(line
    number, reason)`` when given, else logged."""
    out = []
    with Path(path).open() as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                obj, reason = None, f"invalid JSON ({exc.msg})"
            else:
                reason = "not a JSON object"
            if isinstance(obj, dict):
                out.append(obj)
            elif on_bad is not None:
                on_bad(lineno, reason)
            else:
                log.warning("%s:%d: unreadable line skipped (%s)", path, lineno, reason)
    return out


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON through a temporary file and a rename: never a half-written file."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    with tmp.open("w") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def git_commit(cwd: Path | None = None) -> str | None:
    """``HEAD`` of the repository holding ``cwd`` (default: this package's source), with
    ``-dirty`` appended when tracked files have uncommitted changes; None without git or a
    repository."""
    here = Path(__file__).resolve().parent if cwd is None else cwd
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        if out.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each package in ``names`` (None where it is not installed)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def environment_info() -> dict[str, Any]:
    """Git commit, package versions and host: what run.json and provenance.json record."""
    return {
        "git_commit": git_commit(),
        "versions": package_versions(),
        "python": platform.python_version(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpu_kernels": cpu_kernels(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
