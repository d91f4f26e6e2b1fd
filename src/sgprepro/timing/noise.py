"""Compute-time noise and stragglers for replay studies (deterministic for a given seed).

Model (an assumption to be calibrated against measured traces): every node's compute of every
iteration is multiplied by a mean-one lognormal factor with coefficient of variation
``compute_cv`` and, with probability ``straggler_prob`` (independently per node and iteration),
by ``straggler_slowdown``. The paper reports no such figures; the presets set both to zero.
"""

from __future__ import annotations

import numpy as np

from sgprepro.network import NetworkConfig

COMPUTE_NOISE_STREAM = 1
"""RNG stream id of the compute-noise factors (``default_rng((seed, COMPUTE_NOISE_STREAM))``);
per-message jitter uses ``sgprepro.timing.engine.JITTER_STREAM``."""


def _factors(
    shape: tuple[int, int],
    compute_cv: float,
    straggler_prob: float,
    straggler_slowdown: float,
    seed: int,
) -> np.ndarray:
    rng = np.random.default_rng((seed, COMPUTE_NOISE_STREAM))
    factor = np.ones(shape)
    if compute_cv > 0.0:
        sigma2 = np.log1p(compute_cv**2)  # lognormal with mean 1 and the requested CV
        factor *= rng.lognormal(-sigma2 / 2.0, np.sqrt(sigma2), shape)
    if straggler_prob > 0.0 and straggler_slowdown != 1.0:
        factor[rng.random(shape) < straggler_prob] *= straggler_slowdown
    return factor


def synthesize_compute(
    n: int,
    iterations: int,
    base_s: float,
    *,
    compute_cv: float = 0.0,
    straggler_prob: float = 0.0,
    straggler_slowdown: float = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """A ``[n, iterations]`` compute matrix: ``base_s`` times the noise and straggler factors.

    Args:
        n: nodes.
        iterations: iterations per node.
        base_s: mean compute seconds per iteration without stragglers.
        compute_cv: coefficient of variation of the lognormal factor (0: none).
        straggler_prob: per node and iteration probability of straggling.
        straggler_slowdown: compute multiplier of a straggling iteration.
        seed: noise seed (same seed, same matrix).
    """
    if n < 1 or iterations < 1 or not base_s >= 0.0:
        raise ValueError(
            f"synthesize_compute(n={n}, iterations={iterations}, base_s={base_s}): need n >= 1, "
            "iterations >= 1 and base_s >= 0"
        )
    # validate the noise parameters with the network schema's own rules
    NetworkConfig(
        name="compute_noise",
        latency_s=0.0,
        bandwidth_gbps=1.0,
        compute_cv=compute_cv,
        straggler_prob=straggler_prob,
        straggler_slowdown=straggler_slowdown,
    )
    shape = (n, iterations)
    return base_s * _factors(shape, compute_cv, straggler_prob, straggler_slowdown, seed)


def apply_compute_noise(compute_s: np.ndarray, network: NetworkConfig, seed: int = 0) -> np.ndarray:
    """Apply ``network``'s compute-noise and straggler model to a measured ``[n, T]`` matrix.

    Returns a new array; with a noise-free condition it equals the input exactly.
    """
    compute = np.asarray(compute_s, dtype=float)
    if not network.has_compute_noise:
        return compute.copy()
    factor = _factors(
        compute.shape,
        network.compute_cv,
        network.straggler_prob,
        network.straggler_slowdown,
        seed,
    )
    return compute * factor
