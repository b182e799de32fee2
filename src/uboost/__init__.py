"""uboost: hardware-aware, utilization-boosted differentiable NAS for NNI and Optuna.

Importing ``uboost`` is cheap: the subpackages (``uboost.hardware``, ``uboost.strategy``,
``uboost.search_spaces``, ``uboost.tuning``) load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "HardwareSpec": "uboost.hardware",
    "CostModel": "uboost.hardware",
    "create_cost_model": ("uboost.hardware", "create"),
    "list_cost_models": ("uboost.hardware", "list_models"),
    "UBoost": "uboost.strategy",
    "HardwareLoss": "uboost.strategy",
    "create_space": ("uboost.search_spaces", "create"),
    "list_spaces": ("uboost.search_spaces", "list_spaces"),
    "UBoostError": "uboost.exceptions",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'uboost' has no attribute {name!r}")
    module, attr = (target, name) if isinstance(target, str) else target
    return getattr(importlib.import_module(module), attr)
