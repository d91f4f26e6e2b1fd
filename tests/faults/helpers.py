"""Shared pieces of the fault tests: the CLI in a subprocess, its workers, waiting."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

# a 4-node run that trains until it is stopped (about 12 iterations per epoch)
ENDLESS = (
    "debug=tiny",
    "train.max_steps=1000000",
    "optim.epochs=100000",
    "train.eval_every_epochs=1000",
    "comm.job_timeout_s=600",
)


def cli_env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "WANDB_MODE": "disabled",
        "WANDB_DIR": str(tmp_path),
        "HYDRA_FULL_ERROR": "0",
    }


def start_cli(args: list[str], cwd: Path, **kwargs) -> subprocess.Popen:
    """``python -m sgprepro.train <args>`` in the background (its own session: a process group
    the test can signal as a terminal would), at a low priority: its workers spin on every core,
    and what the test starts next must not wait for them."""
    return subprocess.Popen(
        ["nice", "-n", "15", sys.executable, "-m", "sgprepro.train", *args],
        cwd=cwd,
        env=cli_env(cwd),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **kwargs,
    )


def run_cli(
    args: list[str], cwd: Path, timeout: float = 240, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``python -m sgprepro.train <args>``; ``env`` adds to (or, with None values, removes from)
    the test environment."""
    full = {**cli_env(cwd), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "sgprepro.train", *args],
        cwd=cwd,
        env={k: v for k, v in full.items() if v is not None},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> object:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def workers(job_pid: int) -> dict[int, psutil.Process]:
    """rank -> worker process of a job (workers are named sgprepro-r<rank>)."""
    out = {}
    try:
        children = psutil.Process(job_pid).children()
    except psutil.NoSuchProcess:
        return out
    for p in children:
        try:
            name = p.name()
        except psutil.NoSuchProcess:
            continue
        if name.startswith("sgprepro-r"):
            out[int(name.removeprefix("sgprepro-r"))] = p
    return out


def alive(procs) -> list[int]:
    """Pids among ``procs`` still running (zombies count as gone)."""
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p.pid)
        except psutil.NoSuchProcess:
            pass
    return out


def trace_lines(run_dir: Path, rank: int) -> int:
    path = run_dir / f"trace_r{rank}.jsonl"
    return path.read_text().count("\n") if path.exists() else 0


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """name -> (size, mtime_ns) of every file under ``folder``."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            st = p.stat()
            out[str(p.relative_to(folder))] = (st.st_size, st.st_mtime_ns)
    return out


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]
