"""Every row of the bad-input table gets a clear error before any worker starts, and
docs/bad_inputs.md is the table rendered."""

from __future__ import annotations

import pytest

from sgprepro.config import HostFacts, validate
from tests.faults.bad_inputs import CASES, DOC, Case, Outcome, counts, render, run_case
from tests.faults.helpers import run_cli

_OUTCOMES: dict[str, Outcome] = {}


def _outcome(c: Case) -> Outcome:
    if c.label not in _OUTCOMES:
        _OUTCOMES[c.label] = run_case(c)
    return _OUTCOMES[c.label]


def test_the_table_has_no_duplicate_rows() -> None:
    assert len({c.label for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_bad_input_gets_a_clear_error(case: Case) -> None:
    outcome = _outcome(case)
    assert outcome.kind in ("override", "compose", "validate"), outcome
    if outcome.kind in ("override", "validate"):
        assert "\n" not in outcome.message, outcome.message
        assert outcome.message.startswith(case.expect[0]) or f" {case.expect[0]}" in (
            outcome.message
        ), outcome.message
    for words in case.expect:
        assert words in outcome.message, (words, outcome.message)


def test_counts_no_traceback_and_nothing_silently_accepted() -> None:
    n = counts([_outcome(c) for c in CASES])
    assert n["tried"] == len(CASES) >= 60
    assert n["traceback"] == 0
    assert n["accepted"] == 0
    assert n["clear"] == n["tried"]


def test_docs_bad_inputs_md_is_the_table_rendered() -> None:
    expected = render([_outcome(c) for c in CASES])
    assert DOC.read_text() == expected, (
        "docs/bad_inputs.md is out of date: run .venv/bin/python -m tests.faults.bad_inputs"
    )


def test_the_valid_neighbours_of_the_bad_inputs_are_accepted(compose_cfg) -> None:
    """The bounds are not too tight: the values next to the refused ones pass."""
    host = HostFacts(cpu_cores=2, cuda=False, slurm_task=False)
    for overrides in (
        ["nodes=32"],  # 16 per core on 2 cores
        ["nodes=40", "comm.max_nodes_per_core=20"],
        ["nodes=40", "comm.max_nodes_per_core=0"],  # no bound
        ["nodes=4", "algorithm=allreduce", "topology=auto"],
        ["nodes=4", "comm.timeout_s=1"],
        ["nodes=4", "train.log_every=1", "comm.threads_per_worker=1"],
        ["nodes=4", "study=table1_eth10g.v2-b"],
        ["nodes=4", "seed=0", "train.max_steps=0", "optim.nesterov=false", "optim.momentum=0"],
    ):
        validate(compose_cfg(overrides), host=host)
    # the machine checks apply only where the job launches: a dry run plans a cluster job
    paper = compose_cfg(["experiment=paper_imagenet", "algorithm=sgp", "nodes=32", "dry_run=true"])
    assert validate(paper, check_paths=False, host=host).comm.backend == "nccl"
    # on a cluster the nodes-per-core bound does not apply (one task per node)
    validate(
        compose_cfg(["nodes=1000", "data.num_samples=100000"]),
        host=HostFacts(cpu_cores=2, cuda=False, slurm_task=True),
    )


@pytest.mark.parametrize(
    ("label", "stage"),
    [
        ("nodes=4 network.bandwith_gbps=3", "override"),
        ("nodes=4 algorithm=adpsgd algorithm.gossip_margin_rounds=-1", "validate"),
        ("nodes=4 optim.milestones=[abc]", "compose"),
    ],
)
def test_a_row_of_each_stage_gets_its_error_from_the_command_line(
    label: str, stage: str, tmp_path
) -> None:
    """The table is computed in-process; the command line prints the same error with the exit
    status the table's header promises (2: override, validate; 1: Hydra's compose)."""
    (c,) = [c for c in CASES if c.label == label]
    outcome = _outcome(c)
    assert outcome.kind == stage, outcome
    proc = run_cli([*c.overrides, f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    assert "Traceback" not in proc.stderr, proc.stderr
    if outcome.kind == "compose":
        assert proc.returncode == 1, proc.stderr
        assert all(words in proc.stderr for words in c.expect), proc.stderr
    else:
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip().splitlines() == [f"error: {outcome.message}"]
