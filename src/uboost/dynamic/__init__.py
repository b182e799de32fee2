"""Dynamic networks: early exits priced on the array with DVFS, and run-time network switching.

* :mod:`~uboost.dynamic.segments` cuts a frozen network at exit positions (torch.fx);
* :mod:`~uboost.dynamic.heads` and :mod:`~uboost.dynamic.training` build and train the heads;
* :mod:`~uboost.dynamic.model` is the network that really exits (and its all-exits ONNX form),
  :mod:`~uboost.dynamic.onnx_segments` its one-graph-per-segment ONNX form, and
  :mod:`~uboost.dynamic.export` what ``uboost export --format onnx`` writes of an exits output;
* :mod:`~uboost.dynamic.policy`, :mod:`~uboost.dynamic.pricing` and :mod:`~uboost.dynamic.search`
  decide, price and search exit policies with the operating point;
* :mod:`~uboost.dynamic.switcher` picks a network from a frontier as a budget changes (MathNAS).

Names are imported lazily: ``from uboost.dynamic import Switcher`` loads no torch.
"""

from __future__ import annotations

import importlib

_NAMES = {
    "Switcher": "uboost.dynamic.switcher",
    "SwitchPoint": "uboost.dynamic.switcher",
    "ExitPolicy": "uboost.dynamic.policy",
    "decide": "uboost.dynamic.policy",
    "DynamicNetwork": "uboost.dynamic.model",
    "export_onnx": "uboost.dynamic.model",
    "export_onnx_segments": "uboost.dynamic.onnx_segments",
    "run_segments": "uboost.dynamic.onnx_segments",
    "export_dynamic": "uboost.dynamic.export",
    "run_exported": "uboost.dynamic.export",
    "ExitHead": "uboost.dynamic.heads",
    "SegmentedBackbone": "uboost.dynamic.segments",
    "ExitCosts": "uboost.dynamic.pricing",
    "price_exits": "uboost.dynamic.pricing",
    "ExitsConfig": "uboost.dynamic.pipeline",
    "run_exits": "uboost.dynamic.pipeline",
}
__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'uboost.dynamic' has no attribute {name!r}")
