"""The import layers of sgprepro: every import (top-level or inside a function) points down or
sideways, never up, and only sgprepro.comm touches torch.distributed.

A unit is a subpackage (``sgprepro.timing``) or a top-level module (``sgprepro.config``). A unit
may import units of its own layer or of a lower one. ``__main__`` modules are program entry
points (``python -m sgprepro.train`` runs the CLI), not library code, and are not checked.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "src" / "sgprepro"

# lowest first; derived from the imports the code makes
LAYERS: tuple[frozenset[str], ...] = tuple(
    frozenset(layer)
    for layer in (
        {
            "paths",
            "interrupt",
            "launchenv",
            "slurm_launcher",
            "lazy",
            "kernels",
            "cliparse",
        },  # stdlib
        {"network", "topology", "data", "models"},  # leaves of the domain
        {"mixing", "regime", "schema", "timing"},  # pure models built on them
        {"comm"},  # torch.distributed, nothing of the domain
        {"algorithms"},  # on comm, timing programs and topologies
        {"reference", "configstore", "overrides", "config"},  # the validated Config of a run
        {"emulation"},  # a run's records replayed under a network
        {"tracking"},  # run records and their W&B filing
        {"train"},  # one rank's training loop
        {"app", "callbacks"},  # jobs: run folders, launchers, Hydra callbacks
        {"results", "replay"},  # reports from finished runs
        {"cli", "precompile"},  # console entry points; the install's bytecode step
    )
)
LAYER_OF = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}

# Import cycles between units of one layer that exist today; none may be added.
KNOWN_CYCLES = {
    # replay.run imports results.compare.log2_fit; results imports replay to render it
    frozenset({"replay", "results"}),
}

DISTRIBUTED_ONLY_IN = "comm"


def _unit(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "sgprepro" or len(parts) < 2:
        return None
    return parts[1]


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        if parts[-1] == "__main__":
            continue
        out.append((".".join(parts), path))
    return out


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every absolute module name ``path`` imports, with its line (``from a import b`` gives
    ``a`` and ``a.b``: b may be a submodule)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import"
            assert node.module is not None
            out.append((node.module, node.lineno))
            out += [(f"{node.module}.{alias.name}", node.lineno) for alias in node.names]
    return out


def _edges() -> dict[tuple[str, str], list[str]]:
    """(importing unit, imported unit) -> the ``file:line`` of each such import."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for module, path in _modules():
        src = _unit(module)
        if src is None:  # sgprepro/__init__.py
            continue
        for name, line in _imports(path):
            dst = _unit(name)
            if dst is not None and dst != src:
                edges[(src, dst)].append(f"{path.relative_to(ROOT.parent)}:{line}")
    return edges


def test_every_unit_has_a_layer() -> None:
    units = {_unit(module) for module, _ in _modules()} - {None}
    assert units == set(LAYER_OF), "add new units to LAYERS (and drop removed ones)"


def test_no_import_points_up() -> None:
    upward = [
        f"{src} (layer {LAYER_OF[src]}) imports {dst} (layer {LAYER_OF[dst]}): {', '.join(where)}"
        for (src, dst), where in sorted(_edges().items())
        if LAYER_OF[dst] > LAYER_OF[src]
    ]
    assert not upward, "\n".join(upward)


def test_no_new_import_cycles() -> None:
    edges = _edges()
    cycles = {frozenset(pair) for pair in edges if (pair[1], pair[0]) in edges}
    assert cycles <= KNOWN_CYCLES, sorted(sorted(c) for c in cycles - KNOWN_CYCLES)


def test_only_comm_imports_torch_distributed() -> None:
    found = []
    for module, path in _modules():
        if _unit(module) == DISTRIBUTED_ONLY_IN:
            continue
        for name, line in _imports(path):
            if name == "torch.distributed" or name.startswith("torch.distributed."):
                found.append(f"{path.relative_to(ROOT.parent)}:{line}: {name}")
    assert not found, "\n".join(found)


def test_the_checks_see_real_imports() -> None:
    """The walk finds the edges the layers rest on (a broken walk would pass vacuously)."""
    edges = _edges()
    assert ("algorithms", "comm") in edges
    assert ("train", "algorithms") in edges
    comm = [n for m, p in _modules() if _unit(m) == "comm" for n, _ in _imports(p)]
    assert "torch.distributed" in comm
