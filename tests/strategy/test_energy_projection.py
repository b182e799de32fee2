"""Energy in the supernet cost, the latency + energy projection and the operating-point choice,
against brute force over every (architecture, operating point) of a small space."""

import dataclasses

import pytest
import torch

from uboost.hardware import HardwareSpec, LayerTable, create, extract_layers
from uboost.hardware.operating import PRESETS as POINT_PRESETS, at_point
from uboost.strategy import HardwareLoss, build_supernet_cost
from uboost.strategy.architecture import arch_to_indices, one_hot, preferences
from uboost.strategy.projection import Budget, InfeasibleBudget, Projector, models_at_points, project_over_points

from tests.strategy.test_budget import MIXED, enumerate_archs, searched


def energy_uj(model, network, shape) -> float:
    """The frozen network's energy, priced layer by layer (independent of the supernet's rows)."""
    return float(model.energy_pj(LayerTable.from_shapes(extract_layers(network, shape))).sum()) * 1e-6


def space_with_points(seed):
    make, shape = MIXED
    model, supernet, cost, choices, nodes = searched(make, shape, seed=seed)
    spec = dataclasses.replace(model.spec, clock_hz=800e6, operating_points=POINT_PRESETS["rk3576-npu"])
    model.spec = spec  # the rows are priced by the projector's own model (cost.cost_model is this object)
    prefs = preferences(choices, nodes)
    points = models_at_points(model)
    table = []  # (point, latency ms, energy uJ, preference, arch) for all 54 x 4 pairs
    for arch in enumerate_archs(make()):
        idx = arch_to_indices(choices, nodes, arch)
        score = sum(float(prefs[id(c.alpha)][idx[id(c.alpha)]]) for c in choices)
        network = make().freeze(arch)
        for i, m in enumerate(points):
            table.append((i, m.evaluate(network, shape).latency_ms, energy_uj(m, network, shape), score, arch))
    return model, cost, choices, nodes, points, table


def test_energy_rows_price_every_architecture_exactly_and_the_expectation_is_differentiable():
    make, shape = MIXED
    model, supernet, cost, choices, nodes = searched(make, shape, seed=2)
    for arch in list(enumerate_archs(make()))[::7]:
        priced = cost(distributions=one_hot(choices, arch_to_indices(choices, nodes, arch)))
        assert float(priced.energy_uj) == pytest.approx(energy_uj(model, make().freeze(arch), shape), rel=1e-9)
    expected = cost()
    expected.energy_uj.backward()
    assert all(c.alpha.grad is not None and c.alpha.grad.abs().sum() > 0 for c in choices)


def test_expected_energy_is_the_exact_expectation_over_every_architecture():
    make, shape = MIXED
    model, supernet, cost, choices, nodes = searched(make, shape, seed=9)
    probs = {c.label: torch.softmax(c.alpha.detach().double().reshape(-1), -1) for c in choices}
    expectation = 0.0
    for arch in enumerate_archs(make()):
        idx = arch_to_indices(choices, nodes, arch)
        weight = 1.0
        for c in choices:
            weight *= float(probs[c.label][idx[id(c.alpha)]])
        expectation += weight * energy_uj(model, make().freeze(arch), shape)
    assert float(cost().energy_uj) == pytest.approx(expectation, rel=1e-9)


def test_smooth_mode_prices_energy_with_a_gradient():
    make, shape = MIXED
    model, supernet, exact, choices, nodes = searched(make, shape, seed=2)
    cost = build_supernet_cost(supernet, model, torch.zeros(1, *shape), mode="smooth", temperature=10.0)
    value, exact = cost().energy_uj, exact().energy_uj
    assert float(value) == pytest.approx(float(exact), rel=0.3)  # the paper's relaxation: close, not equal
    value.backward()
    assert sum(float(c.alpha.grad.abs().sum()) for c in choices if c.alpha.grad is not None) > 0


@pytest.mark.parametrize("seed", [3, 8])
def test_latency_and_energy_projection_equals_brute_force_and_never_exceeds_either(seed):
    model, cost, choices, nodes, points, table = space_with_points(seed)
    at_800 = [t for t in table if t[0] == 2]  # the spec's own clock: 800 MHz
    projector = Projector(cost, choices, nodes)
    lat = sorted({t[1] for t in at_800})
    en = sorted({t[2] for t in at_800})
    checked = 0
    for fl in (0.2, 0.5, 0.8):
        for fe in (0.15, 0.45, 0.75):
            x, e = lat[0] + fl * (lat[-1] - lat[0]), en[0] + fe * (en[-1] - en[0])
            feasible = [t for t in at_800 if t[1] <= x and t[2] <= e]
            if not feasible:
                with pytest.raises(InfeasibleBudget, match="least energy"):
                    projector.project(x, target_energy_uj=e)
                continue
            p = projector.project(x, target_energy_uj=e)
            assert p.latency_ms <= x and p.energy_uj <= e * (1 + 1e-12)
            assert p.preference == pytest.approx(max(t[3] for t in feasible), abs=1e-9)
            mine = next(t for t in at_800 if t[4] == p.arch)
            assert mine[1] == pytest.approx(p.latency_ms) and mine[2] == pytest.approx(p.energy_uj, rel=1e-9)
            checked += 1
    assert checked >= 5


def test_energy_window_and_energy_only_budget():
    model, cost, choices, nodes, points, table = space_with_points(4)
    at_800 = [t for t in table if t[0] == 2]
    projector = Projector(cost, choices, nodes)
    en = sorted({t[2] for t in at_800})
    e = en[len(en) // 2] * 1.001
    window = [t for t in at_800 if 0.8 * e <= t[2] <= e]
    assert window
    p = projector.project(target_energy_uj=e, energy_floor=0.8)
    assert 0.8 * e <= p.energy_uj <= e
    assert p.preference == pytest.approx(max(t[3] for t in window), abs=1e-9)


@pytest.mark.parametrize("seed", [3, 6])
def test_operating_point_auto_equals_the_best_per_point_solution(seed):
    model, cost, choices, nodes, points, table = space_with_points(seed)
    base = Projector(cost, choices, nodes)
    projectors = [base.at(m, i) for i, m in enumerate(points)]
    lat = sorted({t[1] for t in table})
    en = sorted({t[2] for t in table})
    checked = 0
    for fl in (0.25, 0.5, 0.9):
        for fe in (0.2, 0.5, 0.8):
            budgets = [Budget("latency", lat[0] + fl * (lat[-1] - lat[0])), Budget("energy", en[0] + fe * (en[-1] - en[0]))]
            feasible = [t for t in table if t[1] <= budgets[0].target and t[2] <= budgets[1].target]
            if not feasible:
                with pytest.raises(InfeasibleBudget):
                    project_over_points(projectors, budgets)
                continue
            best = project_over_points(projectors, budgets)
            per_point = []
            for p in projectors:
                try:
                    per_point.append(p.project_budgets(budgets))
                except InfeasibleBudget:
                    pass
            assert best.preference == pytest.approx(max(q.preference for q in per_point), abs=1e-12)
            # and the best over every (architecture, point) pair, by brute force
            assert best.preference == pytest.approx(max(t[3] for t in feasible), abs=1e-9)
            ties = [t for t in feasible if t[3] >= best.preference - 1e-9]
            assert best.energy_uj == pytest.approx(min(t[2] for t in ties), rel=1e-9)  # ties go to the least energy
            chosen = next(t for t in table if t[0] == best.point and t[4] == best.arch)
            assert chosen[1] <= budgets[0].target and chosen[2] <= budgets[1].target * (1 + 1e-12)
            checked += 1
    assert checked >= 4


def test_auto_needs_a_table():
    from uboost.exceptions import ConfigError

    with pytest.raises(ConfigError, match="operating-point table"):
        models_at_points(create("systolic", rows=8, cols=8))


def hook_with_energy(**kwargs):
    make, shape = MIXED
    model, supernet, cost, choices, nodes = searched(make, shape, seed=1)
    hook = HardwareLoss(model, utilization_weight=0.0, latency_weight=0.0, **kwargs)
    hook.attach(supernet, torch.zeros(1, *shape))
    return hook, choices


def test_energy_weight_is_scaled_by_the_uniform_supernets_energy():
    hook, choices = hook_with_energy(energy_weight=2.0)
    assert hook.energy_ref_uj == pytest.approx(float(hook.supernet_cost(uniform=True).energy_uj))
    terms = hook()
    assert float(terms.loss) == pytest.approx(2.0 * float(terms.cost.energy_uj) / hook.energy_ref_uj)
    terms.loss.backward()
    assert sum(float(c.alpha.grad.abs().sum()) for c in choices) > 0


def test_one_multiplier_per_budget_each_checkpointed():
    hook, _ = hook_with_energy(target_latency_ms=1.0, target_energy_uj=10.0, budget_lr=1.0, budget_floor=0.0)
    assert hook.update_multipliers(1.5, 5.0) == {"latency": pytest.approx(0.5), "energy": 0.0}
    assert hook.update_multipliers(0.5, 15.0) == {"latency": 0.0, "energy": pytest.approx(0.5)}
    state = hook.state_dict()
    assert float(state["multiplier"]) == 0.0 and float(state["energy_multiplier"]) == pytest.approx(0.5)
    fresh, _ = hook_with_energy(target_latency_ms=1.0, target_energy_uj=10.0)
    fresh.load_state_dict(state)
    assert float(fresh.energy_multiplier) == pytest.approx(0.5)
    old = {k: v for k, v in state.items() if k != "energy_multiplier"}  # a checkpoint from before energy budgets
    fresh.load_state_dict(old)
    assert float(fresh.energy_multiplier) == 0.0
    # the loss prices each budget with its own multiplier
    fresh.multiplier.fill_(0.3)
    fresh.energy_multiplier.fill_(0.7)
    terms = fresh()
    assert float(terms.loss) == pytest.approx(0.3 * float(terms.cost.latency_ms) / 1.0 + 0.7 * float(terms.cost.energy_uj) / 10.0)


@pytest.mark.parametrize("bad", [-1.0, 0.0, float("nan"), float("inf"), True])
def test_bad_energy_targets(bad):
    from uboost.exceptions import ConfigError

    with pytest.raises(ConfigError, match="energy"):
        HardwareLoss(create("systolic", rows=8, cols=8), target_energy_uj=bad)
    with pytest.raises(ConfigError, match="energy"):
        Budget("energy", bad)


def _lookup_rows(spec, cycles_at):
    """lookup rows for one conv layer shape: ``cycles_at[words per cycle]`` cycles for each memory system."""
    from uboost.hardware import LayerShape

    layer = LayerShape(name="c", kind="conv", in_channels=4, out_channels=4, kernel_h=3, kernel_w=3, in_h=10, in_w=10,
                       out_h=8, out_w=8)
    row = {k: v for k, v in layer.to_dict().items() if k != "name"}
    rows = [{**row, "in_channels": c, "out_channels": f, "cycles": cycles, "sram_kb": 8, "dram_bw_words": words}
            for words, cycles in cycles_at.items() for c in (4, 8) for f in (4, 8)]
    return [layer], rows


def test_a_lookup_model_at_other_points_reads_the_rows_of_their_memory_system():
    """With a DRAM bandwidth in GB/s each clock has its own words per cycle: models_at_points kept the rows the first
    clock selected (5000 cycles everywhere) where a lookup model built at the point found none, or others."""
    from uboost.exceptions import DataError
    from uboost.hardware.lookup import LookupTable

    spec = HardwareSpec(rows=4, cols=4, sram_kb=8, dram_bw_gbps=9.0, operating_points="rk3576-npu", clock_hz=9e8)
    words = {p.freq_hz: 9e9 / p.freq_hz for p in spec.operating_points}
    layers, rows = _lookup_rows(spec, {w: 1000 * i + 2000 for i, w in enumerate(words.values())})
    models = models_at_points(LookupTable(spec, table=rows))
    cycles = [m.evaluate(layers).cycles for m in models]
    assert cycles == [LookupTable(at_point(spec, p), table=rows).evaluate(layers).cycles for p in spec.operating_points]
    assert cycles == [2000, 3000, 4000, 5000]
    _, only_fastest = _lookup_rows(spec, {10.0: 5000})
    with pytest.raises(DataError, match="at operating point 600 MHz @ 725 mV: lookup table has no rows"):
        models_at_points(LookupTable(spec, table=only_fastest))


def test_an_infeasible_budget_names_one_network_when_the_least_energy_is_also_the_fastest():
    """``cheapest("latency")`` ignores energy: a dearer network of the same latency must not be quoted as "the
    fastest" next to the least-energy one (frontier on darts-cifar BitFusion said 2.17 µJ and 1.33 µJ at one latency)."""
    from types import SimpleNamespace

    from uboost.strategy.projection import Budget

    def said(fastest, frugal):
        projector = Projector.__new__(Projector)
        projector.cheapest = lambda metric: fastest if metric == "latency" else frugal
        return str(projector._infeasible([Budget("energy", 0.5)]))

    dear, frugal = SimpleNamespace(latency_ms=0.000946, energy_uj=2.16786), SimpleNamespace(latency_ms=0.000946, energy_uj=1.32864)
    text = said(dear, frugal)
    assert "least energy reachable, 1.32864 µJ, is also the fastest, 0.000946 ms" in text and "2.16786" not in text
    slower = SimpleNamespace(latency_ms=0.002, energy_uj=1.0)
    assert "the fastest reachable is 0.000946 ms at 2.16786 µJ, the least energy 1 µJ at 0.002 ms" in said(dear, slower)
