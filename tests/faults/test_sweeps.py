"""A sweep goes on past an invalid cell or a failed run and ends non-zero with the list; a name
that would put files outside the run folders is refused before Hydra creates anything."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from sgprepro.config import ConfigError
from sgprepro.train.callbacks import check_sweep_folders
from tests.faults.helpers import error_lines, run_cli


def _sweep(task: list[str], params: dict | None = None, study: str = "adhoc"):
    return OmegaConf.create(
        {
            "study": study,
            "network": {"name": "eth_10g"},
            "hydra": {
                "overrides": {"task": task},
                "sweeper": {"params": params or {}},
                "job": {"config": {"override_dirname": {"exclude_keys": ["study", "data.root"]}}},
            },
        }
    )


@pytest.mark.parametrize(
    ("task", "params", "study", "words"),
    [
        ([], None, "../x", "study=../x: a study name is a folder name"),
        (["study=a,../../b"], None, "adhoc", "study=../../b: a study name"),
        ([], {"study": "a,b/c"}, "adhoc", "study=b/c: a study name"),
        (["network.name=ok,.."], None, "adhoc", "network.name=..: a network condition"),
        (["algorithm.variant=ok,../x"], None, "adhoc", "use algorithm.variant=sgp_2peer"),
        (
            ["train.inject_fault=../../../../etc"],
            None,
            "adhoc",
            "train.inject_fault=../../../../etc in a sweep: each override is part of its cell's",
        ),
        (["optim.epochs=1,2", "data.num_samples=../x"], None, "adhoc", "data.num_samples=../x"),
    ],
)
def test_a_sweep_whose_folders_would_leave_it_is_refused(task, params, study, words) -> None:
    with pytest.raises(ConfigError) as info:
        check_sweep_folders(_sweep(task, params, study))
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_a_sweep_with_ordinary_values_passes() -> None:
    check_sweep_folders(
        _sweep(
            ["nodes=4,8", "data.root=../data", "train.inject_fault=''"],
            {"algorithm": "sgp,allreduce"},
            "table1_eth10g",
        )
    )


@pytest.mark.dist
@pytest.mark.slow
def test_an_invalid_cell_is_skipped_and_the_others_run(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    proc = run_cli(["-m", "nodes=1,2", "debug=tiny", f"hydra.sweep.dir={sweep}"], tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    skipped, summary = error_lines(proc.stderr)
    assert skipped.startswith("error: cell #0 (nodes=1 debug=tiny): nodes=1: ")
    assert skipped.endswith("; skipped")
    assert summary.startswith("error: 1 cell(s) of the sweep did not run: #0 (nodes=1 debug=tiny)")
    (ran,) = sweep.glob("sgp-n2-*-s0")
    assert (ran / "done").exists()  # the next cell ran to the end
    assert not list(sweep.glob("sgp-n1-*"))  # the refused cell leaves no folder behind


def test_a_refused_cell_leaves_an_earlier_runs_folder_as_it_was(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    earlier = sweep / "sgp-n1-paper_regime-s0"  # the refused cell's folder holds a run already
    (earlier / ".hydra").mkdir(parents=True)
    records = {".hydra/config.yaml": "nodes: 1  # the earlier run's\n", "summary.json": "{}"}
    for name, text in records.items():
        (earlier / name).write_text(text)
    proc = run_cli(["-m", "nodes=1", "debug=tiny", f"hydra.sweep.dir={sweep}"], tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    skipped, _summary = error_lines(proc.stderr)
    assert skipped.startswith("error: cell #0 (nodes=1 debug=tiny): nodes=1: ")
    for name, text in records.items():  # Hydra wrote no .hydra/ for the refused cell
        assert (earlier / name).read_text() == text, name
    assert sorted(p.name for p in (earlier / ".hydra").iterdir()) == ["config.yaml"]


@pytest.mark.dist
@pytest.mark.slow
def test_a_warning_about_the_machine_is_said_once_per_sweep(tmp_path) -> None:
    netrc = tmp_path / "netrc"  # no W&B key anywhere
    netrc.write_text("")
    netrc.chmod(0o600)
    env = {"WANDB_API_KEY": None, "WANDB_MODE": None, "NETRC": str(netrc), "HOME": str(tmp_path)}
    sweep = tmp_path / "sweep"
    args = ["-m", "nodes=2", "seed=1,2", "debug=tiny", "logger.wandb_mode=online"]
    proc = run_cli([*args, f"hydra.sweep.dir={sweep}"], tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list(sweep.glob("sgp-n2-*/done"))) == 2
    said = [line for line in proc.stderr.splitlines() if "no W&B API key is configured" in line]
    (line,) = said
    assert line.startswith("warning: logger.wandb_mode=online files the run online, but no W&B")


@pytest.mark.dist
@pytest.mark.slow
def test_failed_runs_and_a_bad_cell_are_listed_and_bad_input_sets_the_status(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    proc = run_cli(
        [
            "-m",
            "nodes=2",
            "debug=tiny",
            "train.inject_fault=crash@3:1,crash@1:1",  # job 0: no rank 3 (bad input); job 1 fails
            f"hydra.sweep.dir={sweep}",
        ],
        tmp_path,
    )
    assert "Traceback" not in proc.stderr
    summary = error_lines(proc.stderr)[-1]
    assert proc.returncode == 2, proc.stderr[-3000:]  # bad input outranks a failed run
    skipped, failed = summary.split(" | ")
    assert skipped.startswith("error: 1 cell(s) of the sweep did not run: #0 ("), skipped
    assert "rank 3 does not exist" in skipped
    assert failed.startswith("1 run(s) failed (each keeps its error.txt;"), failed
    assert "#1 (" in failed
    assert "injected fault" in failed
    (crashed,) = [p for p in sweep.glob("sgp-n2-*") if (p / "run.json").exists()]
    assert (crashed / "error.txt").exists()
    assert not (crashed / "done").exists()


@pytest.mark.dist
@pytest.mark.slow
def test_a_study_name_outside_the_repository_is_refused_before_anything_is_written(
    tmp_path,
) -> None:
    # (a single run gets the same check from the whole validation, before Hydra makes its
    # folder: tests/config/test_bad_input.py::test_cli_rejects_bad_input_before_any_worker)
    cwd = tmp_path / "a" / "b" / "c"
    cwd.mkdir(parents=True)
    proc = run_cli(["-m", "nodes=2", "debug=tiny", "study=fine,../../../outside"], cwd)
    assert proc.returncode == 2, proc.stderr[-2000:]
    (line,) = error_lines(proc.stderr)
    assert line.startswith("error: study=../../../outside: a study name is a folder name")
    assert "use study=my_study" in line
    assert line.endswith("(no cell was started)")
    assert "Traceback" not in proc.stderr
    # nothing anywhere: not outside, and not even the valid cell of the sweep
    assert [str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")] == ["a", "a/b", "a/b/c"]


def test_a_refused_cells_folder_is_removed_only_if_hydra_alone_wrote_it(tmp_path) -> None:
    from sgprepro.cli import _drop_refused_folder

    fresh, earlier = tmp_path / "fresh", tmp_path / "earlier"
    for out in (fresh, earlier):
        (out / ".hydra").mkdir(parents=True)
        (out / ".hydra" / "config.yaml").write_text("nodes: 1\n")
        (out / "sgprepro.log").write_text("")
    (earlier / "summary.json").write_text("{}")
    _drop_refused_folder(fresh, "sgprepro.log")
    _drop_refused_folder(earlier, "sgprepro.log")
    assert not fresh.exists()
    kept = sorted(p.name for p in earlier.iterdir())
    assert kept == [".hydra", ".lock", "sgprepro.log", "summary.json"]  # a run makes .lock too


def test_a_refused_cells_folder_held_by_another_job_is_left_alone(tmp_path) -> None:
    import fcntl
    import os

    from sgprepro.cli import _drop_refused_folder

    out = tmp_path / "live"
    (out / ".hydra").mkdir(parents=True)
    (out / "sgprepro.log").write_text("")
    fd = os.open(out / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a job that validated and holds its folder
        _drop_refused_folder(out, "sgprepro.log")
        assert (out / ".hydra").is_dir()
    finally:
        os.close(fd)
