"""AllReduce SGD: exact averaging every iteration (the paper's baseline, Sec. 6 of Assran et al. 2019)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import torch

from sgprepro.algorithms.base import Algorithm, Closure, PeersAt, StepInfo
from sgprepro.algorithms.matrix import MatrixState
from sgprepro.algorithms.registry import register
from sgprepro.schema import AlgorithmConfig
from sgprepro.timing import COLLECTIVES, ProgramSpec
from sgprepro.topology import Topology

ALLREDUCE_MODES = ("param_avg", "grad_bucket")


@register
class AllReduceSGD(Algorithm):
    """Exact averaging in one of two modes (recorded in the run as ``algorithm.allreduce_mode``).

    ``param_avg`` (paper-era): after the local step, x_i <- (1/n) sum_j x_j via a sum all-reduce
    of the parameters scaled by 1/n. With equal starts and a linear update this equals
    gradient-averaged SGD.

    ``grad_bucket`` (modern, DDP-style): gradients are copied into buckets (reverse parameter
    order, ``bucket_mb`` each) as backward produces them; each full bucket's sum all-reduce starts
    at once (overlapping the rest of backward), buckets launch in a fixed order on every rank,
    and the optimizer steps on the averaged gradient.
    """

    name = "allreduce"
    summary = (
        "Exact averaging. `param_avg` (the paper's): after the local step, X <- (1/n) 1 1^T X "
        "(a sum all-reduce of the parameters scaled by 1/n). `grad_bucket` (DDP-style, "
        "`algorithm=allreduce_ddp`): gradient buckets are all-reduced as backward produces them."
    )
    default_topology = None
    settings = ("allreduce_mode", "bucket_mb", "allreduce_algo")
    has_oracle = True

    @classmethod
    def check(cls, config: AlgorithmConfig, topology: Topology | None) -> None:
        if config.allreduce_mode not in ALLREDUCE_MODES:
            raise ValueError(
                f"algorithm.allreduce_mode={config.allreduce_mode!r}: must be one of "
                f"{list(ALLREDUCE_MODES)}; use param_avg (the paper's) or grad_bucket (DDP-style)"
            )
        if config.allreduce_algo not in COLLECTIVES:
            raise ValueError(
                f"algorithm.allreduce_algo={config.allreduce_algo!r}: must be one of "
                f"{sorted(COLLECTIVES)}; use recursive_doubling (the paper's) or ring"
            )
        if not config.bucket_mb > 0:
            raise ValueError(f"algorithm.bucket_mb={config.bucket_mb}: must be > 0; try 25")

    @classmethod
    def timing_program(
        cls, config: AlgorithmConfig, peers_at: PeersAt, message_bytes: int = 0
    ) -> ProgramSpec:
        buckets = 0
        if config.allreduce_mode == "grad_bucket":
            buckets = max(1, math.ceil(message_bytes / (config.bucket_mb * 2**20)))
        return ProgramSpec(
            "allreduce", collective=config.allreduce_algo, buckets=buckets, label=config.row
        )

    @classmethod
    def matrix_step(
        cls, state: MatrixState, step: int, epoch: float, closures: Sequence[Closure]
    ) -> list[float]:
        """param_avg: X <- (1/n) 1 1^T (X - gamma D); grad_bucket: the mean gradient first."""
        losses = state.gradients(closures)
        if state.config.allreduce_mode == "grad_bucket":
            state.average_gradients()
        x = state.local_steps()
        if state.config.allreduce_mode == "param_avg":
            x = state.matrix(np.full((state.n, state.n), 1.0 / state.n)) @ x
        state.unstack(x)
        return losses

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._buckets: list[list[int]] = []
        if self.config.allreduce_mode == "grad_bucket":
            self._setup_buckets()

    # -- grad_bucket ----------------------------------------------------------------------
    def _setup_buckets(self) -> None:
        limit = int(self.config.bucket_mb * 2**20)
        current: list[int] = []
        size = 0
        for idx in reversed(range(len(self.params))):  # backward produces the last layers first
            p = self.params[idx]
            current.append(idx)
            size += p.numel() * p.element_size()
            if size >= limit:
                self._buckets.append(current)
                current, size = [], 0
        if current:
            self._buckets.append(current)
        self._bucket_of = {i: b for b, idxs in enumerate(self._buckets) for i in idxs}
        self._bucket_bufs = [
            torch.empty(
                sum(self.params[i].numel() for i in idxs),
                dtype=self.flat.dtype,
                device=self.flat.device,
            )
            for idxs in self._buckets
        ]
        for idx, p in enumerate(self.params):
            p.register_post_accumulate_grad_hook(self._make_hook(idx))
        self._reset_bucket_state()

    def _reset_bucket_state(self) -> None:
        self._pending = [len(idxs) for idxs in self._buckets]
        self._next_launch = 0
        self._works: list = []
        self._step = 0

    def _make_hook(self, idx: int):
        def hook(_param: torch.Tensor) -> None:
            b = self._bucket_of[idx]
            self._pending[b] -= 1
            self._launch_ready()

        return hook

    def _launch_ready(self, force: bool = False) -> None:
        """Launch buckets in index order once complete (same order on every rank)."""
        while self._next_launch < len(self._buckets) and (
            force or self._pending[self._next_launch] <= 0
        ):
            b = self._next_launch
            buf = self._bucket_bufs[b]
            offset = 0
            for i in self._buckets[b]:
                p = self.params[i]
                n = p.numel()
                if p.grad is None:
                    buf[offset : offset + n].zero_()
                else:
                    buf[offset : offset + n].copy_(p.grad.reshape(-1))
                offset += n
            self._works.append(self.comm.all_reduce_async(buf))
            self._next_launch += 1

    def _finish_buckets(self, step: int) -> None:
        self._launch_ready(force=True)  # parameters that got no gradient this step
        inv_n = 1.0 / self.world_size
        for b, work in enumerate(self._works):
            self.comm.wait_work(work, step, f"gradient all-reduce of bucket {b}")
            buf = self._bucket_bufs[b]
            offset = 0
            for i in self._buckets[b]:
                p = self.params[i]
                n = p.numel()
                avg = buf[offset : offset + n].view_as(p).mul_(inv_n)
                if p.grad is None:
                    p.grad = avg.clone()
                else:
                    p.grad.copy_(avg)
                offset += n
        self._reset_bucket_state()

    # -- the step -------------------------------------------------------------------------
    def train_step(self, step: int, epoch: float, closure: Closure) -> StepInfo:
        t0 = time.perf_counter()
        wait0 = self.comm.wait_s
        lr = self.lr_fn(step)
        self._set_lr(lr)
        if self.config.allreduce_mode == "grad_bucket":
            c0 = time.thread_time()
            loss = closure()  # hooks launch bucket all-reduces during backward
            cpu = time.thread_time() - c0
            self._finish_buckets(step)
            c1 = time.thread_time()
            self.optimizer.step()
            cpu += time.thread_time() - c1
        else:
            c0 = time.thread_time()
            loss = closure()
            self.optimizer.step()
            self.flat.mul_(1.0 / self.world_size)
            cpu = time.thread_time() - c0
            self.comm.all_reduce_(self.flat, step, "parameter all-reduce")
        return self._step_info(loss, lr, cpu, t0, wait0)
