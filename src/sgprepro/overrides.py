"""Checks of the command line's overrides before Hydra composes anything: a misspelled option of
a config group (``algorithm=SGP``), an unknown setting (``optim.lrr=0.1``), a value of the wrong
type (``nodes=4.5``) or a list of values without ``-m`` (``nodes=4,8``) each get one line that
names the override, what is allowed and the fix, where Hydra prints 6-18 lines (its search path,
a hint to append with ``+`` for a typo). Only the schema and the config folder are read: no
composition, no torch. Anything this module does not understand is left to Hydra."""

from __future__ import annotations

import dataclasses
import difflib
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
        if typing.get_origin(kind) is typing.Union and type(None) in args:  # Optional[X]
            kind = next(a for a in args if a is not type(None))
        if dataclasses.is_dataclass(kind):
            cls = kind
            continue
        if i < len(parts) - 1 and typing.get_origin(kind) is not dict:
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


def check_overrides(argv: list[str], root: Path | None = None) -> str | None:
    """The first problem with the command line's overrides, as one line, or None.

    Checked: each ``group=option`` (also ``+group=``) names a file of ``conf/<group>/``; each
    ``key=value`` names a setting of the schema and its value has the setting's type; a list
    of values (``nodes=4,8``, ``algorithm=sgp,dpsgd``) comes with ``-m``; ``+sweep=<study>``
    without ``-m`` and without ``nodes`` is a study meant as a sweep.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    if any(a in _HYDRA_FLAGS_WITH_OWN_CONFIG for a in argv):
        return None
    sweep = any(a in ("-m", "--multirun") for a in argv)
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
    root = root or conf_dir()
    groups = {p.name for p in root.iterdir() if p.is_dir() and p.name != "hydra"}
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
            or o.package is not None
        ):
            continue
        values: list[Any]
        if o.is_sweep_override():
            if not sweep:
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
                typed = arg.partition("=")[0]  # as given: +sweep, algorithm
                fix = (
                    f"use {typed}={near}"
                    if near
                    else f"use one of them (or add conf/{key}/{v}.yaml)"
                )
                return (
                    f"{typed}={v}: no {key} option of that name (conf/{key}/ has "
                    f"{', '.join(options)}); {fix}"
                )
            if key == "sweep" and not sweep and "nodes" not in given:
                (study,) = values
                return (
                    f"{arg} is a study, one run per cell of its grid; add -m: "
                    f"python -m sgprepro.train -m +sweep={study} (or make reproduce-table "
                    f"STUDY={study})"
                )
            continue
        if key == "hydra/launcher" and not sweep and values != ["basic"]:
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
