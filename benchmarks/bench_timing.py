"""Wall-clock cost of the timing engine: ``simulate`` on 32 nodes x 1000 iterations.

Run from the repository root::

    .venv/bin/python benchmarks/bench_timing.py

Prints one line per program (seconds of wall clock per simulation, best of ``--repeat``) for a
noise-free condition and for the same condition with per-message jitter and compute noise (the
slow paths). The target is under 1 s per simulation; the script prints figures and asserts
nothing. The emulated s/itr it prints is emulated, not measured.
"""

from __future__ import annotations

import argparse
import time

from sgprepro.network import load_preset
from sgprepro.timing import ProgramSpec, simulate, synthesize_compute
from sgprepro.topology import make_topology

PROGRAMS: list[tuple[str, ProgramSpec, str | None]] = [
    ("allreduce recursive_doubling", ProgramSpec("allreduce"), None),
    ("allreduce ring", ProgramSpec("allreduce", collective="ring"), None),
    ("allreduce tree", ProgramSpec("allreduce", collective="tree"), None),
    (
        "allreduce ring, 4 gradient buckets",
        ProgramSpec("allreduce", collective="ring", buckets=4),
        None,
    ),
    ("sgp (1 peer)", ProgramSpec("push"), "exponential"),
    ("sgp (2 peers)", ProgramSpec("push", peers=2), "exponential"),
    ("osgp (the original's overlap)", ProgramSpec("overlap_push"), "exponential"),
    ("sgp_delayed (tau=1)", ProgramSpec("push", delay=1), "exponential"),
    ("dpsgd", ProgramSpec("pairwise"), "bipartite_exponential"),
    ("adpsgd", ProgramSpec("gossip_async"), "bipartite_exponential"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    base = load_preset("eth_10g")
    conditions = [
        ("eth_10g, no noise", base, synthesize_compute(args.nodes, args.iterations, 0.2)),
        (
            "eth_10g + jitter 1 ms + compute_cv 0.1",
            base.replace(jitter_s=1e-3),
            synthesize_compute(args.nodes, args.iterations, 0.2, compute_cv=0.1, seed=1),
        ),
    ]
    nbytes = 102_228_128  # ResNet-50 fp32 parameter vector
    print(
        f"simulate(): {args.nodes} nodes x {args.iterations} iterations, "
        f"{nbytes:,} B messages; wall clock of this machine, best of {args.repeat}"
    )
    print(f"{'condition':42s} {'program':42s} {'wall_s':>8s} {'emulated_s_per_itr':>19s}")
    for cond_name, net, compute in conditions:
        for name, spec, graph in PROGRAMS:
            topo = make_topology(graph, args.nodes) if graph else None
            best = float("inf")
            result = None
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                result = simulate(spec, compute, nbytes, net, topo, seed=0)
                best = min(best, time.perf_counter() - t0)
            assert result is not None
            print(f"{cond_name:42s} {name:42s} {best:8.3f} {result.s_per_itr:19.4f}")


if __name__ == "__main__":
    main()
