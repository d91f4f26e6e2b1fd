"""``python -m sgprepro.replay``: the timing engine on the paper's workload vs Table 1.

python -m sgprepro.replay                 # fit the 4-node column afresh, predict 12 cells (emulated)
python -m sgprepro.replay --modern        # the same workload on today's software (what-if)
python -m sgprepro.replay --format markdown|csv
python -m sgprepro.replay --write-calibration   # refresh experiments/table1_paper/calibration.json
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from sgprepro.replay.render import format_replay
from sgprepro.replay.run import run_replay


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sgprepro.replay",
        description="Emulated (not measured) replay of Table 1 of Assran et al. 2019.",
    )
    parser.add_argument(
        "--modern", action="store_true", help="today's software: ring buckets, no CPU passes"
    )
    parser.add_argument("--format", choices=("text", "markdown", "csv"), default="text")
    parser.add_argument(
        "--write-calibration",
        action="store_true",
        help="write the fit to experiments/table1_paper/calibration.json (paper_regime and the "
        "report read it) and the where-gossip-wins map it implies to gossip_map.json",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    rep = run_replay(modern=args.modern, refit=not args.modern)
    print(format_replay(rep, args.format))
    if args.write_calibration and not args.modern:
        from sgprepro.regime import write_calibration
        from sgprepro.replay.gossip_map import write_gossip_map

        path = write_calibration(rep.calibration)
        print(f"wrote {path}", file=sys.stderr)
        print(f"wrote {write_gossip_map(rep.calibration)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
