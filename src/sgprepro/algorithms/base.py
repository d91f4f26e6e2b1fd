"""The interface every distributed algorithm implements, and what each declares about itself.

An algorithm wraps one rank's model and optimizer. The training loop calls
:meth:`Algorithm.train_step` once per iteration with a closure that computes the loss on the local
batch and back-propagates; the algorithm decides where the model's parameters stand when the
closure runs, applies the local optimizer step, and communicates.

Everything the rest of the harness needs to know about an algorithm is declared on its class,
never re-checked by name elsewhere: whether it is synchronous, its default graph and the graphs it
accepts (:meth:`Algorithm.check`), its communication program for the timing engine
(:meth:`Algorithm.timing_program`), and its matrix-form update for the test oracle
(:meth:`Algorithm.matrix_step`). Classes register with :func:`sgprepro.algorithms.register`.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from sgprepro.comm import Communicator, flatten_params_
from sgprepro.network import NetworkConfig
from sgprepro.schema import AlgorithmConfig
from sgprepro.timing import ProgramSpec
from sgprepro.topology import PeersSchedule, Topology

if TYPE_CHECKING:
    from sgprepro.algorithms.matrix import MatrixState

Closure = Callable[[], torch.Tensor]
LrFn = Callable[[float], float]
PeersAt = Callable[[int], int]


@dataclass
class StepInfo:
    """What one iteration did on this rank (fed to the trace and the metrics).

    Attributes:
        loss: training loss of the local batch.
        lr: learning rate used.
        compute_s: CPU time of this thread for gradient and local update (robust to
            oversubscription).
        comm_s: wall time blocked waiting for communication.
        wall_s: wall time of the whole step.
        sent: ``[peer, bytes]`` of every message sent (peer -1: a collective's payload).
        stop: AD-PSGD: this rank has taken its last gradient.
        global_step: AD-PSGD: global gradient count / n when this gradient was taken.
        extra: per-step facts for the trace (AD-PSGD: staleness, rounds).
    """

    loss: float
    lr: float
    compute_s: float
    comm_s: float
    wall_s: float
    sent: list[list[int]] = field(default_factory=list)
    stop: bool = False
    global_step: float | None = None
    extra: dict[str, float | int] = field(default_factory=dict)


@dataclass(frozen=True)
class RunContext:
    """What the job knows beyond the common arguments, for the algorithms that need it.

    Attributes:
        total_steps: iterations per node of the run.
        store: the job's rendezvous store (AD-PSGD's real clock keeps its global count there).
        schedule: AD-PSGD's emulated-clock schedule (:func:`sgprepro.timing.adpsgd_schedule`).
    """

    total_steps: int = 0
    store: Any = None
    schedule: Any = None


class Algorithm(ABC):
    """Base class: holds the flat parameter buffer and the bookkeeping of a step.

    Args:
        model: this rank's model (identical initial parameters on every rank).
        optimizer: a torch optimizer over ``model.parameters()`` (momentum stays local).
        comm: this rank's communicator.
        topology: the communication graph (None for algorithms without one).
        peers: peers per iteration by epoch.
        config: algorithm knobs.
        lr_fn: learning rate as a function of the (fractional) iteration index.
        run: job facts some algorithms need (:class:`RunContext`).
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    """One line: what the algorithm computes (the README's algorithm table)."""
    synchronous: ClassVar[bool] = True
    """Every rank steps in lockstep (collective evaluation mid-run, checkpoints, oracle)."""
    default_topology: ClassVar[str | None] = None
    """The graph ``topology=auto`` picks; None: the algorithm uses no graph."""
    settings: ClassVar[tuple[str, ...]] = ()
    """The ``algorithm.*`` keys it reads beyond ``name`` and ``variant`` (the CLI warns when one
    given on the command line is read by none of the run's algorithm's)."""

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        comm: Communicator,
        topology: Topology | None,
        peers: PeersSchedule,
        config: AlgorithmConfig,
        lr_fn: LrFn,
        run: RunContext | None = None,
    ) -> None:
        self.run = run if run is not None else RunContext()
        self.model = model
        self.optimizer = optimizer
        self.comm = comm
        self.topology = topology
        self.peers = peers
        self.config = config
        self.lr_fn = lr_fn
        self.rank = comm.rank
        self.world_size = comm.world_size
        self.params = list(model.parameters())
        self.flat = flatten_params_(self.params)

    # -- declarations (class level: no process group needed) --------------------------------
    @classmethod
    def check(cls, config: AlgorithmConfig, topology: Topology | None) -> None:
        """Raise ``ValueError`` (one line: keys, values, constraint, fix) when this algorithm
        cannot run with ``config`` on ``topology``. Runs before any worker starts."""

    @classmethod
    @abstractmethod
    def timing_program(
        cls, config: AlgorithmConfig, peers_at: PeersAt, message_bytes: int = 0
    ) -> ProgramSpec:
        """The communication program the timing engine replays for a run of this algorithm
        (``peers_at``: out-peers per iteration; ``message_bytes``: the flat parameter vector)."""

    @classmethod
    def needs_plan(cls, config: AlgorithmConfig) -> bool:
        """Whether :meth:`plan` computes something (decided before any rank runs)."""
        return False

    @classmethod
    def plan(
        cls,
        config: AlgorithmConfig,
        *,
        network: NetworkConfig,
        topology: Topology | None,
        nodes: int,
        total_steps: int,
        message_bytes: int,
        seed: int,
    ) -> Any:
        """A run-level plan every rank follows (AD-PSGD: its emulated-clock schedule), computed
        once per job and handed to the constructor as ``RunContext.schedule``."""
        return None

    has_oracle: ClassVar[bool] = False
    """Whether :meth:`matrix_step` exists (a single-process matrix-form twin)."""

    @classmethod
    def matrix_step(
        cls, state: MatrixState, step: int, epoch: float, closures: Sequence[Closure]
    ) -> list[float]:
        """One iteration of every node in matrix form (the test oracle); returns the losses."""
        raise TypeError(f"algorithm={cls.name} has no matrix-form twin")

    @classmethod
    def matrix_finish(cls, state: MatrixState) -> None:
        """Matrix form of :meth:`finish` (messages still in flight)."""

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

    def _step_info(
        self, loss: float | torch.Tensor, lr: float, cpu: float, t0: float, wait0: float
    ) -> StepInfo:
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


def require_topology(cls: type[Algorithm], topology: Topology | None) -> Topology:
    """The graph of a gossip algorithm, or a one-line error when it has none."""
    if topology is None:
        raise ValueError(
            f"algorithm={cls.name}: needs a communication graph; use topology=auto "
            f"({cls.default_topology})"
        )
    return topology
