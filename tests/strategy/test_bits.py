"""Bitwidths searched with the architecture (uboost.strategy.precision) on any NNI model space."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from nni.nas.nn.pytorch import LayerChoice, ModelSpace
from torch import nn

from uboost.exceptions import ArchitectureError, ConfigError
from uboost.hardware import create
from uboost.quant import apply_precision, fake_quant_weight
from uboost.strategy import UBoost, build_supernet_cost, run_experiment
from uboost.strategy.architecture import arch_to_indices, choice_groups, one_hot, preferences
from uboost.strategy.precision import BitsChoice, frozen_precision, split_arch, split_precision
from uboost.strategy.projection import Projector

from tests.strategy.spaces import CellSpace, MixedSpace
from tests.strategy.test_uboost import evaluator, tiny_darts_cifar


class TinySpace(ModelSpace):
    """stem conv, a choice between a 3x3 and a 1x1 conv, a classifier: 4 costed layers."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.op = LayerChoice([nn.Conv2d(8, 16, 3, padding=1), nn.Conv2d(8, 16, 1)], label="op")
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(self.op(torch.relu(self.stem(x))).mean((2, 3)))


def bitfusion():
    return create("systolic", rows=8, cols=8, pe="bitfusion")


def randomize(choices, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for c in choices:
            c.alpha.copy_(torch.randn(c.alpha.shape, generator=g) * 2)


def conv_of(supernet, name):
    return dict(supernet.named_modules())[name]


@pytest.mark.parametrize("coupled", [False, True])
def test_mixture_is_one_convolution_equal_to_the_weighted_parallel_convolutions(coupled):
    kwargs = {"bits": (2, 8)} if coupled else {"weight_bits": (4, 8), "act_bits": (2, 8)}
    supernet = UBoost(**kwargs).mutate_model(TinySpace())
    randomize(choice_groups(supernet)[0], seed=0)
    conv = conv_of(supernet, "op.0")
    quant: BitsChoice = conv.uboost_quant
    conv.eval()
    x = torch.randn(2, 8, 6, 6)
    y = conv(x)  # one convolution on the mixed tensors (and the range observed once)
    weight = conv.parametrizations.weight.original
    wkey, akey = ("bits", "bits") if coupled else ("weight", "act")
    p = torch.softmax(quant.alphas[wkey].detach(), -1)
    q = torch.softmax(quant.alphas[akey].detach(), -1)
    expected = sum(
        p[i] * q[j] * F.conv2d(quant.quantize_act(x, a), fake_quant_weight(weight, w), conv.bias, padding=1)
        for (i, w), (j, a) in itertools.product(enumerate(quant.values["weight"]), enumerate(quant.values["act"]))
    )
    assert torch.allclose(y, expected, atol=1e-5)
    # and it is not any single bitwidth's output
    assert not torch.allclose(y, F.conv2d(quant.quantize_act(x, 8), fake_quant_weight(weight, 8), conv.bias, padding=1), atol=1e-4)


def test_single_path_runs_one_sampled_width_with_a_straight_through_gradient():
    strategy = UBoost(bits=(2, 4, 8), sampling="single-path")
    supernet = strategy.mutate_model(TinySpace())
    conv = conv_of(supernet, "stem")
    quant: BitsChoice = conv.uboost_quant
    supernet.train()
    seen = set()
    for step in range(12):
        strategy._sampler.invalidate()
        x = torch.randn(2, 1, 6, 6)
        y = conv(x)
        bits = quant.values["act"][strategy._sampler.index(quant.alphas["bits"])]
        seen.add(bits)
        weight = conv.parametrizations.weight.original
        expected = F.conv2d(quant.quantize_act(x, bits), fake_quant_weight(weight, bits), conv.bias, padding=1)
        assert torch.allclose(y, expected, atol=1e-6)
        alpha = quant.alphas["bits"]
        grad, = torch.autograd.grad(y.square().sum(), alpha, retain_graph=True)  # the cached straight-through weight
        assert grad.abs().sum() > 0
        # the straight-through weight c of the drawn width scales the output: conv(c Q(x), Q(W)), whichever
        # factor carries it (the weight, the smaller tensor); same alpha gradient as the explicit product
        index, st = strategy._sampler.sample(alpha)
        explicit = F.conv2d(quant.quantize_act(x, bits) * st[index], fake_quant_weight(weight, bits), conv.bias, padding=1)
        assert torch.allclose(torch.autograd.grad(explicit.square().sum(), alpha)[0], grad, rtol=1e-5, atol=1e-7)
    assert len(seen) > 1


@pytest.mark.parametrize("make,shape", [(MixedSpace, (1, 8, 8)), (CellSpace, (1, 8, 8)), (tiny_darts_cifar, (1, 8, 8))],
                         ids=["mixed", "cell", "darts"])
def test_every_op_bits_candidate_is_a_constant_row_priced_as_the_frozen_quantized_network(make, shape):
    model = bitfusion()
    supernet = UBoost(cost_model=model, weight_bits=(2, 8), act_bits=(4, 8)).mutate_model(make())
    choices, nodes = choice_groups(supernet)
    bits = [c for c in choices if c.kind == "bits"]
    assert len(bits) == 2 * sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in supernet.modules())  # first and last too
    cost = build_supernet_cost(supernet, model, torch.zeros(1, *shape))
    for seed in range(3):
        randomize(choices, seed)
        from uboost.strategy.architecture import argmax_indices, indices_to_arch

        indices = argmax_indices(choices, nodes)
        full = indices_to_arch(choices, nodes, indices, preferences(choices, nodes))
        arch, precision = split_precision(supernet, full)
        assert set(split_arch(full)[1]) == {c.label for c in bits}
        network = apply_precision(make().freeze(arch), precision)  # names fit the frozen network
        report = model.evaluate(network, shape)
        assert {(l.layer.weight_bits, l.layer.act_bits) for l in report.layers} <= {(2, 4), (2, 8), (8, 4), (8, 8)}
        priced = cost(distributions=one_hot(choices, indices))
        assert float(priced.cycles) == report.cycles
        assert float(priced.utilization) == pytest.approx(report.utilization, rel=1e-12)


def test_projection_with_bits_equals_brute_force():
    model = bitfusion()
    supernet = UBoost(cost_model=model, bits=(2, 8)).mutate_model(TinySpace())
    choices, nodes = choice_groups(supernet)
    randomize(choices, seed=3)
    cost = build_supernet_cost(supernet, model, torch.zeros(1, 1, 6, 6))
    prefs = preferences(choices, nodes)
    table = []
    for values in itertools.product(*(c.values for c in choices)):
        full = {c.label: v for c, v in zip(choices, values)}
        idx = arch_to_indices(choices, nodes, full)
        arch, precision = split_precision(supernet, full)
        cycles = model.evaluate(apply_precision(TinySpace().freeze(arch), precision), (1, 6, 6)).cycles
        table.append((cycles, sum(float(prefs[id(c.alpha)][idx[id(c.alpha)]]) for c in choices)))
    assert len(table) == 2 * 2 ** 4
    projector = Projector(cost, choices, nodes)
    lo, hi = min(t[0] for t in table), max(t[0] for t in table)
    assert lo < hi
    for fraction in (0.0, 0.2, 0.5, 0.8, 1.0):
        budget = lo + fraction * (hi - lo)
        best = max(t[1] for t in table if t[0] <= budget)
        projection = projector.project(budget / model.spec.clock_hz * 1e3)
        assert projection.cycles <= budget
        assert projection.preference == pytest.approx(best, abs=1e-9)


@pytest.mark.parametrize("sampling", ["mixture", "single-path"])
def test_a_space_with_bits_searches_end_to_end(tmp_path, sampling):
    strategy = UBoost(cost_model=bitfusion(), bits=(2, 4, 8), sampling=sampling, pin_bits={"fc": 8})
    full = run_experiment(MixedSpace(), evaluator(n=32), strategy, workdir=tmp_path)
    arch, precision = split_precision(strategy.supernet, full)
    assert precision["fc"] == (8, 8)
    network = apply_precision(MixedSpace().freeze(arch), precision)
    assert all(hasattr(m, "uboost_quant") for m in network.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    assert strategy.hardware_loss.attached and strategy.hardware_loss.latency_ref_ms > 0
    assert network(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    # NNI's export has no bits: the strategy keeps the chosen ones (the argmax's, as the CLI's precision.json)
    assert strategy.exported_precision == precision and set(full) == set(arch)


def test_bad_bits_are_refused():
    for bad in ({"bits": ()}, {"bits": (0, 4)}, {"bits": (1.5,)}, {"bits": (33,)}, {"bits": (4,), "act_bits": (8,)},
                {"pin_bits": {"fc": 8}}):
        with pytest.raises(ConfigError):
            UBoost(**bad)
    with pytest.raises(ConfigError, match="matches no"):
        UBoost(bits=(4, 8), pin_bits={"nothere*": 8}).mutate_model(TinySpace())
    with pytest.raises(ConfigError, match="at most 8 bits"):  # at construction (it was found when the cost was built)
        UBoost(cost_model=bitfusion(), bits=(4, 16))
    supernet = UBoost(bits=(4, 16)).mutate_model(TinySpace())  # bits from another strategy, priced on BitFusion
    with pytest.raises(ConfigError, match="at most 8 bits"):
        build_supernet_cost(supernet, bitfusion(), torch.zeros(1, 1, 6, 6))


def test_precision_that_does_not_fit_the_network_is_refused():
    network = TinySpace().freeze({"op": 0})
    with pytest.raises(ArchitectureError, match="does not fit"):
        apply_precision(network, {"stem": (4, 4), "op": (4, 4)})
    supernet = UBoost(bits=(2, 8)).mutate_model(TinySpace())
    with pytest.raises(ArchitectureError, match="lacks"):
        frozen_precision(supernet, {"op": 0})


@pytest.mark.slow
@pytest.mark.parametrize("name", ["NasBench201", "ProxylessNAS"])
def test_hub_spaces_get_bits_on_every_layer_and_precision_fits_their_frozen_network(name):
    import nni.nas.hub.pytorch as hub

    from uboost.strategy.architecture import argmax_indices, indices_to_arch

    make = lambda: getattr(hub, name)(num_labels=10)  # noqa: E731
    supernet = UBoost(bits=(4, 8)).mutate_model(make())
    choices, nodes = choice_groups(supernet)
    assert sum(c.kind == "bits" for c in choices) == sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in supernet.modules())
    randomize(choices, seed=0)
    full = indices_to_arch(choices, nodes, argmax_indices(choices, nodes), preferences(choices, nodes))
    arch, precision = split_precision(supernet, full)
    network = apply_precision(make().freeze(arch), precision)  # every frozen layer named, none unknown
    assert {b for b in precision.values()} <= {(4, 4), (8, 8)}
    assert all(hasattr(m, "uboost_quant") for m in network.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


def test_smooth_cost_mode_prices_bits_and_gives_them_gradients():
    model = bitfusion()
    supernet = UBoost(cost_model=model, bits=(2, 8)).mutate_model(MixedSpace())
    choices, _ = choice_groups(supernet)
    smooth = build_supernet_cost(supernet, model, torch.zeros(1, 1, 8, 8), mode="smooth", temperature=10.0)
    cost = smooth()
    cost.latency_ms.backward()
    grads = [c.alpha.grad for c in choices if c.kind == "bits"]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)
    # the 2-bit entry is the cheaper one on bitfusion: gradient descent moves probability to it
    assert all(float(g[0]) < float(g[1]) for g in grads)


def test_a_bits_search_leaves_the_users_own_layers_as_they_were(tmp_path):
    """Plain nn.Conv2d/nn.Linear layers of the user's space are the user's objects (NNI replaces only its mutables):
    a bits search attached its quantizers and weight parametrizations to them."""
    from torch.nn.utils import parametrize

    class Plain(ModelSpace):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(1, 8, 3, padding=1)
            self.op = LayerChoice([nn.Conv2d(8, 8, 3, padding=1), nn.Identity()], label="op")
            self.fc = nn.Linear(8, 10)

        def forward(self, x):
            return self.fc(self.op(F.relu(self.stem(x))).mean((2, 3)))

    space = Plain()
    strategy = UBoost(cost_model=bitfusion(), bits=(2, 8))
    run_experiment(space, evaluator(n=32), strategy, workdir=tmp_path)
    assert strategy.exported_precision and set(strategy.exported_precision) >= {"stem", "fc"}
    for module in space.modules():
        assert not hasattr(module, "uboost_quant") and not parametrize.is_parametrized(module)
