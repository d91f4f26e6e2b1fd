"""Guard: every folder under tests/ that holds test files contributes collected tests.

pytest silently skips some folder names (its default ``norecursedirs`` holds ``dist`` and
``build``, among others), so a folder of tests can drop out of ``make test`` without a sound.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def folders_with_tests(tests_root: Path) -> list[str]:
    """Top-level folders of ``tests_root`` (as ``tests/<name>``) that hold a ``test_*.py`` file."""
    return sorted(
        f"{tests_root.name}/{d.name}"
        for d in tests_root.iterdir()
        if d.is_dir() and any(d.rglob("test_*.py"))
    )


def collected_folders(root: Path, tests_dir: str = "tests") -> set[str]:
    """``tests/<name>`` of every test ``pytest --collect-only`` finds when run in ``root``."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            tests_dir,
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    ids = [line for line in out.stdout.splitlines() if "::" in line]
    return {"/".join(i.split("::")[0].split("/")[:2]) for i in ids if i.count("/") >= 2}


def uncollected(root: Path, found: set[str], tests_dir: str = "tests") -> list[str]:
    """Test folders that contribute no collected test (what the guard fails on)."""
    return [f for f in folders_with_tests(root / tests_dir) if f not in found]


def test_every_test_folder_contributes_tests():
    found = collected_folders(REPO)
    missing = uncollected(REPO, found)
    assert not missing, (
        f"test folders with test files but no collected test: {missing}; pytest skips some "
        "folder names (norecursedirs: dist, build, ...): rename the folder"
    )
    assert "tests/distributed" in found


def test_guard_names_a_folder_pytest_skips(tmp_path):
    """The guard fails on a folder pytest does not descend into (the old ``tests/dist``)."""
    for folder in ("dist", "unit"):
        d = tmp_path / "tests" / folder
        d.mkdir(parents=True)
        (d / "test_x.py").write_text("def test_x():\n    assert 1 + 1 == 2\n")
    (tmp_path / "pytest.ini").write_text(textwrap.dedent("[pytest]\ntestpaths = tests\n"))
    assert uncollected(tmp_path, collected_folders(tmp_path)) == ["tests/dist"]
