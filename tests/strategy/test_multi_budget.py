"""The exact projection with any number of linear budget rows, against brute force."""

import numpy as np
import pytest
import torch

from uboost.strategy._milp import LinearBudget, Program
from uboost.strategy.architecture import arch_to_indices, one_hot, preferences

from tests.strategy.test_budget import MIXED, enumerate_archs, searched


def brute_force_table(seed):
    """Every architecture of the mixed space (54): its cycles (``CostModel.evaluate`` on the
    frozen network), its active cost rows (one-hot gates, to price any per-row cost) and its
    preference."""
    make, shape = MIXED
    model, supernet, cost, choices, nodes = searched(make, shape, seed=seed)
    prefs = preferences(choices, nodes)
    table = []
    for arch in enumerate_archs(make()):
        idx = arch_to_indices(choices, nodes, arch)
        with torch.no_grad():
            p = cost.probabilities(distributions=one_hot(choices, idx))
            gate = p[cost.gate_index].prod(-1).double().numpy()
        assert float(gate @ cost.row_cycles.double().numpy()) == model.evaluate(make().freeze(arch), shape).cycles
        table.append((model.evaluate(make().freeze(arch), shape).cycles, gate,
                      sum(float(prefs[id(c.alpha)][idx[id(c.alpha)]]) for c in choices), arch))
    assert len(table) == 54
    return cost, choices, nodes, table


def second_row(cost, seed):
    """A second per-row constant unrelated to cycles (as energy, memory or a device's own table would be)."""
    return np.random.default_rng(seed).uniform(0.0, 100.0, cost.gate_index.shape[0])


def binds_both(points, budget_c, budget_o) -> bool:
    """The optimum under either budget alone breaks the other (so both rows are needed)."""
    best_c = max((t for t in points if t[0] <= budget_c), key=lambda t: t[2])
    best_o = max((t for t in points if t[1] <= budget_o), key=lambda t: t[2])
    return best_c[1] > budget_o and best_o[0] > budget_c


@pytest.mark.parametrize("seed", [5, 7])
def test_two_budget_rows_equal_brute_force_and_never_exceed_either(seed):
    cost, choices, nodes, table = brute_force_table(seed)
    program = Program(cost, choices, nodes)
    cycles_row, other_row = cost.row_cycles.double().numpy(), second_row(cost, seed)
    points = [(t[0], float(t[1] @ other_row), t[2], t[3]) for t in table]
    cyc = sorted({t[0] for t in points})
    oth = sorted({t[1] for t in points})
    grid = [(cyc[0] + fc * (cyc[-1] - cyc[0]), oth[0] + fo * (oth[-1] - oth[0]))
            for fc in (0.1, 0.3, 0.5, 0.7, 1.0) for fo in (0.05, 0.25, 0.45, 0.65, 0.9)]
    # and budget pairs (every reachable value pair) where both rows bind, found by brute force
    both = [(c, o) for c in cyc for o in oth if any(t[0] <= c and t[1] <= o for t in points) and binds_both(points, c, o)]
    assert len(both) >= 10
    checked = 0
    for budget_c, budget_o in grid + both[:: max(1, len(both) // 15)]:
        feasible = [t for t in points if t[0] <= budget_c and t[1] <= budget_o]
        x, prefs = program.solve([LinearBudget(cycles_row, budget_c), LinearBudget(other_row, budget_o + 1e-9)])
        if not feasible:
            assert x is None
            continue
        arch, indices, score = program.decode(x, prefs)
        found = next(t for t in points if t[3] == arch)
        assert found[0] <= budget_c and found[1] <= budget_o + 1e-6  # never over either budget
        assert score == pytest.approx(max(t[2] for t in feasible), abs=1e-9)  # the brute-force optimum
        checked += 1
    assert checked >= 30


def test_lower_rows_make_a_window_on_each_budget():
    cost, choices, nodes, table = brute_force_table(5)
    program = Program(cost, choices, nodes)
    cycles_row, other_row = cost.row_cycles.double().numpy(), second_row(cost, 5)
    points = [(t[0], float(t[1] @ other_row), t[2], t[3]) for t in table]
    oth = sorted(t[1] for t in points)
    lo_o, hi_o = oth[len(oth) // 3], oth[2 * len(oth) // 3]
    hi_c = sorted(t[0] for t in points)[40]
    window = [t for t in points if lo_o <= t[1] <= hi_o and t[0] <= hi_c]
    assert 0 < len(window) < 20
    x, prefs = program.solve([LinearBudget(cycles_row, hi_c), LinearBudget(other_row, hi_o + 1e-6, lo_o - 1e-6)])
    arch, _, score = program.decode(x, prefs)
    found = next(t for t in points if t[3] == arch)
    assert lo_o - 1e-6 <= found[1] <= hi_o + 1e-6 and found[0] <= hi_c
    assert score == pytest.approx(max(t[2] for t in window), abs=1e-9)


@pytest.mark.parametrize("bad", [np.nan, -1.0, np.inf])
def test_bad_budget_rows(bad):
    from uboost.exceptions import ConfigError

    cost, choices, nodes = searched(*MIXED, seed=0)[2:]
    program = Program(cost, choices, nodes)
    values = cost.row_cycles.double().numpy().copy()
    values[0] = bad
    with pytest.raises(ConfigError, match="non-negative"):
        program.solve([LinearBudget(values, 1e9)])


def test_the_solvers_native_prints_are_silenced_with_pythons_stdout_replaced(capfd):
    """check_budget_reachable prices under redirect_stdout(None): the silencer found no fileno there and let HiGHS'
    native lines through to the terminal of every budgeted darts-cifar search."""
    import contextlib
    import os

    from uboost.strategy._milp import _native_stdout_silenced

    with contextlib.redirect_stdout(None), _native_stdout_silenced():
        os.write(1, b"HighsMipSolverData::transformNewIntegerFeasibleSolution\n")  # as native code prints
    os.write(1, b"after\n")
    assert capfd.readouterr().out == "after\n"
