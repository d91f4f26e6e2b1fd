"""A misspelled group option, an unknown setting, a value of the wrong type or a list of values
without -m is refused in one line naming the override, what is allowed and the fix, before Hydra
composes anything (Hydra's own errors run to 6-18 lines)."""

from __future__ import annotations

import pytest

from sgprepro.overrides import check_overrides
from tests.faults.helpers import run_cli

ALGORITHMS = "adpsgd, allreduce, allreduce_ddp, dpsgd, local_sgd, osgp, sgp, sgp_2peer, sgp_delayed"


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["nodes=4", "algorithm=SGP"],
            (
                f"algorithm=SGP: no algorithm option of that name (conf/algorithm/ has {ALGORITHMS}); "
                "use algorithm=sgp"
            ),
        ),
        (
            ["-m", "nodes=4", "algorithm=sgp,dpsgdd"],
            (
                f"algorithm=dpsgdd: no algorithm option of that name (conf/algorithm/ has {ALGORITHMS}); "
                "use algorithm=dpsgd"
            ),
        ),
        (
            ["-m", "+sweep=table1_scald"],
            (
                "+sweep=table1_scald: no sweep option of that name (conf/sweep/ has beyond_paper, "
                "table1_paper, table1_scaled); use +sweep=table1_scaled"
            ),
        ),
        (
            ["nodes=4", "network=mars"],
            (
                "network=mars: no network option of that name (conf/network/ has eth_10g, ib_100g, "
                "ideal, paper_regime, wan); use one of them (or add conf/network/mars.yaml)"
            ),
        ),
        (
            ["nodes=4,8"],
            (
                "nodes=4,8: a list of values is a sweep, one run per value; add -m to run them all "
                "(python -m sgprepro.train -m ...), or give one value"
            ),
        ),
        (
            ["nodes=4", "algorithm=sgp,dpsgd"],
            (
                "algorithm=sgp,dpsgd: a list of options is a sweep, one run per value; add -m to run "
                "them all (python -m sgprepro.train -m ...), or give one value"
            ),
        ),
        (
            ["nodes=4.5"],
            (
                "nodes=4.5: nodes takes an integer (Value '4.5' of type 'float' could not be "
                "converted to Integer); fix the value"
            ),
        ),
        (
            ["nodes=4", "dry_run=maybe"],
            (
                "dry_run=maybe: dry_run takes true or false (Value 'maybe' is not a valid bool (type "
                "str)); fix the value"
            ),
        ),
        (
            ["+sweep=table1_scaled"],
            (
                "+sweep=table1_scaled is a study, one run per cell of its grid: add -m (python -m "
                "sgprepro.train -m +sweep=table1_scaled, or make reproduce-table "
                "STUDY=table1_scaled), or give nodes=... for one cell of it"
            ),
        ),
        (
            ["-m", "sweep=table1_scaled"],
            (
                "sweep=table1_scaled: the sweep group is not in the config's defaults list, so "
                "it is added with +; use +sweep=table1_scaled"
            ),
        ),
        (
            ["nodes=4", "network.latency_s=abc"],  # an Optional setting (float | None)
            (
                "network.latency_s=abc: network.latency_s takes a number (Value 'abc' of type "
                "'str' could not be converted to Float); fix the value"
            ),
        ),
        (["nodes.x=1"], "nodes.x: nodes is a single value, not a group; set nodes=<value>"),
        (
            ["nodes=4", "local=nosuchsite"],
            None,  # checked below: the path depends on where the tests run
        ),
        (
            ["nodes=4", "hydra/launcher=slurm"],
            (
                "hydra/launcher=slurm: a launcher starts the cells of a sweep, and without -m "
                "this is one run on this machine; add -m to submit it (a sweep of one cell), or "
                "drop hydra/launcher=slurm to run here"
            ),
        ),
    ],
)
def test_a_bad_override_is_named_with_what_is_allowed_and_the_fix(argv, line) -> None:
    said = check_overrides(argv)
    if line is not None:
        assert said == line
        return
    assert said is not None
    assert said.startswith("local=nosuchsite: no site file ")
    assert said.endswith(
        "nosuchsite.yaml; create it (its first line '# @package _global_', then settings such as "
        "data.root), or drop local=nosuchsite"
    )


def test_a_typo_inside_a_key_is_fixed_in_place() -> None:
    line = check_overrides(["nodes=4", "algoritm.tau=2"])
    assert line is not None
    assert line.startswith("algoritm.tau=2: algoritm is not a setting of the config (its settings:")
    assert line.endswith("; set algorithm.tau=2 instead")  # the group, not algorithm=2
    new = check_overrides(["nodes=4", "++newkey=1"])
    assert new is not None
    assert new.endswith("; remove it")  # not "set network=1": a group is no value's fix


def test_an_unknown_setting_is_named_with_the_nearest_one() -> None:
    line = check_overrides(["nodes=4", "network.bandwith_gbps=3"])
    assert line is not None
    assert line.startswith(
        "network.bandwith_gbps=3: not a setting of network (its settings: name, latency_s,"
    )
    assert line.endswith("; set network.bandwidth_gbps=3 instead")
    assert check_overrides(["nodes=4", "optim.lr=0.1"]).endswith(  # type: ignore[union-attr]
        "; set optim.lr_per_ref_batch=0.1 instead"
    )
    plus = check_overrides(["nodes=4", "+optim.moment=0.9"])
    assert plus is not None
    assert plus.endswith("; set optim.momentum=0.9 instead (without +)")
    assert check_overrides(["nodes=4", "+optim.extra=1"]).endswith("; remove it")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "argv",
    [
        ["nodes=4", "algorithm=sgp", "network=wan", "seed=3", "dry_run=true"],
        ["-m", "+sweep=table1_scaled"],
        ["-m", "nodes=4,8", "algorithm=sgp,dpsgd", "seed=range(3)"],
        ["nodes=16", "topology=exponential_2peer_early", "+topology.peers_schedule={0:3,30:3}"],
        ["nodes=4", "data.root=${oc.env:HOME}", "study='a,b'", "optim.milestones=[3,6]"],
        ["nodes=4", "+sweep=table1_scaled"],  # one cell of a study, by hand
        ["-m", "nodes=4", "hydra/launcher=slurmm"],  # Hydra's own groups: Hydra's own check
        ["nodes=4", "hydra/launcher=basic"],
        ["nodes=4", "~logger"],
        ["-cn", "other", "whatever=1"],  # another config: left to Hydra
        ["--config-dir=/elsewhere", "nodes=4", "network=mynet"],  # = form of the flag
        ["+sweep=table1_scaled", "--cfg", "job"],  # printing a study's config
        ["nodes=4", "hydra/launcher=slurm", "--cfg", "hydra"],
        ["nodes=4,8", "hydra.mode=MULTIRUN"],  # Hydra's other spelling of -m
        ["nodes=4", "optim.milestones.0=10"],  # an index into a list setting
        ["--config-d", "/elsewhere", "nodes=4", "local=farsite"],  # an abbreviated flag
        ["nodes=4", "algorithm=${oc.env:ALG,sgp}", "+sweep=${oc.env:S,x}"],  # resolved by Hydra
        ["nodes=4", "local=${oc.env:SITE}"],
        ["-m", "nodes=4", "local=glob(*)"],
        ["nodes=4", "algorithm=dpsgd.yaml"],  # Hydra drops the suffix
        ["nodes=4,8", "+hydra.mode=MULTIRUN"],
        ["nodes=4,8", "hydra.mode='MULTIRUN'"],
        ["--multi", "nodes=4,8"],  # argparse takes a unique prefix
        ["-cjob", "+sweep=table1_scaled"],  # -c job
        ["--version", "nodes=4,8"],
        ["nodes=4", "network.latency_s=null", "network.efficiency=1"],
    ],
)
def test_ordinary_overrides_pass(argv) -> None:
    assert check_overrides(argv) is None


def test_the_cli_refuses_in_one_line_before_anything_is_written(tmp_path) -> None:
    proc = run_cli(["nodes=4", "algorithm=SGP", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        (
            f"error: algorithm=SGP: no algorithm option of that name (conf/algorithm/ has "
            f"{ALGORITHMS}); use algorithm=sgp"
        )
    ]
    assert not (tmp_path / "run").exists()
