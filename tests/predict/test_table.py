"""The block-additive table, the sampled sub-networks, and the exact projection that maximizes it."""

import re
import itertools
import json

import numpy as np
import pytest
import torch

from uboost.exceptions import RunDirError
from uboost.hardware import create
from uboost.predict.sampling import neighbours, random_network, sample_networks, space_size
from uboost.predict.table import AdditiveTable, fit_additive
from uboost.strategy import UBoost, build_supernet_cost
from uboost.strategy.architecture import arch_to_indices, argmax_indices, choice_groups, indices_to_arch, preferences
from uboost.strategy.projection import Projector

from tests.strategy.spaces import CellSpace, MixedSpace


def supernet(make, seed=3, shape=(1, 8, 8)):
    model = create("systolic", rows=8, cols=8)
    net = UBoost(cost_model=model).mutate_model(make())
    choices, nodes = choice_groups(net)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for c in choices:
            c.alpha.copy_(torch.randn(c.alpha.shape, generator=g))
    cost = build_supernet_cost(net, model, torch.zeros(1, *shape), mode="expected")
    return model, choices, nodes, cost


def labels(choices, indices_by_id):
    return {c.label: indices_by_id[id(c.alpha)] for c in choices}


def every_network(make, choices, nodes):
    """Every architecture of the space (NNI's dicts) with its label -> entry-index form."""
    space = make()
    names = {}
    for label, mutable in space.simplify().items():
        chosen = getattr(mutable, "n_chosen", None)  # a cell's inputs: n_chosen distinct of them
        names[label] = [list(c) for c in itertools.combinations(mutable.values, chosen)] if chosen else list(mutable.values)
    for values in itertools.product(*names.values()):
        arch = dict(zip(names, values))
        try:
            yield arch, labels(choices, arch_to_indices(choices, nodes, arch))
        except Exception:  # a cell node with a repeated input is no network
            continue


def additive_truth(choices, seed=0):
    rng = np.random.default_rng(seed)
    return 0.6, {c.label: rng.normal(0, 0.05, len(c.values)).tolist() for c in choices}


@pytest.mark.parametrize("make", [MixedSpace, CellSpace], ids=["mixed", "cells"])
def test_an_additive_accuracy_is_recovered_exactly_on_every_network(make):
    _, choices, nodes, _ = supernet(make)
    base, terms = additive_truth(choices)

    def truth(network):
        return base + sum(terms[label][k] for label, k in network.items())

    center = labels(choices, argmax_indices(choices, nodes))
    networks = sample_networks(choices, nodes, center, 40, seed=1)
    table = fit_additive({c.label: [str(v) for v in c.values] for c in choices}, center, networks,
                         [truth(n) for n in networks])
    assert table.ridge == 0.0 and table.loo_rmse < 1e-9  # exact data: plain least squares, no error
    checked = 0
    for _, network in every_network(make, choices, nodes):  # also the networks never measured
        assert table.predict(network) == pytest.approx(truth(network), abs=1e-9)
        checked += 1
    assert checked == space_size(choices, nodes) and checked > len(networks)
    assert table.predict(center) == pytest.approx(table.base)  # the base is the argmax network
    assert all(table.delta[label][k] == 0.0 for label, k in center.items())


def test_noise_picks_a_ridge_and_the_error_is_the_leave_one_out_error():
    _, choices, nodes, _ = supernet(MixedSpace)
    base, terms = additive_truth(choices, seed=2)
    rng = np.random.default_rng(0)
    center = labels(choices, argmax_indices(choices, nodes))
    networks = sample_networks(choices, nodes, center, 30, seed=0)
    y = [base + sum(terms[l][k] for l, k in n.items()) + rng.normal(0, 0.05) for n in networks]
    names = {c.label: [str(v) for v in c.values] for c in choices}
    table = fit_additive(names, center, networks, y)
    # the reported error is the brute-force leave-one-out error at the chosen ridge
    errors = []
    for i in range(len(networks)):
        rest = fit_additive(names, center, networks[:i] + networks[i + 1:], y[:i] + y[i + 1:], ridge_grid=[table.ridge])
        errors.append(rest.predict(networks[i]) - y[i])
    assert table.loo_rmse == pytest.approx(float(np.sqrt(np.mean(np.square(errors)))), rel=1e-6)


def test_sampling_is_deterministic_valid_and_starts_at_the_argmax():
    _, choices, nodes, _ = supernet(CellSpace)
    center = labels(choices, argmax_indices(choices, nodes))
    first = sample_networks(choices, nodes, center, 25, seed=7)
    assert first == sample_networks(choices, nodes, center, 25, seed=7)
    assert first != sample_networks(choices, nodes, center, 25, seed=8)
    assert first[0] == center and len({tuple(sorted(n.items())) for n in first}) == 25
    by_label = {c.label: c for c in choices}
    for network in first:  # every one is a network NNI can export (each node keeps n_chosen real ops)
        indices_to_arch(choices, nodes, {id(by_label[l].alpha): k for l, k in network.items()})
    center_arch = indices_to_arch(choices, nodes, {id(by_label[l].alpha): k for l, k in center.items()}, preferences(choices, nodes))
    for near in neighbours(choices, nodes, center):  # one NNI choice away from the argmax
        arch = indices_to_arch(choices, nodes, {id(by_label[l].alpha): k for l, k in near.items()}, preferences(choices, nodes))
        assert sum(arch[k] != center_arch[k] for k in arch) == 1
    rng = np.random.default_rng(0)
    seen = {random_network(choices, nodes, rng)["cw"] for _ in range(30)}
    assert seen == {0, 1}
    assert len(sample_networks(choices, nodes, center, 10_000, seed=0)) == space_size(choices, nodes)  # a small space: all


@pytest.mark.parametrize("make", [MixedSpace, CellSpace], ids=["mixed", "cells"])
def test_the_milp_maximizing_predicted_accuracy_equals_brute_force(make):
    model, choices, nodes, cost = supernet(make, seed=5)
    base, terms = additive_truth(choices, seed=4)
    names = {c.label: [str(v) for v in c.values] for c in choices}
    center = labels(choices, argmax_indices(choices, nodes))
    table = AdditiveTable(values=names, reference=center, base=base,
                          delta={l: [v - terms[l][center[l]] for v in terms[l]] for l in terms},
                          loo_rmse=0.0, loo_mae=0.0, ridge=0.0, samples=2)
    objective = {id(c.alpha): torch.tensor(table.delta[c.label], dtype=torch.float64) for c in choices}
    projector = Projector(cost, choices, nodes, objective=objective)
    space = make()
    rows = [(model.evaluate(space.freeze(arch), (1, 8, 8)).cycles, table.predict(network))
            for arch, network in every_network(make, choices, nodes)]
    lo, hi = min(r[0] for r in rows), max(r[0] for r in rows)
    clock = model.spec.clock_hz
    for fraction in (0.0, 0.2, 0.45, 0.7, 1.0):
        budget = lo + fraction * (hi - lo)
        best = max(acc for cycles, acc in rows if cycles <= budget)
        projection = projector.project(budget / clock * 1e3)
        assert projection.cycles <= budget
        network = labels(choices, arch_to_indices(choices, nodes, projection.arch))
        assert table.predict(network) == pytest.approx(best, abs=1e-9)
    # the default objective is untouched: the preference optimum
    plain = Projector(cost, choices, nodes).unconstrained()
    assert plain.arch == indices_to_arch(choices, nodes, argmax_indices(choices, nodes), preferences(choices, nodes))


def test_a_corrupt_table_is_one_line():
    table = AdditiveTable(values={"a": ["1", "2"]}, reference={"a": 0}, base=0.5, delta={"a": [0.0, 0.1]},
                          loo_rmse=0.01, loo_mae=0.01, ridge=0.0, samples=3)
    data = json.loads(json.dumps(table.to_dict()))
    assert AdditiveTable.from_dict(data).predict({"a": 1}) == pytest.approx(0.6)
    for broken in ({}, {"terms": []}, {**data, "base": "x"}, {**data, "samples": 0},
                   {**data, "terms": {"a": {**data["terms"]["a"], "delta": [0.1]}}},
                   {**data, "terms": {"a": {**data["terms"]["a"], "reference": 5}}},
                   {**data, "terms": {"a": {**data["terms"]["a"], "counts": [3, -1]}}},
                   {**data, "terms": {"a": {**data["terms"]["a"], "counts": [True, 2]}}}):
        with pytest.raises(RunDirError, match="corrupt"):
            AdditiveTable.from_dict(broken, "predictor.json")


@pytest.mark.parametrize("networks, grid, fragment", [
    ([{"a": 0, "b": 5}, {"a": 1, "b": 0}], (0.0,), "'b' must be an entry index from 0 to 1, got 5"),
    ([{"a": 0}, {"a": 1, "b": 0}], (0.0,), "network 0: 'b' must be an entry index"),
    ([{"a": 0, "b": 1}, {"a": 1, "b": 0}], (), "ridge_grid must list"),
])
def test_fit_additive_refuses_bad_input_in_one_error(networks, grid, fragment):
    from uboost.exceptions import ConfigError
    from uboost.predict import fit_additive

    with pytest.raises(ConfigError, match=re.escape(fragment)):
        fit_additive({"a": ["x", "y"], "b": ["p", "q"]}, {"a": 0, "b": 0}, networks, [0.5, 0.6], ridge_grid=grid)


def test_a_network_is_predicted_from_entry_indices_or_from_an_architecture_dict_of_values():
    """`predict` takes entry indices; a search's architecture dict (values) gave an IndexError, or where a value
    happened to be a valid index, another network's prediction."""
    from uboost.exceptions import ConfigError
    from uboost.predict.predictor import Predictor

    table = AdditiveTable(values={"width": ["4", "8", "16"], "kernel": ["3", "5"]}, reference={"width": 0, "kernel": 0},
                          base=0.5, delta={"width": [0.0, 0.1, 0.2], "kernel": [0.0, 0.05]}, loo_rmse=0.01, loo_mae=0.01,
                          ridge=0.0, samples=3)
    predictor = Predictor(table, {})
    assert predictor.predict({"width": 2, "kernel": 1}).accuracy == pytest.approx(0.75)
    assert predictor.predict_arch({"width": 16, "kernel": 5}).accuracy == pytest.approx(0.75)
    with pytest.raises(ConfigError, match=r"width = 8 is not an entry index of width \(0..2 for 4, 8, 16\); .*predict_arch"):
        predictor.predict({"width": 8, "kernel": 0})
    with pytest.raises(ConfigError, match=r"kernel = 7 is not a value of the space \(3, 5\)"):
        predictor.predict_arch({"width": 4, "kernel": 7})
