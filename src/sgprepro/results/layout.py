"""A study's table layout (`experiments/<study>/layout.yaml`) and the paper's published numbers.

The paper's labels ("AllReduce SGD", "SGP (1 peer)") live only in the layout file; code uses the
algorithm keys of the run records (`allreduce dpsgd adpsgd sgp osgp`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

PAPER_COLUMNS: tuple[str, ...] = ("algorithm", "nodes", "top1", "s_per_itr")
TIME_CLOCKS: tuple[str, ...] = ("emulated", "paper_equivalent")
"""The clocks a layout's table can be read on (`Layout.time`)."""


@dataclass(frozen=True)
class Layout:
    """How one study's table is laid out.

    Attributes:
        study: value of `cell.study` selecting the runs.
        title: table title, e.g. "Table 1 of Assran et al. 2019 (10 GbE)".
        algorithms: `(key, label)` pairs in row order.
        nodes: node counts, in column order.
        paper: published values, columns `PAPER_COLUMNS` (+ `source`), keyed by algorithm key.
        paper_source: citation of the published values.
        baseline: algorithm key the gaps and speed-ups are measured against.
        network: optional `cell.network` filter; None keeps every network (there must be one).
        seeds: the seeds the study runs (a seed absent from every record still shows as
            missing); empty: the seeds found in the records.
        directory: the study folder.
        reference: the committed result a new run is checked against (`reference.csv`), if any.
        claims: the paper's claims this study tests (`claims.yaml`), if any.
        time: the clock of the table's s/itr, its speed-ups and its time claims: "emulated"
            (EMULATED seconds of this machine) or "paper_equivalent" (the same seconds in units
            of each run's own compute, times the paper's compute: the dimensionless time of the
            paper's regime, comparable across machines and with the paper's s/itr).
    """

    study: str
    title: str
    algorithms: tuple[tuple[str, str], ...]
    nodes: tuple[int, ...]
    paper: pd.DataFrame
    paper_source: str
    baseline: str = "allreduce"
    network: str | None = None
    seeds: tuple[int, ...] = ()
    directory: Path | None = None
    reference: Path | None = None
    claims: Path | None = None
    time: str = "emulated"

    @property
    def labels(self) -> dict[str, str]:
        """Algorithm key -> paper label."""
        return dict(self.algorithms)

    def paper_value(self, algorithm: str, nodes: int, column: str) -> float | None:
        """The published `column` ("top1" or "s_per_itr") for one cell, or None."""
        sel = self.paper[(self.paper["algorithm"] == algorithm) & (self.paper["nodes"] == nodes)]
        if column not in self.paper.columns or sel.empty or pd.isna(sel[column].iloc[0]):
            return None
        return float(sel[column].iloc[0])


def read_paper_csv(path: Path) -> pd.DataFrame:
    """Read a paper.csv (lines starting with `#` are comments)."""
    df = pd.read_csv(path, comment="#")
    missing = [c for c in PAPER_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(
            f"paper file={path} lacks columns {missing}; expected header "
            f"{','.join(PAPER_COLUMNS)}[,source]"
        )
    df["nodes"] = df["nodes"].astype(int)
    return df


def load_layout(study_dir: Path) -> Layout:
    """Read `<study_dir>/layout.yaml` and the paper file it names.

    Raises:
        ValueError: a required key is absent, naming the key and the file.
    """
    study_dir = Path(study_dir)
    path = study_dir / "layout.yaml"
    raw = yaml.safe_load(path.read_text())
    for key in ("study", "title", "algorithms", "nodes", "paper", "baseline", "network"):
        if key not in raw:
            raise ValueError(
                f"layout file={path} lacks key={key!r}; see experiments/table1_scaled/layout.yaml"
            )
    algorithms = tuple((str(a["key"]), str(a["label"])) for a in raw["algorithms"])
    paper_file = raw["paper"]
    paper = read_paper_csv(study_dir / paper_file["file"])
    optional = {k: study_dir / raw[k] for k in ("reference", "claims") if raw.get(k)}
    time = str(raw.get("time", "emulated"))
    if time not in TIME_CLOCKS:
        raise ValueError(
            f"layout file={path}: time={time!r} is not one of {list(TIME_CLOCKS)}; set "
            "time: paper_equivalent (a study under network=paper_regime) or time: emulated"
        )
    return Layout(
        study=str(raw["study"]),
        title=str(raw["title"]),
        algorithms=algorithms,
        nodes=tuple(int(n) for n in raw["nodes"]),
        paper=paper,
        paper_source=str(paper_file["source"]),
        baseline=str(raw["baseline"]),
        network=None if raw["network"] is None else str(raw["network"]),
        seeds=tuple(int(x) for x in raw.get("seeds") or ()),
        directory=study_dir,
        reference=optional.get("reference"),
        claims=optional.get("claims"),
        time=time,
    )


def inferred_layout(study: str, runs: pd.DataFrame) -> Layout:
    """The layout of a study that has none (an ad-hoc sweep, ``study=adhoc``): its rows, node
    counts and seeds are those of its runs; labels come from the shipped layouts, rows in the
    paper's order, then the shipped layouts' (an algorithm none names is labelled by its key,
    after them); the shipped studies' published table stands beside it; the baseline is
    AllReduce when it finished a run, else the first row that did; time is paper-equivalent
    under ``paper_regime`` (as in the shipped studies), else emulated.

    Raises:
        ValueError: the study's runs span several network conditions (a table holds one).
    """
    from sgprepro.paths import shipped_studies, study_dir

    mine = runs[runs["study"] == study]
    networks = sorted({str(n) for n in mine["network"].dropna()})
    if len(networks) > 1:
        raise ValueError(
            f"--study={study}: its runs span the network conditions {', '.join(networks)} and a "
            "table holds one; give them different study names (study=...), or write "
            f"experiments/{study}/layout.yaml with network: <one of them>"
        )
    shipped = [load_layout(study_dir(name)) for name in shipped_studies()]
    labels: dict[str, str] = {}
    for other in shipped:
        for key, label in other.algorithms:
            labels.setdefault(key, label)
    found = {str(a) for a in mine["algorithm"].dropna()}
    paper = shipped[0].paper if shipped else pd.DataFrame(columns=list(PAPER_COLUMNS))
    known = list(dict.fromkeys([*map(str, paper["algorithm"]), *labels]))  # the paper's first
    order = [k for k in known if k in found] + sorted(found - set(known))
    network = networks[0] if networks else None
    return Layout(
        study=study,
        title=f"Study {study} (layout inferred from its runs; no experiments/{study}/layout.yaml)",
        algorithms=tuple((k, labels.get(k, k)) for k in order),
        nodes=tuple(sorted({int(n) for n in mine["nodes"].dropna()})),
        paper=paper,
        paper_source=shipped[0].paper_source if shipped else "",
        baseline=_baseline(order, mine),
        network=network,
        seeds=tuple(sorted({int(s) for s in mine["seed"].dropna()})),
        time="paper_equivalent" if network == "paper_regime" else "emulated",
    )


def _baseline(order: list[str], runs: pd.DataFrame) -> str:
    """AllReduce when it has a finished run, else the first row that has one (else the first
    row): the row the gaps and speed-ups of an inferred layout are measured against."""
    finished = set(runs.loc[runs["status"] == "ok", "algorithm"].astype(str))
    for key in ("allreduce", *order):
        if key in finished:
            return key
    return order[0] if order else "allreduce"
