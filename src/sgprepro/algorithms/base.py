"""The interface every distributed algorithm implements.

An algorithm wraps one rank's model and optimizer. The training loop calls
:meth:`Algorithm.train_step` once per iteration with a closure that computes the loss on the local
batch and back-propagates; the algorithm decides where the model's parameters stand when the
closure runs, applies the local optimizer step, and communicates.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from sgprepro.comm import Communicator, flatten_params_
from sgprepro.topology import PeersSchedule, Topology

ALGORITHMS = ("allreduce", "dpsgd", "adpsgd", "sgp", "osgp")
ALLREDUCE_MODES = ("param_avg", "grad_bucket")

Closure = Callable[[], torch.Tensor]
LrFn = Callable[[float], float]


@dataclass(frozen=True)
class AlgorithmConfig:
    """Algorithm choice and its own knobs (the ``algorithm`` config group).

    Attributes:
        name: one of allreduce, dpsgd, adpsgd, sgp, osgp.
        allreduce_mode: ``param_avg`` (paper-era: average the parameters after the local step) or
            ``grad_bucket`` (modern: bucketed gradient all-reduce overlapped with backward).
        bucket_mb: bucket size for ``grad_bucket``.
        tau: OSGP staleness: a message sent at iteration k is mixed in at iteration k + tau.
        gossip_margin_rounds: AD-PSGD only; extra handshake rounds reserved for a clean stop
            (0: derived from the graph, which is always safe).
        allreduce_algo: the collective the timing engine emulates for allreduce
            (``recursive_doubling``: the paper-era THD TCP all-reduce; ``ring``; ``tree``). The
            real run uses its backend's own collective; this only shapes emulated time.
    """

    name: str = "sgp"
    allreduce_mode: str = "param_avg"
    bucket_mb: float = 25.0
    tau: int = 1
    gossip_margin_rounds: int = 0
    allreduce_algo: str = "recursive_doubling"

    def __post_init__(self) -> None:
        if self.name not in ALGORITHMS:
            raise ValueError(
                f"algorithm.name={self.name!r}: unknown algorithm; choose one of {list(ALGORITHMS)}"
            )
        if self.allreduce_mode not in ALLREDUCE_MODES:
            raise ValueError(
                f"algorithm.allreduce_mode={self.allreduce_mode!r}: must be one of "
                f"{list(ALLREDUCE_MODES)}; use param_avg (the paper's) or grad_bucket (DDP-style)"
            )
        if self.tau < 0:
            raise ValueError(
                f"algorithm.tau={self.tau}: staleness must be >= 0; use tau=1 (the paper's overlap) "
                "or tau=0 (no overlap)"
            )
        if self.allreduce_algo not in ("recursive_doubling", "ring", "tree"):
            raise ValueError(
                f"algorithm.allreduce_algo={self.allreduce_algo!r}: must be recursive_doubling, "
                "ring or tree; use recursive_doubling (the paper's) or ring (NCCL/gloo today)"
            )
        if self.bucket_mb <= 0:
            raise ValueError(f"algorithm.bucket_mb={self.bucket_mb}: must be > 0; try 25")


@dataclass
class StepInfo:
    """What one iteration did on this rank (fed to the trace and the metrics)."""

    loss: float
    lr: float
    compute_s: (
        float  # CPU time of this thread for gradient + local update (robust to oversubscription)
    )
    comm_s: float  # wall time blocked waiting for communication
    wall_s: float  # wall time of the whole step
    sent: list[list[int]] = field(
        default_factory=list
    )  # [peer, bytes]; peer -1: collective payload
    stop: bool = False  # AD-PSGD: the global iteration budget is spent
    global_step: float | None = (
        None  # AD-PSGD: global iteration count / n when this gradient was taken
    )


class Algorithm(ABC):
    """Base class: holds the flat parameter buffer and the bookkeeping of a step.

    Args:
        model: this rank's model (identical initial parameters on every rank).
        optimizer: a torch optimizer over ``model.parameters()`` (momentum stays local).
        comm: this rank's communicator.
        topology: the communication graph (ignored by allreduce).
        peers: peers per iteration by epoch.
        config: algorithm knobs.
        lr_fn: learning rate as a function of the (fractional) iteration index.
    """

    name: ClassVar[str] = ""

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        comm: Communicator,
        topology: Topology,
        peers: PeersSchedule,
        config: AlgorithmConfig,
        lr_fn: LrFn,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.comm = comm
        self.topology = topology
        self.peers = peers
        self.config = config
        self.lr_fn = lr_fn
        self.rank = comm.rank
        self.world_size = comm.world_size
        self.params = [p for p in model.parameters()]
        self.flat = flatten_params_(self.params)

    # -- what the training loop uses -------------------------------------------------------
    @abstractmethod
    def train_step(self, step: int, epoch: float, closure: Closure) -> StepInfo:
        """Run one iteration. Collective for synchronous algorithms: every rank, in step order."""

    def finish(self) -> None:
        """Drain in-flight messages and stop background work (called once after the last step)."""

    @property
    def ps_weight(self) -> float:
        """PushSum weight w of this rank (1 for algorithms without weights)."""
        return 1.0

    def debiased(self) -> torch.Tensor:
        """The de-biased model z = x / w as a flat vector (what the node evaluates)."""
        return self.flat

    def state_dict(self) -> dict:
        return {"ps_weight": self.ps_weight}

    def load_state_dict(self, state: dict) -> None:
        del state

    # -- helpers ---------------------------------------------------------------------------
    def _set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def _step_info(self, loss: float, lr: float, cpu: float, t0: float, wait0: float) -> StepInfo:
        """StepInfo of a synchronous step that started at ``t0`` with ``comm.wait_s == wait0``."""
        return StepInfo(
            loss=float(loss),
            lr=lr,
            compute_s=cpu,
            comm_s=self.comm.wait_s - wait0,
            wall_s=time.perf_counter() - t0,
            sent=self.comm.sent.take(),
        )

    def _local_step(self, step: int, closure: Closure) -> tuple[float, float, float]:
        """Set the lr, compute the gradient, apply the optimizer: returns (loss, lr, cpu_s)."""
        lr = self.lr_fn(step)
        self._set_lr(lr)
        c0 = time.thread_time()
        loss = closure()
        self.optimizer.step()
        return float(loss), lr, time.thread_time() - c0
