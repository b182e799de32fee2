"""The hardware-aware loss hook of U-Boost.

``arch_loss = task + lambda * latency / latency_ref + beta * (1 - utilization)
+ gamma * energy / energy_ref [+ budgets]``

* ``utilization_scale="lambda"`` weighs the utilization term by ``lambda`` too,
  ``lambda * (latency / latency_ref + beta * (1 - utilization))``: ``lambda = 0`` is then the task
  alone and a lambda sweep walks from the task's optimum to the hardware's. With a latency target
  the utilization term stays ``beta * (1 - utilization)`` (the multiplier ``mu``, which can be
  negative, weighs the budget only).

* ``latency`` and ``utilization`` are the supernet's *expected* values under the current
  architecture distribution (:mod:`uboost.strategy.supernet_cost`), as tensors, so the term
  has a gradient with respect to every architecture parameter.
* ``latency_ref`` is the expected latency at uniform choices, fixed once per run when the
  supernet is first traced and recorded (``hw/latency_ref_ms``): ``lambda`` is then a
  dimensionless trade-off that means the same on every array and space. ``gamma``
  (``energy_weight``, default 0) weighs the expected energy the same way, in units of the uniform
  supernet's energy ``energy_ref`` (``hw/energy_ref_uj``).
* Every step the *derived* architecture (what NNI's export would return now: argmax of every
  choice, top inputs of every cell node) is priced exactly by the same cost rows with one-hot
  gates (:meth:`HardwareLoss.derived_cost`, no new tracing).
* With ``target_latency_ms`` the ``lambda`` term is replaced by a Lagrange multiplier ``mu``
  on the budget constraint, ``mu * E[latency] / target``, and ``mu`` is updated by dual ascent
  on the *derived* network's constraint violation after every step:
  ``mu <- max(0, mu + budget_lr * (derived / target - 1))``. While the network that would be
  exported is over budget, ``mu`` grows and pushes probability towards cheaper choices; once it
  is under budget, ``mu`` shrinks and the task loss pulls accuracy back, so the derived latency
  settles at the budget instead of far below it (a fixed ``lambda`` has no such fixed point).
* With ``budget_floor = f > 0`` (default 0.9) the budget is a window ``[f * target, target]``
  (``f`` times the most expensive network under the target when none reaches ``f * target``):
  one multiplier for the two one-sided constraints (``mu > 0``: the upper one is active,
  ``mu < 0``: the lower one, which *rewards* latency), moved only by the violation outside the
  window (a dead band inside it, where ``mu`` holds its value). Without the lower side a
  search whose task loss prefers cheap choices (or whose utilization term does) sinks far under
  the budget and stays there, since nothing pulls it back up.
* The distribution the term prices is ``softmax(alpha / tau)``, where ``tau`` (``distribution_tau``,
  set every step by the training module) follows the Gumbel temperature schedule (1 -> 0.1 by
  default) when ``sharpen=True`` in :class:`~uboost.strategy.UBoost`: the hardware term prices
  the same relaxation of the architecture that the mixture's forward pass uses (FBNet's latency
  term prices its Gumbel-softmax weights at the annealed temperature), so by the end of the
  search the distribution is nearly one-hot and its expected cost is the exported network's.
* With ``budget_commit = c > 0`` (default 0.2) the last ``c`` of the steps that train the
  architecture *commit* to the budget: every step the current alphas are projected onto the
  window exactly (the integer program of :mod:`uboost.strategy.projection`, ~25 ms on
  ``darts-cifar``) and the loss gains ``-sum log p(projected choice)`` (the projection's own
  preference, with a gradient). The multiplier alone steers a *distribution*, and the argmax of
  a distribution flips one choice at a time: on a space whose latencies are far apart it jumps
  over the window and back (``benchmarks/RESULTS.md``). The projection is the most preferred
  network *inside* the window, so pulling the alphas towards it moves the argmax there along the
  search's own preference, and raising its preference keeps it the projection's optimum (a fixed
  point). In single-path mode the sampled paths concentrate on it too, so the last steps train
  the weights of the network that will be exported.
* ``target_energy_uj`` is a budget on the derived network's energy, with its own multiplier
  (``energy_multiplier``) replacing the ``gamma`` term, moved the same way
  (:mod:`uboost.strategy.dual_ascent`). With both targets each has its multiplier and the commit
  phase projects onto both budgets at once; the window floor then applies to latency only
  (:func:`~uboost.strategy.projection.budgets_for`).
* The export then projects onto the window exactly (:mod:`uboost.strategy.projection`), which
  guarantees ``<= target`` and, wherever an architecture of the space lies in the window, at
  least ``f * target``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from uboost.exceptions import ConfigError
from uboost.hardware import CostModel
from uboost.strategy.projection import budgets_for
from uboost.strategy.supernet_cost import COST_MODES, HardwareCost, SupernetCost, build_supernet_cost


def check_commit(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"budget_commit must be a fraction of the search in [0, 1], got {value!r}")
    return float(value)


def _prices_energy(cost_model) -> bool:
    return callable(getattr(cost_model, "energy_pj", None))


def _non_negative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name} must be a non-negative number, got {value!r}")
    return float(value)


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive number, got {value!r}")
    return float(value)


UTILIZATION_SCALES = ("fixed", "lambda")  # beta * (1 - U) alone, or times lambda (as uboost.search_config)


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
        budget_lr: float = 0.5,
        budget_floor: float = 0.9,
        cost_mode: str = "expected",
        temperature: float | None = 10.0,
        entropy_weight: float = 0.0,
        budget_commit: float = 0.0,
        energy_weight: float = 0.0,
        target_energy_uj: float | None = None,
        auto_point: bool = False,
        bits_on_derived: bool = True,
        utilization_scale: str = "fixed",
        utilization_on_bits: bool | None = None,
    ):
        super().__init__()
        if utilization_scale not in UTILIZATION_SCALES:
            raise ConfigError(f"utilization_scale must be one of {', '.join(UTILIZATION_SCALES)}, got {utilization_scale!r}")
        self.utilization_scale = utilization_scale
        self.bits_on_derived = bool(bits_on_derived)  # searched bits priced on the derived ops (strategy/precision.py)
        if utilization_on_bits is None:  # only where a width leaves the PEs' rate alone (precision.blind_utilization)
            utilization_on_bits = cost_model.spec.pe == "fixed"
        self.utilization_on_bits = bool(utilization_on_bits)  # False: the utilization term moves no bits
        if cost_mode not in COST_MODES:
            raise ConfigError(f"unknown cost mode {cost_mode!r}; expected one of: {', '.join(COST_MODES)}")
        self.cost_model = cost_model
        self.latency_weight = _non_negative("latency_weight", latency_weight)
        self.utilization_weight = _non_negative("utilization_weight", utilization_weight)
        self.budget_lr = _non_negative("budget_lr", budget_lr)
        from uboost.strategy.projection import check_floor

        self.budget_floor = check_floor(budget_floor, "budget_floor")
        self.entropy_weight = _non_negative("entropy_weight", entropy_weight)
        self.budget_commit = check_commit(budget_commit)
        self.commit_indices: dict[int, int] | None = None  # set every step of the commit phase
        from uboost.strategy.background import Pending

        self._commits = Pending()  # the next commit step's projection, solving on a background thread
        if target_latency_ms is not None:
            _positive("target_latency_ms", target_latency_ms)
        self.target_latency_ms = target_latency_ms
        self.energy_weight = _non_negative("energy_weight", energy_weight)
        if target_energy_uj is not None:
            _positive("target_energy_uj", target_energy_uj)
        self.target_energy_uj = target_energy_uj
        if (self.energy_weight or target_energy_uj is not None) and not _prices_energy(cost_model):
            raise ConfigError(f"the cost model {type(cost_model).__name__} prices no energy: energy_weight and "
                              "target_energy_uj need one with an energy table")
        # the budgets' Lagrange multipliers: buffers, so they are checkpointed and resumed
        self.register_buffer("multiplier", torch.tensor(0.0, dtype=torch.float64))  # latency
        self.register_buffer("energy_multiplier", torch.tensor(0.0, dtype=torch.float64))
        # operating point "auto": the budgets hold at the point the last joint projection chose (an index
        # into the spec's table; -1 before the first), a buffer so a resumed search prices as the uninterrupted one
        self.auto_point = bool(auto_point)
        if self.auto_point and cost_model.spec.operating_points is None:
            raise ConfigError("operating point 'auto' needs an operating-point table on the hardware spec (operating_points)")
        self.register_buffer("point_index", torch.tensor(-1, dtype=torch.long))
        self._point_projectors = None
        self._point_rows: dict | None = None  # every point's row costs on the device (derived_values)
        self.supernet = None
        self.choices, self.nodes = [], []
        self._projector = None
        self.cost_mode = cost_mode
        if cost_mode == "smooth" and (temperature is None or not _non_negative("temperature", temperature) > 0):
            raise ConfigError(f"temperature must be positive in smooth mode, got {temperature!r}")
        self.temperature = temperature
        self.supernet_cost: SupernetCost | None = None
        self.latency_ref_ms: float | None = None
        self.energy_ref_uj: float | None = None  # None: the cost model prices no energy
        self.floor_latency_ms = 0.0  # lower edge of the budget window, set when attached
        self.floor_energy_uj = 0.0
        self.distribution_tau = 1.0  # the priced distribution is softmax(alpha / tau); set every step

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints written before the energy budget existed have no energy multiplier: it starts at 0
        state_dict.setdefault(prefix + "energy_multiplier", torch.tensor(0.0, dtype=torch.float64))
        state_dict.setdefault(prefix + "point_index", torch.tensor(-1, dtype=torch.long))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def has_budget(self) -> bool:
        return self.target_latency_ms is not None or self.target_energy_uj is not None

    def budgets(self, *, floor: bool = True):
        """The search's budgets (:class:`~uboost.strategy.projection.Budget`), with the window
        fixed at attach as absolute minimums when ``floor``."""
        return budgets_for(self.target_latency_ms, self.target_energy_uj,
                           min_cycles=self.floor_latency_ms * 1e-3 * self.cost_model.spec.clock_hz if floor else 0.0,
                           min_energy_pj=self.floor_energy_uj * 1e6 if floor else 0.0)

    @property
    def attached(self) -> bool:
        return self.supernet_cost is not None

    def attach(self, supernet: nn.Module, example: torch.Tensor) -> None:
        """Trace ``supernet`` once on ``example`` (one sample) and fix ``latency_ref``.

        Tracing runs the supernet (Gumbel noise included) on a forked RNG, so attaching draws
        no random numbers: a resumed search, which attaches at its first step, repeats the
        uninterrupted one."""
        with torch.random.fork_rng(devices=[]):
            self._attach(supernet, example)

    def _attach(self, supernet: nn.Module, example: torch.Tensor) -> None:
        from uboost.strategy.architecture import choice_groups

        self.supernet_cost = build_supernet_cost(
            supernet, self.cost_model, example[:1], mode=self.cost_mode, temperature=self.temperature
        )
        self.choices, self.nodes = choice_groups(supernet)
        self._projector = None  # built on first use, for this supernet
        self.supernet, self._example = [supernet], example[:1].detach()  # a list: not a submodule
        with torch.no_grad():  # the whole supernet at uniform choices (every cell edge counted): lambda's unit
            uniform = self.supernet_cost(uniform=True)
            self.latency_ref_ms = float(uniform.latency_ms)
            self.energy_ref_uj = None if uniform.energy_uj is None else float(uniform.energy_uj)
        self.supernet_cost.select_cell_inputs(self.nodes)  # from now on price the cells NNI exports (cell_inputs.py)
        if not self.latency_ref_ms > 0:
            raise ConfigError("the supernet has zero expected latency: nothing for the hardware loss to act on")
        if (self.energy_weight or self.target_energy_uj is not None) and not (self.energy_ref_uj or 0) > 0:
            raise ConfigError("the supernet has zero expected energy: nothing for the energy term to act on")
        if self.has_budget and self.auto_point:  # feasible at some point, or fail now; a window per point
            if int(self.point_index) < 0:
                self.point_index.fill_(self._project_over_points(floor=False).point)
            budgets = self.budgets(floor=False)
            self._point_floors = [self._window_floors(p, budgets) for p in self.point_projectors()]
            self.floor_latency_ms, self.floor_energy_uj = self._point_floors[int(self.point_index)]
        elif self.has_budget:  # an unreachable budget fails now, not after the search
            projector = self.projector()
            budgets = self.budgets(floor=False)
            projector.project_budgets(budgets)  # raises InfeasibleBudget, naming the cheapest reachable
            self.floor_latency_ms, self.floor_energy_uj = self._window_floors(projector, budgets)
        if self.has_budget and self.budget_commit:
            self._projector_ready()  # the commit phase's worker reads host tables: copied now, not mid-search

    def _window_floors(self, projector, budgets: list) -> tuple[float, float]:
        """``(latency floor ms, energy floor µJ)`` of the budget window on ``projector``'s prices, as the export
        takes it (:func:`_window_top`): f x target, under the highest network that fits only where none reaches
        f x target (costs are discrete). Taken under it always, the search's window was wider than the export's and
        the commit phase aimed at networks the export replaced; with ``--operating-point auto`` there was no
        fallback at all, and the multiplier fell every step where the derived network was the only one that fit."""
        from uboost.strategy.projection import InfeasibleBudget

        floors = {"latency": 0.0, "energy": 0.0}
        for b in budgets_for(self.target_latency_ms, self.target_energy_uj, self.budget_floor):
            if not b.floor:  # energy is windowed only when it is the only budget
                continue
            try:
                highest = projector.highest_under(budgets=budgets, metric=b.metric).value(b.metric)
            except InfeasibleBudget:  # nothing fits at this operating point: its window is never used
                highest = b.target
            floors[b.metric] = b.floor * _window_top(highest, b.target, b.floor)
        return floors["latency"], floors["energy"]

    def point_projectors(self) -> list:
        """One projector per operating point of the spec's table (sharing one program)."""
        from uboost.strategy.projection import models_at_points

        if self._point_projectors is None:
            base = self.projector()
            self._point_projectors = [base.at(m, i) for i, m in enumerate(models_at_points(self.cost_model))]
        return self._point_projectors

    def _project_over_points(self, floor: bool = True, alphas=None):
        from uboost.strategy.projection import project_over_points

        budgets = budgets_for(self.target_latency_ms, self.target_energy_uj, self.budget_floor if floor else 0.0)
        return project_over_points(self.point_projectors(), budgets, alphas=alphas)

    def derived_values(self, derived: HardwareCost) -> tuple:
        """The derived network's latency (ms) and energy (µJ) where its budgets are judged: at the
        spec's own point (``derived``'s tensors), or with ``auto_point`` at the point the last joint
        projection chose (priced on the device from every point's row costs: nothing read on the host)."""
        if not self.auto_point:
            return derived.latency_ms, derived.energy_uj
        from uboost.strategy.architecture import argmax_one_hot

        index = self.point_index.clamp(min=0)
        chosen = self.point_index >= 0
        latency, energy = self.values_at_point(index, argmax_one_hot(self.choices, self.nodes))
        latency = torch.where(chosen, latency, derived.latency_ms)
        if energy is None or derived.energy_uj is None:
            return latency, derived.energy_uj
        return latency, torch.where(chosen, energy, derived.energy_uj)

    @torch.no_grad()
    def values_at_point(self, index, distributions=None) -> tuple:
        """Latency (ms) and energy (µJ, None without an energy model) at operating point ``index`` of the spec's
        table, as tensors: of ``distributions`` (e.g. the argmax one-hot), else of the priced distribution
        ``softmax(alpha / distribution_tau)`` (the expected cost). From every point's row costs, on the device."""
        tables = self._point_tables()
        cost = self.point_projectors()[0].cost
        p = cost.probabilities(distributions=distributions, tau=1.0 if distributions else self.distribution_tau)
        gate = p[cost.gate_index].prod(-1)
        latency = (tables["latency"][index] @ gate) * tables["ms_per_cycle"][index]
        energy = (tables["energy"][index] @ gate) * 1e-6 if "energy" in tables else None
        return latency, energy

    def _point_tables(self) -> dict[str, torch.Tensor]:
        """Every operating point's row costs (cycles, pJ) and ms per cycle, as device tensors (made once)."""
        if self._point_rows is None:
            projectors = self.point_projectors()
            device = projectors[0].cost.gate_index.device
            one = torch.tensor(1.0, dtype=torch.float64)
            tables = {metric: torch.from_numpy(np.stack([p.rows[metric] for p in projectors])).to(device)
                      for metric in projectors[0].rows}
            tables["ms_per_cycle"] = torch.stack([p.cost_model.latency_ms(one) for p in projectors]).double().to(device)
            self._point_rows = tables
        return self._point_rows

    def _require(self) -> SupernetCost:
        if self.supernet_cost is None:
            raise RuntimeError("HardwareLoss.attach(supernet, example) must be called first")
        return self.supernet_cost

    def forward(self) -> HardwareTerms:
        cost = self.expected_cost()
        latency = cost.latency_ms
        loss = (1.0 - cost.utilization) * self.utilization_weight
        if self.target_latency_ms is None:
            if self.utilization_scale == "lambda":
                loss = loss * self.latency_weight
            loss = loss + self.latency_weight * latency / self.latency_ref_ms
        else:
            loss = loss + self.multiplier.to(latency.dtype) * latency / self.target_latency_ms
        if self.target_energy_uj is not None:
            loss = loss + self.energy_multiplier.to(latency.dtype) * cost.energy_uj / self.target_energy_uj
        elif self.energy_weight:
            loss = loss + self.energy_weight * cost.energy_uj / self.energy_ref_uj
        if self.entropy_weight:
            loss = loss + self.entropy_weight * self.entropy()
        if self.commit_indices is not None:
            loss = loss + self.commitment(self.commit_indices)
        return HardwareTerms(loss=loss, cost=cost)

    def commit_to_budget(self, step: int | None = None):
        """Project the current alphas onto the budget window exactly and commit the next
        architecture steps to that network (:meth:`commitment`); returns the projection.

        With ``step``: the projection :meth:`prepare_commit` started for that step on a background
        thread (from the same alphas, so the same network), waited for; solved here without one."""
        if not self.has_budget:
            raise RuntimeError("commit_to_budget needs a target latency or energy")
        projection = self._commits.take(step)
        if projection is None:
            projection = self._project_for_commit()
        if self.auto_point:  # the budgets are then judged at the point chosen with the network (and its window)
            self.point_index.fill_(projection.point)
            if getattr(self, "_point_floors", None):
                self.floor_latency_ms, self.floor_energy_uj = self._point_floors[int(projection.point)]
        self.commit_indices = projection.indices
        return projection

    def settle_commits(self) -> None:
        """Drop a commit-phase projection still solving in the background (end of training)."""
        self._commits.settle()

    def prepare_commit(self, mirror, step: int) -> None:
        """Start solving, on a background thread, the projection that step ``step`` commits to, from
        ``mirror`` (a :class:`~uboost.strategy.host_mirror.HostMirror` of the alphas that step starts
        with): the training step then does not wait for scipy (:mod:`uboost.strategy.background`)."""
        self._projector_ready()  # built here, on this thread, before the worker uses it
        self._commits.submit(step, self._project_for_commit, mirror)

    def _projector_ready(self) -> None:
        """Build what the worker reads, here on the training thread (a first copy from the device)."""
        projector = self.point_projectors()[0] if self.auto_point else self.projector()
        projector.cost.host_tables()

    def _project_for_commit(self, mirror=None):
        alphas = None if mirror is None else mirror.values()
        if self.auto_point:  # the most preferred (network, point) pair
            return self._project_over_points(alphas=alphas)
        return self.projector().project_budgets(self.budgets(), alphas=alphas)  # the window fixed at attach

    def commitment(self, indices: dict[int, int]) -> torch.Tensor:
        """``-sum log p(choice)`` of the architecture ``indices`` under the search's preferences
        (the projection's objective, negated), differentiable in the alphas."""
        from uboost.strategy.architecture import preferences

        prefs = preferences(self.choices, self.nodes, grad=True)
        return -torch.stack([prefs[id(c.alpha)][indices[id(c.alpha)]] for c in self.choices]).sum()

    def expected_cost(self) -> HardwareCost:
        """Expected cost of the priced distribution, ``softmax(alpha / distribution_tau)``. With
        searched bits (and ``bits_on_derived``) its gradient prices the bits on the derived network's
        ops (:func:`~uboost.strategy.precision.bits_on_derived`); the value is the same."""
        supernet_cost = self._require()
        if not any(c.kind == "bits" for c in self.choices):
            return supernet_cost(tau=self.distribution_tau)
        from uboost.strategy.precision import bits_on_derived, blind_utilization

        if self.bits_on_derived:
            return bits_on_derived(supernet_cost, self.choices, self.derived_indices(), self.distribution_tau,
                                   utilization=self.utilization_on_bits)
        cost = supernet_cost(tau=self.distribution_tau)
        return cost if self.utilization_on_bits else blind_utilization(cost, supernet_cost, self.choices, self.distribution_tau)

    def entropy(self) -> torch.Tensor:
        """Mean entropy of the choice distributions (an optional term that makes the search commit)."""
        tau = self.distribution_tau
        terms = [torch.special.entr(torch.softmax(c.alpha.double().reshape(-1) / tau, -1)).sum() for c in self.choices]
        return torch.stack(terms).mean()

    def derived_indices(self) -> dict[int, int]:
        from uboost.strategy.architecture import argmax_indices

        self._require()
        return argmax_indices(self.choices, self.nodes)

    @torch.no_grad()
    def derived_cost(self, indices: dict[int, int] | None = None) -> HardwareCost:
        """Exact cost of the architecture the export derives now (or of ``indices``); the argmax is
        taken where the alphas are (no host sync, :func:`~uboost.strategy.architecture.argmax_one_hot`)."""
        from uboost.strategy.architecture import argmax_one_hot, one_hot

        supernet_cost = self._require()
        if indices is None:
            return supernet_cost(distributions=argmax_one_hot(self.choices, self.nodes), exact=True)
        return supernet_cost(distributions=one_hot(self.choices, indices), exact=True)

    @torch.no_grad()
    def step_multipliers(self, derived_latency_ms=None, derived_energy_uj=None) -> dict[str, torch.Tensor]:
        """One dual-ascent step per budget on the derived network's values (floats or tensors),
        as tensor ops where the multipliers live (:func:`~uboost.strategy.dual_ascent.dual_step_`):
        nothing is read on the host. Returns the multipliers by metric (copies)."""
        from uboost.strategy.dual_ascent import dual_step_

        for buffer, derived, target, floor in (
            (self.multiplier, derived_latency_ms, self.target_latency_ms, self.floor_latency_ms),
            (self.energy_multiplier, derived_energy_uj, self.target_energy_uj, self.floor_energy_uj),
        ):
            if target is not None and derived is not None:
                dual_step_(buffer, derived, target, floor if self.budget_floor else None, self.budget_lr)
        return {"latency": self.multiplier.clone(), "energy": self.energy_multiplier.clone()}

    def update_multipliers(self, derived_latency_ms: float | None = None, derived_energy_uj: float | None = None) -> dict[str, float]:
        """:meth:`step_multipliers`, as floats."""
        return {k: float(v) for k, v in self.step_multipliers(derived_latency_ms, derived_energy_uj).items()}

    def update_multiplier(self, derived_latency_ms: float) -> float:
        """One dual-ascent step of the latency budget; returns its new multiplier."""
        return self.update_multipliers(derived_latency_ms)["latency"]

    def projector(self):
        """The :class:`~uboost.strategy.projection.Projector` of this supernet (cycle-exact rows),
        built once; it reads the alphas when it solves, so it always projects the current ones."""
        from uboost.strategy.projection import Projector

        supernet_cost = self._require()
        if self._projector is None:
            if supernet_cost.mode != "expected":
                with torch.random.fork_rng(devices=[]):  # tracing draws no random numbers (see attach)
                    supernet_cost = build_supernet_cost(self.supernet[0], self.cost_model, self._example, mode="expected")
                supernet_cost.select_cell_inputs(self.nodes)  # its expected prices (values_at_point) are the export's cells
            self._projector = Projector(supernet_cost, self.choices, self.nodes)
        return self._projector


def _window_top(highest: float, target: float, floor: float) -> float:
    """What the window's floor is a share of: the target where a network reaches ``floor x target`` (the export's
    first window), else the highest network that fits (its fallback)."""
    return target if highest >= floor * target else highest
