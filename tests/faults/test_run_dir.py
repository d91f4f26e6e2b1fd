"""A run folder belongs to one job (an OS lock held for the job's life, inherited by its forked
workers); a folder that cannot be written, or an error.txt that cannot, still reports the cause."""

from __future__ import annotations

import logging
import os
import signal
import time

import pytest

from sgprepro import app
from sgprepro.app import RunDirError, hold_run_dir, run_job
from sgprepro.config import validate


def test_a_held_folder_refuses_a_second_holder_and_names_the_first(tmp_path) -> None:
    with (
        hold_run_dir(tmp_path / "run"),
        pytest.raises(RunDirError) as info,
        hold_run_dir(tmp_path / "run"),
    ):
        pass
    msg = str(info.value)
    assert "\n" not in msg
    assert f"run folder {tmp_path / 'run'} is in use by another job (pid {os.getpid()})" in msg
    assert "hydra.run.dir=" in msg
    lock = tmp_path / "run" / ".lock"
    stat = lock.stat()
    with hold_run_dir(tmp_path / "run"):  # free again once its holder let go
        pass
    assert lock.read_bytes() == b""
    assert lock.stat().st_mtime_ns == stat.st_mtime_ns  # unwritten


def test_two_attempts_within_a_second_are_both_kept(tmp_path) -> None:
    from sgprepro.app import _archive_previous

    for attempt in ("first", "second"):
        (tmp_path / "error.txt").write_text(attempt)
        _archive_previous(tmp_path)
    kept = sorted((p / "error.txt").read_text() for p in (tmp_path / "attempts").iterdir())
    assert kept == ["first", "second"]


def test_a_forked_worker_keeps_the_folder_held_until_it_is_gone(tmp_path) -> None:
    with hold_run_dir(tmp_path):
        pid = os.fork()
        if pid == 0:  # a worker: inherits the lock
            time.sleep(30)
            os._exit(0)
    try:
        with pytest.raises(RunDirError), hold_run_dir(tmp_path):
            pass  # the job let go, but its worker lives: still held
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    with hold_run_dir(tmp_path):
        pass


@pytest.mark.dist
def test_ranks_kept_for_the_next_job_do_not_hold_the_finished_runs_folder(
    compose_cfg, tmp_path
) -> None:
    from sgprepro.comm.launch import close_kept_ranks

    cfg = validate(compose_cfg(["nodes=2", "debug=tiny", "logger.wandb_mode=disabled"]))
    try:
        assert run_job(cfg, tmp_path / "a")["status"] == "ok"
        assert app.lock_holder(tmp_path / "a" / app.LOCK_FILE) is None  # ranks kept, folder free
        with hold_run_dir(tmp_path / "a"):
            pass
    finally:
        close_kept_ranks()


def test_a_run_folder_that_cannot_be_created_is_one_line(compose_cfg, tmp_path) -> None:
    (tmp_path / "file").write_text("")
    cfg = validate(compose_cfg(["nodes=2", "debug=tiny"]))
    with pytest.raises(RunDirError) as info:
        run_job(cfg, tmp_path / "file" / "run")
    msg = str(info.value)
    assert "\n" not in msg
    assert "cannot be written" in msg
    assert "another folder" in msg


@pytest.mark.dist
def test_when_error_txt_cannot_be_written_the_cause_is_still_reported(
    compose_cfg, tmp_path, monkeypatch, caplog
) -> None:
    cfg = validate(compose_cfg(["nodes=2", "debug=tiny", "train.inject_fault=crash@1:2"]))
    prepare = app.prepare_run_dir

    def prepare_then_block_error_txt(cfg, out, overrides=""):
        reason = prepare(cfg, out, overrides)
        (out / "error.txt").mkdir()  # the folder refuses error.txt (as a read-only one would)
        return reason

    monkeypatch.setattr(app, "prepare_run_dir", prepare_then_block_error_txt)
    with caplog.at_level(logging.ERROR, logger="sgprepro.app"):
        result = run_job(cfg, tmp_path)
    assert result["status"] == "failed"
    assert result["rank"] == 1
    assert result["error_txt"] == "Is a directory"  # the CLI's one line says so
    logged = [r.getMessage() for r in caplog.records if "cannot write" in r.getMessage()]
    assert logged
    assert "rank 1: RuntimeError: injected fault: rank 1 crashed at step 2" in logged[0]


def test_a_finished_run_of_another_seed_is_moved_aside_not_taken_for_this_one(
    compose_cfg, tmp_path
) -> None:
    import json

    from sgprepro.config import config_hash

    done = validate(compose_cfg(["nodes=2", "debug=tiny", "seed=0"]))
    out = tmp_path / "run"
    out.mkdir()
    run = {"config_hash": config_hash(done), "config": {"seed": 0}}
    (out / "run.json").write_text(json.dumps(run))
    (out / "done").write_text("")
    assert app.prepare_run_dir(done, out) is not None  # the same seed: skipped
    other = validate(compose_cfg(["nodes=2", "debug=tiny", "seed=1"]))
    assert config_hash(other) == config_hash(done)  # the hash leaves the seed out
    assert app.prepare_run_dir(other, out) is None  # so the seed is compared too: it runs
    (kept,) = (out / "attempts").iterdir()
    assert json.loads((kept / "run.json").read_text()) == run  # the finished run, moved aside
    assert (kept / "done").exists()
