"""Checks of the command line's overrides before Hydra composes anything: a misspelled option of
a config group (``algorithm=SGP``), an unknown setting (``optim.lrr=0.1``), a value of the wrong
type (``nodes=4.5``) or a list of values without ``-m`` (``nodes=4,8``) each get one line that
names the override, what is allowed and the fix, where Hydra prints 6-18 lines (its search path,
a hint to append with ``+`` for a typo). Only the schema and the config folder are read: no
composition, no torch. Anything this module does not understand is left to Hydra."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any

from sgprepro.paths import conf_dir
from sgprepro.schema import Config

_HYDRA_FLAGS_WITH_OWN_CONFIG = frozenset(
    {
        "-cn",
        "--config-name",
        "-cp",
        "--config-path",
        "-cd",
        "--config-dir",
        "-sc",
        "--shell-completion",
        "--experimental-rerun",
    }
)
"""Flags after which the overrides may mean another config tree (or are not overrides at all):
the checks stand aside."""

_FLAGS_WITH_VALUE = frozenset({"--cfg", "-c", "--package", "-p", "--info", "-i"})

SITE_GROUP = "local"
"""Site settings (``local=<site>``): user files, checked by the CLI's own site check and by
Hydra (a site may live on another search path, or be absent from an installed package)."""


def _options(root: Path, group: str) -> list[str]:
    return sorted(f.stem for f in (root / group).glob("*.yaml"))


def _suggest(word: str, options: list[str]) -> str | None:
    lower = {o.lower(): o for o in options}
    if word.lower() in lower:
        return lower[word.lower()]
    close = difflib.get_close_matches(word.lower(), list(lower), n=1, cutoff=0.6)
    return lower[close[0]] if close else None


def not_a_setting(key: str, shown: str, group: str, fields: list[str], plus: bool) -> str:
    """The one line for ``key=shown`` naming no setting of ``group`` (whose settings are
    ``fields``): the nearest name as the fix, else "remove it"."""
    last = key.rsplit(".", 1)[-1]
    path = key[: len(key) - len(last)]
    near = (
        difflib.get_close_matches(last, fields, n=1, cutoff=0.5)
        or [f for f in fields if f.startswith(f"{last}_")][:1]
    )
    fix = "remove it"
    if near:
        fix = f"set {path}{near[0]}={shown} instead" + (" (without +)" if plus else "")
    return f"{key}={shown}: not a setting of {group} (its settings: {', '.join(fields)}); {fix}"


def _schema_field(key: str, shown: str, plus: bool) -> tuple[str | None, Any]:
    """``(None, type)`` for a setting of the schema (``optim.lr_per_ref_batch``), or
    ``(message, None)`` for a name it lacks. A key under a mapping-typed setting
    (``topology.peers_schedule.0``) is accepted with type ``Any``."""
    cls: Any = Config
    parts = key.split(".")
    for i, part in enumerate(parts):
        hints = typing.get_type_hints(cls)
        if part not in hints:
            group = ".".join(parts[:i]) or "the config"
            return not_a_setting(".".join(parts[: i + 1]), shown, group, list(hints), plus), None
        kind = hints[part]
        args = typing.get_args(kind)
        if typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in args:
            rest = [a for a in args if a is not type(None)]  # Optional[X], X | None
            kind = rest[0] if len(rest) == 1 else Any
        if dataclasses.is_dataclass(kind):
            cls = kind
            continue
        if i < len(parts) - 1:
            if typing.get_origin(kind) in (dict, list, tuple) or kind is Any:
                return None, Any  # a key or an index under a mapping or a list: Hydra's check
            head = ".".join(parts[: i + 1])
            return (f"{key}: {head} is a single value, not a group; set {head}=<value>", None)
        return None, kind
    return None, cls


def _type_words(kind: Any) -> str:
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    return names.get(kind, "a value of the right type")


def _value_error(key: str, raw: str, value: Any, kind: Any) -> str | None:
    """One line if ``value`` does not convert to the setting's type (OmegaConf's own rule)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if value is None or (isinstance(value, str) and ("${" in value or value == "???")):
        return None  # null (Optional or not) and interpolations: Hydra's own check
    if kind not in (int, float, bool, str):
        return None
    node = OmegaConf.structured(dataclasses.make_dataclass("V", [("v", kind, kind())]))
    try:
        node.v = value
    except (OmegaConfBaseException, ValueError) as exc:
        why = str(exc).splitlines()[0].strip()
        return f"{key}={raw}: {key} takes {_type_words(kind)} ({why}); fix the value"
    return None


def _defaults_groups(root: Path) -> set[str]:
    """The groups ``conf/config.yaml`` lists in its defaults (others are added with ``+``)."""
    import yaml

    raw = yaml.safe_load((root / "config.yaml").read_text()) or {}
    return {
        next(iter(item))
        for item in raw.get("defaults", [])
        if isinstance(item, dict) and not next(iter(item)).startswith("override ")
    }


def check_overrides(argv: list[str], root: Path | None = None) -> str | None:
    """The first problem with the command line's overrides, as one line, or None.

    Checked: each ``group=option`` (also ``+group=``) names a file of ``conf/<group>/``, and a
    group the defaults list lacks is added with ``+``; each ``key=value`` names a setting of the
    schema and its value has the setting's type; a list of values (``nodes=4,8``) comes with
    ``-m``; ``+sweep=<study>`` without ``-m`` and without ``nodes`` is a study meant as a sweep;
    ``hydra/launcher=...`` comes with ``-m``. The last three stand aside when the command only
    prints (``--cfg``, ``--info``); every check stands aside for another config tree
    (``--config-dir`` ...) or search path.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    flags = {a.partition("=")[0] for a in argv if a.startswith("-")}
    if flags & _HYDRA_FLAGS_WITH_OWN_CONFIG:
        return None
    only_prints = bool(flags & {"--cfg", "-c", "--info", "-i"})
    sweep = bool(flags & {"-m", "--multirun"})
    args: list[str] = []
    skip_next = False
    for a in argv:
        if skip_next:
            skip_next = False
        elif a in _FLAGS_WITH_VALUE:
            skip_next = True
        elif (not a.startswith("-") and "=" in a) or a.startswith("~"):
            args.append(a)
    if any(a.lstrip("+").startswith("hydra.searchpath") for a in args):
        return None  # options may live on another search path: Hydra's own check
    sweep = sweep or any(a.replace(" ", "") == "hydra.mode=MULTIRUN" for a in args)
    one_run = not sweep and not only_prints  # a run on this machine, not a sweep or a print
    root = root or conf_dir()
    groups = {p.name for p in root.iterdir() if p.is_dir() and p.name != "hydra"}
    groups.discard(SITE_GROUP)  # sites: their own check (cli), and Hydra's
    in_defaults = _defaults_groups(root)
    parser = OverridesParser.create()
    given = set()
    for arg in args:
        try:
            (o,) = parser.parse_overrides([arg])
        except HydraException:
            return None  # a syntax error: Hydra says where
        given.add(o.key_or_group)
    for arg in args:
        (o,) = parser.parse_overrides([arg])
        key = o.key_or_group
        if (
            o.is_delete()
            or (key.startswith("hydra") and key != "hydra/launcher")
            or key == SITE_GROUP
            or o.package is not None
        ):
            continue
        typed = arg.partition("=")[0]  # as given: +sweep, algorithm
        values: list[Any]
        if o.is_sweep_override():
            if one_run:
                listed = "a list of options" if key in groups else "a list of values"
                return (
                    f"{arg}: {listed} is a sweep, one run per value; add -m to run them all "
                    f"(python -m sgprepro.train -m ...), or give one value"
                )
            if o.value_type is not None and o.value_type.name not in (
                "SIMPLE_CHOICE_SWEEP",
                "CHOICE_SWEEP",
            ):
                continue  # range(), interval(), glob(): left to Hydra
            values = list(o.sweep_iterator())
        else:
            values = [o.value()]
        if key in groups:
            options = _options(root, key)
            for v in values:
                if not isinstance(v, str) or v in options:
                    continue
                near = _suggest(v, options)
                fix = (
                    f"use {typed}={near}"
                    if near
                    else f"use one of them (or add conf/{key}/{v}.yaml)"
                )
                return (
                    f"{typed}={v}: no {key} option of that name (conf/{key}/ has "
                    f"{', '.join(options)}); {fix}"
                )
            if key not in in_defaults and o.type.name == "CHANGE":
                return (
                    f"{arg}: the {key} group is not in the config's defaults list, so it is "
                    f"added with +; use +{arg}"
                )
            if key == "sweep" and one_run and "nodes" not in given:
                (study,) = values
                return (
                    f"{arg} is a study, one run per cell of its grid: add -m (python -m "
                    f"sgprepro.train -m +sweep={study}, or make reproduce-table STUDY={study}), "
                    "or give nodes=... for one cell of it"
                )
            continue
        if key == "hydra/launcher" and one_run and values != ["basic"]:
            return (
                f"{arg}: a launcher starts the cells of a sweep, and without -m this is one run "
                f"on this machine; add -m to submit it (a sweep of one cell), or drop {arg} to "
                "run here"
            )
        if "/" in key:
            continue  # a nested group (hydra/launcher): Hydra's own check
        raw = arg.partition("=")[2]
        plus = o.type.name in ("ADD", "FORCE_ADD")
        problem, kind = _schema_field(key, raw, plus)
        if problem is not None:
            return problem
        for v in values:
            bad = _value_error(key, raw, v, kind)
            if bad is not None:
                return bad
    return None


__all__ = ["check_overrides", "not_a_setting"]
