r"""Build a study's report and print its table.

    sgprepro-report --runs multirun/table1_scaled --study table1_scaled \
        --out reports/table1_scaled [--source wandb:<entity>/<project>] [--replay-paper]

(``python -m sgprepro.results`` is the same command.)

Exit status: 0 written; 2 nothing to report or bad input (no run of the study, a missing folder,
an unreadable layout), with one line on stderr and the report folder left as it was.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path

from sgprepro.cliparse import OneLineParser
from sgprepro.interrupt import JobInterrupted, raise_unless_held
from sgprepro.results.report import REPORT_MARK, NoRunsError, write_report

EXIT_BAD_INPUT = 2


def _networks(spec: str) -> tuple[str, ...]:
    """``--networks``: 'all' is every preset of conf/network/, else a comma-separated list."""
    if spec.strip() == "all":
        from sgprepro.network import list_presets

        return tuple(list_presets())
    return tuple(n.strip() for n in spec.split(",")) if spec.strip() else ()


def _study(value: str) -> Path:
    """``--study``: a study folder, or the name of one shipped with the package
    (``table1_scaled`` is ``experiments/table1_scaled/``)."""
    path = Path(value)
    if (path / "layout.yaml").is_file() or "/" in value:
        return path
    from sgprepro.paths import study_dir

    return study_dir(value)


def check_args(args: argparse.Namespace, formats: tuple[str, ...]) -> str | None:
    """What is wrong with the arguments before anything is read or written, as one line
    naming the option, the value, the rule and a fix; None when nothing is."""
    out: Path = args.out
    if out.exists() and not out.is_dir():
        return (
            f"--out={out}: is a file, and a report is a folder of its own; give a new folder "
            f"or an earlier report's, e.g. --out reports/{out.stem}"
        )
    if out.is_dir() and any(out.iterdir()) and not (out / REPORT_MARK).is_file():
        return (
            f"--out={out}: holds files but no {REPORT_MARK}, so it is not an earlier report and "
            "would be replaced as a whole; give a new folder or an earlier report's, e.g. "
            f"--out {out / 'report'}"
        )
    if args.runs is not None and args.source is None:
        runs, target = args.runs.resolve(), out.resolve()
        if target == runs or target in runs.parents:
            return (
                f"--out={out}: is or holds the runs folder --runs={args.runs}, which the report "
                "would replace; write the report elsewhere, e.g. --out reports/<study>"
            )
    layout = args.study / "layout.yaml"
    from sgprepro.paths import experiments_dir

    # only a bare name (``--study adhoc``: experiments/adhoc/, absent) lays out its runs as they
    # are; a folder, or a path, must hold a layout
    named = args.study.parent == experiments_dir() and not args.study.exists()
    if not layout.is_file() and not named:
        from sgprepro.paths import shipped_studies

        return (
            f"--study={args.study}: no layout.yaml there; give a study folder holding one, the "
            f"name of a shipped study ({', '.join(shipped_studies())}), or the name of a study "
            "without a folder (e.g. adhoc) to lay out its runs as they are"
        )
    if args.dpi < 1:
        return f"--dpi={args.dpi}: must be a positive number of dots per inch, e.g. --dpi 150"
    if args.networks.strip() not in ("", "all"):  # '': no re-emulation (the default)
        from sgprepro.network import list_presets

        presets = list_presets()
        names = [n.strip() for n in args.networks.split(",")]
        bad = [n for n in names if n not in presets]
        if bad:
            return (
                f"--networks={args.networks}: {', '.join(repr(b) for b in bad)} is not a "
                f"network preset; give 'all' or preset names separated by commas, from "
                f"{', '.join(presets)}"
            )
    if formats:
        from matplotlib.backend_bases import FigureCanvasBase

        known = FigureCanvasBase.get_supported_filetypes()
        bad = [f for f in formats if f not in known]
        if bad:
            return (
                f"--formats={args.formats}: {', '.join(bad)} is not a figure format matplotlib "
                f"writes; use some of {', '.join(sorted(known))} ('' for none), e.g. png,pdf"
            )
    return None


def _present_runs(out: Path) -> tuple[int, int] | None:
    """(present, expected) runs of the report in ``out``, from its provenance; None if unknown."""
    try:
        counts = json.loads((out / "provenance.json").read_text())["counts"]
        return int(counts["present"]), int(counts["expected"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def main(argv: list[str] | None = None, prog: str = "python -m sgprepro.results") -> int:
    parser = OneLineParser(
        prog=prog,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=Path, help="sweep root holding <job>/run.json")
    parser.add_argument(
        "--study",
        type=_study,
        required=True,
        help="study dir with layout.yaml and paper.csv, the name of a shipped study "
        "(e.g. table1_scaled), or the name of a study without a folder (e.g. adhoc: the "
        "table lays out its runs as they are)",
    )
    parser.add_argument("--out", type=Path, required=True, help="report directory to write")
    parser.add_argument(
        "--source",
        help="wandb:<entity>/<project>: read W&B instead of --runs (each run's records artifact "
        "is downloaded, so its runs re-emulate like local ones)",
    )
    parser.add_argument(
        "--wandb-cache",
        type=Path,
        help="where --source downloads the runs' records (default: "
        "~/.cache/sgprepro/wandb/<entity>/<project>, or $SGPREPRO_CACHE/wandb/...)",
    )
    parser.add_argument(
        "--replay-paper",
        action="store_true",
        help="run the paper-scale timing replay and the where-gossip-wins map (emulated) and "
        "render them",
    )
    parser.add_argument(
        "--networks",
        default="",
        help="re-emulate every run under these network presets, comma-separated "
        "(e.g. ideal,eth_10g,wan), or 'all' for every preset in conf/network/",
    )
    parser.add_argument(
        "--formats",
        default="png",
        help="figure formats, comma-separated, e.g. png,pdf ('' saves none)",
    )
    parser.add_argument("--dpi", type=int, default=150, help="figure resolution")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every problem")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.runs is None and args.source is None:
        parser.error("give --runs <dir> or --source wandb:<entity>/<project>")
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    problem = check_args(args, formats)
    if problem:
        print(f"error: {problem}; nothing was written", file=sys.stderr)
        return EXIT_BAD_INPUT

    # SIGTERM (a timeout, a cluster's kill) and Ctrl-C unwind: the half-built report folder is
    # removed and --out keeps what it had, or, during the swap itself, the swap completes first
    before = _present_runs(args.out)
    previous = {s: signal.signal(s, raise_unless_held) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        replay = gossip = None
        if args.replay_paper:
            from sgprepro.replay import run_replay
            from sgprepro.replay.gossip_map import speedups

            replay = run_replay()
            gossip = speedups(replay.calibration)
        report = write_report(
            args.runs,
            args.out,
            args.study,
            replay,
            gossip=gossip,
            source=args.source,
            formats=formats,
            dpi=args.dpi,
            networks=_networks(args.networks),
            wandb_cache=args.wandb_cache,
        )
    except (NoRunsError, ValueError, OSError) as exc:  # FileNotFoundError is an OSError
        print(f"error: {str(exc).splitlines()[0]}; {args.out} left as it was", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (JobInterrupted, KeyboardInterrupt) as exc:
        stop = exc if isinstance(exc, JobInterrupted) else JobInterrupted(signal.SIGINT)
        where = (
            f"{args.out} holds the new report (the signal came while it was put in place)"
            if getattr(exc, "report_replaced", False)
            else f"{args.out} left as it was"
        )
        print(f"error: {stop}; {where}", file=sys.stderr)
        return stop.exit_code
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print(report.markdown)
    after = _present_runs(args.out)
    if before is not None and after is not None and after[0] < before[0]:
        print(
            f"warning: this report of {args.out} covers {after[0]} of {after[1]} runs; the one it "
            f"replaced covered {before[0]} (a report tracked by git comes back with git checkout "
            f"-- {args.out})",
            file=sys.stderr,
        )
    problems = report.collected.problems
    if problems:
        print(
            f"{len(problems)} problem(s) in the records (see {args.out}/provenance.json):",
            file=sys.stderr,
        )
        for p in problems:
            print(f"  {p}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
