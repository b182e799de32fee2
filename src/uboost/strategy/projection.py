"""Budget-exact projection: the architecture a search prefers most that fits every budget.

Given the alphas of a finished search and budgets (latency ``X`` ms, energy ``E`` µJ, or both),
:func:`Projector.project` solves exactly

    maximize   sum over choices of preference(choice)          (log-probabilities, see
                                                                 :func:`~uboost.strategy.architecture.preferences`)
    subject to cycle-exact latency(architecture) <= X,  energy(architecture) <= E, ...

as a mixed-integer linear program (``scipy.optimize.milp``, HiGHS; :mod:`uboost.strategy._milp`)
over the supernet's cost rows (:mod:`uboost.strategy.supernet_cost`, ``cost_mode="expected"``).
Every budget is one linear row: each cost row (one concrete layer shape) has a constant cost per
metric -- cycles, or picojoules (dynamic energy per action and leakage power x time are both
constants of a layer shape at one operating point) -- and the row sum with one-hot gates *is*
the cost of the frozen network (tested against :meth:`CostModel.evaluate`). Any number of
budget rows can be given at once (MathNAS's latency *and* energy limits).

A budget may have a *window* floor (a share of the budget the network should use): the most
preferred network with ``floor * X <= cost <= X``; see :meth:`Projector.project`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch

from uboost.exceptions import ConfigError, DataError, HardwareError, SearchError
from uboost.strategy._milp import LinearBudget, Program
from uboost.strategy.architecture import Choice, Node

logger = logging.getLogger(__name__)

METRICS = ("latency", "energy")
UNITS = {"latency": "ms", "energy": "µJ"}


class InfeasibleBudget(ConfigError):
    """No architecture of the space fits the budgets."""

    def __init__(self, message: str, cheapest_ms: float, cheapest_uj: float | None = None):
        super().__init__(message)
        self.cheapest_ms = cheapest_ms
        self.cheapest_uj = cheapest_uj


@dataclass(frozen=True)
class Projection:
    arch: dict
    cycles: float
    latency_ms: float
    preference: float  # sum of the log-probabilities of the chosen entries
    indices: dict[int, int]  # the chosen entry of every alpha (by id), as argmax_indices gives it
    energy_uj: float | None = None  # None: the cost model prices no energy
    point: int | None = None  # the operating point (index into the spec's table) it was priced at

    def value(self, metric: str) -> float | None:
        return self.latency_ms if metric == "latency" else self.energy_uj


@dataclass(frozen=True)
class Budget:
    """An upper bound ``target`` on ``metric`` (ms or µJ), with an optional window floor (a share
    of the budget the network should use) and an absolute ``minimum`` in row units (cycles, pJ)."""

    metric: str
    target: float
    floor: float = 0.0
    minimum: float = 0.0

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ConfigError(f"unknown budget metric {self.metric!r}; expected one of: {', '.join(METRICS)}")
        object.__setattr__(self, "target", check_budget(self.target, f"target {self.metric}", UNITS[self.metric]))
        object.__setattr__(self, "floor", check_floor(self.floor))


def budgets_for(target_latency_ms: float | None = None, target_energy_uj: float | None = None, floor: float = 0.0,
                *, min_cycles: float = 0.0, min_energy_pj: float = 0.0) -> list[Budget]:
    """The budgets of a search or an export. The window ``floor`` applies to the latency budget,
    and to the energy budget when it is the only one: with both, energy is a plain upper bound
    (two windows at once rarely intersect on a discrete space, and MathNAS's energy limit is one)."""
    budgets = []
    if target_latency_ms is not None:
        budgets.append(Budget("latency", target_latency_ms, floor, min_cycles))
    if target_energy_uj is not None:
        budgets.append(Budget("energy", target_energy_uj, floor if target_latency_ms is None else 0.0, min_energy_pj))
    return budgets


def check_budget(value, what: str = "target latency", unit: str = "ms") -> float:
    from uboost.search_config import MAX_BUDGET_MS

    words = {"ms": "milliseconds", "µJ": "microjoules"}.get(unit, unit)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{what} must be a positive number of {words}, got {value!r}")
    if value > MAX_BUDGET_MS:  # in cycles (or pJ) it would overflow
        raise ConfigError(f"{what} must be at most {MAX_BUDGET_MS:g} {unit}, got {value!r}")
    return float(value)


def check_floor(value, what: str = "budget floor") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0.0 <= value < 1.0):
        raise ConfigError(f"{what} must be a fraction of the budget in [0, 1), got {value!r}")
    return float(value)


def row_costs(table, cost_model) -> dict[str, np.ndarray]:
    """Every metric's constant per row of ``table`` on ``cost_model``: cycles, and pJ when the
    model prices energy."""
    with torch.no_grad():
        costs = {"latency": cost_model.cycles(table).detach().cpu().double().numpy()}
        energy = getattr(cost_model, "energy_pj", None)
        if energy is not None:
            costs["energy"] = energy(table).detach().cpu().double().numpy()
    return costs


class Projector:
    """Projects one supernet's alphas onto budgets (reuse it for many budgets).

    ``cost_model`` prices the rows (default: the one the cost table was built with); projectors
    of one supernet at several operating points share one program (:meth:`at`). ``objective``
    (``id(alpha) -> one coefficient per entry``, e.g. a predictor's accuracy table) replaces the
    maximized preferences; any objective additive over the choices works."""

    def __init__(self, cost, choices: list[Choice], nodes: list[Node], *, cost_model=None,
                 program: Program | None = None, point: int | None = None,
                 objective: dict[int, torch.Tensor] | None = None):
        if cost.mode != "expected":
            raise ConfigError("projection needs the cycle-exact row table: build the supernet cost with mode='expected'")
        self.program = program or Program(cost, choices, nodes, objective)
        self.cost = cost
        self.cost_model = cost_model or cost.cost_model
        self.point = point
        self.rows = row_costs(cost.table, self.cost_model)
        self._raw_per_unit = {"latency": self.cost_model.spec.clock_hz * 1e-3, "energy": 1e6}  # cycles/ms, pJ/µJ

    def at(self, cost_model, point: int | None = None) -> "Projector":
        """This supernet's projector with rows priced on ``cost_model`` (another operating point)."""
        return Projector(self.cost, self.program.choices, self.program.nodes, cost_model=cost_model,
                         program=self.program, point=point)

    # -- units ------------------------------------------------------------------------------
    def _values(self, metric: str) -> np.ndarray:
        if metric not in self.rows:
            raise ConfigError(f"the cost model {type(self.cost_model).__name__} prices no {metric}: "
                              "an energy budget needs a cost model with an energy table")
        return self.rows[metric]

    def _raw(self, budget: Budget) -> float:
        """The budget in row units: cycles within the latency at the array's clock, or pJ (the program's rows
        add a slack for float error). Not rounded down to whole cycles: memory-bound, roofline and FLOPs models
        price fractions of a cycle (a network at exactly the budget was refused), and for whole-cycle rows a
        sum <= raw is the same as a sum <= floor(raw)."""
        return budget.target * self._raw_per_unit[budget.metric]

    def _unit(self, metric: str, raw: float) -> float:
        if metric == "latency":
            return float(self.cost_model.latency_ms(torch.tensor(raw, dtype=torch.float64)))
        return raw / self._raw_per_unit[metric]

    # -- solving ----------------------------------------------------------------------------
    def _price(self, indices: dict[int, int], host: bool = False) -> dict[str, float]:
        """Every metric of the architecture ``indices`` from the rows (one-hot gates); ``host``:
        computed on the host alone (:meth:`SupernetCost.host_gates`, the same numbers)."""
        from uboost.strategy.architecture import one_hot

        with torch.no_grad():
            if host:
                gate = self.cost.host_gates(one_hot(self.program.choices, indices, device="cpu")).double().numpy()
            else:
                p = self.cost.probabilities(distributions=one_hot(self.program.choices, indices))
                gate = p[self.cost.gate_index].prod(-1).cpu().double().numpy()
        return {metric: float(gate @ values) for metric, values in self.rows.items()}

    def cost_of(self, indices: dict[int, int]) -> tuple[float, float | None]:
        """Latency (ms) and energy (µJ, None without an energy model) of the architecture ``indices``."""
        raw = self._price(indices)
        return self._unit("latency", raw["latency"]), self._unit("energy", raw["energy"]) if "energy" in raw else None

    def _solve(self, rows: list[LinearBudget], **mode) -> Projection | None:
        """Solve the program, decode the architecture and re-price it with the cost rows
        (``alphas=``: the alphas' values to read instead of the live ones, see :func:`preferences`)."""
        x, prefs = self.program.solve(rows, **mode)
        if x is None:
            return None
        arch, indices, score = self.program.decode(x, prefs)
        raw = self._price(indices, host=mode.get("alphas") is not None)  # given alphas: nothing on the device
        energy = self._unit("energy", raw["energy"]) if "energy" in raw else None
        return Projection(arch, raw["latency"], self._unit("latency", raw["latency"]), score, indices, energy, self.point)

    def _rows(self, budgets: list[Budget], lowers: dict[int, float] | None = None) -> list[LinearBudget]:
        """Budgets as program rows, with a small slack on the solver's tolerance."""
        rows = []
        for i, b in enumerate(budgets):
            raw = self._raw(b)
            lower = (lowers or {}).get(i, 0.0)
            rows.append(LinearBudget(self._values(b.metric), raw + 1e-6 + 1e-12 * raw, lower - 1e-6 if lower > 0 else 0.0))
        return rows

    def cheapest(self, metric: str = "latency", budgets: list[Budget] = ()) -> Projection:
        """The architecture with the least ``metric`` (within ``budgets``), ties broken by preference."""
        projection = self._solve(self._rows(list(budgets)), minimize=self._values(metric))
        if projection is None:
            if budgets:
                raise self._infeasible(list(budgets))
            raise SearchError("the projection program has no solution (the space has no valid architecture)")
        return projection

    def highest_under(self, target_latency_ms: float | None = None, *, budgets: list[Budget] | None = None,
                      metric: str = "latency", time_limit: float | None = 10.0, alphas=None) -> Projection:
        """The architecture with the most ``metric`` within the budgets (how close any architecture
        can get to them: the reachable costs are discrete).

        Maximizing cost is a hard program on cell spaces (its relaxation is weak); after
        ``time_limit`` seconds the most expensive architecture found so far is returned: a lower
        bound of the true maximum (``None``: prove it, which can take minutes)."""
        budgets = list(budgets or []) + ([Budget("latency", target_latency_ms)] if target_latency_ms is not None else [])
        projection = self._solve(self._rows(budgets), maximize=self._values(metric), time_limit=time_limit, alphas=alphas)
        if projection is None:
            raise self._infeasible(budgets)
        return projection

    def _infeasible(self, budgets: list[Budget]) -> InfeasibleBudget:
        fastest = self.cheapest("latency")
        wanted = " and ".join(f"{b.target:g} {UNITS[b.metric]}" for b in budgets)
        if all(b.metric == "latency" for b in budgets):
            cycles = f"{fastest.cycles:,.0f}" if float(fastest.cycles).is_integer() else f"{fastest.cycles:,.2f}"
            return InfeasibleBudget(f"no architecture fits {wanted}; the cheapest reachable is {fastest.latency_ms:.6g} ms "
                                    f"({cycles} cycles)", fastest.latency_ms, fastest.energy_uj)
        frugal = self.cheapest("energy")
        if frugal.latency_ms <= fastest.latency_ms * (1 + 1e-12):  # one network is both: say so, not a dearer twin
            return InfeasibleBudget(f"no architecture fits {wanted}; the least energy reachable, {frugal.energy_uj:.6g} µJ, "
                                    f"is also the fastest, {frugal.latency_ms:.6g} ms", frugal.latency_ms, frugal.energy_uj)
        return InfeasibleBudget(
            f"no architecture fits {wanted}; the fastest reachable is {fastest.latency_ms:.6g} ms at "
            f"{fastest.energy_uj:.6g} µJ, the least energy {frugal.energy_uj:.6g} µJ at {frugal.latency_ms:.6g} ms",
            fastest.latency_ms, frugal.energy_uj)

    def unconstrained(self) -> Projection:
        return self._solve([])

    def project(self, target_latency_ms: float | None = None, *, floor: float = 0.0, min_cycles: float = 0.0,
                target_energy_uj: float | None = None, energy_floor: float = 0.0, min_energy_pj: float = 0.0) -> Projection:
        """The most preferred architecture with ``floor * X <= latency <= X`` (``X`` the target)
        and ``energy_floor * E <= energy <= E`` (``E`` the energy target), each where given.

        ``floor`` (a fraction in [0, 1)) says how much of the budget the network should use: with
        0 the projection may land far under the budget when the search preferred cheap choices;
        with 0.9 it is the most preferred network among those using at least 90 % of it. When
        no architecture lies in that window (the reachable costs are discrete), the window
        is taken under the most expensive architecture that fits. ``min_cycles`` adds an
        absolute lower bound (a frontier keeps its points monotone with it)."""
        budgets = []
        if target_latency_ms is not None:
            budgets.append(Budget("latency", target_latency_ms, floor, min_cycles))
        if target_energy_uj is not None:
            budgets.append(Budget("energy", target_energy_uj, energy_floor, min_energy_pj))
        if not budgets:
            check_budget(target_latency_ms)  # the one-line error of a missing latency target
        return self.project_budgets(budgets)

    def project_budgets(self, budgets: list[Budget], *, alphas=None) -> Projection:
        """The most preferred architecture within every budget (windows where they have floors);
        ``alphas`` (``id(alpha) -> values``): project these values instead of the live alphas."""
        if not budgets:
            return self._solve([], alphas=alphas)
        lowers = {i: max(b.floor * self._raw(b), b.minimum) for i, b in enumerate(budgets)}
        lowers = {i: v for i, v in lowers.items() if v > 0}
        projection = self._solve(self._rows(budgets, lowers), alphas=alphas)
        if projection is None and lowers:
            # no architecture in every window: each window is taken under the most expensive that fits
            relaxed, fallback = {}, None
            for i in lowers:
                b = budgets[i]
                highest = self.highest_under(budgets=budgets, metric=b.metric, alphas=alphas)  # raises InfeasibleBudget when nothing fits
                top = highest.cycles if b.metric == "latency" else highest.energy_uj * self._raw_per_unit["energy"]
                relaxed[i] = max(b.floor * top, min(b.minimum, top))
                fallback = fallback or highest
                logger.info("no architecture uses %.0f%% of %g %s; window taken under the highest reachable (%.6g %s)",
                            100 * b.floor, b.target, UNITS[b.metric], highest.value(b.metric), UNITS[b.metric])
            projection = self._solve(self._rows(budgets, relaxed), alphas=alphas) or fallback
        if projection is None:
            raise self._infeasible(budgets)
        for b in budgets:  # the row table and the decoded architecture disagree: a bug
            value = projection.value(b.metric)
            if value > b.target * (1 + 1e-9) + (0.5 / self._raw_per_unit["latency"] if b.metric == "latency" else 0.0):
                raise SearchError(f"projection exceeded the {b.metric} budget ({value:.6g} > {b.target:g} {UNITS[b.metric]})")
        return projection


def models_at_points(cost_model) -> list:
    """``cost_model`` at every point of its spec's operating-point table (clock and voltage replaced; what the model
    derived from its spec derived again, :meth:`~uboost.hardware.base.CostModel.with_spec`)."""
    from uboost.hardware.operating import at_point

    table = cost_model.spec.operating_points
    if table is None:
        raise ConfigError("operating point 'auto' needs an operating-point table on the hardware spec (operating_points)")
    models = []
    for point in table:
        try:
            models.append(cost_model.with_spec(at_point(cost_model.spec, point)))
        except (DataError, HardwareError) as exc:  # e.g. a lookup table with no rows for that clock's words per cycle
            raise type(exc)(f"at operating point {point.label}: {exc}") from None
    return models


def project_over_points(projectors: list[Projector], budgets: list[Budget], *, alphas=None) -> Projection:
    """The most preferred (network, operating point) pair within every budget: one exact program
    per point, the best objective taken (ties: the least energy, then the least latency).
    Raises :class:`InfeasibleBudget` when no point has a feasible network, naming what the best point reaches
    (the least latency over the points, or the least energy for energy budgets alone; the first point's, the
    slowest, named a latency another point beats)."""
    if not projectors:
        raise ConfigError("no operating points to choose from")
    found, errors = [], []
    for projector in projectors:
        try:
            found.append(projector.project_budgets(budgets, alphas=alphas))
        except InfeasibleBudget as exc:
            errors.append(exc)
    if not found:
        if all(b.metric == "energy" for b in budgets):
            raise min(errors, key=lambda e: (e.cheapest_uj if e.cheapest_uj is not None else math.inf, e.cheapest_ms))
        raise min(errors, key=lambda e: e.cheapest_ms)
    best = max(p.preference for p in found)
    tied = [p for p in found if p.preference >= best - 1e-9]
    return min(tied, key=lambda p: (p.energy_uj if p.energy_uj is not None else 0.0, p.latency_ms))
