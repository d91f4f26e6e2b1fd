"""Execute notebooks/analysis.ipynb on the fixture records with the venv's interpreter."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "analysis.ipynb"
SCRIPT = REPO / "notebooks" / "analysis.py"
KERNEL = "sgprepro-test-python"


def _sources(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def test_pair_is_in_sync():
    """The .ipynb holds the same cells as the py:percent script (run `jupytext --sync`)."""
    assert _sources(jupytext.read(SCRIPT)) == _sources(nbformat.read(NOTEBOOK, as_version=4))


@pytest.mark.slow
def test_notebook_runs_on_fixture_records(tmp_path, monkeypatch):
    spec = tmp_path / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "sgprepro venv (test)",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setenv("SGPREPRO_RUNS", "tests/fixtures/runs/table1_small")
    monkeypatch.setenv("SGPREPRO_STUDY", "tests/fixtures/study")
    monkeypatch.setenv("MPLBACKEND", "Agg")

    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout=120,
        resources={"metadata": {"path": str(REPO / "notebooks")}},
    ).execute()

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    markdown = [o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
    assert any(
        "| SGP (1 peer) | top-1 % (node mean) | 60.90 ± 0.14 (n=2) | 76.33 |" in m for m in markdown
    )
    assert any("speed-up over AllReduce SGD" in m for m in markdown)  # the main table
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 6
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "metrics_r5.jsonl:6" in text
    assert "too few for a correlation" in text
