"""The only package that imports torch.distributed: process groups, flat buffers, point-to-point.

Every wait has a timeout; a timeout becomes a :class:`CommTimeoutError` naming rank, step and peer.
"""

from sgprepro.comm.communicator import (
    CommError,
    CommTimeoutError,
    Communicator,
    PendingExchange,
    SentLog,
)
from sgprepro.comm.flat import flat_grad, flatten_params_
from sgprepro.comm.group import WorkerContext, destroy, init_worker, rendezvous_store

__all__ = [
    "CommError",
    "CommTimeoutError",
    "Communicator",
    "PendingExchange",
    "SentLog",
    "WorkerContext",
    "destroy",
    "flat_grad",
    "flatten_params_",
    "init_worker",
    "rendezvous_store",
]
