"""AD-PSGD (Lian et al. 2018): asynchronous decentralized SGD with pairwise atomic averaging.

No global barrier. Per rank, two loops run concurrently:

* the trainer (the caller's thread): pulls the latest parameters, computes a gradient on its local
  batch, takes a ticket from the GLOBAL iteration counter kept in the torch.distributed store, and
  hands the gradient over (one slot: at most one gradient per gossip round, so a fast trainer
  waits for its gossip loop, as in the original code);
* the gossip loop (a background thread on its own process group): owns the parameters x and the
  optimizer (momentum stays local); each round it applies the handed-over gradient, if any, then
  averages with its bipartite partner of that round: x_i <- x_i + (x_j - x_i) / 2, using the
  values both partners sent, so the pair's sum is conserved exactly.

The learning rate follows the global count (gradients taken by all ranks / n). The run stops once
n * total_steps gradients were taken. Clean stop without a barrier: the first gossip loop to see
the budget spent publishes a stop round r_stop = r + margin (compare-and-set in the store, so all
ranks agree); every loop finishes exactly round r_stop. The margin bounds how far any rank can be
ahead: with pairwise blocking rounds, a rank can lead the slowest by at most (n - 1) * L rounds for
a graph cycle of L rounds. Rounds after a rank learned the stop are handshakes without averaging
(a flag in the message; a pair averages only if both flags say so), so the models are not
averaged more than the asynchronous run would have.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

import torch

from sgprepro.algorithms.base import Algorithm, Closure, StepInfo
from sgprepro.comm import CommError, Communicator, flat_grad
from sgprepro.topology import BipartiteGraph

log = logging.getLogger(__name__)

COUNTER_KEY = "adpsgd/gradients"
STOP_FLAG_KEY = "adpsgd/budget_spent"
STOP_ROUND_KEY = "adpsgd/stop_round"


class ADPSGD(Algorithm):
    """AD-PSGD. Extra arguments: ``store`` (the job's rendezvous store) and ``total_steps``
    (iterations per node; the global budget is ``total_steps * n`` gradients)."""

    name = "adpsgd"

    def __init__(self, *args, store, total_steps: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.topology, BipartiteGraph):
            raise ValueError(
                f"algorithm=adpsgd with topology={self.topology.name}: AD-PSGD gossips with one "
                "bipartite partner per round; use topology=bipartite_exponential"
            )
        self.store = store
        self.total_grads = total_steps * self.world_size
        margin = self.config.gossip_margin_rounds or (
            (self.world_size - 1) * self.topology.cycle_length + 2
        )
        self.margin = margin
        # the gossip loop's own parameters and optimizer
        self.x = torch.nn.Parameter(self.flat.detach().clone())
        defaults = dict(self.optimizer.defaults)
        self.gossip_opt = type(self.optimizer)([self.x], **defaults)
        self._lock = threading.Lock()
        self._slot: queue.Queue = queue.Queue(maxsize=1)
        self._trainer_done = threading.Event()
        self._error: BaseException | None = None
        self.rounds_done = 0
        self._sent_pending: list[list[int]] = []
        self.gossip = Communicator.new_group(
            self.rank, self.world_size, self.comm.timeout_s, self.comm.backend
        )
        self._thread = threading.Thread(
            target=self._run_gossip, name=f"adpsgd-gossip-r{self.rank}", daemon=True
        )
        self._thread.start()

    # -- trainer side ---------------------------------------------------------------------
    def train_step(self, step: int, epoch: float, closure: Closure) -> StepInfo:
        t0 = time.perf_counter()
        self._raise_if_failed()
        with self._lock:
            self.flat.copy_(self.x.detach())
        c0 = time.thread_time()
        loss = closure()
        grad = flat_grad(self.params)
        cpu = time.thread_time() - c0
        ticket = self.store.add(COUNTER_KEY, 1)  # 1-based global gradient count
        global_step = (ticket - 1) / self.world_size
        lr = self.lr_fn(global_step)
        stop = ticket >= self.total_grads
        w0 = time.perf_counter()
        if ticket <= self.total_grads:
            self._handover(grad, lr, step)
        if stop:
            self.store.set(STOP_FLAG_KEY, "1")
        return StepInfo(
            loss=float(loss),
            lr=lr,
            compute_s=cpu,
            comm_s=time.perf_counter() - w0,  # waiting for the gossip loop to take the gradient
            wall_s=time.perf_counter() - t0,
            sent=self._take_sent(),  # what the gossip loop sent since the previous step
            stop=stop,
            global_step=global_step,
        )

    def _take_sent(self) -> list[list[int]]:
        with self._lock:
            out, self._sent_pending = self._sent_pending, []
        return out

    def _handover(self, grad: torch.Tensor, lr: float, step: int) -> None:
        deadline = time.perf_counter() + self.comm.timeout_s
        while True:
            self._raise_if_failed()
            try:
                self._slot.put((grad, lr), timeout=0.05)
                return
            except queue.Full:
                if time.perf_counter() > deadline:
                    raise CommError(
                        f"rank {self.rank} step {step}: the gossip loop took no gradient within "
                        f"{self.comm.timeout_s:.1f}s (comm.timeout_s); its partner may be stuck"
                    ) from None

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise CommError(f"rank {self.rank}: gossip loop failed: {self._error}") from self._error

    # -- gossip side ----------------------------------------------------------------------
    def _apply_gradient(self, wait_s: float = 0.0) -> None:
        try:
            grad, lr = self._slot.get(timeout=wait_s) if wait_s > 0 else self._slot.get_nowait()
        except queue.Empty:
            return
        with self._lock:
            for group in self.gossip_opt.param_groups:
                group["lr"] = lr
            self.x.grad = grad
            self.gossip_opt.step()

    def _stop_round(self, r: int) -> int | None:
        if self.store.check([STOP_ROUND_KEY]):
            return int(self.store.get(STOP_ROUND_KEY))
        if self.store.check([STOP_FLAG_KEY]):
            agreed = self.store.compare_set(STOP_ROUND_KEY, "", str(r + self.margin))
            return int(agreed)
        return None

    def _run_gossip(self) -> None:
        try:
            self._gossip_loop()
        except BaseException as exc:  # noqa: BLE001 - surfaced to the trainer thread
            self._error = exc
            log.error("rank %d: gossip loop failed: %s", self.rank, exc)

    def _gossip_loop(self) -> None:
        n = self.x.numel()
        sendbuf = torch.empty(n + 1, dtype=self.flat.dtype, device=self.flat.device)
        stop_round: int | None = None
        r = 0
        while True:
            if stop_round is None:
                stop_round = self._stop_round(r)
                if stop_round is not None and r > stop_round:
                    raise CommError(
                        f"rank {self.rank}: gossip round {r} is past the agreed stop round "
                        f"{stop_round}; raise algorithm.gossip_margin_rounds"
                    )
            if stop_round is not None and r > stop_round:
                break
            self._apply_gradient()
            averaging = 1.0 if stop_round is None else 0.0
            partner = self.topology.partner(self.rank, r)
            with self._lock:
                sendbuf[:n].copy_(self.x.detach())
            sendbuf[n] = averaging
            got = self.gossip.exchange({partner: sendbuf}, [partner], r, sendbuf)[partner]
            if averaging and float(got[n]) == 1.0:
                with self._lock:
                    # x_i <- x_i + (x_j - x_i_sent) / 2: the pair's sum is conserved even if
                    # x_i moved since it was sent (it cannot: only this thread writes x)
                    self.x.data.add_(got[:n].sub(sendbuf[:n]).mul_(0.5))
            with self._lock:
                self._sent_pending.extend(self.gossip.sent.take())
            r += 1
            self.rounds_done = r
        # keep taking the trainer's gradients (those within the budget) until it has stopped
        deadline = time.perf_counter() + self.comm.timeout_s
        while not self._trainer_done.is_set():
            self._apply_gradient(wait_s=0.02)
            if time.perf_counter() > deadline:
                raise CommError(
                    f"rank {self.rank}: the trainer did not stop within {self.comm.timeout_s:.1f}s "
                    f"after gossip round {stop_round}"
                )
        self._apply_gradient()

    def finish(self) -> None:
        """Wait for the gossip loop to reach the agreed stop round; load x into the model."""
        self._trainer_done.set()
        self._thread.join(timeout=self.comm.timeout_s + 5)
        if self._thread.is_alive():
            raise CommError(
                f"rank {self.rank}: gossip loop did not stop within {self.comm.timeout_s:.1f}s "
                f"(round {self.rounds_done})"
            )
        self._raise_if_failed()
        self.flat.copy_(self.x.detach())

    def debiased(self) -> torch.Tensor:
        return self.flat
