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
    """
    return SPACES.create(name, **options)


def list_spaces() -> dict[str, str]:
    return SPACES.describe()
