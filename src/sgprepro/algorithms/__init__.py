"""AllReduce SGD, D-PSGD, AD-PSGD, SGP and Overlap-SGP behind one interface (:class:`Algorithm`)."""

from __future__ import annotations

import torch

from sgprepro.algorithms.adpsgd import ADPSGD
from sgprepro.algorithms.allreduce import AllReduceSGD
from sgprepro.algorithms.base import (
    ALGORITHMS,
    ALLREDUCE_MODES,
    Algorithm,
    AlgorithmConfig,
    LrFn,
    StepInfo,
)
from sgprepro.algorithms.dpsgd import DPSGD
from sgprepro.algorithms.sgp import OSGP, SGP
from sgprepro.comm import Communicator
from sgprepro.topology import PeersSchedule, Topology

_CLASSES: dict[str, type[Algorithm]] = {
    "allreduce": AllReduceSGD,
    "dpsgd": DPSGD,
    "adpsgd": ADPSGD,
    "sgp": SGP,
    "osgp": OSGP,
}


def build_algorithm(
    config: AlgorithmConfig,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    comm: Communicator,
    topology: Topology,
    peers: PeersSchedule,
    lr_fn: LrFn,
    *,
    store=None,
    total_steps: int | None = None,
) -> Algorithm:
    """Wrap ``model`` and ``optimizer`` in the algorithm named by ``config.name``.

    Collective for adpsgd (it creates the gossip process group): every rank calls this.
    """
    cls = _CLASSES[config.name]
    kwargs = {}
    if cls is ADPSGD:
        if store is None or total_steps is None:
            raise ValueError("algorithm=adpsgd needs the job's store and total_steps")
        kwargs = {"store": store, "total_steps": total_steps}
    return cls(model, optimizer, comm, topology, peers, config, lr_fn, **kwargs)


__all__ = [
    "ALGORITHMS",
    "ALLREDUCE_MODES",
    "ADPSGD",
    "DPSGD",
    "OSGP",
    "SGP",
    "Algorithm",
    "AlgorithmConfig",
    "AllReduceSGD",
    "StepInfo",
    "build_algorithm",
]
