"""A sweep goes on past an invalid cell and ends non-zero with the list; a name that would put
files outside the run folders is refused before Hydra creates anything."""

from __future__ import annotations

import pytest

from tests.faults.helpers import error_lines, run_cli

pytestmark = [pytest.mark.dist, pytest.mark.slow]


def test_an_invalid_cell_is_skipped_and_the_others_run(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    proc = run_cli(["-m", "nodes=1,2", "debug=tiny", f"hydra.sweep.dir={sweep}"], tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    skipped, summary = error_lines(proc.stderr)
    assert skipped.startswith("error: cell #0 (nodes=1 debug=tiny): nodes=1: ")
    assert skipped.endswith("; skipped")
    assert summary.startswith("error: 1 cell(s) of the sweep did not run: #0 (nodes=1 debug=tiny)")
    assert (sweep / "sgp-n2-eth_10g-s0" / "done").exists()  # the next cell ran to the end
    assert not (sweep / "sgp-n1-eth_10g-s0" / "run.json").exists()


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
    assert "use study=my_study" in line and line.endswith("(no cell was started)")
    assert "Traceback" not in proc.stderr
    # nothing anywhere: not outside, and not even the valid cell of the sweep
    assert [str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")] == ["a", "a/b", "a/b/c"]
