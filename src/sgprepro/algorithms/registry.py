"""The algorithm registry: every algorithm class registers itself by name with :func:`register`.

Config validation, the worker, the end-of-run summary, the timing engine's caller and the oracle
ask the registered class (:func:`algorithm_class`), never compare names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from sgprepro.algorithms.base import Algorithm

_REGISTRY: dict[str, type[Algorithm]] = {}
A = TypeVar("A", bound="type[Algorithm]")


def register(cls: A) -> A:
    """Class decorator: make ``cls`` available as ``algorithm=<cls.name>``."""
    name = cls.name
    if not name:
        raise ValueError(f"{cls.__name__}: an algorithm class needs a non-empty `name`")
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"algorithm name {name!r} is registered twice ({_REGISTRY[name]}, {cls})")
    _REGISTRY[name] = cls
    return cls


def algorithm_names() -> tuple[str, ...]:
    """The registered names, sorted."""
    return tuple(sorted(_REGISTRY))


def algorithm_class(name: str) -> type[Algorithm]:
    """The class registered as ``name``.

    Raises:
        ValueError: unknown name (the message lists the choices).
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"algorithm.name={name!r}: unknown algorithm; choose one of {list(algorithm_names())}"
        ) from None
