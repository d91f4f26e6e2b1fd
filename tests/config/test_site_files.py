"""``local=<site>``: a site file without its package line is refused with the file and the fix
(a missing one: ``tests/config/test_overrides.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sgprepro.cli import SITE_HEADER, _check_site_files


def _site(root: Path, text: str) -> Path:
    (root / "local").mkdir(parents=True, exist_ok=True)
    path = root / "local" / "lab.yaml"
    path.write_text(text)
    return path


def test_a_site_file_without_the_package_line_is_refused(tmp_path, capsys):
    path = _site(tmp_path, "data:\n  root: /datasets/imagenet\n")
    with pytest.raises(SystemExit) as exc:
        _check_site_files(["nodes=4", "local=lab"], tmp_path)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: local=lab: {path} must start with the line '{SITE_HEADER}'")
    assert err.endswith("add that line as its first line")
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("arg", ["local=lab", "+local=lab"])
def test_a_site_file_with_the_package_line_passes(tmp_path, capsys, arg):
    _site(tmp_path, f"\n{SITE_HEADER}\ndata:\n  root: /datasets/imagenet\n")
    _check_site_files(["nodes=4", arg], tmp_path)  # would exit with an error line
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("value", ["other,lab", "choice(other,lab)"])
def test_each_site_of_a_sweep_is_checked(tmp_path, capsys, value):
    _site(tmp_path, "data:\n  root: /x\n")
    (tmp_path / "local" / "other.yaml").write_text(f"{SITE_HEADER}\n")
    with pytest.raises(SystemExit):
        _check_site_files(["-m", f"local={value}"], tmp_path)
    assert capsys.readouterr().err.startswith("error: local=lab: ")


def test_sites_elsewhere_removals_and_other_keys_are_left_to_hydra(tmp_path, capsys):
    _site(tmp_path, "data:\n  root: /x\n")  # lab.yaml lacks the line, but none of these reads it
    _check_site_files(["local=other", "data.local=lab", "~local=lab", "nodes=4"], tmp_path)
    assert capsys.readouterr().err == ""
