"""Mirror of the local records into Weights & Biases: one W&B run per job, logged by rank 0.

Offline unless the user is logged in (or sets ``logger.wandb_mode=online``); the W&B directory
lives inside the run directory. Any W&B failure is logged and ignored: the local records are
the source of truth and are never affected.
"""

from __future__ import annotations

import logging
import netrc
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _logged_in() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        rc = netrc.netrc(os.environ.get("NETRC", str(Path.home() / ".netrc")))
    except (OSError, netrc.NetrcParseError):
        return False
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1]
    return rc.authenticators(host) is not None


def resolve_wandb_mode(mode: str) -> str:
    """``auto`` -> ``WANDB_MODE`` if set, else online when logged in, else offline."""
    if mode != "auto":
        return mode
    env = os.environ.get("WANDB_MODE")
    if env in ("online", "offline", "disabled"):
        return env
    return "online" if _logged_in() else "offline"


class WandbMirror:
    """Thin, failure-proof wrapper over one ``wandb`` run."""

    def __init__(
        self,
        mode: str,
        run_dir: Path,
        project: str,
        entity: str | None,
        name: str,
        group: str,
        tags: list[str],
        config: dict[str, Any],
    ) -> None:
        self.mode = resolve_wandb_mode(mode)
        self.run = None
        if self.mode == "disabled":
            return
        try:
            import wandb

            os.environ.setdefault("WANDB_SILENT", "true")
            self.run = wandb.init(
                mode=self.mode,
                dir=str(run_dir),
                project=project,
                entity=entity,
                name=name,
                group=group,
                tags=tags,
                config=config,
                reinit="finish_previous",
            )
        except Exception as exc:  # noqa: BLE001 - W&B must never break a run
            log.warning("W&B init failed (%s); local records only", str(exc).splitlines()[0])
            self.run = None

    def log(self, metrics: dict[str, Any], step: int | None = None) -> None:
        if self.run is None:
            return
        try:
            self.run.log(metrics, step=step)
        except Exception as exc:  # noqa: BLE001
            log.warning("W&B log failed (%s)", str(exc).splitlines()[0])

    def summary(self, metrics: dict[str, Any]) -> None:
        if self.run is None:
            return
        try:
            for k, v in metrics.items():
                self.run.summary[k] = v
        except Exception as exc:  # noqa: BLE001
            log.warning("W&B summary failed (%s)", str(exc).splitlines()[0])

    def finish(self, exit_code: int = 0) -> None:
        if self.run is None:
            return
        try:
            self.run.finish(exit_code=exit_code)
        except Exception as exc:  # noqa: BLE001
            log.warning("W&B finish failed (%s)", str(exc).splitlines()[0])
        self.run = None
