"""Shell and file-system input: Makefile variables are never parsed by the shell, and a dataset
download happens once, in one process, under a lock."""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from sgprepro.data import vision
from sgprepro.data.vision import CIFAR10_FILES, CIFAR10_FOLDER, cifar10_present, ensure_cifar10

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize("target", ["table", "reproduce-table"])
@pytest.mark.parametrize(
    ("variable", "literal"),
    [
        ("STUDY=x; touch {f}; #", "x; touch {f}; #"),
        ('STUDY=x"; touch {f}; "', 'x"; touch {f}; "'),
        ("RUNS=x$$(touch {f})", "x$(touch {f})"),  # $$: make's own escape for a literal $
        ("REPORT=`touch {f}`", "`touch {f}`"),
        ("SOURCE=wandb:a/b; touch {f}", "wandb:a/b; touch {f}"),
    ],
)
def test_make_variables_are_never_run_by_the_shell(tmp_path, target, variable, literal) -> None:
    canary = tmp_path / "pwned"
    proc = subprocess.run(
        # PY=echo: print the commands' arguments instead of running python; -o: .venv is built
        ["make", "-o", ".venv/.installed", target, variable.format(f=canary), "PY=echo"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert not canary.exists(), proc.stdout
    if target == "reproduce-table" and variable.startswith("STUDY"):  # no such study: refused
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith(f"error: STUDY={literal.format(f=canary)}: no such study")
        return
    assert proc.returncode == 0, proc.stderr
    if not (target == "reproduce-table" and variable.startswith("SOURCE")):  # table only
        assert literal.format(f=canary) in proc.stdout  # passed on as one literal argument


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize(
    ("study", "words"),
    [
        (
            "table1_scald",
            "no such study (conf/sweep/ has beyond_paper, table1_paper, table1_scaled)",
        ),
        (
            "table1_paper",
            "this study is the paper's own scale (ImageNet, ResNet-50, GPUs per node)",
        ),
    ],
)
def test_a_study_this_machine_cannot_run_is_refused_in_one_line(study, words) -> None:
    proc = subprocess.run(
        # --no-print-directory: under make test (a make inside make) make would say where it is
        [
            "make",
            "--no-print-directory",
            "-o",
            ".venv/.installed",
            "reproduce-table",
            f"STUDY={study}",
            "PY=echo",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    (line,) = [ln for ln in proc.stderr.splitlines() if not ln.startswith("make")]
    assert line.startswith(f"error: STUDY={study}: {words}")
    assert proc.stdout == ""  # nothing started


def _fake_download(log: str):
    def download(root: str) -> None:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.write(fd, f"start {os.getpid()}\n".encode())
        time.sleep(0.3)  # long enough for every other process to arrive meanwhile
        folder = Path(root) / CIFAR10_FOLDER
        folder.mkdir()
        for name in CIFAR10_FILES:
            (folder / name).write_bytes(b"x")
        os.write(fd, f"end {os.getpid()}\n".encode())
        os.close(fd)

    return download


def _rank(root: str, log: str, results) -> None:
    results.put(ensure_cifar10(root, _fake_download(log)))


def test_concurrent_ranks_download_the_dataset_once(tmp_path) -> None:
    root, log = str(tmp_path / "cifar10"), str(tmp_path / "downloads.log")
    ctx = mp.get_context("fork")
    results = ctx.Queue()
    procs = [ctx.Process(target=_rank, args=(root, log, results)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=30)
    assert [p.exitcode for p in procs] == [0] * 4
    downloaded = sorted(results.get(timeout=5) for _ in procs)
    assert downloaded == [False, False, False, True]  # one process downloaded, three waited
    events = Path(log).read_text().split()
    assert events[0::2] == ["start", "end"]  # one download, never two at once
    assert cifar10_present(root)


def test_opening_cifar10_downloads_through_the_lock_and_only_when_asked(
    tmp_path, monkeypatch
) -> None:
    """The launcher builds the dataset once, in the job process, before forking the ranks
    (sgprepro.app.run_job); building it downloads through ensure_cifar10, never torchvision's
    own unlocked download."""
    calls, opened = [], []
    monkeypatch.setattr(vision, "ensure_cifar10", lambda root: calls.append(root))
    monkeypatch.setattr(
        vision.datasets, "CIFAR10", lambda _root, **kw: opened.append(kw["download"]) or []
    )
    vision.cifar10_datasets(str(tmp_path), download=True)
    vision.cifar10_datasets(str(tmp_path), download=False)
    assert calls == [str(tmp_path)]
    assert opened == [False] * 4  # torchvision is never asked to download
