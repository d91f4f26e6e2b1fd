"""Emulated time of a recorded run: the run's algorithm program, replayed on its traces.

Used by the end of a run (``sgprepro.train.finalize``), by re-emulation under another condition
(``python -m sgprepro.train.emulate``, the reports' per-network tables) and by the progress
display. A condition defined relative to compute (``paper_regime``) is resolved against the run's
own mean compute per iteration and message size. An AD-PSGD run on the emulated clock is timed by
the schedule it executed (scaled to the measured compute under a relative condition, which keeps
its interleaving exactly).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sgprepro.algorithms import algorithm_class
from sgprepro.config import Config, build_topology, peers_schedule, to_config
from sgprepro.network import NetworkConfig
from sgprepro.regime import resolve
from sgprepro.timing import ProgramSpec, TimingResult, Trace, emulate_trace, load_trace, simulate
from sgprepro.timing.engine import async_result


@dataclass(frozen=True)
class Emulated:
    """A run's emulated timing and the absolute condition it ran under.

    Attributes:
        timing: the engine's result.
        network: the condition, resolved against the run's compute when it is relative.
        compute_s: the mean compute seconds per iteration the condition was resolved against.
    """

    timing: TimingResult
    network: NetworkConfig
    compute_s: float


def program(cfg: Config, iters_per_epoch: int, message_bytes: int) -> ProgramSpec:
    """The communication program the run's algorithm declares."""
    sched = peers_schedule(cfg)
    cls = algorithm_class(cfg.algorithm.name)
    return cls.timing_program(
        cfg.algorithm, lambda step: sched.peers_at(step / iters_per_epoch), message_bytes
    )


def emulate_run(run_dir: Path, cfg: Config, iters_per_epoch: int, message_bytes: int) -> Emulated:
    """Emulated timing of a recorded run; re-running this on the traces gives identical numbers."""
    trace = load_trace(run_dir)
    ranks = trace.compute_ranks or tuple(trace.compute_s)
    mean_compute = float(np.mean(np.concatenate(ranks)))
    return _emulate(trace, cfg, iters_per_epoch, message_bytes, mean_compute)


def _emulate(
    trace: Trace,
    cfg: Config,
    ipe: int,
    message_bytes: int,
    mean_compute: float,
    measured_compute: bool = False,
) -> Emulated:
    cls = algorithm_class(cfg.algorithm.name)
    spec = program(cfg, ipe, message_bytes)
    topology = build_topology(cfg)
    net = resolve(cfg.network, mean_compute, message_bytes)
    if cls.needs_plan(cfg.algorithm):  # AD-PSGD on the emulated clock: the executed schedule
        algo = cfg.algorithm
        if cfg.network.relative or measured_compute:
            algo = dataclasses.replace(algo, schedule_compute_s=mean_compute)
        net = resolve(cfg.network, algo.schedule_compute_s, message_bytes)
        total = sum(len(r) for r in (trace.compute_ranks or tuple(trace.compute_s)))
        sched = cls.plan(
            algo,
            network=net,
            topology=topology,
            nodes=cfg.nodes,
            total_steps=total // cfg.nodes,
            message_bytes=message_bytes,
            seed=cfg.seed,
        )
        c0 = np.full(1, algo.schedule_compute_s)
        timing = async_result(spec, net, message_bytes, sched, [c0] * cfg.nodes)
        return Emulated(timing, net, algo.schedule_compute_s)
    timing = emulate_trace(trace, spec, net, topology, message_bytes=message_bytes, seed=cfg.seed)
    return Emulated(timing, net, mean_compute)


def estimate_s_per_itr(
    cfg: Config, iters_per_epoch: int, message_bytes: int, recent_compute_s: list[float]
) -> float:
    """A running estimate for the progress display: the engine with this rank's recent compute on
    every rank (no stragglers). EMULATED; the run's figure is in summary.json."""
    cls = algorithm_class(cfg.algorithm.name)
    if not recent_compute_s or not cls.synchronous:
        return float("nan")
    compute = np.tile(np.asarray(recent_compute_s, dtype=float), (cfg.nodes, 1))
    net = resolve(cfg.network, float(compute.mean()), message_bytes)
    spec = program(cfg, iters_per_epoch, message_bytes)
    return simulate(spec, compute, message_bytes, net, build_topology(cfg)).s_per_itr


def load_run_config(run_dir: Path) -> Config:
    """The validated Config a finished run ran with (from its run.json)."""
    from omegaconf import DictConfig, OmegaConf

    from sgprepro.config import writable_schema

    recorded = json.loads((Path(run_dir) / "run.json").read_text())["config"]
    sched = recorded["topology"]["peers_schedule"]  # JSON made its int keys strings
    recorded["topology"]["peers_schedule"] = {int(k): int(v) for k, v in sched.items()}
    merged = OmegaConf.merge(writable_schema(), recorded)
    assert isinstance(merged, DictConfig)  # a mapping merged onto the schema's mapping
    return to_config(merged)


def emulate_under(run_dir: Path, network: NetworkConfig) -> Emulated:
    """Re-emulate a finished run under another network condition, from its recorded traces.

    For the synchronous algorithms accuracy does not depend on the emulated network, so one
    training run answers "how long per iteration on network X" for every X. (An emulated-clock
    AD-PSGD run's interleaving, and so its accuracy, belongs to its own condition: re-emulated
    under another, it shows the time that condition would take for that many gradients.)
    """
    return emulate_under_each(run_dir, [network])[0]


def emulate_under_each(run_dir: Path, networks: Sequence[NetworkConfig]) -> list[Emulated]:
    """:func:`emulate_under` for several conditions, reading the run's records once. An
    emulated-clock AD-PSGD run is re-scheduled with its measured mean compute per gradient (as
    every other algorithm is timed with its measured compute), not its config's compute model."""
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    ipe, nbytes = summary["iterations_per_epoch"], summary["comm/message_bytes"]
    trace = load_trace(run_dir)
    ranks = trace.compute_ranks or tuple(trace.compute_s)
    mean_compute = float(np.mean(np.concatenate(ranks)))
    return [
        _emulate(trace, dataclasses.replace(cfg, network=net), ipe, nbytes, mean_compute, True)
        for net in networks
    ]
