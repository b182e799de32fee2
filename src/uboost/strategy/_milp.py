"""The integer program behind :mod:`uboost.strategy.projection`: one supernet's choices and
cost rows as ``scipy.optimize.milp`` matrices, with any number of linear budget rows.

* one binary ``x[a, k]`` per entry ``k`` of every alpha ``a``, ``sum_k x[a, k] = 1``; a cell
  node keeps exactly ``n_chosen`` inputs (``sum_j x[edge_ij, none] = i - n_chosen``);
* a cost row (one concrete layer shape) is active when all choices on its path are taken: the
  product of binaries becomes a continuous ``y_r >= sum_d x_d - (n_r - 1)``, ``y_r >= 0``;
* a budget is ``lower <= fixed + sum_r value_r y_r <= upper`` for a per-row constant ``value``
  (cycles, pJ...). Every value is non-negative, so under upper bounds alone ``y_r`` sits at the
  product at the optimum; a lower bound (or a maximized cost) adds the links
  ``y_r <= sum(members of each gate)`` that make ``y_r`` equal the product exactly.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from dataclasses import dataclass

import numpy as np
import torch

from uboost.exceptions import ConfigError, SearchError
from uboost.strategy.architecture import Choice, Node, indices_to_arch, preferences

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinearBudget:
    """``lower <= sum over the cost table's rows of values[r] * active[r] <= upper`` (row units)."""

    values: np.ndarray  # one non-negative constant per row of the supernet's cost table
    upper: float | None = None
    lower: float = 0.0


_SILENCE_LOCK = threading.Lock()


@contextlib.contextmanager
def _native_stdout_silenced():
    """Route file descriptor 1 to /dev/null (native code's prints), then restore it. One thread
    at a time (the commit phase solves on a worker thread, :mod:`uboost.strategy.background`): two
    overlapping redirections would restore each other's /dev/null."""
    with _SILENCE_LOCK:
        try:
            fd = sys.stdout.fileno()
            sys.stdout.flush()
        except (AttributeError, ValueError, OSError):  # Python's stdout replaced (None, a StringIO): native code
            fd = 1  # still prints to descriptor 1 (HiGHS' lines leaked into budgeted searches)
        try:
            saved = os.dup(fd)
        except OSError:  # closed: nothing to silence
            yield
            return
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), fd)
            yield
        finally:
            os.dup2(saved, fd)
            os.close(saved)


class Program:
    """The MILP's matrices for one supernet cost and its choices (built once, solved per budget set)."""

    def __init__(self, cost, choices: list[Choice], nodes: list[Node], scores: dict[int, torch.Tensor] | None = None):
        from scipy.sparse import lil_matrix

        self.scores = scores  # the objective per entry of every alpha (by id); None: the search's preferences
        self.cost, self.choices, self.nodes = cost, choices, nodes
        alphas = cost.alphas
        by_id = {id(c.alpha): c for c in choices}
        unknown = [i for i, a in enumerate(alphas) if id(a) not in by_id]
        if unknown:
            raise SearchError(f"{len(unknown)} alphas of the cost table belong to no known choice")
        # variables: [x for every alpha entry in `choices` order] + [y for every gated row]
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
        self.n_rows = gate_index.shape[0]
        # rows whose gates are all constant are always active: a fixed cost of every budget
        rows, row_gates = [], []
        for r in range(self.n_rows):
            gates = [flat_vars[int(g)] for g in dict.fromkeys(gate_index[r].tolist()) if int(g) != 0]
            if gates:
                rows.append(r)
                row_gates.append(gates)
        self.rows = np.asarray(rows, dtype=np.int64)
        self.fixed = np.ones(self.n_rows, dtype=bool)
        self.fixed[self.rows] = False
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
        # upper links y_r <= sum(members of each gate): needed only under a lower bound or a maximized cost
        links = lil_matrix((sum(len(g) for g in row_gates), self.n))
        m = 0
        for i, gates in enumerate(row_gates):
            for members in gates:
                links[m, self.n_x + i] = 1.0
                for v in members:
                    links[m, v] -= 1.0
                m += 1
        self.links = links.tocsr()

    def linear(self, values: np.ndarray) -> tuple[np.ndarray, float]:
        """A per-row cost as ``(coefficients over the variables, fixed part)``."""
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (self.n_rows,):
            raise SearchError(f"a budget row needs one value per cost row ({self.n_rows}), got shape {values.shape}")
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            raise ConfigError("budget rows must be finite and non-negative (cycles, energies)")
        row = np.zeros(self.n)
        row[self.n_x:] = values[self.rows]
        return row, float(values[self.fixed].sum())

    def objective(self, alphas: dict[int, torch.Tensor] | None = None) -> tuple[np.ndarray, dict[int, torch.Tensor]]:
        prefs = preferences(self.choices, self.nodes, alphas=alphas)
        scores = prefs if self.scores is None else self.scores
        c = np.zeros(self.n)
        for choice in self.choices:
            base = self.offset[id(choice.alpha)]
            c[base: base + choice.alpha.numel()] = scores[id(choice.alpha)].cpu().numpy()
        return c, prefs

    def solve(self, budgets: list[LinearBudget], *, minimize: np.ndarray | None = None,
              maximize: np.ndarray | None = None, time_limit: float | None = None, alphas=None,
              choice_rows: list[tuple[dict[int, float], float]] = ()):
        """Maximize the preference (or minimize / maximize a per-row cost, ties broken by
        preference) under every budget; ``(x, prefs)``, ``x`` None when infeasible. ``alphas``:
        the values to read instead of the live alphas (:func:`preferences`). ``choice_rows``:
        more constraints on the choices, each ``({variable: coefficient}, upper)`` read as
        ``sum coefficient * x <= upper`` (:meth:`variable` numbers an alpha's entries)."""
        from scipy.optimize import Bounds, LinearConstraint, milp

        c, prefs = self.objective(alphas)
        if minimize is not None:  # the cheapest architecture, ties broken by preference
            row, _ = self.linear(minimize)
            c = -row + 1e-9 * c * max(1.0, float(row.sum()))
        if maximize is not None:  # the most expensive architecture within the budgets
            c, _ = self.linear(maximize)
        constraints = [LinearConstraint(self.eq, self.eq_rhs, self.eq_rhs)]
        need_links = maximize is not None
        for budget in budgets:
            row, fixed = self.linear(budget.values)
            lower = budget.lower - fixed
            upper = np.inf if budget.upper is None else budget.upper - fixed
            need_links |= lower > 0
            if lower > 0 or budget.upper is not None:
                constraints.append(LinearConstraint(row.reshape(1, -1), lower if lower > 0 else -np.inf, upper))
        if need_links and self.links.shape[0]:  # y_r may not exceed its product
            constraints.append(LinearConstraint(self.links, -np.inf, 0.0))
        if self.act.shape[0]:
            constraints.append(LinearConstraint(self.act, -np.inf, self.act_rhs))
        if choice_rows:
            extra = np.zeros((len(choice_rows), self.n))
            for r, (coefficients, _) in enumerate(choice_rows):
                for v, coefficient in coefficients.items():
                    extra[r, v] += coefficient
            constraints.append(LinearConstraint(extra, -np.inf, np.array([upper for _, upper in choice_rows])))
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

    def variable(self, alpha, entry: int) -> int:
        """The program's variable of ``alpha``'s entry ``entry`` (1 when that entry is chosen)."""
        return self.offset[id(alpha)] + entry

    def decode(self, x: np.ndarray, prefs) -> tuple[dict, dict[int, int], float]:
        indices = {}
        for choice in self.choices:
            base = self.offset[id(choice.alpha)]
            indices[id(choice.alpha)] = int(np.argmax(x[base: base + choice.alpha.numel()]))
        arch = indices_to_arch(self.choices, self.nodes, indices, prefs)
        score = float(sum(float(prefs[id(c.alpha)][indices[id(c.alpha)]]) for c in self.choices))
        return arch, indices, score
