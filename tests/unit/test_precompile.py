"""The install's bytecode step (sgprepro.precompile) names modules that exist, and never imports
an entry point (importing a ``__main__`` module would run its command)."""

from __future__ import annotations

import importlib.util

from sgprepro import precompile


def test_every_listed_module_is_installed() -> None:
    missing = [
        name
        for names in precompile.GROUPS.values()
        for name in names
        if importlib.util.find_spec(name) is None
    ]
    assert missing == [], f"precompile.GROUPS names modules that are not installed: {missing}"


def test_own_modules_cover_the_package_but_no_entry_point() -> None:
    own = precompile._own_modules()
    assert "sgprepro.train.worker" in own
    assert "sgprepro.results.report" in own
    assert not [m for m in own if m.endswith("__main__")]


def test_an_unknown_module_is_reported_not_raised() -> None:
    missing = precompile._import(["sgprepro.no_such_module"])
    assert len(missing) == 1
    assert missing[0].startswith("sgprepro.no_such_module (ModuleNotFoundError")
