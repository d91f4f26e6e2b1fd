"""Run records (docs/records.md) and their filing with W&B (:mod:`sgprepro.tracking.wandb_run`,
imported on use: it loads the timing engine)."""

from sgprepro.tracking.records import (
    DONE,
    PACKAGES,
    JsonlWriter,
    environment_info,
    git_commit,
    package_versions,
    read_jsonl,
    write_json_atomic,
)

__all__ = [
    "DONE",
    "PACKAGES",
    "JsonlWriter",
    "environment_info",
    "git_commit",
    "package_versions",
    "read_jsonl",
    "write_json_atomic",
]
