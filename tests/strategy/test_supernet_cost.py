import random

import pytest
import torch

from uboost.exceptions import ConfigError
from uboost.hardware import create
from uboost.search_spaces import create as create_space
from uboost.strategy import UBoost, build_supernet_cost
from uboost.strategy.supernet_cost import set_architecture

from tests.strategy.spaces import MixedSpace


def random_arch(space, seed):
    """A valid random architecture of an NNI space (distinct inputs per cell node)."""
    rng = random.Random(seed)
    arch = {}
    for label, mutable in space.simplify().items():
        if "/input_" in label:
            continue
        arch[label] = rng.choice(list(mutable.values))
    for label in space.simplify():
        if "/input_" in label:
            cell, rest = label.split("/input_")
            i, k = map(int, rest.split("_"))
            if k == 0:
                first, second = rng.sample(range(i), 2)
                arch[f"{cell}/input_{i}_0"], arch[f"{cell}/input_{i}_1"] = [first], [second]
    return arch


SPACES = {
    "custom": (lambda: MixedSpace(), (1, 8, 8)),
    "darts-cifar": (lambda: create_space("darts-cifar", width=4, cells=3, input_shape=(3, 8, 8)), (3, 8, 8)),
    "darts-cifar-channels": (
        lambda: create_space("darts-cifar", width=4, cells=3, channels="4:8:4", input_shape=(3, 8, 8)), (3, 8, 8)
    ),
    "lenet": (lambda: create_space("lenet", input_shape=(1, 8, 8)), (1, 8, 8)),
    # the U-Boost two-stage flow: cells fixed to a stage-one result, only channels searched
    "darts-cifar-stage2": (
        lambda: create_space(
            "darts-cifar", width=4, cells=3, channels="4:12:4", input_shape=(3, 8, 8),
            cell_arch=random_arch(create_space("darts-cifar", width=4, cells=3, input_shape=(3, 8, 8)), 11),
        ),
        (3, 8, 8),
    ),
}


@pytest.mark.parametrize("space_name", sorted(SPACES))
@pytest.mark.parametrize("mode,temperature", [("expected", None), ("smooth", 1e4)])
def test_one_hot_cost_equals_frozen_network(space_name, mode, temperature):
    factory, shape = SPACES[space_name]
    model = create("systolic", rows=8, cols=4, dataflow="ws", batch_size=2)
    supernet = UBoost(cost_model=model).mutate_model(factory())
    cost = build_supernet_cost(supernet, model, torch.zeros(1, *shape), mode=mode, temperature=temperature)
    for seed in range(3):
        arch = random_arch(factory(), seed)
        set_architecture(supernet, arch)
        expected = cost()
        frozen = model.evaluate(factory().freeze(arch), shape)
        assert float(expected.cycles) == pytest.approx(frozen.cycles, rel=1e-9), arch
        assert float(expected.macs) == pytest.approx(frozen.macs, rel=1e-9)
        assert float(expected.utilization) == pytest.approx(frozen.utilization, rel=1e-9)


def test_expected_cost_is_linear_mixture_of_choices():
    """Half-half on one LayerChoice is the mean of the two pinned costs (exact expectation)."""
    model = create("systolic", rows=8, cols=8)
    supernet = UBoost(cost_model=model).mutate_model(MixedSpace())
    cost = build_supernet_cost(supernet, model, torch.zeros(1, 1, 8, 8))
    base = {"w": 16, "k": 3, "depth": 2}
    costs = []
    for op in (0, 1):
        set_architecture(supernet, {**base, "op": op})
        costs.append(float(cost().cycles))
    alpha = next(m._arch_alpha for m in supernet.modules() if getattr(m, "label", None) == "op")
    with torch.no_grad():
        alpha.copy_(torch.tensor([0.0, 0.0, -1e4]))
    assert float(cost().cycles) == pytest.approx(sum(costs) / 2, rel=1e-9)
    assert costs[0] != costs[1]


def test_gradient_reaches_every_alpha_kind():
    model = create("systolic", rows=8, cols=8)
    supernet = UBoost(cost_model=model).mutate_model(MixedSpace())
    for mode in ("expected", "smooth"):
        cost = build_supernet_cost(supernet, model, torch.zeros(1, 1, 8, 8), mode=mode, temperature=5.0)
        params = list(dict.fromkeys(cost._alphas))
        for p in params:
            p.grad = None
        cost().latency_ms.backward()
        assert len(params) == 4  # w, k, op, depth
        for p in params:
            assert p.grad is not None and p.grad.abs().sum() > 0, mode


def test_bad_mode():
    model = create("systolic")
    supernet = UBoost(cost_model=model).mutate_model(MixedSpace())
    with pytest.raises(ConfigError, match="unknown cost mode"):
        build_supernet_cost(supernet, model, torch.zeros(1, 1, 8, 8), mode="fast")
