"""One cell of the paper's table in emulation: an algorithm's declared program on the paper's
workload, with the paper-era CPU passes, under a 10 GbE link of fitted efficiency."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from sgprepro.algorithms import AlgorithmConfig, algorithm_class
from sgprepro.network import NetworkConfig
from sgprepro.replay.paper import PaperTable
from sgprepro.timing import ProgramSpec, TimingResult, simulate
from sgprepro.topology import Topology, make_topology

MODERN_CONFIGS = {
    "allreduce": AlgorithmConfig(
        name="allreduce", allreduce_mode="grad_bucket", allreduce_algo="ring"
    )
}
"""What changes in the modern what-if: AllReduce as DDP-style ring buckets overlapped with backward."""


@dataclass(frozen=True)
class Params:
    """The physical parameters of the paper's cluster.

    Attributes:
        compute_s: a node's compute seconds per iteration (data, forward, backward, step).
        efficiency: achieved fraction of the 10 Gbit/s line rate (one 102 MB message takes
            ``latency + 8 B / (10e9 x efficiency)``).
        cpu_pass_s: CPU seconds of one pass over the 102 MB vector (flatten, copy, reduce, add).
    """

    compute_s: float
    efficiency: float
    cpu_pass_s: float

    def network(self, paper: PaperTable, name: str = "eth_10g") -> NetworkConfig:
        return NetworkConfig(
            name=name,
            latency_s=paper.latency_s,
            bandwidth_gbps=paper.line_rate_gbps,
            efficiency=self.efficiency,
            reduce_s_per_byte=self.cpu_pass_s / paper.message_bytes,
        )

    def message_time_s(self, paper: PaperTable) -> float:
        return self.network(paper).message_time(paper.message_bytes)


def program(algorithm: str, message_bytes: int, modern: bool = False) -> ProgramSpec:
    """The program ``algorithm``'s class declares (paper era), or the modern what-if: GPU-side
    buffers (no CPU passes) and, for AllReduce, ring buckets overlapped with backward."""
    cfg = MODERN_CONFIGS.get(algorithm) if modern else None
    cfg = cfg or AlgorithmConfig(name=algorithm)
    spec = algorithm_class(algorithm).timing_program(cfg, lambda _step: 1, message_bytes)
    if modern:
        spec = dataclasses.replace(
            spec, send_passes=0, round_passes=0, fixed_passes=0, apply_passes=0
        )
    return spec


def graph(algorithm: str, n: int) -> Topology | None:
    name = algorithm_class(algorithm).default_topology
    return make_topology(name, n) if name else None


def emulate(
    algorithm: str,
    n: int,
    params: Params,
    paper: PaperTable,
    iterations: int,
    modern: bool = False,
    network: NetworkConfig | None = None,
) -> TimingResult:
    """Emulated timing of one cell: every node computes ``compute_s`` per iteration (no noise)."""
    spec = program(algorithm, paper.message_bytes, modern)
    net = network if network is not None else params.network(paper)
    if modern:
        net = net.replace(reduce_s_per_byte=0.0)
    compute = np.full((n, iterations), params.compute_s)
    return simulate(spec, compute, paper.message_bytes, net, graph(algorithm, n))
