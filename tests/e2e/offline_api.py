"""A `wandb.Api` stand-in that serves offline W&B runs from their own files (no network).

It answers what `sgprepro.results.wandb_source` asks of the public Api (runs with id, name,
state, created_at, config, summary, logged_artifacts) with what the offline ``.wandb`` file
recorded: the config and summary as logged, and each artifact's files from the local copies the
manifest names (the files `wandb sync` would upload).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sgprepro.tracking.wandb_offline import OfflineRun, read_offline_run


@dataclass
class OfflineArtifact:
    type: str
    name: str
    files: dict[str, str]  # name in the artifact -> local copy

    def download(self, root: str | None = None) -> str:
        assert root is not None
        for name, local in self.files.items():
            shutil.copyfile(local, Path(root) / name)
        return root


class OfflineWandbRun:
    def __init__(self, run: OfflineRun) -> None:
        self.id = run.run["id"]
        self.name = run.run["name"]
        self.state = "finished"
        self.created_at = "2026-11-29T00:00:00"
        self.config: dict[str, Any] = dict(run.config)
        self.summary: dict[str, Any] = dict(run.summary)
        self._artifacts = [
            OfflineArtifact(a["type"], f"{a['name']}:v0", a["files"]) for a in run.artifacts
        ]

    def logged_artifacts(self) -> list[OfflineArtifact]:
        return list(self._artifacts)


class OfflineApi:
    def __init__(self, run_dirs: list[Path]) -> None:
        self._runs = [OfflineWandbRun(read_offline_run(d)) for d in run_dirs]
        self.paths: list[str] = []

    def runs(self, path: str) -> list[OfflineWandbRun]:
        self.paths.append(path)
        return list(self._runs)
