"""Read an offline W&B run back from its files: ``<run_dir>/wandb/offline-run-*/run-<id>.wandb``.

The ``.wandb`` file is W&B's transaction log: a 7-byte header (``:W&B``, magic, version) then
LevelDB-style records in 32 KiB blocks, each a CRC32C (4 bytes), a length (2) and a type (1:
full, 2: first, 3: middle, 4: last piece) before a ``wandb_internal_pb2.Record``. This reader
takes what a person (or a test) checks before ``wandb sync``: the run's identity and config, the
history rows, the metric definitions, the summary and the logged artifacts with their files.

    python -m sgprepro.tracking.wandb_offline <run_dir or offline-run folder or .wandb file>
"""

from __future__ import annotations

import json
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sgprepro.cliparse import OneLineParser

_BLOCK = 32768
_HEADER = 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


@dataclass
class OfflineRun:
    """What one offline ``.wandb`` file holds (JSON values decoded)."""

    path: Path
    run: dict[str, Any] = field(default_factory=dict)  # id, project, name, group, job_type, tags
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)  # define_metric records
    summary: dict[str, Any] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)  # name, type, files, metadata

    @property
    def history_keys(self) -> list[str]:
        return sorted({k for row in self.history for k in row})


def _payloads(data: bytes) -> Iterator[bytes]:
    if data[:4] != b":W&B":
        raise ValueError("not a W&B transaction log (no ':W&B' header)")
    pos, pending = _HEADER, b""
    while pos + _HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER:  # the block's tail is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + _HEADER])
        if kind == 0:  # zero padding up to the next block
            pos += left
            continue
        chunk = data[pos + _HEADER : pos + _HEADER + length]
        pos += _HEADER + length
        if kind == _FULL:
            yield chunk
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            yield pending + chunk
            pending = b""


def _key(item: Any) -> str:
    return "/".join(item.nested_key) if item.nested_key else item.key


def read_offline_run(path: Path) -> OfflineRun:
    """Read a ``.wandb`` file (or the single one in an offline-run folder or a run directory)."""
    from wandb.proto import wandb_internal_pb2 as pb

    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("run-*.wandb")) or sorted(path.glob("wandb/offline-run-*/*.wandb"))
        if len(found) != 1:
            raise FileNotFoundError(f"{path}: expected one offline W&B run, found {len(found)}")
        path = found[0]
    out = OfflineRun(path=path)
    for payload in _payloads(path.read_bytes()):
        rec = pb.Record()
        rec.ParseFromString(payload)
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            out.run = {
                "id": r.run_id,
                "project": r.project,
                "entity": r.entity,
                "name": r.display_name,
                "group": r.run_group,
                "job_type": r.job_type,
                "tags": list(r.tags),
                "resume": r.resume,
            }
            for item in r.config.update:
                out.config[_key(item)] = json.loads(item.value_json)
        elif kind == "config":
            for item in rec.config.update:
                out.config[_key(item)] = json.loads(item.value_json)
        elif kind == "history":
            row = {_key(i): json.loads(i.value_json) for i in rec.history.item}
            out.history.append({k: v for k, v in row.items() if not k.startswith("_")})
        elif kind == "metric":
            m = rec.metric
            out.metrics.append(
                {"name": m.name or m.glob_name, "step_metric": m.step_metric or None}
            )
        elif kind == "summary":
            for item in rec.summary.update:
                out.summary[_key(item)] = json.loads(item.value_json)
        elif kind == "artifact":
            a = rec.artifact
            out.artifacts.append(
                {
                    "name": a.name,
                    "type": a.type,
                    "metadata": json.loads(a.metadata) if a.metadata else {},
                    "files": {c.path: c.local_path for c in a.manifest.contents},
                }
            )
    out.config.pop("_wandb", None)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(
        prog="python -m sgprepro.tracking.wandb_offline", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "path", type=Path, help="a run directory, offline-run folder or .wandb file"
    )
    args = parser.parse_args(argv)
    run = read_offline_run(args.path)
    print(f"file: {run.path}")
    print("run: " + json.dumps(run.run, sort_keys=True))
    print("config: " + json.dumps(run.config, sort_keys=True, default=str))
    print(f"history: {len(run.history)} rows; keys: {', '.join(run.history_keys)}")
    print("metrics: " + ", ".join(f"{m['name']} (x: {m['step_metric']})" for m in run.metrics))
    for a in run.artifacts:
        print(f"artifact {a['name']} ({a['type']}): {', '.join(sorted(a['files']))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
