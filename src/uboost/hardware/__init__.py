"""Hardware cost models: what a network costs on an accelerator.

Pure PyTorch, no NNI: ``uboost.hardware.create("systolic", rows=64, cols=64).evaluate(net, (3, 32, 32))``;
``model.energy_pj(table)`` prices joules (:mod:`uboost.hardware.energy`).
"""

from uboost.hardware.base import Ceil, CostModel, LayerCost, NetworkCost
from uboost.hardware.layers import LayerShape, LayerTable, extract_layers
from uboost.hardware.registry import COST_MODELS, create, list_models, register, resolve
from uboost.hardware.smooth import smooth_ceil
from uboost.hardware.spec import DATAFLOWS, HardwareSpec, parse_array
from uboost.hardware.energy import EnergyTable
from uboost.hardware.operating import OperatingPoint, OperatingPoints
from uboost.hardware.access import access_counts

# built-in models register themselves on import
from uboost.hardware import analytic as _analytic  # noqa: E402,F401
from uboost.hardware import lookup as _lookup  # noqa: E402,F401
from uboost.hardware import systolic as _systolic  # noqa: E402,F401
from uboost.hardware import systolic_mem as _systolic_mem  # noqa: E402,F401
from uboost.hardware import scalesim as _scalesim  # noqa: E402,F401  (runs SCALE-Sim only when used)
from uboost.hardware.analytic import FlopsModel, RooflineModel  # noqa: E402
from uboost.hardware.lookup import LookupTable  # noqa: E402
from uboost.hardware.systolic import PaperSystolicArray, SystolicArray  # noqa: E402
from uboost.hardware.systolic_mem import MemorySystolicArray  # noqa: E402
from uboost.hardware.scalesim import ScaleSimModel  # noqa: E402

__all__ = [
    "COST_MODELS", "Ceil", "CostModel", "DATAFLOWS", "EnergyTable", "FlopsModel", "HardwareSpec", "LayerCost", "LayerShape",
    "OperatingPoint", "OperatingPoints", "access_counts",
    "MemorySystolicArray", "ScaleSimModel",
    "LayerTable", "LookupTable", "NetworkCost", "PaperSystolicArray", "RooflineModel", "SystolicArray",
    "create", "extract_layers", "list_models", "parse_array", "register", "resolve", "smooth_ceil",
]
