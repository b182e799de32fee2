"""The U-Boost strategy for NNI 3 and its hardware-aware loss hook."""

from uboost._quiet import quiet_nni_import

quiet_nni_import()  # before the modules below import NNI: its import-time warnings about torch classes are noise

from uboost.strategy.loss import HardwareLoss, HardwareTerms
from uboost.strategy.supernet_cost import COST_MODES, HardwareCost, SupernetCost, build_supernet_cost
from uboost.strategy.experiment import quiet_nni, run_experiment
from uboost.strategy.uboost import UBoost

__all__ = [
    "COST_MODES", "HardwareCost", "HardwareLoss", "HardwareTerms", "SupernetCost", "UBoost", "build_supernet_cost", "quiet_nni", "run_experiment",
]
