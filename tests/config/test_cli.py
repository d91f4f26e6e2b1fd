"""The command line: --help and tab completion without torch, and the package data that an
installed package needs (every config and study file matches a package-data pattern)."""

from __future__ import annotations

import fnmatch
import os
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _cli(
    code: str, env: dict[str, str] | None = None, cwd: Path = REPO
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_shows_groups_and_the_composed_config_without_importing_torch() -> None:
    proc = _cli(
        "import sys; sys.argv = ['sgprepro-train', 'algorithm=osgp', '--help']\n"
        "from sgprepro.cli import train; train()\n"
        "assert 'torch' not in sys.modules, 'torch was imported to print help'"
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "algorithm: adpsgd, allreduce" in out
    assert "sweep: " in out
    assert "table1_scaled" in out
    assert "== Config (with algorithm=osgp) ==" in out
    assert "name: osgp" in out


def test_help_with_a_bad_override_says_so_on_one_line() -> None:
    proc = _cli(
        "import sys; sys.argv = ['sgprepro-train', 'algorithm=foo', '--help']\n"
        "from sgprepro.cli import train; train()\n"
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: --help with algorithm=foo: ")
    assert "Could not find 'algorithm/foo'" in line
    assert "sgp_delayed; fix the override, or run --help alone" in line


def test_a_run_without_nodes_is_refused_without_importing_torch(tmp_path) -> None:
    """A single run (its folder given, or Hydra's default, whose name holds ${nodes}) and a
    sweep that does not sweep nodes: one line, exit 2, no folder, before torch is imported."""
    cases = {
        "given folder": [f"hydra.run.dir={tmp_path}/run"],
        "default folder": [],
        "sweep": ["-m", "algorithm=sgp,dpsgd", "dry_run=true", f"hydra.sweep.dir={tmp_path}/sweep"],
    }
    for name, argv in cases.items():
        proc = _cli(
            "import atexit, sys\n"
            "atexit.register(lambda: print('torch' in sys.modules))\n"
            f"sys.argv = ['sgprepro-train', *{argv!r}]\n"
            "from sgprepro.cli import train; train()\n",
            cwd=tmp_path,  # Hydra's default folder would be made here
        )
        assert proc.returncode == 2, (name, proc.stderr)
        assert "Traceback" not in proc.stderr, name
        assert proc.stderr.strip().splitlines() == [
            "error: nodes=???: the node count is explicit; set nodes=4 (or nodes=4,8,16,32 with -m)"
        ], name
        assert proc.stdout.strip().splitlines()[-1] == "False", name  # at once, without torch
    assert not list(tmp_path.iterdir())  # neither the run's nor the sweep's folder was made


def test_tab_completion_answers_groups_and_keys() -> None:
    query = (
        "import sys; sys.argv = ['sgprepro-train', '-sc', 'query=bash']\n"
        "from sgprepro.cli import train; train()"
    )
    proc = _cli(query, {"COMP_LINE": "sgprepro-train algorithm=sgp"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["algorithm=sgp", "algorithm=sgp_2peer", "algorithm=sgp_delayed"]
    proc = _cli(query, {"COMP_LINE": "sgprepro-train network.latency_"})
    assert "network.latency_s=" in proc.stdout.split()


def test_every_config_and_study_file_ships_in_the_package() -> None:
    conf = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = conf["package-data"]["sgprepro"]
    excluded = conf["exclude-package-data"]["sgprepro"]
    assert {"sgprepro-train", "sgprepro-report"} <= set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    )
    for top in ("conf", "experiments"):
        assert (REPO / "src" / "sgprepro" / top).resolve() == REPO / top  # the package's link
        for path in sorted((REPO / top).rglob("*")):
            rel = path.relative_to(REPO).as_posix()
            if not path.is_file() or path.name.startswith("."):
                continue
            if any(fnmatch.fnmatch(rel, p) for p in excluded):
                continue
            assert any(
                fnmatch.fnmatch(rel, p) and rel.count("/") == p.count("/") for p in patterns
            ), f"{rel} is not package data: add its pattern to [tool.setuptools.package-data]"


def test_a_run_or_sweep_folder_under_a_file_is_one_line(tmp_path) -> None:
    (tmp_path / "file").write_text("")
    for flag, key in (("", "hydra.run.dir"), ("-m", "hydra.sweep.dir")):
        args = [a for a in (flag, "nodes=4", f"{key}={tmp_path}/file/run") if a]
        proc = _cli(
            f"import sys; sys.argv = ['sgprepro-train', *{args!r}]\n"
            "from sgprepro.cli import train; train()\n"
        )
        assert proc.returncode == 2, proc.stderr
        expected = (
            f"error: {key}={tmp_path}/file/run: {tmp_path}/file is a file, so the folder cannot "
            f"be made; give the run another folder ({key}=...)"
        )
        assert proc.stderr.strip().splitlines() == [expected]
    assert (tmp_path / "file").read_text() == ""  # untouched


def test_a_torchrun_rank_ends_with_its_runs_status_and_its_output_flushed() -> None:
    """A rank of an env:// job ends without the interpreter's teardown (os._exit), keeping the
    exit status the run would have had and everything it wrote."""
    program = (
        "import logging, sys\n"
        "from sgprepro.cli import _end_as_a_rank\n"
        "logging.basicConfig(stream=sys.stderr)\n"
        "def main():\n"
        "    print('summary line', end='')  # no newline: still buffered at the exit\n"
        "    logging.getLogger('x').warning('a log line')\n"
        "    {ending}\n"
        "_end_as_a_rank(main)\n"
    )
    for ending, code, err in (
        ("return None", 0, ""),
        ("sys.exit(2)", 2, ""),
        ("sys.exit('error: bad input')", 1, "error: bad input"),
    ):
        proc = _cli(program.format(ending=ending))
        assert proc.returncode == code, proc.stderr
        assert proc.stdout == "summary line"
        assert "WARNING:x:a log line" in proc.stderr
        assert err in proc.stderr
