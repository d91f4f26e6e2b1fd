"""Conditions defined by the paper's dimensionless numbers, resolved against a run's own compute.

A laptop cannot run the paper's experiment, but it can run one with the same dimensionless
numbers: one-message time over compute time, all-reduce reduction time per round over compute
time, latency over compute time. A relative condition (``conf/network/paper_regime.yaml``) keeps
those ratios; :func:`resolve` turns it into an absolute link for one run, given that run's
measured compute seconds per iteration and its message size. With ``ratios_from: paper_replay``
the ratios are the paper-scale replay's calibration on Table 1 (:func:`paper_ratios`), the one
source of those numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sgprepro.network import NetworkConfig


@dataclass(frozen=True)
class Ratios:
    """A relative condition's numbers, each in units of one node's compute time per iteration.

    Attributes:
        message: one full message (latency included).
        reduce: one all-reduce round's CPU reduction of the full vector.
        latency: one-way latency.
    """

    message: float
    reduce: float
    latency: float


@lru_cache(maxsize=1)
def paper_calibration() -> Any:
    """The paper-scale replay's calibration on the 4-node column of Table 1 (computed once per
    process)."""
    from sgprepro.timing.replay import calibrate

    return calibrate()


def paper_ratios() -> Ratios:
    """The ratios of the paper's setting, from the paper-scale replay's calibration on the 4-node
    column of Table 1 (10 GbE, ResNet-50, 8 V100 per node)."""
    cal = paper_calibration()
    c = cal.compute_s
    return Ratios(
        message=cal.message_time_s / c,
        reduce=cal.reduce_s_per_round / c,
        latency=cal.network.latency_s / c,
    )


def ratios(network: NetworkConfig) -> Ratios:
    """The three ratios of a relative condition (missing explicit ones are 0)."""
    if not network.relative:
        raise ValueError(f"network={network.name}: an absolute condition has no ratios to compute")
    if network.ratios_from == "paper_replay":
        return paper_ratios()
    return Ratios(
        message=float(network.message_over_compute or 0.0),
        reduce=float(network.reduce_over_compute or 0.0),
        latency=float(network.latency_over_compute or 0.0),
    )


def resolve(network: NetworkConfig, compute_s: float, message_bytes: float) -> NetworkConfig:
    """The absolute condition a relative one stands for in a run with ``compute_s`` seconds of
    compute per iteration and messages of ``message_bytes``: one message takes
    ``message x compute_s`` seconds, its latency ``latency x compute_s``, and a reduction round
    ``reduce x compute_s``. An absolute condition is returned unchanged.

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
        reduce_s_per_byte=r.reduce * compute_s / message_bytes,
        description=(
            f"{network.name} resolved for compute {compute_s:.6g} s/itr and {message_bytes:.0f}-byte "
            f"messages: message {r.message:.4g}, reduction {r.reduce:.4g}, latency "
            f"{r.latency:.3g} compute times"
        ),
    )
