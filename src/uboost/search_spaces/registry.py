"""The search-space registry (entry-point group ``uboost.search_spaces``)."""

from __future__ import annotations

from typing import Any

from uboost.registry import Registry

SPACES: Registry = Registry("search space", entry_point_group="uboost.search_spaces")
register = SPACES.register

# The built-ins, known by name before NNI is imported (their modules register them on first use).
SPACES.declare("darts-cifar", "uboost.search_spaces.darts:darts_cifar",
               description="DARTS cells (+ plain 3x3/5x5 convs), optional per-stage channel search")
SPACES.declare("lenet", "uboost.search_spaces.lenet:lenet",
               description="DmaskingNAS toy: LeNet with per-layer kernel and width choices")


def create(name: str, **options: Any):
    """Build a fresh model space: ``create("darts-cifar", width=8, cells=3)``.

    Every space has ``input_shape`` (C, H, W) and ``num_classes`` attributes and keeps its
    construction ``options`` so an identical fresh space can be rebuilt (``space.options``).
    """
    return SPACES.create(name, **options)


def list_spaces() -> dict[str, str]:
    return SPACES.describe()
