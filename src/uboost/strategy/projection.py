"""Budget-exact projection: the architecture a search prefers most that fits a latency budget.

Given the alphas of a finished search and a budget ``X``, :func:`project` solves exactly

    maximize   sum over choices of preference(choice)          (log-probabilities, see
                                                                 :func:`~uboost.strategy.architecture.preferences`)
    subject to cycle-exact latency(architecture) <= X

as a mixed-integer linear program (``scipy.optimize.milp``, HiGHS) over the supernet's cost
rows (:mod:`uboost.strategy.supernet_cost`, ``cost_mode="expected"``):

* one binary ``x[a, k]`` per entry ``k`` of every alpha ``a``, ``sum_k x[a, k] = 1``; a cell
  node keeps exactly ``n_chosen`` inputs (``sum_j x[edge_ij, none] = i - n_chosen``);
* a cost row (one concrete layer shape) is active when all choices on its path are taken: the
  product of binaries becomes a continuous ``y_r >= sum_d x_d - (n_r - 1)``, ``y_r >= 0``; its
  cycles are positive, so at the optimum ``y_r`` equals the product exactly;
* ``sum_r cycles_r y_r <= X`` in cycles (the row sum with one-hot gates *is* the cycle-exact
  cost of the frozen network; tested against :meth:`CostModel.evaluate`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
from dataclasses import dataclass

import numpy as np
import torch

from uboost.exceptions import ConfigError, SearchError
from uboost.strategy.architecture import Choice, Node, indices_to_arch, preferences

logger = logging.getLogger(__name__)


class InfeasibleBudget(ConfigError):
    """No architecture of the space fits the budget."""

    def __init__(self, message: str, cheapest_ms: float):
        super().__init__(message)
        self.cheapest_ms = cheapest_ms


@dataclass(frozen=True)
class Projection:
    arch: dict
    cycles: float
    latency_ms: float
    preference: float  # sum of the log-probabilities of the chosen entries
    indices: dict[int, int]  # the chosen entry of every alpha (by id), as argmax_indices gives it


def check_budget(value, what: str = "target latency") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{what} must be a positive number of milliseconds, got {value!r}")
    return float(value)


def check_floor(value, what: str = "budget floor") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0.0 <= value < 1.0):
        raise ConfigError(f"{what} must be a fraction of the budget in [0, 1), got {value!r}")
    return float(value)


@contextlib.contextmanager
def _native_stdout_silenced():
    """Route file descriptor 1 to /dev/null (native code's prints), then restore it."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # captured or replaced stdout: nothing native reaches it
        yield
        return
    sys.stdout.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


class _Program:
    """The MILP's matrices for one supernet cost and its choices (built once, solved per budget)."""

    def __init__(self, cost, choices: list[Choice], nodes: list[Node], scores: dict[int, torch.Tensor] | None = None):
        from scipy.sparse import lil_matrix

        self.scores = scores  # the objective per entry of every alpha (by id); None: the search's preferences
        if cost.mode != "expected":
            raise ConfigError("projection needs the cycle-exact row table: build the supernet cost with mode='expected'")
        self.cost, self.choices, self.nodes = cost, choices, nodes
        alphas = cost.alphas
        by_id = {id(c.alpha): c for c in choices}
        unknown = [i for i, a in enumerate(alphas) if id(a) not in by_id]
        if unknown:
            raise SearchError(f"{len(unknown)} alphas of the cost table belong to no known choice")
        # variables: [x for every alpha entry in `choices` order] + [y for every row]
        self.offset: dict[int, int] = {}
        n = 0
        for c in choices:
            self.offset[id(c.alpha)] = n
            n += c.alpha.numel()
        self.n_x = n
        # flat index (cost layout) -> list of x variables whose sum it is (constant 1 -> [])
        offsets, groups, n_flat = cost._layout
        flat_vars: dict[int, list[int]] = {0: []}
        for a_idx, alpha in enumerate(alphas):
            base = self.offset[id(alpha)]
            for k in range(alpha.numel()):
                flat_vars[offsets[a_idx] + k] = [base + k]
        for j, (a_idx, members) in enumerate(cost._derived_members):
            base = self.offset[id(alphas[a_idx])]
            flat_vars[n_flat + j] = [base + k for k in members]
        gate_index = cost.gate_index.cpu().numpy()
        cycles = cost.row_cycles.detach().cpu().double().numpy()
        # rows whose gates are all constant are always active: a fixed cost
        self.fixed_cycles = 0.0
        rows, row_gates = [], []
        for r in range(gate_index.shape[0]):
            gates = [flat_vars[int(g)] for g in dict.fromkeys(gate_index[r].tolist()) if int(g) != 0]
            if not gates:
                self.fixed_cycles += float(cycles[r])
            elif cycles[r] > 0:
                rows.append(r)
                row_gates.append(gates)
        self.row_cycles = cycles[rows]
        n_y = len(rows)
        self.n = self.n_x + n_y
        # equalities: one entry per plain alpha; a node keeps n_chosen inputs
        eq = lil_matrix((len(choices) + len(nodes), self.n))
        eq_rhs = np.zeros(len(choices) + len(nodes))
        m = 0
        for c in choices:
            base = self.offset[id(c.alpha)]
            for k in range(c.alpha.numel()):  # exactly one entry (for an edge: an op or "none")
                eq[m, base + k] = 1.0
            eq_rhs[m] = 1.0
            m += 1
        for node in nodes:
            for edge in node.edges:
                eq[m, self.offset[id(edge.alpha)] + edge.alpha.numel() - 1] = 1.0
            eq_rhs[m] = len(node.edges) - min(node.n_chosen, len(node.edges))
            m += 1
        self.eq, self.eq_rhs = eq.tocsr(), eq_rhs
        # row activation: sum_d x_d - y_r <= n_r - 1
        act = lil_matrix((n_y, self.n))
        act_rhs = np.zeros(n_y)
        for i, gates in enumerate(row_gates):
            for members in gates:
                for v in members:
                    act[i, v] += 1.0
            act[i, self.n_x + i] = -1.0
            act_rhs[i] = len(gates) - 1
        self.act, self.act_rhs = act.tocsr(), act_rhs
        # upper links y_r <= sum(members of each gate): needed only when cost is maximized
        links = lil_matrix((sum(len(g) for g in row_gates), self.n))
        m = 0
        for i, gates in enumerate(row_gates):
            for members in gates:
                links[m, self.n_x + i] = 1.0
                for v in members:
                    links[m, v] -= 1.0
                m += 1
        self.links = links.tocsr()
        budget = np.zeros(self.n)
        budget[self.n_x:] = self.row_cycles
        self.budget_row = budget

    def objective(self) -> tuple[np.ndarray, dict[int, torch.Tensor]]:
        prefs = preferences(self.choices, self.nodes)
        scores = prefs if self.scores is None else self.scores
        c = np.zeros(self.n)
        for choice in self.choices:
            base = self.offset[id(choice.alpha)]
            c[base: base + choice.alpha.numel()] = scores[id(choice.alpha)].cpu().numpy()
        return c, prefs

    def solve(self, budget_cycles: float | None, *, floor_cycles: float = 0.0, minimize_cost: bool = False,
              maximize_cost: bool = False, time_limit: float | None = None):
        from scipy.optimize import Bounds, LinearConstraint, milp

        c, prefs = self.objective()
        if minimize_cost:  # the cheapest architecture, ties broken by preference
            c = -self.budget_row + 1e-9 * c * max(1.0, float(self.row_cycles.sum(initial=1.0)))
        if maximize_cost:  # the most expensive architecture within the budget
            c = self.budget_row.copy()
        constraints = [LinearConstraint(self.eq, self.eq_rhs, self.eq_rhs)]
        floor = floor_cycles - self.fixed_cycles
        if (maximize_cost or floor > 0) and self.links.shape[0]:  # y_r may not exceed its product
            constraints.append(LinearConstraint(self.links, -np.inf, 0.0))
        if self.act.shape[0]:
            constraints.append(LinearConstraint(self.act, -np.inf, self.act_rhs))
        if budget_cycles is not None or floor > 0:
            upper = np.inf if budget_cycles is None else budget_cycles - self.fixed_cycles
            constraints.append(LinearConstraint(self.budget_row.reshape(1, -1), floor if floor > 0 else -np.inf, upper))
        integrality = np.zeros(self.n)
        integrality[: self.n_x] = 1
        options = {"mip_rel_gap": 0.0}
        if time_limit is not None:
            options["time_limit"] = float(time_limit)
        with _native_stdout_silenced():  # HiGHS prints solver diagnostics from C++ straight to fd 1
            result = milp(-c, constraints=constraints, integrality=integrality, bounds=Bounds(0, 1), options=options)
        if result.x is None or result.status not in (0, 1):  # 1: time limit, with the best solution found so far
            return None, prefs
        if result.status == 1:
            # only the most-expensive-network search (highest_under) has a limit, and hitting it is routine there
            logger.info("the solver hit its %gs time limit: the answer is feasible, not proven optimal", time_limit)
        return result.x, prefs

    def decode(self, x: np.ndarray, prefs) -> tuple[dict, float, float]:
        indices = {}
        for choice in self.choices:
            base = self.offset[id(choice.alpha)]
            indices[id(choice.alpha)] = int(np.argmax(x[base: base + choice.alpha.numel()]))
        arch = indices_to_arch(self.choices, self.nodes, indices, prefs)
        score = float(sum(float(prefs[id(c.alpha)][indices[id(c.alpha)]]) for c in self.choices))
        return arch, indices, score


class Projector:
    """Projects one supernet's alphas onto latency budgets (reuse it for many budgets).

    ``objective`` (``id(alpha) -> one coefficient per entry``, e.g. a predictor's accuracy
    table) replaces the maximized preferences; any objective additive over the choices works."""

    def __init__(self, cost, choices: list[Choice], nodes: list[Node], *, objective: dict[int, torch.Tensor] | None = None):
        self.program = _Program(cost, choices, nodes, objective)
        self.cost = cost

    def _cycles_of(self, indices: dict[int, int]) -> float:
        from uboost.strategy.architecture import one_hot

        with torch.no_grad():
            return float(self.cost(distributions=one_hot(self.program.choices, indices)).cycles)

    def _ms(self, cycles: float) -> float:
        return float(self.cost.cost_model.latency_ms(torch.tensor(cycles, dtype=torch.float64)))

    def _budget_cycles(self, target_latency_ms: float) -> int:
        """The largest whole number of cycles within ``target_latency_ms`` at the array's clock."""
        return math.floor(check_budget(target_latency_ms) * 1e-3 * self.cost.cost_model.spec.clock_hz + 1e-6)

    def _solve(self, budget_cycles: float | None, floor_cycles: float = 0.0, **mode) -> Projection | None:
        """Solve the program, decode the architecture and re-price it with the cost rows."""
        x, prefs = self.program.solve(None if budget_cycles is None else budget_cycles + 1e-6,
                                      floor_cycles=floor_cycles - 1e-6 if floor_cycles > 0 else 0.0, **mode)
        if x is None:
            return None
        arch, indices, score = self.program.decode(x, prefs)
        cycles = self._cycles_of(indices)
        return Projection(arch, cycles, self._ms(cycles), score, indices)

    def cheapest(self) -> Projection:
        projection = self._solve(None, minimize_cost=True)
        if projection is None:
            raise SearchError("the projection program has no solution (the space has no valid architecture)")
        return projection

    def highest_under(self, target_latency_ms: float, *, time_limit: float | None = 10.0) -> Projection:
        """The most expensive architecture of the space within the budget (how close any
        architecture can get to it: the reachable latencies are discrete).

        Maximizing cost is a hard program on cell spaces (its relaxation is weak); after
        ``time_limit`` seconds the most expensive architecture found so far is returned: a lower
        bound of the true maximum (``None``: prove it, which can take minutes)."""
        projection = self._solve(self._budget_cycles(target_latency_ms), maximize_cost=True, time_limit=time_limit)
        if projection is None:
            raise self._infeasible(target_latency_ms)
        return projection

    def _infeasible(self, target_latency_ms: float) -> InfeasibleBudget:
        cheapest = self.cheapest()
        return InfeasibleBudget(
            f"no architecture fits {target_latency_ms:g} ms; the cheapest reachable is {cheapest.latency_ms:.6g} ms "
            f"({cheapest.cycles:,.0f} cycles)", cheapest.latency_ms)

    def unconstrained(self) -> Projection:
        return self._solve(None)

    def project(self, target_latency_ms: float, *, floor: float = 0.0, min_cycles: float = 0.0) -> Projection:
        """The most preferred architecture with ``floor * X <= latency <= X`` (``X`` the target).

        ``floor`` (a fraction in [0, 1)) says how much of the budget the network should use: with
        0 the projection may land far under the budget when the search preferred cheap choices;
        with 0.9 it is the most preferred network among those using at least 90 % of it. When
        no architecture lies in that window (the reachable latencies are discrete), the window
        is taken under the most expensive architecture that fits. ``min_cycles`` adds an
        absolute lower bound (a frontier keeps its points monotone with it)."""
        target = check_budget(target_latency_ms)
        floor = check_floor(floor)
        budget_cycles = self._budget_cycles(target)
        lower = max(floor * budget_cycles, min_cycles)
        projection = self._solve(budget_cycles, lower)
        if projection is None and lower > 0:
            highest = self.highest_under(target)  # raises InfeasibleBudget when nothing fits
            relaxed = max(floor * highest.cycles, min(min_cycles, highest.cycles))
            logger.info("no architecture uses %.0f%% of %g ms; window taken under the highest reachable (%.6g ms)",
                        100 * floor, target, highest.latency_ms)
            projection = self._solve(budget_cycles, relaxed) or highest
        if projection is None:
            raise self._infeasible(target)
        if projection.cycles > budget_cycles + 0.5:  # the row table and the decoded architecture disagree: a bug
            raise SearchError(f"projection exceeded the budget ({projection.cycles:,.0f} > {budget_cycles:,} cycles)")
        return projection
