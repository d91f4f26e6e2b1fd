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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from sgprepro.paths import conf_dir
from sgprepro.schema import Config


@dataclass(frozen=True)
class CommandLine:
    """A command line as Hydra reads it.

    Attributes:
        overrides: the ``key=value`` arguments.
        sweep: ``-m`` (any spelling argparse accepts) or ``hydra.mode=MULTIRUN``.
        only_prints: ``--cfg``, ``--info``, ``--help``: nothing runs.
    """

    overrides: tuple[str, ...]
    sweep: bool
    only_prints: bool


def read_command_line(argv: list[str]) -> CommandLine | None:
    """``argv`` read by Hydra's own argument parser (abbreviated flags, values attached to
    short flags), or None where the checks stand aside: a flag error (Hydra's to report),
    ``--version``, shell completion, another primary config or config folder."""
    from hydra._internal.utils import get_args_parser

    if any(a.startswith("--v") for a in argv):  # --version prints and exits
        return None
    parser = get_args_parser()

    def _refuse(message: str) -> NoReturn:
        raise ValueError(message)

    parser.error = _refuse  # type: ignore[method-assign]
    try:
        ns = parser.parse_args(argv)
    except (ValueError, SystemExit):
        return None
    if (
        ns.shell_completion
        or ns.experimental_rerun
        or ns.config_name
        or ns.config_path
        or ns.config_dir
    ):
        return None  # not overrides, or options that may live in another config tree
    only_prints = bool(ns.cfg or ns.info or ns.help or ns.hydra_help)
    return CommandLine(tuple(ns.overrides), bool(ns.multirun), only_prints)


SITE_GROUP = "local"
"""Site settings (``local=<site>``): user files in ``conf/local/`` (git-ignored); a missing one
is named with the file to create."""
SITE_HEADER = "# @package _global_"
"""First line of a ``conf/local/<site>.yaml``: its keys are top-level (``data.root``), not
under ``local.``."""


def group_options(root: Path | None = None) -> dict[str, list[str]]:
    """Every config group of the tree (Hydra's own excepted) and its options, from the folders:
    ``{"algorithm": ["adpsgd", ...], ...}``."""
    root = root or conf_dir()
    return {
        d.name: sorted(f.stem for f in d.glob("*.yaml"))
        for d in sorted(root.iterdir())
        if d.is_dir() and d.name != "hydra"
    }


def _suggest(word: str, options: list[str]) -> str | None:
    lower = {o.lower(): o for o in options}
    if word.lower() in lower:
        return lower[word.lower()]
    close = difflib.get_close_matches(word.lower(), list(lower), n=1, cutoff=0.6)
    return lower[close[0]] if close else None


def not_a_setting(
    key: str,
    shown: str,
    group: str,
    fields: list[str],
    plus: bool,
    bad: int = -1,
    candidates: list[str] | None = None,
) -> str:
    """The one line for ``key=shown`` whose part ``bad`` (the last by default) names no setting
    of ``group`` (whose settings are ``fields``): the key with the nearest of ``candidates``
    (default: ``fields``) in its place as the fix, else "remove it"."""
    parts = key.split(".")
    word = parts[bad]
    pool = list(fields if candidates is None else candidates)
    near = (
        difflib.get_close_matches(word, pool, n=1, cutoff=0.5)
        or [f for f in pool if f.startswith(f"{word}_")][:1]
    )
    fix = "remove it"
    if near:
        parts[bad] = near[0]
        fix = f"set {'.'.join(parts)}={shown} instead" + (" (without +)" if plus else "")
    what = "not a setting" if bad in (-1, len(parts) - 1) else f"{word} is not a setting"
    return f"{key}={shown}: {what} of {group} (its settings: {', '.join(fields)}); {fix}"


def _is_group(kind: Any) -> bool:
    """Whether a schema type holds settings of its own (a dataclass, maybe optional)."""
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    return dataclasses.is_dataclass(kind) or any(dataclasses.is_dataclass(a) for a in args)


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
            last = i == len(parts) - 1  # a value goes here: suggest a setting, else a group
            like = [f for f, t in hints.items() if _is_group(t) != last]
            line = not_a_setting(key, shown, group, list(hints), plus, bad=i, candidates=like)
            return line, None
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

    line = read_command_line(argv)
    if line is None:
        return None
    args = list(line.overrides)
    parser = OverridesParser.create()
    parsed = []
    for arg in args:
        try:
            (o,) = parser.parse_overrides([arg])
        except HydraException:
            return None  # a syntax error: Hydra says where
        parsed.append(o)
    if any(o.key_or_group == "hydra.searchpath" for o in parsed):
        return None  # options may live on another search path: Hydra's own check
    mode = [o.value() for o in parsed if o.key_or_group == "hydra.mode" and not o.is_delete()]
    sweep = line.sweep or "MULTIRUN" in [str(m) for m in mode]
    one_run = not sweep and not line.only_prints  # a run on this machine: no sweep, no print
    root = root or conf_dir()
    options_of = group_options(root)
    groups = set(options_of)
    in_defaults = _defaults_groups(root)
    given = {o.key_or_group for o in parsed}
    for arg, o in zip(args, parsed, strict=True):
        key = o.key_or_group
        if (
            o.is_delete()
            or (key.startswith("hydra") and key != "hydra/launcher")
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
            options = options_of[key]
            for v in values:
                if not isinstance(v, str) or "${" in v or v.removesuffix(".yaml") in options:
                    continue  # an interpolation: Hydra resolves it; name.yaml: Hydra's name
                if key == SITE_GROUP:
                    path = (root / key).resolve() / f"{v}.yaml"
                    shown = (
                        path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
                    )
                    return (
                        f"{typed}={v}: no site file {shown}; create it (its first line "
                        f"'{SITE_HEADER}', then settings such as data.root), or drop "
                        f"{typed}={v}"
                    )
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


__all__ = [
    "SITE_HEADER",
    "CommandLine",
    "check_overrides",
    "group_options",
    "not_a_setting",
    "read_command_line",
]
