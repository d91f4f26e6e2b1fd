"""Where the harness finds its own files: the Hydra configs and the study folders.

In a checkout (an editable install) they are the repository's top-level ``conf/`` and
``experiments/``; an installed package carries them as package data (``sgprepro/conf``,
``sgprepro/experiments``). Every module asks here; none computes a repository root itself.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def nearest_existing(path: Path) -> Path | None:
    """``path`` or its nearest ancestor that exists: where making ``path`` would start (a file
    there means it cannot be made)."""
    return next((p for p in (path, *path.parents) if p.exists()), None)


def repo_root() -> Path | None:
    """The checkout holding this package (``<root>/src/sgprepro``), or None when installed."""
    root = PACKAGE_DIR.parents[1]
    return root if (root / "conf" / "config.yaml").is_file() else None


def _find(name: str) -> Path:
    packaged = PACKAGE_DIR / name
    if packaged.is_dir():
        return packaged
    root = repo_root()
    if root is not None and (root / name).is_dir():
        return root / name
    raise FileNotFoundError(
        f"{name}/: found neither {packaged} (installed package data) nor a checkout's {name}/; "
        "reinstall the package (pip install .) or run from the repository"
    )


def conf_dir() -> Path:
    """The Hydra config tree (``config.yaml`` and the groups)."""
    return _find("conf")


def experiments_dir() -> Path:
    """The study folders (layouts, the paper's published numbers, references)."""
    return _find("experiments")


def study_dir(study: str) -> Path:
    """``experiments/<study>/``."""
    return experiments_dir() / study


def shipped_studies() -> list[str]:
    """The studies in ``experiments/`` (folders holding a ``layout.yaml``)."""
    root = experiments_dir()
    return sorted(p.parent.name for p in root.glob("*/layout.yaml")) if root.is_dir() else []
