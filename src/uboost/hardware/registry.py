"""The cost-model registry (entry-point group ``uboost.cost_models``)."""

from __future__ import annotations

from typing import Any

from uboost.hardware.base import CostModel
from uboost.registry import Registry

COST_MODELS: Registry[CostModel] = Registry("cost model", base=CostModel, entry_point_group="uboost.cost_models")

register = COST_MODELS.register


def create(name: str, **kwargs: Any) -> CostModel:
    """Build a registered cost model: ``create("systolic", rows=64, cols=64, dataflow="ws")``."""
    return COST_MODELS.create(name, **kwargs)


def resolve(model: str | CostModel, **kwargs: Any) -> CostModel:
    """A name becomes a model built with ``kwargs``; an instance is returned unchanged."""
    return COST_MODELS.resolve(model, **kwargs)


def list_models() -> dict[str, str]:
    """Registered cost models and their one-line descriptions."""
    return COST_MODELS.describe()
