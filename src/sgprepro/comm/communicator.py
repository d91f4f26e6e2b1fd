"""Point-to-point exchanges and collectives with timeouts and byte accounting.

Sends and receives of one round are posted together (non-blocking) before anything waits, so no
ordering of peers can deadlock. Every wait is bounded; a timeout raises :class:`CommTimeoutError`.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

COLLECTIVE = -1  # peer id recorded for the payload of a collective (all-reduce)
_TAG_SPACE = 1 << 20  # point-to-point rounds use tags step % _TAG_SPACE
_COLLECTIVE_TAGS = 1 << 21  # the all-reduce's messages use tags above, never colliding with them
_REDUCE, _BROADCAST = 0, 1  # the all-reduce's two phases (the tag's lowest bit)


def _posted(work: dist.Work | None) -> dist.Work:
    """isend/irecv return no handle only to a rank outside the group; every rank is in ours."""
    if work is None:
        raise RuntimeError("point-to-point message posted outside its process group")
    return work


class CommError(RuntimeError):
    """A communication failed."""


class CommTimeoutError(CommError):
    """A wait outlived its timeout. The message names rank, step, peer and the operation."""

    def __init__(
        self, rank: int, step: int, peer: int | str, op: str, timeout_s: float, cause: str
    ):
        self.rank, self.step, self.peer, self.op = rank, step, peer, op
        super().__init__(
            f"rank {rank} step {step}: {op} with peer {peer} did not complete within "
            f"{timeout_s:.1f}s (comm.timeout_s); the peer may have crashed or be stuck "
            f"[{cause.splitlines()[0][:200] if cause else 'timeout'}]"
        )


@dataclass
class SentLog:
    """Messages sent by this rank in the current step: [peer, bytes] (peer -1: collective payload)."""

    entries: list[list[int]] = field(default_factory=list)

    def add(self, peer: int, nbytes: int) -> None:
        self.entries.append([peer, nbytes])

    def take(self) -> list[list[int]]:
        out, self.entries = self.entries, []
        return out


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


class PendingExchange:
    """Posted sends and receives of one round; :meth:`wait` returns the received tensors."""

    def __init__(
        self,
        comm: Communicator,
        step: int,
        works: list[tuple[str, int, dist.Work]],
        recv_bufs: dict[int, torch.Tensor],
        send_bufs: list[torch.Tensor],
    ) -> None:
        self.comm, self.step = comm, step
        self._works = works
        self._recv = recv_bufs
        self._send = send_bufs  # kept alive until the sends complete
        self.done = False

    def wait(self) -> dict[int, torch.Tensor]:
        """Block until every send and receive of the round completed (bounded by the timeout)."""
        if not self.done:
            t0 = time.perf_counter()
            deadline = t0 + self.comm.timeout_s
            for op, peer, work in self._works:
                remaining = max(deadline - time.perf_counter(), 1e-3)
                try:
                    work.wait(timeout=datetime.timedelta(seconds=remaining))
                except RuntimeError as exc:
                    raise CommTimeoutError(
                        self.comm.rank, self.step, peer, op, self.comm.timeout_s, str(exc)
                    ) from exc
            self.comm.wait_s += time.perf_counter() - t0
            self.done = True
            self._send = []
        return self._recv


class Communicator:
    """One rank's view of a process group.

    Args:
        rank: this process's rank in the default group.
        world_size: number of ranks.
        timeout_s: bound on every wait.
        group: process group to use (None: the default group). AD-PSGD's gossip thread uses its own.
    """

    def __init__(
        self,
        rank: int,
        world_size: int,
        timeout_s: float = 60.0,
        group: dist.ProcessGroup | None = None,
        backend: str = "gloo",
    ) -> None:
        self.rank, self.world_size, self.timeout_s = rank, world_size, timeout_s
        self.group = group
        self.backend = backend
        self.sent = SentLog()
        self.wait_s = 0.0
        self._collectives = 0  # all-reduces so far: the same count on every rank

    @classmethod
    def new_group(
        cls, rank: int, world_size: int, timeout_s: float, backend: str = "gloo"
    ) -> Communicator:
        """A communicator on a fresh group over all ranks. Collective: every rank calls this."""
        group = dist.new_group(
            ranks=list(range(world_size)),
            timeout=datetime.timedelta(seconds=timeout_s),
            backend=backend,
        )
        if not isinstance(group, dist.ProcessGroup):  # only a rank outside ``ranks`` gets none
            raise RuntimeError(f"rank {rank}: not a member of the new group of {world_size}")
        return cls(rank, world_size, timeout_s, group, backend)

    def _tag(self, step: int) -> int:
        return step % _TAG_SPACE

    def post(
        self,
        sends: Mapping[int, torch.Tensor],
        recv_from: Sequence[int],
        step: int,
        like: torch.Tensor,
    ) -> PendingExchange:
        """Post every send and receive of round ``step`` at once (non-blocking).

        Args:
            sends: peer -> tensor to send (contiguous; must stay unchanged until :meth:`wait`).
            recv_from: peers to receive one tensor each from, shaped and typed like ``like``.
            step: the round, used as the message tag so rounds cannot be confused.
            like: template for receive buffers.
        """
        tag = self._tag(step)
        recv_bufs = {p: torch.empty_like(like) for p in recv_from}
        works: list[tuple[str, int, dist.Work]] = []
        if self.backend == "nccl":
            ops = [dist.P2POp(dist.irecv, buf, p, self.group, tag) for p, buf in recv_bufs.items()]
            ops += [dist.P2POp(dist.isend, t, p, self.group, tag) for p, t in sends.items()]
            if ops:
                reqs = dist.batch_isend_irecv(ops)
                kinds = [("recv", p) for p in recv_bufs] + [("send", p) for p in sends]
                works = [(k, p, w) for (k, p), w in zip(kinds, reqs, strict=True)]
        else:
            for p, buf in recv_bufs.items():
                works.append(
                    ("recv", p, _posted(dist.irecv(buf, src=p, group=self.group, tag=tag)))
                )
            for p, t in sends.items():
                works.append(("send", p, _posted(dist.isend(t, dst=p, group=self.group, tag=tag))))
        for p, t in sends.items():
            self.sent.add(p, _nbytes(t))
        return PendingExchange(self, step, works, recv_bufs, list(sends.values()))

    def exchange(
        self,
        sends: Mapping[int, torch.Tensor],
        recv_from: Sequence[int],
        step: int,
        like: torch.Tensor,
    ) -> dict[int, torch.Tensor]:
        """Post and wait: returns peer -> received tensor."""
        return self.post(sends, recv_from, step, like).wait()

    def all_reduce_async(self, tensor: torch.Tensor, record: bool = True) -> dist.Work:
        """Start a sum all-reduce of ``tensor`` in place. Collective: every rank, same order.

        ``record=False`` for measurement traffic (evaluation), which is not training traffic.
        """
        if record:
            self.sent.add(COLLECTIVE, _nbytes(tensor))
        return dist.all_reduce(tensor, op=dist.ReduceOp.SUM, group=self.group, async_op=True)

    def _bounded_wait(self, work: dist.Work, step: int, op: str) -> float:
        """Wait for a collective within ``timeout_s``; returns the seconds waited."""
        t0 = time.perf_counter()
        try:
            work.wait(timeout=datetime.timedelta(seconds=self.timeout_s))
        except RuntimeError as exc:
            raise CommTimeoutError(self.rank, step, "all", op, self.timeout_s, str(exc)) from exc
        return time.perf_counter() - t0

    def wait_work(self, work: dist.Work, step: int, what: str) -> None:
        """Wait for training traffic (counted in ``wait_s``)."""
        self.wait_s += self._bounded_wait(work, step, what)

    def all_reduce_(
        self, tensor: torch.Tensor, step: int, what: str = "all_reduce", record: bool = True
    ) -> torch.Tensor:
        """Blocking sum all-reduce in place. Collective: every rank calls this, in step order.

        On gloo it is a binomial tree over point-to-point messages: partial sums flow to rank 0
        in ceil(log2 n) levels, then the sum flows back down the same tree. Each rank sends and
        receives about two messages, where gloo's ring moves 2 (n - 1) chunks per rank and
        recursive doubling log2 n whole messages; with many ranks sharing few cores that CPU is
        what an all-reduce costs. The emulated time is the paper's collective either way (its
        timing program), not this one. Every rank ends with rank 0's bits.
        """
        if self.backend == "gloo" and self.world_size > 1:
            if record:
                self.sent.add(COLLECTIVE, _nbytes(tensor))
            return self._tree_all_reduce_(tensor, step)
        self.wait_work(self.all_reduce_async(tensor, record), step, what)
        return tensor

    def _tree_all_reduce_(self, tensor: torch.Tensor, step: int) -> torch.Tensor:
        n, rank = self.world_size, self.rank
        # tagged by the all-reduce's sequence number, which every rank shares (ranks of an
        # asynchronous run reach the final evaluation at different steps)
        tag = _COLLECTIVE_TAGS + 2 * (self._collectives % _TAG_SPACE)
        self._collectives += 1
        lowest = rank & -rank if rank else 1 << n.bit_length()  # rank 0 is every level's root
        # reduce: children rank + 2^k (2^k below this rank's lowest set bit) send their sums
        mask = 1
        while mask < lowest and rank + mask < n:
            tensor.add_(self._wait_one("recv", rank + mask, tag + _REDUCE, step, tensor))
            mask <<= 1
        if rank:
            self._wait_one("send", rank - lowest, tag + _REDUCE, step, tensor)
            self._wait_one("recv", rank - lowest, tag + _BROADCAST, step, tensor, into=tensor)
        # broadcast: the sum goes back to the same children, farthest first
        while mask > 1:
            mask >>= 1
            if rank + mask < n:
                self._wait_one("send", rank + mask, tag + _BROADCAST, step, tensor)
        return tensor

    def _wait_one(
        self,
        op: str,
        peer: int,
        tag: int,
        step: int,
        tensor: torch.Tensor,
        into: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One blocking point-to-point message within the timeout: ``send`` sends ``tensor``;
        ``recv`` returns a fresh buffer shaped like it (or receives ``into``)."""
        if op == "send":
            work = _posted(dist.isend(tensor, dst=peer, group=self.group, tag=tag))
            buf = tensor
        else:
            buf = torch.empty_like(tensor) if into is None else into
            work = _posted(dist.irecv(buf, src=peer, group=self.group, tag=tag))
        PendingExchange(self, step, [(op, peer, work)], {}, [tensor]).wait()
        return buf

    def all_gather(self, tensor: torch.Tensor, step: int) -> list[torch.Tensor]:
        """Every rank's ``tensor`` (not counted as training traffic). Collective."""
        out = [torch.empty_like(tensor) for _ in range(self.world_size)]
        work = dist.all_gather(out, tensor.contiguous(), group=self.group, async_op=True)
        self._bounded_wait(work, step, "all_gather")
        return out

    def broadcast_object(self, obj: Any, src: int) -> Any:
        """``obj`` of rank ``src`` on every rank (pickled). Collective: every rank calls this."""
        box = [obj]
        dist.broadcast_object_list(box, src=src, group=self.group)
        return box[0]

    def barrier(self, step: int) -> None:
        """Bounded barrier. Collective."""
        flag = torch.zeros(1, device="cuda" if self.backend == "nccl" else "cpu")
        self._bounded_wait(dist.all_reduce(flag, group=self.group, async_op=True), step, "barrier")
