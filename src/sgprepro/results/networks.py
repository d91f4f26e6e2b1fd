"""The same runs under every network condition: emulated s/itr re-computed from recorded traces.

Under emulation a run's accuracy does not depend on the network, so one sweep answers "how long
per iteration on network X" for every preset X: the timing engine replays each run's measured
compute and message sizes under X (see :func:`sgprepro.train.finalize.emulate_under`).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from sgprepro.results.layout import Layout

if TYPE_CHECKING:
    from sgprepro.network import NetworkConfig


def emulate_networks(runs: pd.DataFrame, networks: Sequence[str]) -> pd.DataFrame:
    """Long frame (algorithm, nodes, seed, network, s_per_itr) for every finished run.

    The runs are re-emulated in parallel, one process per core (each run reads its records once
    and is emulated under every condition); the frame is in the runs' order either way."""
    from sgprepro.network import load_preset

    presets = [load_preset(name) for name in networks]
    ok = list(runs[runs["status"] == "ok"].itertuples())
    dirs = [str(run.run_dir) for run in ok]
    workers = min(len(dirs), os.cpu_count() or 1)
    if workers > 1:
        # the longest runs (most iterations per node: the most to replay) first
        iters = [float(getattr(r, "iterations", 0) or 0) for r in ok]
        order = sorted(range(len(dirs)), key=lambda i: -iters[i])
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            done = list(pool.map(_s_per_itr, [dirs[i] for i in order], [presets] * len(dirs)))
        times = [done[order.index(i)] for i in range(len(dirs))]
    else:
        times = [_s_per_itr(d, presets) for d in dirs]
    rows = [
        {
            "algorithm": run.algorithm,
            "nodes": int(run.nodes),
            "seed": run.seed,
            "network": net.name,
            "s_per_itr": t,
        }
        for run, per_net in zip(ok, times, strict=True)
        for net, t in zip(presets, per_net, strict=True)
    ]
    return pd.DataFrame(rows, columns=["algorithm", "nodes", "seed", "network", "s_per_itr"])


def _s_per_itr(run_dir: str, presets: Sequence[NetworkConfig]) -> list[float]:
    from sgprepro.emulation import emulate_under_each

    return [float(e.timing.s_per_itr) for e in emulate_under_each(Path(run_dir), presets)]


def networks_table(long: pd.DataFrame, layout: Layout, networks: Sequence[str]) -> pd.DataFrame:
    """Rows (algorithm, network), columns nodes: emulated s/itr (mean over seeds) and, in
    parentheses, the speed-up over the layout's baseline (AllReduce) on the same network and nodes."""
    mean = long.groupby(["algorithm", "network", "nodes"])["s_per_itr"].mean()
    records = []
    for alg, label in layout.labels.items():
        for net in networks:
            row = {"algorithm": label, "network": net}
            for n in layout.nodes:
                key = (alg, net, n)
                base = (layout.baseline, net, n)
                if key not in mean.index:
                    row[f"{n} nodes"] = "missing"
                    continue
                text = f"{mean[key]:.4f}"
                if base in mean.index and alg != layout.baseline:
                    text += f" ({mean[base] / mean[key]:.2f}x)"
                row[f"{n} nodes"] = text
            records.append(row)
    return pd.DataFrame(records)


def networks_caption(long: pd.DataFrame, networks: Sequence[str]) -> str:
    return (
        "EMULATED seconds per iteration of the same runs under each network condition "
        f"({', '.join(networks)}; presets in conf/network/): the timing engine replays each run's "
        "recorded compute times and message sizes; nothing here is wall-clock. In parentheses: "
        "speed-up over AllReduce SGD on the same network and node count. "
        f"{long[['algorithm', 'nodes', 'seed']].drop_duplicates().shape[0]} runs replayed."
    )
