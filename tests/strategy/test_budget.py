"""Derived-network pricing, budget-exact projection and the in-search budget."""

import itertools
import math

import pytest
import pytorch_lightning as pl
import torch
from nni.nas.oneshot.pytorch.supermodule.base import BaseSuperNetModule

from uboost.hardware import create
from uboost.search_spaces import create as create_space
from uboost.strategy import HardwareLoss, UBoost, build_supernet_cost, run_experiment
from uboost.strategy.architecture import (
    alphas_to_dict, arch_to_indices, argmax_indices, choice_groups, indices_to_arch, load_alphas, preferences,
)
from uboost.strategy.projection import InfeasibleBudget, Projector

from tests.strategy.spaces import MixedSpace, TaskNeutralSpace
from tests.strategy.test_uboost import evaluator


def nni_export(supernet):
    memo = {}
    for module in supernet.modules():
        if isinstance(module, BaseSuperNetModule):
            memo.update(module.export(memo))
    return memo


def searched(make, shape, seed, mode="expected", model_name="systolic", **spec):
    """A mutated supernet with random alphas, its cost expression and its choices."""
    model = create(model_name, rows=8, cols=8, **spec)
    supernet = UBoost(cost_model=model).mutate_model(make())
    choices, nodes = choice_groups(supernet)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for c in choices:
            c.alpha.copy_(torch.randn(c.alpha.shape, generator=g) * 2)
    cost = build_supernet_cost(supernet, model, torch.zeros(1, *shape), mode=mode)
    return model, supernet, cost, choices, nodes


DARTS = (lambda: create_space("darts-cifar", width=4, cells=3, input_shape=(3, 8, 8)), (3, 8, 8))
LENET = (lambda: create_space("lenet", input_shape=(1, 8, 8)), (1, 8, 8))
MIXED = (MixedSpace, (1, 8, 8))


@pytest.mark.parametrize("space", [MIXED, LENET, DARTS], ids=["mixed", "lenet", "darts"])
def test_derived_indices_are_nnis_export_and_priced_exactly(space):
    make, shape = space
    model, supernet, cost, choices, nodes = searched(make, shape, seed=1)
    indices = argmax_indices(choices, nodes)
    arch = indices_to_arch(choices, nodes, indices, preferences(choices, nodes))
    assert arch == nni_export(supernet)
    assert arch_to_indices(choices, nodes, arch) == indices
    hook = HardwareLoss(model)
    hook.attach(supernet, torch.zeros(1, *shape))
    assert float(hook.derived_cost().cycles) == model.evaluate(make().freeze(arch), shape).cycles
    # in smooth mode too: the derived network is priced cycle-exact (it was the smooth ceiling's value, 16 % high
    # on lenet, and fed the budget multiplier and argmax_latency_ms)
    smooth = HardwareLoss(model, cost_mode="smooth", temperature=10.0)
    smooth.attach(supernet, torch.zeros(1, *shape))
    assert float(smooth.derived_cost().cycles) == pytest.approx(model.evaluate(make().freeze(arch), shape).cycles, rel=1e-9)


def enumerate_archs(space):
    labels = {k: list(v.values) for k, v in space.simplify().items()}
    for values in itertools.product(*labels.values()):
        yield dict(zip(labels, values))


@pytest.mark.parametrize("model_name, spec", [("systolic", {}), ("roofline", {})])
def test_projection_equals_brute_force_optimum_and_never_exceeds_the_budget(model_name, spec):
    """Fractional-cycle models too: budgets were rounded down to whole cycles, so a network at exactly the budget
    (a frontier's first point: the cheapest network) was refused and projections were not optimal."""
    make, shape = MIXED
    model, supernet, cost, choices, nodes = searched(make, shape, seed=4, model_name=model_name, **spec)
    prefs = preferences(choices, nodes)
    table = []  # every architecture of the space: (cycles, preference)
    for arch in enumerate_archs(make()):
        idx = arch_to_indices(choices, nodes, arch)
        score = sum(float(prefs[id(c.alpha)][idx[id(c.alpha)]]) for c in choices)
        table.append((model.evaluate(make().freeze(arch), shape).cycles, score, arch))
    assert len(table) == 54
    projector = Projector(cost, choices, nodes)
    lo, hi = min(t[0] for t in table), max(t[0] for t in table)
    clock = model.spec.clock_hz
    for fraction in (0.0, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 1.0):
        budget_cycles = lo + fraction * (hi - lo)
        feasible = [t for t in table if t[0] <= budget_cycles]
        best = max(t[1] for t in feasible)
        projection = projector.project(budget_cycles / clock * 1e3)
        assert projection.cycles <= budget_cycles
        assert model.evaluate(make().freeze(projection.arch), shape).cycles == pytest.approx(projection.cycles, rel=1e-9)
        assert projection.preference == pytest.approx(best, abs=1e-9)
        assert projection.indices == arch_to_indices(choices, nodes, projection.arch)  # what commit_to_budget pulls to
        assert projector.highest_under(budget_cycles / clock * 1e3).cycles == pytest.approx(max(t[0] for t in feasible), rel=1e-9)
    assert projector.cheapest().cycles == pytest.approx(lo, rel=1e-9)


def test_budget_window_equals_brute_force_and_falls_back_under_the_highest_reachable():
    make, shape = MIXED
    model, supernet, cost, choices, nodes = searched(make, shape, seed=4)
    prefs = preferences(choices, nodes)
    table = []
    for arch in enumerate_archs(make()):
        idx = arch_to_indices(choices, nodes, arch)
        table.append((model.evaluate(make().freeze(arch), shape).cycles,
                      sum(float(prefs[id(c.alpha)][idx[id(c.alpha)]]) for c in choices)))
    projector = Projector(cost, choices, nodes)
    clock = model.spec.clock_hz
    lo, hi = min(t[0] for t in table), max(t[0] for t in table)
    cycles = sorted({t[0] for t in table})
    in_window = 0
    for fraction in (0.2, 0.45, 0.6, 0.8, 1.0):
        budget = lo + fraction * (hi - lo)
        for floor in (0.5, 0.9, 0.97):
            window = [t for t in table if floor * budget <= t[0] <= budget]
            if not window:  # the window is taken under the highest reachable network instead
                top = max(t[0] for t in table if t[0] <= budget)
                window = [t for t in table if floor * top <= t[0] <= top]
            else:
                in_window += 1
            projection = projector.project(budget / clock * 1e3, floor=floor)
            assert min(t[0] for t in window) <= projection.cycles <= budget
            assert projection.preference == pytest.approx(max(t[1] for t in window), abs=1e-9)
    assert in_window >= 10  # the check covered real windows, not only the fallback
    # an absolute lower bound (what a frontier uses) binds too
    mid = cycles[len(cycles) // 2]
    assert projector.project(hi / clock * 1e3, min_cycles=mid).cycles >= mid


def test_the_searchs_budget_window_is_the_exports():
    """The search took its floor under the highest network that fits always, the export only where nothing reaches
    f x budget: the search's window was wider and its commit phase aimed at networks the export then replaced."""
    make, shape = MIXED
    model, supernet, cost, choices, nodes = searched(make, shape, seed=4)
    table = sorted({model.evaluate(make().freeze(arch), shape).cycles for arch in enumerate_archs(make())})
    clock = model.spec.clock_hz
    checked = 0
    for low, high in zip(table, table[1:]):
        budget = (low + high) / 2  # between two reachable costs: the highest network that fits is below it
        for floor in (0.5, 0.9):
            hook = HardwareLoss(model, target_latency_ms=budget / clock * 1e3, budget_floor=floor)
            hook.attach(supernet, torch.zeros(1, *shape))
            reaches = any(floor * budget <= c <= budget for c in table)
            expected = floor * (budget if reaches else low)
            assert hook.floor_latency_ms * clock / 1e3 == pytest.approx(expected, rel=1e-9)
            checked += reaches and low < budget
    assert checked >= 5


def _lenet_with_operating_points():
    """lenet's supernet priced on an 8x8 array with rk3576-npu's DVFS table: (model, supernet, projector, shape)."""
    make, shape = LENET
    model = create("systolic", rows=8, cols=8, operating_points="rk3576-npu", clock_hz=9e8)
    supernet = UBoost(cost_model=model).mutate_model(make())
    cost = build_supernet_cost(supernet, model, torch.zeros(1, *shape))
    choices, nodes = choice_groups(supernet)
    return model, supernet, Projector(cost, choices, nodes), shape


def test_an_auto_point_window_falls_back_under_the_highest_network_at_that_point():
    """With --operating-point auto the floor was f x budget with no fallback: where no network at the chosen point
    reaches it the derived network sat below the window every step and the multiplier kept falling."""
    model, supernet, projector, shape = _lenet_with_operating_points()
    cheapest = projector.cheapest()  # at the table's fastest clock (the spec's)
    budget = cheapest.latency_ms * 1.1  # only the cheapest networks fit, all below 0.95 x budget
    hook = HardwareLoss(model, target_latency_ms=budget, budget_floor=0.95, auto_point=True)
    hook.attach(supernet, torch.zeros(1, *shape))
    at_point = hook.point_projectors()[int(hook.point_index)]
    highest = at_point.highest_under(budget).latency_ms
    assert highest < 0.95 * budget  # nothing in [f x budget, budget] at that point
    assert hook.floor_latency_ms == pytest.approx(0.95 * highest, rel=1e-9)  # was 0.95 x budget


def test_an_infeasible_budget_over_operating_points_names_the_fastest_points_cheapest():
    """It named the first (slowest) point's cheapest latency: 0.0008 ms where 0.000533 ms is reachable."""
    from uboost.strategy.projection import Budget, models_at_points, project_over_points

    model, _, base, _ = _lenet_with_operating_points()
    projectors = [base.at(m, i) for i, m in enumerate(models_at_points(model))]
    with pytest.raises(InfeasibleBudget) as info:
        project_over_points(projectors, [Budget("latency", 1e-9)])
    assert info.value.cheapest_ms == pytest.approx(min(p.cheapest().latency_ms for p in projectors))


def test_final_facts_of_an_auto_point_search_are_priced_at_the_chosen_point():
    """result.json's argmax and expected costs were the table's fastest clock's beside a slower chosen point."""
    from uboost.hardware.operating import at_point
    from uboost.strategy.final_export import priced_facts

    model, supernet, _, shape = _lenet_with_operating_points()
    hook = HardwareLoss(model, target_latency_ms=1.0, auto_point=True)
    hook.attach(supernet, torch.zeros(1, *shape))
    hook.distribution_tau = 0.5
    slowest = model.spec.operating_points.points[0]
    assert slowest.freq_hz < model.spec.clock_hz
    there = HardwareLoss(create("systolic", spec=at_point(model.spec, slowest)))
    there.attach(supernet, torch.zeros(1, *shape))
    there.distribution_tau = 0.5
    with torch.no_grad():
        expected, derived = there.expected_cost(), there.derived_cost()
    facts = priced_facts(hook, 0)
    assert facts["argmax_latency_ms"] == pytest.approx(float(derived.latency_ms), rel=1e-9)
    assert facts["argmax_energy_uj"] == pytest.approx(float(derived.energy_uj), rel=1e-9)
    assert facts["expected_latency_ms"] == pytest.approx(float(expected.latency_ms), rel=1e-9)
    assert facts["expected_energy_uj"] == pytest.approx(float(expected.energy_uj), rel=1e-9)
    assert priced_facts(hook)["argmax_latency_ms"] < facts["argmax_latency_ms"]  # the spec's own (fastest) point


@pytest.mark.parametrize("bad", [-0.1, 1.0, float("nan"), True])
def test_bad_budget_floor(bad):
    make, shape = MIXED
    _, _, cost, choices, nodes = searched(make, shape, seed=0)
    with pytest.raises(Exception, match="budget floor"):
        Projector(cost, choices, nodes).project(1.0, floor=bad)


def test_unconstrained_projection_is_the_argmax_export_on_a_cell_space():
    make, shape = DARTS
    _, supernet, cost, choices, nodes = searched(make, shape, seed=2)
    projector = Projector(cost, choices, nodes)
    unconstrained = projector.unconstrained()
    assert unconstrained.arch == nni_export(supernet)
    # a budget between the cheapest and the argmax network binds, keeps node structure valid
    cheapest = projector.cheapest()
    target = cheapest.latency_ms + 0.5 * (unconstrained.latency_ms - cheapest.latency_ms)
    projection = projector.project(target)
    assert cheapest.latency_ms <= projection.latency_ms <= target
    assert projection.preference < unconstrained.preference
    make().freeze(projection.arch)  # a valid architecture of the space


def test_infeasible_budget_names_the_cheapest_latency():
    make, shape = DARTS
    _, _, cost, choices, nodes = searched(make, shape, seed=3)
    projector = Projector(cost, choices, nodes)
    cheapest = projector.cheapest()
    with pytest.raises(InfeasibleBudget, match="cheapest reachable is") as info:
        projector.project(cheapest.latency_ms * 0.99)
    assert info.value.cheapest_ms == pytest.approx(cheapest.latency_ms)
    assert projector.project(cheapest.latency_ms).cycles == cheapest.cycles


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), "1"])
def test_bad_budgets(bad):
    make, shape = MIXED
    _, _, cost, choices, nodes = searched(make, shape, seed=0)
    with pytest.raises(Exception, match="positive number"):
        Projector(cost, choices, nodes).project(bad)


def test_alphas_round_trip_through_json():
    make, shape = LENET
    _, supernet, _, _, _ = searched(make, shape, seed=5)
    saved = alphas_to_dict(supernet)
    _, other, _, _, _ = searched(make, shape, seed=6)
    load_alphas(other, saved)
    assert alphas_to_dict(other) == saved


def recorded_evaluator(epochs, committed=None):
    """An evaluator whose every step appends (derived latency, budget multiplier) to the returned list
    (and, with ``committed``, the committed network's latency or None to that list)."""
    ev, seen = evaluator(epochs=epochs), []

    class Record(pl.Callback):
        def on_train_batch_start(self, trainer, *args):
            trainer.callback_metrics.pop("hw/committed_latency_ms", None)  # logged only on commit steps

        def on_train_batch_end(self, trainer, *args):
            metrics = trainer.callback_metrics
            seen.append((float(metrics["hw/derived_latency_ms"]), float(metrics["hw/budget_multiplier"])))
            if committed is not None:
                value = metrics.get("hw/committed_latency_ms")
                committed.append(None if value is None else float(value))

    ev.trainer.callbacks.append(Record())
    return ev, seen


def test_in_search_budget_binds_the_derived_network_when_the_task_cannot_tell_ops_apart(tmp_path):
    model = create("systolic", rows=8, cols=8)
    space = TaskNeutralSpace()
    expensive = model.evaluate(space.freeze({f"op{i}": 0 for i in range(6)}), (1, 8, 8)).latency_ms
    cheap = model.evaluate(space.freeze({f"op{i}": 1 for i in range(6)}), (1, 8, 8)).latency_ms
    target = cheap + 0.2 * (expensive - cheap)  # room for one expensive op of six
    torch.manual_seed(0)
    # a plain upper bound (budget_floor=0) and the multiplier alone (budget_commit=0): the six identical
    # choices move in lockstep, so the multiplier reaches only "all cheap" and "all expensive"
    strategy = UBoost(cost_model=model, target_latency_ms=target, budget_floor=0.0, utilization_weight=0.0,
                      arch_lr=0.05, budget_lr=1.0, budget_commit=0.0)
    ev, seen = recorded_evaluator(epochs=3)
    arch = run_experiment(TaskNeutralSpace(), ev, strategy, workdir=tmp_path)
    derived = float(ev.trainer.callback_metrics["hw/derived_latency_ms"])
    final = model.evaluate(TaskNeutralSpace().freeze(arch), (1, 8, 8)).latency_ms
    assert derived <= target * 1.0001
    assert final <= target * 1.0001
    assert seen[0][0] > target  # the random start was over budget ...
    assert max(m for _, m in seen) > 0  # ... so the multiplier rose and pulled the derived network down


def test_budget_window_controller_acts_only_outside_the_window():
    hook = HardwareLoss(create("systolic", rows=8, cols=8), target_latency_ms=1.0, budget_lr=1.0, budget_floor=0.8)
    hook.floor_latency_ms = 0.8  # attach() sets it from the space (0.8 x the highest network under 1 ms)
    assert hook.update_multiplier(0.9) == 0.0  # inside [0.8, 1.0]: the task alone decides
    assert hook.update_multiplier(1.5) == pytest.approx(0.5)  # over: up by the relative violation
    assert hook.update_multiplier(1.5) == pytest.approx(1.0)  # still over: it accumulates
    assert hook.update_multiplier(0.95) == 0.0  # back inside: released
    assert hook.update_multiplier(1.5) == pytest.approx(0.5)
    assert hook.update_multiplier(0.4) == pytest.approx(-0.5)  # under the floor: from 0 (no wind-up), 0.4/0.8 - 1
    assert hook.update_multiplier(0.4) == pytest.approx(-1.0)  # below 0 it rewards latency
    assert hook.update_multiplier(1.2) == pytest.approx(0.2)  # over again: from 0, not from -1
    plain = HardwareLoss(create("systolic", rows=8, cols=8), target_latency_ms=1.0, budget_lr=1.0, budget_floor=0.0)
    assert plain.update_multiplier(0.4) == 0.0  # a plain upper bound never goes negative
    assert plain.update_multiplier(1.5) == pytest.approx(0.5)
    assert plain.update_multiplier(0.8) == pytest.approx(0.3)  # and shrinks whenever under budget


def test_in_search_budget_window_pulls_a_cheap_derived_network_up(tmp_path):
    model = create("systolic", rows=8, cols=8)
    space = TaskNeutralSpace()
    expensive = model.evaluate(space.freeze({f"op{i}": 0 for i in range(6)}), (1, 8, 8)).latency_ms
    five = model.evaluate(space.freeze({**{f"op{i}": 0 for i in range(5)}, "op5": 1}), (1, 8, 8)).latency_ms
    target = expensive * 1.02
    assert five < 0.9 * target  # only the all-expensive network lies in the window
    torch.manual_seed(0)
    strategy = UBoost(cost_model=model, target_latency_ms=target, budget_floor=0.9, utilization_weight=0.0,
                      arch_lr=0.05, budget_lr=1.0, budget_commit=0.0)  # the multiplier alone
    ev, seen = recorded_evaluator(epochs=3)
    run_experiment(TaskNeutralSpace(), ev, strategy, workdir=tmp_path)
    assert seen[0][0] < 0.9 * target  # the random start was under the window ...
    assert min(m for _, m in seen) < 0  # ... so the multiplier went negative ...
    assert 0.9 * target <= seen[-1][0] <= target  # ... and the derived network rose into it


def window_with_one_expensive_op(model):
    """A target whose window [0.9, 1] x target holds exactly the networks with one expensive op of six."""
    space = TaskNeutralSpace()
    latency = {k: model.evaluate(space.freeze({f"op{i}": int(i >= k) for i in range(6)}), (1, 8, 8)).latency_ms for k in (0, 1, 2)}
    target = latency[1] * 1.01
    assert latency[0] < 0.9 * target and latency[2] > target  # none, two or more expensive ops lie outside
    return target


@pytest.mark.parametrize("commit", [0.0, 0.3])
def test_budget_commit_lands_the_argmax_in_a_window_the_multiplier_jumps_over(tmp_path, commit):
    model = create("systolic", rows=8, cols=8)
    target = window_with_one_expensive_op(model)
    torch.manual_seed(0)
    strategy = UBoost(cost_model=model, target_latency_ms=target, budget_floor=0.9, utilization_weight=0.0,
                      arch_lr=0.05, budget_lr=1.0, budget_commit=commit)
    committed = []
    ev, seen = recorded_evaluator(epochs=3, committed=committed)
    run_experiment(TaskNeutralSpace(), ev, strategy, workdir=tmp_path)
    final = seen[-1][0]
    if not commit:  # the six choices move in lockstep: the argmax cannot stop at one expensive op
        assert not 0.9 * target <= final <= target
        assert all(c is None for c in committed)
        return
    steps = len(committed)
    assert [c is not None for c in committed] == [i >= steps - math.ceil(commit * steps) for i in range(steps)]
    assert all(0.9 * target <= c <= target for c in committed if c is not None)  # every committed network is in the window
    assert 0.9 * target <= final <= target  # and the search's own argmax ends there
    assert strategy.hardware_loss.commit_indices is not None


def test_commitment_is_the_projection_objective_with_a_gradient():
    make, shape = LENET
    model, supernet, cost, choices, nodes = searched(make, shape, seed=3)
    hook = HardwareLoss(model)
    hook.attach(supernet, torch.zeros(1, *shape))
    indices = argmax_indices(choices, nodes)
    loss = hook.commitment(indices)
    prefs = preferences(choices, nodes)
    assert float(loss) == pytest.approx(-sum(float(prefs[id(c.alpha)][indices[id(c.alpha)]]) for c in choices))
    loss.backward()
    for c in choices:  # every chosen entry is pulled up, every other one down
        chosen = indices[id(c.alpha)]
        grad = c.alpha.grad.reshape(-1)
        assert grad[chosen] < 0 and all(grad[k] > 0 for k in range(grad.numel()) if k != chosen)


@pytest.mark.parametrize("bad", [-0.1, 1.5, True, "half"])
def test_bad_budget_commit(bad):
    from uboost.exceptions import ConfigError

    with pytest.raises(ConfigError, match="budget_commit"):
        UBoost(target_latency_ms=1.0, budget_commit=bad)


@pytest.mark.parametrize("seed", [0, 1])
def test_nnis_export_of_a_budgeted_search_is_the_projection_within_the_budget(tmp_path, seed):
    """`run_experiment` / `export_top_models` returned NNI's argmax: 1.134 us under a 1.0 us budget (README:
    "a budgeted search always ends with this projection"); only the CLI projected."""
    from uboost.strategy.projection import budgets_for

    def make():
        return create_space("lenet", input_shape=(1, 8, 8), widths=(32, 24, 16, 8, 4), kernels=(5, 3), hidden=(128, 64, 32))

    model = create("systolic", rows=16, cols=16)
    torch.manual_seed(seed)
    strategy = UBoost(cost_model=model, target_latency_ms=0.001, seed=seed)
    arch = run_experiment(make(), evaluator(), strategy, workdir=tmp_path)
    projected = strategy.hardware_loss.projector().project_budgets(budgets_for(0.001, None, 0.9))
    assert arch == projected.arch
    assert model.evaluate(make().freeze(arch), (1, 8, 8)).latency_ms <= 0.001
