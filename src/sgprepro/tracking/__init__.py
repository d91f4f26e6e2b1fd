"""Run records (docs/records.md) and the W&B mirror."""

from sgprepro.tracking.records import (
    DONE,
    JsonlWriter,
    environment_info,
    read_jsonl,
    write_json_atomic,
)
from sgprepro.tracking.wandb_mirror import WandbMirror, resolve_wandb_mode

__all__ = [
    "DONE",
    "JsonlWriter",
    "WandbMirror",
    "environment_info",
    "read_jsonl",
    "resolve_wandb_mode",
    "write_json_atomic",
]
