"""The network condition of a run (Sec. 5 and Table 1 of Assran et al. 2019: 10 GbE vs InfiniBand).

Link model: one message of ``B`` bytes takes
``latency_s + 8 B / (bandwidth_gbps * 1e9 * efficiency)`` seconds plus an optional per-message
jitter; a reducing receive (all-reduce, AD-PSGD averaging) costs ``reduce_s_per_byte`` of CPU per
byte (one CPU pass over a vector). The same group also carries the compute-noise and straggler model, because a "condition"
in a timing study is everything outside the algorithm.

A condition is either **absolute** (a link speed: ``eth_10g``) or **relative to compute**: its
message time, reduction time and latency are given as multiples of a node's compute time per
iteration (the paper's dimensionless numbers), either explicitly (``message_over_compute``, ...)
or taken from the paper-scale replay's calibration (``ratios_from: paper_replay``). A relative
condition is resolved into an absolute one for each run, against that run's own measured compute
and message size (``sgprepro.regime.resolve``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

_FLOAT_KEYS: tuple[str, ...] = (
    "efficiency",
    "jitter_s",
    "straggler_prob",
    "straggler_slowdown",
    "compute_cv",
    "reduce_s_per_byte",
)
_RATIO_KEYS: tuple[str, ...] = (
    "message_over_compute",
    "cpu_pass_over_compute",
    "latency_over_compute",
)
RATIO_SOURCES: tuple[str, ...] = ("paper_replay",)
MAX_LATENCY_S = 60.0
"""The most one-way latency (and jitter) a condition may have: a link across the planet is
0.1 s; beyond a minute the value is a units mistake."""
MIN_BANDWIDTH_GBPS = 1e-6
"""The least line rate a condition may have (1 kbit/s)."""
MAX_FACTOR = 1e6
"""The largest straggler slowdown and time-over-compute ratio a condition may have."""
"""Where a relative condition's ratios may come from: the paper-scale replay's calibration."""


@dataclass(frozen=True)
class NetworkConfig:
    """Link and compute-noise model of one network condition (schema of ``conf/network/*.yaml``).

    Attributes:
        name: preset name, e.g. ``eth_10g``.
        latency_s: one-way latency per message, seconds (>= 0); null for a relative condition.
        bandwidth_gbps: line rate, gigabits per second (> 0, finite); null for a relative
            condition.
        efficiency: fraction of the line rate the stack achieves, in (0, 1].
        jitter_s: standard deviation of a per-message additive delay ``max(0, N(0, jitter_s^2))``.
        straggler_prob: probability that a node straggles in a given iteration, in [0, 1].
        straggler_slowdown: a straggling node's compute time is multiplied by this (>= 1).
        compute_cv: coefficient of variation of a mean-one lognormal factor applied to every node's
            compute time of every iteration (>= 0).
        reduce_s_per_byte: CPU seconds to add one received byte into a local buffer (charged per
            reducing receive of an all-reduce and per AD-PSGD averaging; 0: free).
        message_over_compute: relative condition: one full message takes this many compute
            times (the paper's ~0.9 on 10 GbE).
        cpu_pass_over_compute: relative condition: one CPU pass over the full vector (a
            reduction or a copy; a paper-era all-reduce round makes two) takes this many compute
            times.
        latency_over_compute: relative condition: one-way latency in compute times.
        ratios_from: relative condition: take the three ratios from this source instead
            (``paper_replay``: the calibration of ``python -m sgprepro.replay`` on Table 1).
        description: free text.
    """

    name: str
    latency_s: float | None = None
    bandwidth_gbps: float | None = None
    efficiency: float = 1.0
    jitter_s: float = 0.0
    straggler_prob: float = 0.0
    straggler_slowdown: float = 1.0
    compute_cv: float = 0.0
    reduce_s_per_byte: float = 0.0
    message_over_compute: float | None = None
    cpu_pass_over_compute: float | None = None
    latency_over_compute: float | None = None
    ratios_from: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        for key in (*_FLOAT_KEYS, "latency_s", "bandwidth_gbps", *_RATIO_KEYS):
            value = getattr(self, key)  # YAML and Hydra may hand over ints (bandwidth_gbps: 10)
            if isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, key, float(value))
        self.validate()

    def validate(self) -> None:
        """Check every field; raise ``ValueError`` naming the key, its value, the rule and a fix."""

        def bad(key: str, rule: str, fix: str) -> ValueError:
            return ValueError(f"network.{key}={getattr(self, key)!r}: {rule}; {fix}")

        for key in _FLOAT_KEYS:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise bad(key, "must be a number", f"give network.{key} as a float")
            if math.isnan(value):
                raise bad(key, "must not be NaN", f"give network.{key} as a finite float")
        if not self.name:
            raise bad("name", "must be a non-empty string", "name the condition, e.g. eth_10g")
        for key, rule, fix in (
            (
                "latency_s",
                "must be >= 0 and finite",
                "use a non-negative one-way latency in seconds",
            ),
            (
                "bandwidth_gbps",
                "must be > 0 and finite",
                "use the line rate in Gbit/s (a huge value, e.g. 1e9, for an ideal link)",
            ),
        ):
            value = getattr(self, key)
            if value is None:
                if not self.relative:
                    raise bad(key, "an absolute condition needs it", f"set network.{key}")
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
                raise bad(key, rule, fix)
            low_ok = value >= 0.0 if key == "latency_s" else value > 0.0
            if not (low_ok and value < math.inf):
                raise bad(key, rule, fix)
        # plausibility: beyond these a value is a units mistake, and emulated times run to
        # hundreds of digits (1e300 s of latency, 1e-300 Gbit/s)
        if self.latency_s is not None and self.latency_s > MAX_LATENCY_S:
            raise bad(
                "latency_s",
                f"must be at most {MAX_LATENCY_S:g} s one way (a link across the planet is 0.1 s)",
                "give the latency in seconds, e.g. 0.03 for a continental link",
            )
        if self.bandwidth_gbps is not None and self.bandwidth_gbps < MIN_BANDWIDTH_GBPS:
            raise bad(
                "bandwidth_gbps",
                f"must be at least {MIN_BANDWIDTH_GBPS:g} Gbit/s (1 kbit/s)",
                "give the line rate in Gbit/s, e.g. 1.0 for Gigabit Ethernet",
            )
        if self.relative and (self.latency_s is not None or self.bandwidth_gbps is not None):
            ratios = [
                f"{k}={getattr(self, k)}" for k in _RATIO_KEYS if getattr(self, k) is not None
            ]
            if self.ratios_from is not None:
                ratios.append(f"ratios_from={self.ratios_from}")
            raise bad(
                "latency_s" if self.latency_s is not None else "bandwidth_gbps",
                f"with {', '.join(ratios)} the condition is defined relative to each run's compute "
                "and takes no latency or link speed of its own (a condition is either absolute: "
                "latency_s, bandwidth_gbps; or relative: the *_over_compute ratios, ratios_from)",
                "drop one of the two: for an absolute link start from an absolute condition "
                f"({', '.join(p for p in list_presets() if not load_preset(p).relative)}) "
                "and set its latency_s/bandwidth_gbps",
            )
        if not 0.0 < self.efficiency <= 1.0:
            raise bad(
                "efficiency",
                "must be in (0, 1]",
                "use the achieved fraction of line rate, e.g. 0.5",
            )
        if not 0.0 <= self.jitter_s <= MAX_LATENCY_S:
            raise bad(
                "jitter_s",
                f"must be in [0, {MAX_LATENCY_S:g}] s",
                "give the jitter in seconds, 0 for none",
            )
        if not 0.0 <= self.straggler_prob <= 1.0:
            raise bad("straggler_prob", "must be in [0, 1]", "use a probability, 0 for none")
        if not 1.0 <= self.straggler_slowdown <= MAX_FACTOR:
            raise bad(
                "straggler_slowdown",
                f"must be in [1, {MAX_FACTOR:g}]",
                "use the factor a straggler's compute is multiplied by, 1 for none",
            )
        if not 0.0 <= self.compute_cv < math.inf:
            raise bad("compute_cv", "must be >= 0 and finite", "use 0 for no compute noise")
        if not 0.0 <= self.reduce_s_per_byte < math.inf:
            raise bad("reduce_s_per_byte", "must be >= 0 and finite", "use 0 for a free reduction")
        for key in _RATIO_KEYS:
            value = getattr(self, key)
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0.0 <= value <= MAX_FACTOR
            ):
                raise bad(
                    key,
                    f"must be a number in [0, {MAX_FACTOR:g}] (a time relative to compute)",
                    f"give network.{key} as e.g. 0.9, or null",
                )
        if self.ratios_from is not None:
            if self.ratios_from not in RATIO_SOURCES:
                raise bad(
                    "ratios_from",
                    f"must be one of {list(RATIO_SOURCES)} or null",
                    "use ratios_from=paper_replay",
                )
            given = [k for k in _RATIO_KEYS if getattr(self, k) is not None]
            if given:
                raise bad(
                    "ratios_from",
                    f"conflicts with explicit ratios {given}",
                    "set the ratios to null, or ratios_from to null",
                )
        elif self.relative and self.message_over_compute is None:
            raise bad(
                "message_over_compute",
                "a relative condition needs it",
                "set network.message_over_compute (e.g. 0.9) or ratios_from=paper_replay",
            )

    @property
    def relative(self) -> bool:
        """Whether the condition is defined relative to compute (resolved per run)."""
        return self.ratios_from is not None or any(
            getattr(self, k) is not None for k in _RATIO_KEYS
        )

    def _absolute(self, what: str) -> tuple[float, float]:
        """``(latency_s, bandwidth_gbps)``: a condition relative to compute has neither."""
        if self.relative:
            raise ValueError(
                f"network={self.name}: a condition relative to compute has no {what} of its own; "
                "resolve it against a run's compute first (sgprepro.regime.resolve)"
            )
        # validate(), run on construction, requires both of an absolute condition
        assert self.latency_s is not None
        assert self.bandwidth_gbps is not None
        return self.latency_s, self.bandwidth_gbps

    @property
    def bytes_per_s(self) -> float:
        """Achieved bandwidth in bytes per second: ``bandwidth_gbps * 1e9 * efficiency / 8``."""
        _, bandwidth_gbps = self._absolute("bandwidth")
        return bandwidth_gbps * 1e9 * self.efficiency / 8.0

    def transfer_time(self, nbytes: float) -> float:
        """Serialisation time of ``nbytes`` at the achieved bandwidth, without latency or jitter."""
        _, bandwidth_gbps = self._absolute("transfer time")
        return nbytes * 8.0 / (bandwidth_gbps * 1e9 * self.efficiency)

    def message_time(self, nbytes: float) -> float:
        """Noise-free time of one message: ``latency_s + 8 nbytes / (bandwidth_gbps 1e9 eff)``.

        Example: 102,228,128 bytes (ResNet-50 fp32) at 10 Gbit/s line rate take 0.0818 s.
        """
        latency_s, _ = self._absolute("message time")
        return latency_s + self.transfer_time(nbytes)

    @property
    def has_compute_noise(self) -> bool:
        """Whether the condition perturbs compute times (stragglers or lognormal noise)."""
        return self.compute_cv > 0.0 or (
            self.straggler_prob > 0.0 and self.straggler_slowdown > 1.0
        )

    def replace(self, **changes: Any) -> NetworkConfig:
        """A copy with some fields changed (validated)."""
        data = asdict(self)
        data.update(changes)
        return NetworkConfig(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkConfig:
        """Build from a plain mapping (e.g. a resolved Hydra config); unknown keys are errors."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"network: unknown key(s) {unknown}; the allowed keys are {sorted(known)}"
            )
        return cls(**data)


def network_conf_dir() -> Path:
    """The ``conf/network`` directory of the Hydra configs: every preset is a file there."""
    from sgprepro.paths import conf_dir

    return conf_dir() / "network"


def list_presets(conf_dir: str | Path | None = None) -> list[str]:
    """Names of the presets found in ``conf_dir`` (default :func:`network_conf_dir`)."""
    directory = Path(conf_dir) if conf_dir is not None else network_conf_dir()
    return sorted(p.stem for p in directory.glob("*.yaml"))


def load_preset(name: str, conf_dir: str | Path | None = None) -> NetworkConfig:
    """Read ``conf/network/<name>.yaml`` without Hydra and return the validated condition.

    Args:
        name: preset name, e.g. ``"eth_10g"``.
        conf_dir: directory holding the presets; default :func:`network_conf_dir`.

    Raises:
        ValueError: unknown preset, unknown key or an invalid value.
    """
    import yaml

    directory = Path(conf_dir) if conf_dir is not None else network_conf_dir()
    path = directory / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(
            f"network={name!r}: no preset file {path}; choose one of {list_presets(directory)}"
        )
    with path.open() as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ValueError(f"network={name!r}: {path} must hold a mapping of NetworkConfig fields")
    data = {k: v for k, v in data.items() if k != "defaults"}
    return NetworkConfig.from_dict(data)
