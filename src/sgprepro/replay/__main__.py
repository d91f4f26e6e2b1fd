"""``python -m sgprepro.replay``: the timing engine on the paper's workload vs Table 1.

python -m sgprepro.replay                 # fit the 4-node column afresh, predict 12 cells (emulated)
python -m sgprepro.replay --modern        # the same workload on today's software (what-if)
python -m sgprepro.replay --format markdown|csv
python -m sgprepro.replay --write-calibration   # refresh table1_paper/calibration.json
python -m sgprepro.replay --calibrate-on 4 8      # diagnostic: fit other columns (fewer held out)
python -m sgprepro.replay --reachable     # diagnostic: can these programs meet the targets at all?
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from sgprepro.cliparse import OneLineParser
from sgprepro.replay.calibrate import CALIBRATION_NODES, calibration_columns
from sgprepro.replay.paper import load_paper_table
from sgprepro.replay.render import format_replay
from sgprepro.replay.run import run_replay


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(
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
    parser.add_argument(
        "--calibrate-on",
        type=int,
        nargs="+",
        default=[CALIBRATION_NODES],
        metavar="NODES",
        help=f"the columns of Table 1 the fit sees (default {CALIBRATION_NODES}); the others are "
        "held out. A diagnostic: fitting more columns tells whether the 4-node column identifies "
        "the parameters",
    )
    parser.add_argument(
        "--reachable",
        action="store_true",
        help="also search (seeing the held-out cells, about a minute) for the parameters that "
        "meet the held-out targets with the least miss on the calibration column, beside the "
        "minimax fit: how far the fitted column is from the targets",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        nodes = calibration_columns(args.calibrate_on)
        if args.write_calibration and nodes != (CALIBRATION_NODES,):
            raise ValueError(
                f"--calibrate-on={args.calibrate_on} with --write-calibration: the stored fit "
                f"(what paper_regime and the report read) is the {CALIBRATION_NODES}-node one; "
                "drop one of the two options"
            )
        if args.modern and args.write_calibration:
            raise ValueError(
                "--write-calibration with --modern: the modern what-if is not fitted, so there "
                "is no calibration to write; drop one of the two options"
            )
        if args.modern and nodes != (CALIBRATION_NODES,):
            raise ValueError(
                f"--calibrate-on={args.calibrate_on} with --modern: the modern what-if is not "
                "fitted (its constants are cited in workload.yaml); drop one of the two options"
            )
        if args.reachable and args.modern:
            raise ValueError(
                "--reachable with --modern: the modern what-if is not fitted and has no published "
                "numbers to reach; drop one of the two options"
            )
        if args.reachable and args.format == "csv":
            raise ValueError(
                "--reachable with --format=csv: the csv is the per-cell table alone; use "
                "--format text or markdown"
            )
        if args.reachable and len(nodes) == len(load_paper_table().nodes):
            raise ValueError(
                f"--reachable with --calibrate-on={args.calibrate_on}: every column is "
                "calibrated, so no cell is held out to reach; leave at least one column out"
            )
    except ValueError as exc:
        parser.error(str(exc))
    rep = run_replay(modern=args.modern, refit=not args.modern, nodes=nodes)
    print(format_replay(rep, args.format))
    if args.reachable:
        from sgprepro.replay.reachable import reachability
        from sgprepro.replay.render import format_reachability

        print(
            "\n" + format_reachability(reachability(nodes=nodes, fit=rep.calibration), args.format)
        )
    if args.write_calibration:
        from sgprepro.regime import write_calibration
        from sgprepro.replay.gossip_map import write_gossip_map

        path = write_calibration(rep.calibration)
        print(f"wrote {path}", file=sys.stderr)
        print(f"wrote {write_gossip_map(rep.calibration)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
