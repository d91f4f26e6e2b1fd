"""Conditions defined by the paper's dimensionless numbers, resolved against a run's own compute.

A laptop cannot run the paper's experiment, but it can run one with the same dimensionless
numbers: one-message time over compute time, a CPU pass over the vector (the all-reduce's
reduction, a copy) over compute time, latency over compute time. A relative condition
(``conf/network/paper_regime.yaml``) keeps those ratios; :func:`resolve` turns it into an absolute
link for one run, given that run's measured compute seconds per iteration and its message size.

With ``ratios_from: paper_replay`` the ratios come from the paper-scale replay's calibration
(``python -m sgprepro.replay``) on Table 1, stored by ``--write-calibration`` in
``experiments/table1_paper/calibration.json``: the one place those numbers live, regenerated
from the published table and checked against a fresh fit by the tests.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from sgprepro.network import NetworkConfig
from sgprepro.paths import study_dir

CALIBRATION_FILE = "calibration.json"
PAPER_STUDY = "table1_paper"


@dataclass(frozen=True)
class Ratios:
    """A relative condition's numbers, each in units of one node's compute time per iteration.

    Attributes:
        message: one full message (latency included).
        cpu_pass: one CPU pass over the vector (reduction, copy); an all-reduce round of the
            paper era makes two.
        latency: one-way latency.
    """

    message: float
    cpu_pass: float
    latency: float


@dataclass(frozen=True)
class PaperCalibration:
    """The replay's fit on the 4-node column of Table 1 (seconds, at the paper's scale)."""

    compute_s: float
    message_time_s: float
    cpu_pass_s: float
    latency_s: float
    efficiency: float
    rms_rel_error: float

    @property
    def ratios(self) -> Ratios:
        c = self.compute_s
        return Ratios(self.message_time_s / c, self.cpu_pass_s / c, self.latency_s / c)


def calibration_path() -> Path:
    return study_dir(PAPER_STUDY) / CALIBRATION_FILE


def write_calibration(cal: Any) -> Path:
    """Store a :class:`sgprepro.replay.Calibration` where :func:`paper_calibration` reads it."""
    data = PaperCalibration(
        compute_s=cal.compute_s,
        message_time_s=cal.message_time_s,
        cpu_pass_s=cal.cpu_pass_s,
        latency_s=cal.latency_s,
        efficiency=cal.params.efficiency,
        rms_rel_error=cal.rms_rel_error,
    )
    path = calibration_path()
    record = {
        "written_by": "python -m sgprepro.replay --write-calibration",
        "what": "fit of the timing engine on the 4-node column of Table 1 (emulated, seconds)",
        **asdict(data),
    }
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    paper_calibration.cache_clear()
    return path


@lru_cache(maxsize=1)
def paper_calibration() -> PaperCalibration:
    """The stored replay calibration (see the module docstring)."""
    path = calibration_path()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"network ratios_from=paper_replay: cannot read {path} ({exc}); regenerate it with "
            "python -m sgprepro.replay --write-calibration"
        ) from exc
    fields = PaperCalibration.__dataclass_fields__
    return PaperCalibration(**{k: float(data[k]) for k in fields})


def ratios(network: NetworkConfig) -> Ratios:
    """The three ratios of a relative condition (missing explicit ones are 0)."""
    if not network.relative:
        raise ValueError(f"network={network.name}: an absolute condition has no ratios to compute")
    if network.ratios_from == "paper_replay":
        return paper_calibration().ratios
    return Ratios(
        message=float(network.message_over_compute or 0.0),
        cpu_pass=float(network.cpu_pass_over_compute or 0.0),
        latency=float(network.latency_over_compute or 0.0),
    )


def resolve(network: NetworkConfig, compute_s: float, message_bytes: float) -> NetworkConfig:
    """The absolute condition a relative one stands for in a run with ``compute_s`` seconds of
    compute per iteration and messages of ``message_bytes``: one message takes
    ``message x compute_s`` seconds, its latency ``latency x compute_s``, one CPU pass over the
    vector ``cpu_pass x compute_s``. An absolute condition is returned unchanged.

    Raises:
        ValueError: non-positive compute or message size, or a latency not below the message time.
    """
    if not network.relative:
        return network
    if not (compute_s > 0 and message_bytes > 0):
        raise ValueError(
            f"network={network.name}: resolving needs compute_s > 0 and message_bytes > 0, got "
            f"{compute_s} and {message_bytes}"
        )
    r = ratios(network)
    latency = r.latency * compute_s
    transfer = r.message * compute_s - latency
    if transfer <= 0:
        raise ValueError(
            f"network={network.name}: latency ({r.latency} x compute) must be below the message "
            f"time ({r.message} x compute); lower network.latency_over_compute"
        )
    return NetworkConfig(
        name=network.name,
        latency_s=latency,
        bandwidth_gbps=8.0 * message_bytes / (transfer * 1e9),
        efficiency=1.0,
        jitter_s=network.jitter_s,
        straggler_prob=network.straggler_prob,
        straggler_slowdown=network.straggler_slowdown,
        compute_cv=network.compute_cv,
        reduce_s_per_byte=r.cpu_pass * compute_s / message_bytes,
        description=(
            f"{network.name} resolved for compute {compute_s:.6g} s/itr and "
            f"{message_bytes:.0f}-byte messages: message {r.message:.4g}, CPU pass "
            f"{r.cpu_pass:.4g}, latency {r.latency:.3g} compute times"
        ),
    )
