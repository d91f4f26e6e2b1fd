"""Every algorithm.* knob belongs to an algorithm, and one given for another algorithm is named;
a peers schedule that Hydra merged into a longer preset's is refused; a dry run names what it
could not check."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from sgprepro.algorithms import algorithm_class, algorithm_names
from sgprepro.config import (
    ConfigError,
    merged_schedule,
    recorded_overrides,
    unread_settings,
    unscaled_schedule,
    validate,
)
from sgprepro.paths import conf_dir
from sgprepro.results.table import result_changing
from sgprepro.schema import AlgorithmConfig
from tests.faults.helpers import run_cli


def test_every_knob_is_read_by_some_algorithm_and_every_declared_one_exists() -> None:
    knobs = {f.name for f in dataclasses.fields(AlgorithmConfig)} - {"name", "variant"}
    declared = {s for a in algorithm_names() for s in algorithm_class(a).settings}
    assert declared == knobs


def test_a_knob_the_algorithm_does_not_read_is_named_with_who_reads_it(compose_cfg) -> None:
    cfg = validate(compose_cfg(["nodes=4", "algorithm.tau=3"]), check_paths=False)
    (line,) = unread_settings(cfg, ["nodes=4", "algorithm.tau=3", "algorithm.variant=x"])
    assert line == (
        "algorithm.tau=3 has no effect with algorithm=sgp (it is a setting of sgp_delayed); "
        "drop it or use algorithm=sgp_delayed"
    )
    delayed = validate(compose_cfg(["nodes=4", "algorithm=sgp_delayed"]), check_paths=False)
    assert unread_settings(delayed, ["algorithm=sgp_delayed", "algorithm.tau=3"]) == []
    ar = validate(compose_cfg(["nodes=4", "algorithm=allreduce"]), check_paths=False)
    (both,) = unread_settings(ar, ["algorithm.average_every=4"])
    assert "(it is a setting of local_sgd)" in both
    shared = ["algorithm.allreduce_algo=ring"]  # read by allreduce and local_sgd alike
    assert unread_settings(ar, shared) == []
    ddp = validate(compose_cfg(["nodes=4", "algorithm=allreduce_ddp"]), check_paths=False)
    (row,) = unread_settings(ddp, ["algorithm.average_every=4"])
    assert row.startswith(
        "algorithm.average_every=4 has no effect with algorithm=allreduce (variant allreduce_ddp)"
    )


def test_the_cli_warns_and_still_runs(tmp_path) -> None:
    proc = run_cli(["nodes=4", "algorithm.clock=real", "dry_run=true"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (
        "warning: algorithm.clock=real has no effect with algorithm=sgp (it is a setting of "
        "adpsgd)" in proc.stderr
    )
    assert "would launch sgp on nodes=4" in proc.stdout


def test_a_dry_run_says_when_the_dataset_folder_is_not_set(compose_cfg) -> None:
    from sgprepro.app import plan

    paper = ["nodes=32", "experiment=paper_imagenet", "algorithm=sgp"]
    line = plan(validate(compose_cfg(paper), check_paths=False))
    assert line.startswith("would launch sgp on nodes=32 ")
    assert line.endswith(
        "; data.root is not set: set it (data.root=... or conf/local/<site>.yaml) before the real run"
    )
    with_root = plan(validate(compose_cfg([*paper, "data.root=/data/imagenet"]), check_paths=False))
    assert "data.root" not in with_root
    assert "data.root" not in plan(validate(compose_cfg(["nodes=4"]), check_paths=False))


def test_a_dry_run_names_the_variant_it_would_launch(compose_cfg) -> None:
    from sgprepro.app import plan

    two = plan(validate(compose_cfg(["nodes=8", "algorithm=sgp_2peer"]), check_paths=False))
    assert two.startswith("would launch sgp_2peer (sgp) on nodes=8 ")
    one = plan(validate(compose_cfg(["nodes=8", "algorithm=sgp"]), check_paths=False))
    assert one.startswith("would launch sgp on nodes=8 ")


@pytest.mark.parametrize(
    "overrides",
    [
        ["nodes=16", "topology=exponential_2peer_early"],  # the preset's own schedule
        ["nodes=16", "topology=exponential_2peer_early", "+topology.peers_schedule={0:3,5:1}"],
        ["nodes=16", "topology=exponential_2peer_early", "+topology.peers_schedule={0:3,30:3}"],
        ["nodes=32", "algorithm=sgp_2peer", "topology.peers_schedule={0:4}"],
    ],
)
def test_a_schedule_that_hydra_merged_without_changing_it_is_accepted(compose_cfg, overrides):
    cfg = validate(compose_cfg(overrides), check_paths=False, overrides=overrides)
    assert merged_schedule(cfg, overrides) is None


def test_a_schedule_merged_into_a_longer_preset_is_refused_with_the_schedule_meant(compose_cfg):
    overrides = ["nodes=16", "topology=exponential_2peer_early", "+topology.peers_schedule={0:3}"]
    with pytest.raises(ConfigError) as exc:
        validate(compose_cfg(overrides), check_paths=False, overrides=overrides)
    assert str(exc.value) == (
        "topology.peers_schedule={0:3}: Hydra merged it into the schedule the config already had "
        "(from a topology or algorithm preset), so the run would use {0:3,30:1}; give those "
        "epochs too, e.g. '+topology.peers_schedule={0:3,30:3}' (quoted for the shell)"
    )


def test_a_logger_choice_a_later_preset_replaced_is_named(compose_cfg):
    from sgprepro.config import overridden_choices

    overrides = ["nodes=4", "logger=offline", "debug=tiny"]
    cfg = validate(compose_cfg(overrides), check_paths=False)
    expected = (
        "logger=offline sets logger.wandb_mode=offline, but a later preset (debug=...) set it to "
        "disabled; add logger.wandb_mode=offline to keep it"
    )
    assert overridden_choices(cfg, overrides) == [expected]
    kept = [*overrides, "logger.wandb_mode=offline"]
    assert overridden_choices(validate(compose_cfg(kept), check_paths=False), kept) == []
    plain = ["nodes=4", "logger=offline"]
    assert overridden_choices(validate(compose_cfg(plain), check_paths=False), plain) == []


def test_recorded_overrides_keep_the_presets_the_folder_name_leaves_out() -> None:
    hydra = yaml.safe_load((conf_dir() / "config.yaml").read_text())["hydra"]
    exclude = hydra["job"]["config"]["override_dirname"]["exclude_keys"]
    task = ["+sweep=table1_scaled", "nodes=4", "algorithm=sgp", "seed=1", "debug=tiny"]
    task += ["logger=offline", "optim.epochs=3", "experiment=paper_imagenet"]
    recorded = recorded_overrides(task, exclude, "table1_scaled")
    assert recorded == "debug=tiny,experiment=paper_imagenet,optim.epochs=3"
    assert result_changing(recorded) == recorded  # a preset makes a study's run another experiment
    study_only = ["+sweep=table1_scaled", "nodes=4", "seed=0", "debug=null", "~experiment"]
    assert recorded_overrides(study_only, exclude, "table1_scaled") == ""
    # the documented way to run one cell of table1_paper is that study's run, not a variant
    cell = ["experiment=paper_imagenet", "algorithm=sgp", "nodes=32"]
    assert recorded_overrides(cell, exclude, "table1_paper") == ""


def test_an_unscaled_schedule_longer_than_the_run_is_named(compose_cfg) -> None:
    def lines(*overrides: str) -> list[str]:
        cfg = compose_cfg(["nodes=4", "optim.scale_to_epochs=false", *overrides])
        return unscaled_schedule(validate(cfg, check_paths=False))

    (line,) = lines("optim.epochs=40")
    assert line.startswith(
        "optim.scale_to_epochs=false with optim.epochs=40: the run ends before its milestones "
        "60, 80 (a 90-epoch schedule)"
    )
    assert line.endswith("use optim.scale_to_epochs=true to fit the schedule to the run")
    (line,) = lines("optim.epochs=5")  # the warm-up's last iteration is below epoch 5
    assert ": the run ends before the end of its 5-epoch warm-up and its milestones 30, 60" in line
    (line,) = lines("optim.epochs=70")
    assert ": the run ends before its milestone 80 (" in line
    assert lines("optim.epochs=90") == []
    # a milestone at the schedule's last epoch never applies, scaled or not: nothing to advise
    assert lines("optim.epochs=90", "optim.milestones=[30,90]") == []
    assert unscaled_schedule(validate(compose_cfg(["nodes=4"]), check_paths=False)) == []
