"""The search-space registry (entry-point group ``uboost.search_spaces``)."""

from __future__ import annotations

import copy
from typing import Any

from uboost.registry import Registry

SPACES: Registry = Registry("search space", entry_point_group="uboost.search_spaces")
register = SPACES.register

# Each space owns the options a search uses when none are given (SearchConfig merges given options
# over them). darts-cifar's are sized for a CPU demo; on a GPU for CIFAR: width 16, cells 8.
_DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {}


def declare(name: str, target: str, *, description: str, defaults: dict[str, Any] | None = None) -> None:
    """A built-in space, known by name before NNI is imported (its module registers it on first use)."""
    SPACES.declare(name, target, description=description)
    _DEFAULT_OPTIONS[name] = dict(defaults or {})


declare("darts-cifar", "uboost.search_spaces.darts:darts_cifar",
        description="DARTS cells (+ plain 3x3/5x5 convs), optional per-stage channel search",
        defaults={"width": 8, "cells": 3})
declare("lenet", "uboost.search_spaces.lenet:lenet",
        description="DmaskingNAS toy: LeNet with per-layer kernel and width choices")


def default_options(name: str) -> dict[str, Any]:
    """The options a search of space ``name`` starts from (a copy). A plug-in space gives its own
    as a ``default_options`` dict attribute of its factory; none means the constructor defaults."""
    if name in _DEFAULT_OPTIONS:
        return copy.deepcopy(_DEFAULT_OPTIONS[name])
    return copy.deepcopy(dict(getattr(SPACES.get(name), "default_options", None) or {}))


def create(name: str, **options: Any):
    """Build a fresh model space: ``create("darts-cifar", width=8, cells=3)``.

    Every space has ``input_shape`` (C, H, W) and ``num_classes`` attributes and keeps its
    construction ``options`` so an identical fresh space can be rebuilt (``space.options``).
    An option the space does not have, or a value it cannot be built with, is one ``ConfigError``.
    """
    return construct(name, SPACES.get(name), options)


def construct(name: str, factory, options: dict[str, Any]):
    """``factory(**options)``, its refusals as one :class:`~uboost.exceptions.ConfigError` naming the space."""
    import re

    from uboost.exceptions import ConfigError

    try:
        return factory(**options)
    except TypeError as exc:
        unknown = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        if unknown:
            raise _no_option(name, unknown.group(1), _option_names(factory) or list(default_options(name))) from None
        raise ConfigError(f"bad options for space {name!r}: {exc}") from None
    except AssertionError as exc:  # NNI's checks of a choice's values (e.g. an empty list of widths)
        raise ConfigError(f"bad options for space {name!r}: {exc or 'rejected by NNI'}") from None


def check_options(name: str, options: dict[str, Any]) -> None:
    """Refuse an option ``name``'s space does not have before anything is built (``construct``'s own line); a
    factory that takes ``**options`` it does not declare is left to ``construct``."""
    names = _option_names(SPACES.get(name))
    unknown = sorted(set(options) - set(names or ()) - {"num_classes", "input_shape"})  # the data's: refused by their own check
    if names and unknown:
        raise _no_option(name, unknown[0], names)


def _no_option(name: str, option: str, names: list[str]):
    """The one line for an option space ``name`` does not take (``names``: those it does)."""
    from uboost.exceptions import ConfigError

    return ConfigError(f"space {name!r} has no option {option!r} (its options: {', '.join(names) or 'none'})")


def list_spaces() -> dict[str, str]:
    return SPACES.describe()


def _option_names(factory) -> list[str]:
    """The keyword options of a space (its factory's, or the class it returns), less the two every space takes."""
    import inspect
    import typing

    target = factory
    try:
        returned = typing.get_type_hints(inspect.unwrap(factory)).get("return")
    except Exception:  # an annotation that does not resolve: the factory's own parameters
        returned = None
    if isinstance(returned, type):
        target = _own_init(returned.__init__)  # `def lenet(**options) -> LeNetSpace`: the class's own parameters
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return []
    if any(p.kind is p.VAR_KEYWORD for p in params):  # options it does not name: unknown here
        return []
    return [p.name for p in params if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD
            if p.name not in ("self", "num_classes", "input_shape")]


def _own_init(function, depth: int = 4):
    """The ``__init__`` a class defined, under NNI's ``ModelSpace`` wrappers (closures without ``__wrapped__``)."""
    import inspect

    if function.__name__ == "__init__" or depth == 0:
        return function
    for cell in getattr(function, "__closure__", None) or ():
        inner = cell.cell_contents
        if inspect.isfunction(inner):
            found = _own_init(inner, depth - 1)
            if found.__name__ == "__init__":
                return found
    return function
