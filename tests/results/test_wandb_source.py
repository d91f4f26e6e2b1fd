"""The W&B source on a recorded fixture of `wandb.Api().runs(...)`; no network."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from results_helpers import EXPECTED, WANDB_FIXTURE

from sgprepro.results import collect_wandb, to_csv
from sgprepro.results.table import comparison_table
from sgprepro.results.wandb_source import curves_from_wandb, parse_source


class RecordedApi:
    """Replays recorded runs; records the paths asked for."""

    def __init__(self, doc: dict):
        self._doc = doc
        self.paths: list[str] = []

    def runs(self, path: str):
        self.paths.append(path)
        return [SimpleNamespace(**r) for r in self._doc["runs"]]


@pytest.fixture(scope="module")
def api() -> RecordedApi:
    return RecordedApi(json.loads(WANDB_FIXTURE.read_text()))


def test_wandb_runs_give_the_same_frame_shape_and_statuses(api, collected):
    res = collect_wandb("wandb:sgp-lab/sgprepro", api=api)
    assert api.paths[-1] == "sgp-lab/sgprepro"
    assert res.counts() == {
        "ok": 6,
        "incomplete": 1,
        "failed": 1,
        "invalid": 0,
        "conflict": 1,
        "duplicate": 0,
    }
    assert set(collected.runs.columns) - set(res.runs.columns) == set()
    assert res.runs["run_dir"].str.startswith("wandb:sgp-lab/sgprepro/").all()
    local = collected.runs.sort_values(["algorithm", "nodes", "seed", "status"])
    remote = res.runs.sort_values(["algorithm", "nodes", "seed", "status"])
    assert local["status"].tolist() == remote["status"].tolist()
    assert local["config_hash"].tolist() == remote["config_hash"].tolist()


def test_wandb_table_matches_the_golden_table(api, layout):
    res = collect_wandb("sgp-lab/sgprepro", api=api)
    assert to_csv(comparison_table(res.runs, layout)) == (EXPECTED / "table1_small.csv").read_text()


def test_wandb_curves(api):
    runs = api.runs("sgp-lab/sgprepro")
    curves = curves_from_wandb(runs, "sgp-lab/sgprepro")
    assert len(curves) == 2 * 7  # 7 finished runs carry a 2-point curve
    assert curves["algorithm"].notna().all()


@pytest.mark.parametrize("bad", ["wandb:", "wandb:entity", "wandb:a/b/c", "s3:a/b"])
def test_parse_source_rejects(bad):
    with pytest.raises(ValueError, match="wandb:<entity>/<project>"):
        parse_source(bad)


def test_a_project_w_and_b_cannot_read_is_one_line_naming_the_source_and_a_fix():
    import wandb

    from sgprepro.results.wandb_source import load_wandb

    class Unreachable:
        def runs(self, path):
            raise wandb.errors.CommError("Could not reach api.wandb.ai\n(after 3 retries)")

    for read in (collect_wandb, load_wandb):
        with pytest.raises(ValueError, match="W&B could not be read") as exc:
            read("wandb:team/sgprepro", api=Unreachable())
        assert str(exc.value) == (
            "--source=wandb:team/sgprepro: W&B could not be read (Could not reach api.wandb.ai "
            "(after 3 retries)); log in (wandb login, or WANDB_API_KEY) where W&B is reachable, "
            "or report local records with --runs <dir>"
        )


def test_a_w_and_b_run_gives_the_cpu_kernels_its_config_records():
    doc = json.loads(WANDB_FIXTURE.read_text())
    kernels = {"aten": "AVX2", "mkl_cbwr": "AVX2", "onednn_max_cpu_isa": "AVX2", "pinned": True}
    doc["runs"][0]["config"] = {**doc["runs"][0]["config"], "cpu_kernels": kernels}
    doc["runs"][1]["config"] = {**doc["runs"][1]["config"], "cpu_kernels": "AVX2"}  # not a dict
    runs = collect_wandb("sgp-lab/sgprepro", api=RecordedApi(doc)).runs
    ids = [r["id"] for r in doc["runs"]]
    by_id = dict(
        zip(runs["run_dir"].str.rsplit("/", n=1).str[-1], runs["cpu_kernels"], strict=True)
    )
    assert by_id[ids[0]] == "aten AVX2, MKL AVX2, oneDNN AVX2"
    assert by_id[ids[1]] == ""  # what the label cannot read counts as not recorded
    assert by_id[ids[2]] == ""  # a run filed before the record existed
