"""Cells are priced as NNI exports them: each node keeps exactly n_chosen inputs (cell_inputs.py)."""

import itertools
import math

import pytest
import torch

from uboost.strategy.cell_inputs import inclusion_probabilities

from tests.strategy.test_sharpen import attached_hook
from tests.strategy.test_uboost import tiny_darts_cifar


def brute_force_inclusion(weights, k):
    """Sum over every ordered draw without replacement of its Plackett-Luce probability."""
    n = len(weights)
    out = [0.0] * n
    for draw in itertools.permutations(range(n), k):
        p, left = 1.0, sum(weights)
        for j in draw:
            p *= weights[j] / left
            left -= weights[j]
        for j in draw:
            out[j] += p
    return out


@pytest.mark.parametrize("weights,k", [([1.0, 2.0, 3.0, 4.0], 2), ([0.5, 0.1, 3.0, 1.0, 2.0], 2), ([1.0, 1.0, 5.0, 2.0, 0.3], 3)])
def test_inclusion_probabilities_are_plackett_luces(weights, k):
    got = inclusion_probabilities(torch.tensor(weights, dtype=torch.float64).log(), k)
    assert got.tolist() == pytest.approx(brute_force_inclusion(weights, k), rel=1e-12)
    assert float(got.sum()) == pytest.approx(k)


def test_inclusion_probabilities_stay_exact_where_the_weights_underflow():
    log_w = torch.tensor([-2000.0, 0.0, -1000.0, -3000.0], dtype=torch.float64)  # exp() of most is 0.0
    got = inclusion_probabilities(log_w, 2)
    assert got.tolist() == pytest.approx([0.0, 1.0, 1.0, 0.0])  # the top two, as NNI's export
    assert inclusion_probabilities(log_w[:2], 2).tolist() == [1.0, 1.0]  # fewer inputs than chosen: all kept


def attached(seed=0):
    return attached_hook(seed, space=tiny_darts_cifar, draw=torch.randn)


def test_a_node_keeps_exactly_its_number_of_inputs_in_expectation():
    hook = attached()
    cost = hook._require()
    p = cost.probabilities(tau=0.7)
    offsets = cost._layout[0]
    where = {id(a): i for i, a in enumerate(cost.alphas)}
    for node in hook.nodes:
        kept = [1.0 - float(p[offsets[where[id(e.alpha)]] + e.alpha.numel() - 1]) for e in node.edges if id(e.alpha) in where]
        if len(kept) == len(node.edges):
            assert sum(kept) == pytest.approx(min(node.n_chosen, len(node.edges)))
        for e in node.edges:  # each edge's entries are still a distribution
            if id(e.alpha) in where:
                start = offsets[where[id(e.alpha)]]
                assert float(p[start:start + e.alpha.numel()].sum()) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_expected_cost_converges_on_nnis_exported_cell(seed):
    hook = attached(seed)
    derived = float(hook.derived_cost().latency_ms)
    hook.distribution_tau = 1e-3
    with torch.no_grad():
        exportable = float(hook.expected_cost().latency_ms)
        hook._require()._cell_inputs = []  # the per-edge softmax of the supernet, as before
        per_edge = float(hook.expected_cost().latency_ms)
    assert exportable == pytest.approx(derived, rel=1e-6)
    assert not math.isclose(per_edge, derived, rel_tol=0.01)  # every edge whose argmax is an op counts there


def test_the_selection_passes_gradients_to_the_edge_alphas():
    hook = attached()
    hook.distribution_tau = 0.5
    loss = hook().loss
    edges = [e.alpha for node in hook.nodes for e in node.edges]
    grads = torch.autograd.grad(loss, edges, allow_unused=True)
    assert sum(g is not None and bool(torch.isfinite(g).all()) and float(g.abs().sum()) > 0 for g in grads) == len(edges)
