"""Re-run the timing engine on a finished run's recorded traces.

    python -m sgprepro.train.emulate multirun/table1_scaled/sgp-n32-paper_regime-s0
    python -m sgprepro.train.emulate <run_dir> --network wan

Without ``--network`` it reproduces the run's own ``time/emulated_s_per_itr`` exactly; with it,
the same run under another network preset. Every figure printed is EMULATED, not wall-clock.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sgprepro.cliparse import OneLineParser
from sgprepro.emulation import emulate_under, load_run_config
from sgprepro.network import load_preset


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(
        prog="python -m sgprepro.train.emulate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", type=Path, help="a finished run directory (has summary.json)")
    parser.add_argument(
        "--network", help="network preset (conf/network/<name>.yaml); default: the run's own"
    )
    args = parser.parse_args(argv)
    if not (args.run_dir / "summary.json").exists():
        parser.error(f"run_dir={args.run_dir}: no summary.json there; point at a finished run")
    network = load_preset(args.network) if args.network else load_run_config(args.run_dir).network
    result = emulate_under(args.run_dir, network).timing
    recorded = json.loads((args.run_dir / "summary.json").read_text())["time/emulated_s_per_itr"]
    print(f"network {network.name}: {result.s_per_itr:.6f} s/itr (emulated, mean over ranks)")
    print("per rank: " + " ".join(f"{v:.6f}" for v in result.s_per_itr_ranks))
    if not args.network:
        same = "identical to" if result.s_per_itr == recorded else "DIFFERENT from"
        print(f"{same} the recorded summary.json value {recorded:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
