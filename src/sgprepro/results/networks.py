"""The same runs under every network condition: emulated s/itr re-computed from recorded traces.

Under emulation a run's accuracy does not depend on the network, so one sweep answers "how long
per iteration on network X" for every preset X: the timing engine replays each run's measured
compute and message sizes under X (see :func:`sgprepro.train.finalize.emulate_under`).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from sgprepro.results.layout import Layout


def emulate_networks(runs: pd.DataFrame, networks: Sequence[str]) -> pd.DataFrame:
    """Long frame (algorithm, nodes, seed, network, s_per_itr) for every finished run."""
    from sgprepro.emulation import emulate_under
    from sgprepro.network import load_preset

    presets = [load_preset(name) for name in networks]
    rows = []
    for run in runs[runs["status"] == "ok"].itertuples():
        for net in presets:
            result = emulate_under(run.run_dir, net).timing
            rows.append(
                {
                    "algorithm": run.algorithm,
                    "nodes": int(run.nodes),
                    "seed": run.seed,
                    "network": net.name,
                    "s_per_itr": float(result.s_per_itr),
                }
            )
    return pd.DataFrame(rows, columns=["algorithm", "nodes", "seed", "network", "s_per_itr"])


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
