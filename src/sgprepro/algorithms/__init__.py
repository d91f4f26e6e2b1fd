"""The distributed algorithms behind one interface (:class:`Algorithm`), one module each.

Importing this package imports every module in it, and each algorithm module registers its class;
:func:`algorithm_class` returns the class of a name and :func:`algorithm_names` lists them. Adding
an algorithm is one module with a registered class and one config (see docs/extending.md).
"""

from __future__ import annotations

import importlib
import pkgutil

import torch

from sgprepro.algorithms.base import Algorithm, Closure, LrFn, RunContext, StepInfo
from sgprepro.algorithms.matrix import MatrixState
from sgprepro.algorithms.registry import algorithm_class, algorithm_names, register
from sgprepro.comm import Communicator
from sgprepro.schema import AlgorithmConfig
from sgprepro.topology import PeersSchedule, Topology

_INFRASTRUCTURE = {"base", "matrix", "registry"}
for _module in pkgutil.iter_modules(__path__):  # every other module is an algorithm: import it,
    if _module.name not in _INFRASTRUCTURE:  # so its class registers itself
        importlib.import_module(f"{__name__}.{_module.name}")


def build_algorithm(
    config: AlgorithmConfig,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    comm: Communicator,
    topology: Topology | None,
    peers: PeersSchedule,
    lr_fn: LrFn,
    run: RunContext | None = None,
) -> Algorithm:
    """Wrap ``model`` and ``optimizer`` in the algorithm named by ``config.name``.

    ``run`` holds what some algorithms need beyond the common arguments (AD-PSGD: total steps,
    and its schedule or the store). Collective where the algorithm creates process groups
    (AD-PSGD's real clock): every rank calls this.
    """
    cls = algorithm_class(config.name)
    return cls(model, optimizer, comm, topology, peers, config, lr_fn, run)


__all__ = [
    "Algorithm",
    "AlgorithmConfig",
    "Closure",
    "LrFn",
    "MatrixState",
    "RunContext",
    "StepInfo",
    "algorithm_class",
    "algorithm_names",
    "build_algorithm",
    "register",
]
