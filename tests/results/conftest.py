from __future__ import annotations

import pytest
from results_helpers import FIXTURE_RUNS, STUDY_DIR

from sgprepro.results import collect_runs, load_layout
from sgprepro.results.collect import CollectResult
from sgprepro.results.layout import Layout


@pytest.fixture(scope="session")
def layout() -> Layout:
    return load_layout(STUDY_DIR)


@pytest.fixture(scope="session")
def collected() -> CollectResult:
    return collect_runs(FIXTURE_RUNS)
