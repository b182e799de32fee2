"""The hardware-aware loss hook of U-Boost.

``arch_loss = task + lambda * latency / latency_ref + beta * (1 - utilization) [+ budget]``

* ``latency`` and ``utilization`` are the supernet's *expected* values under the current
  architecture distribution (:mod:`uboost.strategy.supernet_cost`), as tensors, so the term
  has a gradient with respect to every architecture parameter.
* ``latency_ref`` is the expected latency at uniform choices, fixed once per run when the
  supernet is first traced and recorded (``hw/latency_ref_ms``): ``lambda`` is then a
  dimensionless trade-off that means the same on every array and space.
* With ``target_latency_ms`` the search should *reach* the budget but not trade accuracy to
  undershoot it: the ``lambda`` term only acts above the budget, and a budget term
  ``budget_weight * relu(latency / target - 1)`` is added.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from uboost.exceptions import ConfigError
from uboost.hardware import CostModel
from uboost.strategy.supernet_cost import COST_MODES, HardwareCost, SupernetCost, build_supernet_cost


def _non_negative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name} must be a non-negative number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class HardwareTerms:
    loss: torch.Tensor
    cost: HardwareCost


class HardwareLoss(nn.Module):
    """Computes the hardware term of the architecture loss for one supernet."""

    def __init__(
        self,
        cost_model: CostModel,
        *,
        latency_weight: float = 1.0,
        utilization_weight: float = 1.0,
        target_latency_ms: float | None = None,
        budget_weight: float = 1.0,
        cost_mode: str = "expected",
        temperature: float | None = 10.0,
    ):
        super().__init__()
        if cost_mode not in COST_MODES:
            raise ConfigError(f"unknown cost mode {cost_mode!r}; expected one of: {', '.join(COST_MODES)}")
        self.cost_model = cost_model
        self.latency_weight = _non_negative("latency_weight", latency_weight)
        self.utilization_weight = _non_negative("utilization_weight", utilization_weight)
        self.budget_weight = _non_negative("budget_weight", budget_weight)
        if target_latency_ms is not None and not _non_negative("target_latency_ms", target_latency_ms) > 0:
            raise ConfigError(f"target_latency_ms must be positive, got {target_latency_ms!r}")
        self.target_latency_ms = target_latency_ms
        self.cost_mode = cost_mode
        if cost_mode == "smooth" and (temperature is None or not _non_negative("temperature", temperature) > 0):
            raise ConfigError(f"temperature must be positive in smooth mode, got {temperature!r}")
        self.temperature = temperature
        self.supernet_cost: SupernetCost | None = None
        self.latency_ref_ms: float | None = None

    @property
    def attached(self) -> bool:
        return self.supernet_cost is not None

    def attach(self, supernet: nn.Module, example: torch.Tensor) -> None:
        """Trace ``supernet`` once on ``example`` (one sample) and fix ``latency_ref``."""
        self.supernet_cost = build_supernet_cost(
            supernet, self.cost_model, example[:1], mode=self.cost_mode, temperature=self.temperature
        )
        with torch.no_grad():
            self.latency_ref_ms = float(self.supernet_cost(uniform=True).latency_ms)
        if not self.latency_ref_ms > 0:
            raise ConfigError("the supernet has zero expected latency: nothing for the hardware loss to act on")

    def forward(self) -> HardwareTerms:
        if self.supernet_cost is None:
            raise RuntimeError("HardwareLoss.attach(supernet, example) must be called first")
        cost = self.supernet_cost()
        latency = cost.latency_ms
        latency_term = self.latency_weight * latency / self.latency_ref_ms
        loss = (1.0 - cost.utilization) * self.utilization_weight
        if self.target_latency_ms is None:
            loss = loss + latency_term
        else:
            over = latency > self.target_latency_ms
            loss = loss + torch.where(over, latency_term, torch.zeros_like(latency_term))
            loss = loss + self.budget_weight * torch.relu(latency / self.target_latency_ms - 1.0)
        return HardwareTerms(loss=loss, cost=cost)
