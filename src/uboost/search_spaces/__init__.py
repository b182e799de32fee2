"""Named NNI model spaces: ``create("darts-cifar", ...)``, ``list_spaces()``.

Listing the names imports no NNI; a space's module (and NNI) loads when it is first built.
"""

from __future__ import annotations

import importlib
from typing import Any

from uboost.search_spaces.registry import SPACES, create, default_options, list_spaces, register

_LAZY = {
    "OP_SETS": "uboost.search_spaces.darts",
    "DartsCifar": "uboost.search_spaces.darts",
    "parse_channels": "uboost.search_spaces.darts",
    "LeNetSpace": "uboost.search_spaces.lenet",
}

__all__ = ["OP_SETS", "SPACES", "DartsCifar", "LeNetSpace", "create", "default_options", "list_spaces",
           "parse_channels", "register"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'uboost.search_spaces' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
