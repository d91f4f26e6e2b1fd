"""The bad-input table: every input a careless user may give, and the error each one gets.

One row per case: the command-line overrides, then the words the error must contain (for an error
of ``validate``, the first is ``key=value``). ``tests/faults/test_bad_inputs.py`` runs every row
(compose, then validate, as ``python -m sgprepro.train`` does before any worker starts) and checks
that ``docs/bad_inputs.md`` is this table rendered. Regenerate the doc after editing the table:

    .venv/bin/python -m tests.faults.bad_inputs

Outcomes: "override" (the command line alone is refused, before Hydra composes: an unknown
preset, setting or type, a list of values without -m; one line), "compose" (Hydra refuses the
override, with its own message naming the key), "validate" (``ConfigError``: one line naming key, value,
constraint and fix), "traceback" (any other exception) and "accepted" (silently wrong).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from sgprepro.config import ConfigError, HostFacts, validate

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "bad_inputs.md"
# The machine the table is written for: 2 CPU cores, no CUDA, a local launch. Fixed, so the
# messages (and the doc) do not depend on the machine that runs the tests.
HOST = HostFacts(cpu_cores=2, cuda=False, slurm_task=False)


@dataclass(frozen=True)
class Case:
    overrides: tuple[str, ...]
    expect: tuple[str, ...]  # fragments of the error message, in any order
    host: HostFacts = HOST  # the machine and launcher (torchrun: a world size of its own)

    @property
    def label(self) -> str:
        text = " ".join(self.overrides) or "(none)"
        if self.host.world_size is not None:
            text = f"{self.host.world_source} {text}"
        return text


def case(overrides: str, *expect: str, host: HostFacts = HOST) -> Case:
    return Case(tuple(overrides.split()), expect, host)


def under_torchrun(world_size: int) -> HostFacts:
    """This machine, with the process started as one rank of a ``world_size``-rank job."""
    return HostFacts(
        cpu_cores=2,
        cuda=False,
        slurm_task=False,
        world_size=world_size,
        world_source=f"WORLD_SIZE={world_size}",
    )


CASES: tuple[Case, ...] = (
    # -- the node count and the graph
    case("", "nodes=???", "explicit", "set nodes=4"),
    case("nodes=1", "nodes=1", "at least 2", "use nodes=4"),
    case("nodes=0 algorithm=allreduce", "nodes=0", "at least 2", "use nodes=4"),
    case("nodes=abc", "nodes=abc: nodes takes an integer", "fix the value"),
    case("nodes=4.5", "nodes=4.5: nodes takes an integer", "fix the value"),
    case("nodes=4,8", "nodes=4,8: a list of values is a sweep", "add -m"),
    case("nodes=4 hydra/launcher=slurm", "hydra/launcher=slurm: a launcher starts", "add -m"),
    case("+sweep=table1_scaled", "+sweep=table1_scaled is a study", "add -m", "give nodes="),
    case("-m sweep=table1_scaled", "sweep=table1_scaled: the sweep group is not in", "use +sweep"),
    case(
        "nodes=4 network.latency_s=abc", "network.latency_s=abc: network.latency_s takes a number"
    ),
    case(
        "-m +sweep=table1_scald", "+sweep=table1_scald: no sweep option", "use +sweep=table1_scaled"
    ),
    case("nodes=1000", "nodes=1000", "comm.max_nodes_per_core=16", "use nodes<=32"),
    case("nodes=40 comm.max_nodes_per_core=-1", "comm.max_nodes_per_core=-1", ">= 0", "use"),
    case("nodes=5 algorithm=dpsgd", "nodes=5", "even node count", "use nodes=6"),
    case("nodes=7 algorithm=adpsgd", "nodes=7", "even node count", "use nodes=8"),
    case(
        "nodes=4",
        "nodes=4",
        "WORLD_SIZE=2",
        "nodes must equal",
        "use nodes=2",
        "torchrun --nnodes 4",
        host=under_torchrun(2),
    ),
    case("nodes=4 +foo=1", "foo=1", "not a setting of the config", "remove it"),
    case(
        "nodes=4 +optim.lr=0.1",
        "optim.lr=0.1",
        "not a setting of optim",
        "; set optim.lr_per_ref_batch=0.1 instead (without +)",
    ),
    case(
        "nodes=4 +optim.moment=0.9",
        "optim.moment=0.9",
        "; set optim.momentum=0.9 instead (without +)",
    ),
    case(
        "nodes=4 +optim.extra={a:1,b:null}",
        "optim.extra={a:1,b:null}: not a setting of optim",
        "; remove it",
    ),
    case("nodes=4 algorithm.name=foo", "algorithm.name='foo'", "unknown", "choose one of"),
    case("nodes=4 algorithm=foo", "algorithm=foo: no algorithm option", "conf/algorithm/ has"),
    case("nodes=4 algorithm=SGP", "algorithm=SGP: no algorithm option", "use algorithm=sgp"),
    case("nodes=4 topology.name=torus", "topology.name='torus'", "unknown", "choose one of"),
    case("nodes=4 topology.form=foo", "topology.form='foo'", "must be one of", "use form=paper"),
    case(
        "nodes=4 topology.peers_schedule={0:9}",
        "topology.peers_schedule=",
        "at most 2",
        "lower the peers",
    ),
    case("nodes=4 topology.peers_schedule={0:0}", "topology.peers_schedule=", "peers >= 1"),
    case(
        "nodes=16 topology=exponential_2peer_early +topology.peers_schedule={0:3}",
        "topology.peers_schedule={0:3}",
        "Hydra merged it",
        "would use {0:3,30:1}",
        "e.g. '+topology.peers_schedule={0:3,30:3}' (quoted for the shell)",
    ),
    case(
        "nodes=4 algorithm=allreduce topology=ring",
        "topology.name=ring",
        "algorithm=allreduce",
        "uses no communication graph",
        "(topology=auto)",
    ),
    case(
        "nodes=4 algorithm=allreduce topology.form=phonebook",
        "topology.form=phonebook",
        "algorithm=allreduce",
        "uses no communication graph",
    ),
    case(
        "nodes=4 algorithm=dpsgd topology=exponential",
        "topology.name=exponential",
        "undirected",
        "use topology=bipartite_exponential",
    ),
    case(
        "nodes=4 algorithm=adpsgd topology=ring",
        "topology.name=ring",
        "active and passive",
        "use topology=bipartite_exponential",
    ),
    case("nodes=4 algorithm=sgp_delayed algorithm.tau=-1", "algorithm.tau=-1", ">= 0", "use tau=1"),
    case(
        "nodes=4 algorithm=sgp_delayed algorithm.tau=100 train.max_steps=100",
        "algorithm.tau=100",
        "train.max_steps=100",
        "drains them at its end",
        "use algorithm.tau<=25",
    ),
    case(
        "nodes=4 algorithm=sgp_delayed algorithm.tau=1 train.max_steps=1",
        "algorithm.tau=1 with a run of 1 iteration per node (train.max_steps=1)",
        "use algorithm.tau=0 (SGP) or a longer run",
    ),
    case("nodes=4 algorithm=sgp_delayed optim.epochs=nan", "optim.epochs=nan", "finite"),
    case(
        "nodes=4 algorithm=local_sgd algorithm.average_every=100000",
        "algorithm.average_every=100000",
        "never average",
        "use algorithm.average_every<=634",
    ),
    case(
        "nodes=4 debug=tiny train.inject_fault=crash@1:100",
        "train.inject_fault='crash@1:100'",
        "step 100 is never reached",
        "use a step in [0, 7]",
    ),
    case(
        "nodes=4 algorithm=sgp algorithm.variant=allreduce",
        "algorithm.variant=allreduce with algorithm=sgp",
        "another algorithm's row",
        "algorithm.variant=sgp_allreduce",
    ),
    case(
        "nodes=4 algorithm=adpsgd algorithm.schedule_compute_s=inf",
        "algorithm.schedule_compute_s=inf",
        "finite",
        "e.g. 0.005",
    ),
    case("nodes=4 comm.timeout_s=1e10", "comm.timeout_s=1", "must be in [1, 1e+06]", "use"),
    case("nodes=4 comm.job_timeout_s=1e300", "comm.job_timeout_s=1", "must be in [1, 1e+06]"),
    case("nodes=4 comm.threads_per_worker=100000", "comm.threads_per_worker=100000", "1 to 1024"),
    case("nodes=4 data.seed=-1", "data.seed=-1", "[0, 2**32 - 1]", "set data.seed=42"),
    case("nodes=4 data.seed=4294967296", "data.seed=4294967296", "[0, 2**32 - 1]"),
    case(
        "nodes=4 data.num_samples=100000000000",
        "data.num_samples=100000000000",
        "at most 10,000,000",
        "set data.num_samples=40000",
    ),
    case("nodes=4 data.root=/dev/null/x", "data.root=/dev/null/x", "/dev/null is a file", "set"),
    case("nodes=4 logger.project=team/proj", "logger.project='team/proj'", "contains /", "use"),
    case("nodes=4 slurm.cpus_per_task=-5", "slurm.cpus_per_task=-5", ">= 1", "80"),
    case("nodes=4 slurm.mem_gb=0", "slurm.mem_gb=0", ">= 1", "400"),
    case(
        "nodes=32 algorithm=sgp_delayed algorithm.tau=400",
        "algorithm.tau=400",
        "of 324 iterations",
        "optim.epochs=9, nodes=32",
    ),
    case(
        "nodes=4 algorithm=allreduce algorithm.allreduce_algo=foo",
        "algorithm.allreduce_algo='foo'",
        "must be",
        "use recursive_doubling",
    ),
    case(
        "nodes=4 algorithm=allreduce_ddp algorithm.bucket_mb=0",
        "algorithm.bucket_mb=0",
        "> 0",
        "try 25",
    ),
    # -- names that become folders
    case(
        "nodes=4 study=../../../outside",
        "study=../../../outside",
        "folder name",
        "no '/' or '..'",
        "use study=my_study",
    ),
    case("nodes=4 study=a/b", "study=a/b", "folder name", "use study=my_study"),
    case("nodes=4 study=", "study=", "folder name", "use study=my_study"),
    case("nodes=4 network.name=../x", "network.name=../x", "folder name", "use network.name="),
    # -- the network condition
    case("nodes=4 network=infiniband_400g", "network=infiniband_400g", "conf/network/ has"),
    case(
        "nodes=4 network=wan network.bandwidth_gbps=1e-300",
        "network.bandwidth_gbps=1e-300",
        "must be at least 1e-06 Gbit/s",
        "give the line rate in Gbit/s",
    ),
    case(
        "nodes=4 network=wan network.latency_s=1e300",
        "network.latency_s=1e+300",
        "must be at most 60 s one way",
        "give the latency in seconds",
    ),
    case(
        "nodes=4 network=wan network.straggler_slowdown=1e308",
        "network.straggler_slowdown=1e+308",
        "must be in [1, 1e+06]",
    ),
    case(
        "nodes=4 network.bandwith_gbps=3",
        "network.bandwith_gbps=3: not a setting of network",
        "set network.bandwidth_gbps=3 instead",
    ),
    case(
        "nodes=4 network.latency_s=0.001",
        "network.latency_s=0.001",
        "with ratios_from=paper_replay",
        "relative to each run's compute",
        "start from an absolute condition (eth_10g",
    ),
    case(
        "nodes=4 network=eth_10g network.latency_over_compute=2",
        "network.latency_s=5e-05",
        "with latency_over_compute=2.0",
        "drop one of the two",
    ),
    case("nodes=4 network.latency_s=-1", "network.latency_s=-1", ">= 0", "use a non-negative"),
    case("nodes=4 network.latency_s=nan", "network.latency_s=nan", "finite", "use a non-negative"),
    case("nodes=4 network.bandwidth_gbps=-5", "network.bandwidth_gbps=-5", "> 0", "use the"),
    case(
        "nodes=4 network.straggler_prob=2",
        "network.straggler_prob=2",
        "[0, 1]",
        "use a probability",
    ),
    # -- data and model
    case(
        "nodes=32 optim.batch_size=100000",
        "optim.batch_size=100000",
        "1 to 1125",
        "set optim.batch_size<=1125",
    ),
    case("nodes=4 optim.batch_size=0", "optim.batch_size=0", "1 to 9000"),
    case(
        "nodes=4 data=imagenet data.root=/nonexistent",
        "data.root=/nonexistent",
        "train/ and val/",
        "set data.root=",
    ),
    case("nodes=4 data=cifar10", "data.root=None", "needs a directory", "set data.root="),
    case(
        "nodes=4 data.num_samples=-10",
        "data.num_samples=-10",
        "at least 2 samples",
        "set data.num_samples=",
    ),
    case(
        "nodes=4 data.train_split=1.5",
        "data.train_split=1.5",
        "strictly between 0 and 1",
        "set data.train_split=0.8",
    ),
    case(
        "nodes=4 data=synthetic data.synthetic_dims=3",
        "data.synthetic_dims=3",
        "1-D",
        "set data.synthetic_dims=1 or 2",
    ),
    case(
        "nodes=4 model.cnn_channels=0", "model.cnn_channels=0", ">= 1", "use model.cnn_channels=32"
    ),
    case(
        "nodes=4 model=mlp model.mlp_layers=-1",
        "model.mlp_layers=-1",
        ">= 0",
        "use model.mlp_layers=1",
    ),
    case(
        "nodes=4 model=resnet20 model.resnet20_width=1",
        "model.resnet20_width=1",
        ">= 2",
        "use model.resnet20_width=16",
    ),
    case(
        "nodes=4 model=resnet20",
        "model.name=resnet20",
        "input shape (1, 40)",
        "image (C, H, W)",
        "pick a matching data.name or model.name=mlp",
    ),
    # -- the recipe
    case("nodes=4 optim.ref_batch=0", "optim.ref_batch=0", ">= 1", "use optim.ref_batch=256"),
    case(
        "nodes=4 optim.schedule_epochs=0",
        "optim.schedule_epochs=0",
        "> 0",
        "use optim.schedule_epochs=90",
    ),
    case("nodes=4 optim.epochs=nan", "optim.epochs=nan", "finite", "use optim.epochs=20"),
    case(
        "nodes=4 optim.lr_per_ref_batch=inf",
        "optim.lr_per_ref_batch=inf",
        "finite",
        "use optim.lr_per_ref_batch=0.1",
    ),
    case("nodes=4 optim.momentum=1", "optim.momentum=1", "[0, 1)", "use optim.momentum=0.9"),
    case(
        "nodes=4 optim.nesterov=true optim.momentum=0",
        "optim.nesterov=true",
        "optim.momentum=0",
        "needs a momentum",
        "use optim.momentum=0.9",
    ),
    case(
        "nodes=4 optim.warmup_epochs=1000",
        "optim.warmup_epochs=1000",
        "must fit",
        "use optim.warmup_epochs=5",
    ),
    case(
        "nodes=4 optim.milestones=[-5]",
        "optim.milestones=[-5",
        "each in [0, 90]",
        "use optim.milestones=[30,60,80]",
    ),
    case(
        "nodes=4 optim.milestones=[30,60,120]",
        "optim.milestones=[30.0, 60.0, 120.0]",
        "never takes effect",
        "use optim.milestones=[30,60,80]",
    ),
    case("nodes=4 optim.milestones=[abc]", "optim.milestones=[abc]", "Error merging override"),
    # -- the run itself
    case("nodes=4 seed=-1", "seed=-1", ">= 0", "use seed=0"),
    case(
        "nodes=4 algorithm.variant=../../escaped",
        "algorithm.variant=../../escaped",
        "folder name",
        "use algorithm.variant=sgp_2peer",
    ),
    case(
        "nodes=4 train.eval_subset=-5",
        "train.eval_subset=-5",
        ">= 0",
        "use train.eval_subset=0",
    ),
    case(
        "nodes=4 slurm.timeout_min=0",
        "slurm.timeout_min=0",
        ">= 1",
        "use slurm.timeout_min=4320",
    ),
    case(
        "nodes=4 comm.gpus_per_rank=2",
        "comm.gpus_per_rank=2",
        "no CUDA device",
        "use comm.gpus_per_rank=0",
    ),
    case(
        "nodes=4 algorithm=adpsgd algorithm.gossip_margin_rounds=-1",
        "algorithm.gossip_margin_rounds=-1",
        ">= 0",
        "use algorithm.gossip_margin_rounds=0",
    ),
    case("nodes=4 seed=abc", "seed=abc: seed takes an integer", "fix the value"),
    case("nodes=4 train.log_every=0", "train.log_every=0", ">= 1", "use train.log_every=20"),
    case(
        "nodes=4 train.eval_every_epochs=nan",
        "train.eval_every_epochs=nan",
        "> 0",
        "use train.eval_every_epochs=1",
    ),
    case(
        "nodes=4 train.eval_batch_size=0",
        "train.eval_batch_size=0",
        ">= 1",
        "use train.eval_batch_size=1000",
    ),
    case(
        "nodes=4 train.max_steps=-1",
        "train.max_steps=-1",
        ">= 0 (0: no cap)",
        "use train.max_steps=0",
    ),
    case(
        "nodes=4 train.checkpoint_every_epochs=-1",
        "train.checkpoint_every_epochs=-1",
        ">= 0",
        "use train.checkpoint_every_epochs=1",
    ),
    case(
        "nodes=4 train.inject_fault=explode",
        "train.inject_fault='explode'",
        "crash@RANK:STEP",
        "e.g.",
    ),
    case(
        "nodes=4 train.inject_fault=crash@4:1",
        "train.inject_fault='crash@4:1'",
        "does not exist",
        "use a rank in [0, 3]",
    ),
    # -- communication and launch
    case(
        "nodes=4 comm.timeout_s=0",
        "comm.timeout_s=0",
        "must be in [1, 1e+06] s",
        "use comm.timeout_s=120",
    ),
    case(
        "nodes=4 comm.timeout_s=0.001",
        "comm.timeout_s=0.001",
        "must be in [1, 1e+06] s",
        "use comm.timeout_s=120",
    ),
    case(
        "nodes=4 comm.job_timeout_s=0.5",
        "comm.job_timeout_s=0.5",
        "must be in [1, 1e+06] s",
        "use comm.job_timeout_s=3600",
    ),
    case(
        "nodes=4 comm.threads_per_worker=0",
        "comm.threads_per_worker=0",
        "1 to 1024 threads",
        "use comm.threads_per_worker=1",
    ),
    case(
        "nodes=4 comm.backend=nccl",
        "comm.backend=nccl",
        "needs a CUDA device",
        "use comm.backend=gloo",
    ),
    case("nodes=4 comm.backend=mpi", "comm.backend='mpi'", "must be auto, gloo or nccl"),
    case(
        "nodes=4 comm.gpus_per_rank=-1", "comm.gpus_per_rank=-1", ">= 0", "use comm.gpus_per_rank=0"
    ),
    case(
        "nodes=4 slurm.master_port=-1",
        "slurm.master_port=-1",
        "[1024, 64535]",
        "use slurm.master_port=29500",
    ),
    case(
        "nodes=4 logger.wandb_mode=maybe",
        "logger.wandb_mode='maybe'",
        "auto, online, offline or disabled",
    ),
    case("nodes=4 logger.progress=yes", "logger.progress='yes'", "auto, on or off"),
    case(
        "nodes=4 logger=offline logger.project=",
        "logger.project=''",
        "project",
        "use logger.project=sgprepro",
    ),
    case("nodes=4 foo=1", "foo=1: not a setting of the config", "remove it"),
)


@dataclass(frozen=True)
class Outcome:
    kind: str  # override, compose, validate, traceback or accepted
    message: str  # the error (first line for Hydra's), or what escaped

    @property
    def clear(self) -> bool:
        return self.kind in ("override", "compose", "validate")


def run_case(c: Case) -> Outcome:
    """Compose and validate like ``python -m sgprepro.train`` does, before any worker starts."""
    from sgprepro.overrides import check_overrides
    from tests.conftest import compose_config

    line = check_overrides(list(c.overrides))
    if line is not None:
        return Outcome("override", line)
    try:
        cfg = compose_config(list(c.overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        return Outcome("compose", " ".join(str(exc).split("\n")[:2]).strip())
    except Exception as exc:  # noqa: BLE001 - counted, and the test fails on it
        return Outcome("traceback", f"{type(exc).__name__}: {exc}")
    try:
        validate(cfg, host=c.host, overrides=c.overrides)
    except ConfigError as exc:
        return Outcome("validate", str(exc))
    except Exception as exc:  # noqa: BLE001 - counted, and the test fails on it
        return Outcome("traceback", f"{type(exc).__name__}: {exc}")
    return Outcome("accepted", "")


def counts(outcomes: list[Outcome]) -> dict[str, int]:
    return {
        "tried": len(outcomes),
        "clear": sum(o.clear for o in outcomes),
        "traceback": sum(o.kind == "traceback" for o in outcomes),
        "accepted": sum(o.kind == "accepted" for o in outcomes),
    }


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(outcomes: list[Outcome]) -> str:
    n = counts(outcomes)
    lines = [
        "# Bad input and the error it gets",
        "",
        "Every row is a command line (`sgprepro-train <overrides>`) that must be refused",
        "before any worker starts. *override*: the command line alone is refused before Hydra",
        "composes (an unknown preset, setting or type, a list of values without `-m`), in one",
        "line naming what is allowed and the fix, exit status 2; *validate*: sgprepro's own",
        "one-line error (key=value, the constraint, a fix), printed as `error: ...` with exit",
        "status 2; *compose*: Hydra refuses the override itself and names it (exit status",
        "1). The machine assumed: 2 CPU cores, no CUDA; a row that starts with `WORLD_SIZE=n`",
        "runs as one rank of an n-rank job of torchrun (or any env:// launcher). The table lives in",
        "`tests/faults/bad_inputs.py` (`python -m tests.faults.bad_inputs` rewrites this file);",
        "`tests/faults/test_bad_inputs.py` checks every row in-process, one row of each stage",
        "through the command line (its printed line and exit status), and that this file is up",
        "to date.",
        "",
        (
            f"{n['tried']} bad inputs: {n['clear']} clear errors, {n['traceback']} tracebacks, "
            f"{n['accepted']} silently accepted."
        ),
        "",
        "In a sweep (`-m`) an invalid cell is reported on one line and skipped (leaving no run",
        "folder, and an earlier run's records in its folder as they were), the other cells run,",
        "and the sweep ends with the list of the cells that did not",
        "run and of the runs that failed: exit status 2 if a cell was bad input, else 1 (a run",
        "folder held by another job, a failed run; `test_sweeps.py`). Other bad input, tested in",
        "`tests/faults/`: a run folder",
        "held by another job (`test_run_dir.py`), a report with no run of its study or with a",
        "damaged trace (`test_reports.py`), a `make` variable holding shell syntax",
        "(`test_paths.py`). An `algorithm.*` setting the run's algorithm does not read is run",
        "anyway, with a warning, and so is a schedule that `optim.scale_to_epochs=false` leaves",
        "partly beyond the run (`tests/config/test_settings.py`).",
        "",
        "| overrides | stage | error |",
        "|---|---|---|",
    ]
    for c, o in zip(CASES, outcomes, strict=True):
        lines.append(f"| `{_cell(c.label)}` | {o.kind} | {_cell(o.message)} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    outcomes = [run_case(c) for c in CASES]
    DOC.write_text(render(outcomes))
    n = counts(outcomes)
    print(
        f"wrote {DOC}: {n['tried']} bad inputs, {n['clear']} clear errors, "
        f"{n['traceback']} tracebacks, {n['accepted']} silently accepted"
    )
    return 0 if n["clear"] == n["tried"] else 1


if __name__ == "__main__":
    sys.exit(main())
