"""Free capacity at export (uboost.strategy.widening): channel counts and bits raised jointly, exactly."""

import itertools
import math

import pytest
import torch

from uboost.exceptions import ConfigError


@pytest.fixture(scope="module")
def lenet_bitfusion():
    from uboost.search import SearchConfig, build_cost_model, build_space
    from uboost.strategy import UBoost, build_supernet_cost, quiet_nni
    from uboost.strategy.architecture import choice_groups
    from uboost.strategy.projection import Projector

    quiet_nni()
    config = SearchConfig(space="lenet", dataset="digits", pe="bitfusion", bits=(2, 4, 8), array="16x16")
    space, shape, _ = build_space(config)
    cost_model = build_cost_model(config)
    supernet = UBoost(cost_model=cost_model, **config.bits_options()).mutate_model(space)
    cost = build_supernet_cost(supernet, cost_model, torch.zeros(1, *shape), mode="expected")
    choices, nodes = choice_groups(supernet)
    return supernet, Projector(cost, choices, nodes)


# the BitFusion lenet seed-1 corner (benchmarks/RESULTS.md): conv2 narrow because fc1 is at 8 bits, and back
CORNER = {"conv1_width": 4, "conv1_kernel": 3, "conv2_width": 4, "conv2_kernel": 3, "fc1_width": 32,
          "bits:conv1": 8, "bits:conv2": 4, "bits:fc1": 8, "bits:fc2": 4}


# lenet: the channel counts each layer's shape depends on (its input and output channels / features)
SHAPES = {"bits:conv1": ("conv1_width",), "bits:conv2": ("conv1_width", "conv2_width"),
          "bits:fc1": ("conv2_width", "fc1_width"), "bits:fc2": ("fc1_width",)}


def _trades_ok(start, trial) -> bool:
    """A layer's bits may fall only where a width of its own shape grew (uboost.strategy.widening)."""
    return all(trial[b] >= start[b] or any(trial[w] > start[w] for w in widths) for b, widths in SHAPES.items())


def _cost(projector, arch):
    from uboost.strategy.architecture import arch_to_indices

    p = projector.program
    return projector.cost_of(arch_to_indices(p.choices, p.nodes, arch))


def test_width_labels_are_the_channel_counts(lenet_bitfusion):
    from uboost.strategy.widening import width_labels

    supernet, _ = lenet_bitfusion
    assert width_labels(supernet) == {"conv1_width", "conv2_width", "fc1_width"}  # not the kernels


@pytest.mark.parametrize("with_energy", [False, True], ids=["latency", "latency+energy"])
def test_widening_is_the_brute_force_optimum(lenet_bitfusion, with_energy):
    from uboost.strategy.widening import widen_free

    supernet, projector = lenet_bitfusion
    base_ms, base_uj = _cost(projector, CORNER)
    widened = widen_free(projector, supernet, CORNER, with_energy=with_energy)
    assert {k: widened[k] for k in ("conv1_kernel", "conv2_kernel")} == {"conv1_kernel": 3, "conv2_kernel": 3}
    ms, uj = _cost(projector, widened)
    assert ms <= base_ms * (1 + 1e-9)
    if with_energy:
        assert uj <= base_uj * (1 + 1e-9)
    free = [c for c in projector.program.choices if c.label in widened and c.label not in ("conv1_kernel", "conv2_kernel")]
    best = -math.inf
    for values in itertools.product(*(c.values for c in free)):  # 5 x 5 x 3 widths x 3^4 bits = 6,075 networks
        trial = {**CORNER, **{c.label: v for c, v in zip(free, values)}}
        if not _trades_ok(CORNER, trial):
            continue
        t_ms, t_uj = _cost(projector, trial)
        if t_ms <= base_ms * (1 + 1e-9) and (not with_energy or t_uj <= base_uj * (1 + 1e-9)):
            best = max(best, sum(math.log2(v) for v in values))
    assert sum(math.log2(widened[c.label]) for c in free) == pytest.approx(best)
    assert _trades_ok(CORNER, widened)
    if not with_energy:  # the corner's way out: conv2 wide, fc1 narrower, at the same cycles
        assert widened["conv2_width"] > 4 and widened["bits:fc1"] < 8 and ms == pytest.approx(base_ms)
    else:
        assert widened["conv2_width"] == 4  # more MACs cost energy: nothing to gain under an energy bound here


def test_a_network_at_its_widest_stays_as_it_is(lenet_bitfusion):
    from uboost.strategy.widening import widen_free

    supernet, projector = lenet_bitfusion
    widest = {**CORNER, "conv1_width": 32, "conv2_width": 32, "fc1_width": 128,
              **{k: 8 for k in CORNER if k.startswith("bits:")}}
    assert widen_free(projector, supernet, widest) == widest


def test_every_export_widens_by_one_rule(lenet_bitfusion):
    """``widen_export`` (the search's export and ``frontier``'s): "all" moves widths and bits jointly out of
    the seed-1 corner; "bits" raises bits one layer at a time only (no width moves: the corner stays);
    a space without bits exports as it is."""
    from uboost.strategy.widening import widen_export

    supernet, projector = lenet_bitfusion
    base_ms = _cost(projector, CORNER)[0] * (1 + 1e-9)
    joint = widen_export("all", projector, supernet, CORNER, bits=True)
    assert joint["conv2_width"] > CORNER["conv2_width"] and _cost(projector, joint)[0] <= base_ms
    alone = widen_export("bits", projector, supernet, CORNER, bits=True)
    assert all(alone[k] == CORNER[k] for k in CORNER if not k.startswith("bits:"))
    assert all(alone[k] >= CORNER[k] for k in CORNER) and _cost(projector, alone)[0] <= base_ms
    assert widen_export("bits", projector, supernet, CORNER, bits=False) == CORNER


def test_widen_is_checked(tmp_path):
    from uboost.search import SearchConfig

    with pytest.raises(ConfigError, match="widen must be one of bits, all"):
        SearchConfig(space="lenet", widen="everything")
    assert SearchConfig(space="lenet").widen == "bits"  # without bits: the search's own argmax


@pytest.mark.parametrize("bits, widen, resolved", [
    ({"bits": (2, 4, 8)}, None, "all"), ({"weight_bits": (4, 8)}, None, "all"), ({"act_bits": (4, 8)}, None, "all"),
    ({"bits": (4, 8)}, "bits", "bits"), ({}, "all", "all"), ({}, None, "bits"),
])
def test_widen_defaults_to_all_when_bits_are_searched_and_is_stored_resolved(bits, widen, resolved):
    from uboost.search import SearchConfig

    config = SearchConfig(space="lenet", widen=widen, **bits)
    assert config.widen == resolved
    stored = config.to_dict()
    assert stored["widen"] == resolved and SearchConfig.from_dict(stored) == config
    assert SearchConfig.from_dict({**stored, "bits": None, "weight_bits": None, "act_bits": None}).widen == resolved


def test_a_default_widen_follows_the_bits_through_replace():
    from uboost.search import SearchConfig

    plain = SearchConfig(space="lenet")
    assert plain.replace(bits=(4, 8)).widen == "all" and plain.replace(bits=(4, 8)).replace(bits=None).widen == "bits"
    assert plain.replace(bits=(4, 8), widen="bits").widen == "bits"  # said explicitly: kept
    assert SearchConfig(space="lenet", widen="all").replace(bits=(4, 8)).widen == "all"  # not the default: kept
    assert plain.replace(seed=3).widen == "bits"


@pytest.mark.parametrize("array, image, start, widest", [
    ("128x128", None, {"conv1_width": 4, "conv1_kernel": 5, "conv2_width": 4, "conv2_kernel": 3, "fc1_width": 32},
     {"conv1_width": 8, "conv2_width": 32, "fc1_width": 128}),  # the paper's array: room to spare on the reduction side
    # a wide conv1 must stay wide: narrowing it would pay for fc1 128 (the first version of this did that)
    ("16x16", 16, {"conv1_width": 32, "conv1_kernel": 5, "conv2_width": 16, "conv2_kernel": 5, "fc1_width": 32}, {}),
], ids=["128x128", "16x16-wide-conv1"])
def test_without_bits_the_channel_counts_only_grow_to_the_brute_force_optimum(array, image, start, widest):
    from uboost.search import SearchConfig, build_cost_model, build_space
    from uboost.strategy import UBoost, build_supernet_cost, quiet_nni
    from uboost.strategy.architecture import choice_groups
    from uboost.strategy.projection import Projector
    from uboost.strategy.widening import widen_free

    quiet_nni()
    config = SearchConfig(space="lenet", dataset="digits", array=array, image_size=image)
    space, shape, _ = build_space(config)
    cost_model = build_cost_model(config)
    supernet = UBoost(cost_model=cost_model).mutate_model(space)
    cost = build_supernet_cost(supernet, cost_model, torch.zeros(1, *shape), mode="expected")
    projector = Projector(cost, *choice_groups(supernet))
    base_ms, _ = _cost(projector, start)
    widened = widen_free(projector, supernet, start)
    assert {k: widened[k] for k in ("conv1_kernel", "conv2_kernel")} == {k: start[k] for k in ("conv1_kernel", "conv2_kernel")}
    assert _cost(projector, widened)[0] <= base_ms * (1 + 1e-9)
    labels = ("conv1_width", "conv2_width", "fc1_width")
    choices = {c.label: c for c in projector.program.choices}
    wider = [[v for v in choices[k].values if v >= start[k]] for k in labels]
    best = max(sum(math.log2(v) for v in values) for values in itertools.product(*wider)
               if _cost(projector, {**start, **dict(zip(labels, values))})[0] <= base_ms * (1 + 1e-9))
    assert sum(math.log2(widened[k]) for k in labels) == pytest.approx(best)
    assert all(widened[k] >= start[k] for k in labels)
    assert {k: widened[k] for k in labels if widened[k] != start[k]} == widest


def test_memory_stall_costs_with_fractional_cycles_widen_to_the_brute_force_optimum():
    """systolic-mem rows have fractional cycles: the bound is the network's own total, not a whole-cycle floor
    (which would make the network itself infeasible and force narrower bits)."""
    from uboost.search import SearchConfig, build_cost_model, build_space
    from uboost.strategy import UBoost, build_supernet_cost, quiet_nni
    from uboost.strategy.architecture import arch_to_indices, choice_groups
    from uboost.strategy.projection import Projector
    from uboost.strategy.widening import widen_free

    quiet_nni()
    config = SearchConfig(space="lenet", dataset="digits", array="16x16", cost_model="systolic-mem", sram_kb=1,
                          dram_bw_words=0.5, bits=(2, 4, 8))
    space, shape, _ = build_space(config)
    cost_model = build_cost_model(config)
    supernet = UBoost(cost_model=cost_model, **config.bits_options()).mutate_model(space)
    cost = build_supernet_cost(supernet, cost_model, torch.zeros(1, *shape), mode="expected")
    projector = Projector(cost, *choice_groups(supernet))
    program = projector.program
    free = [c for c in program.choices if c.kind == "bits" or c.label in ("conv1_width", "conv2_width", "fc1_width")]
    checked = 0
    for start in (CORNER, {**CORNER, "conv1_kernel": 5, "bits:conv1": 2}, {**CORNER, "conv2_width": 8, "bits:fc2": 2}):
        raw = projector._price(arch_to_indices(program.choices, program.nodes, start))["latency"]
        if abs(raw - round(raw)) < 1e-6:
            continue
        checked += 1
        widened = widen_free(projector, supernet, start)
        bound = _cost(projector, start)[0] * (1 + 1e-9)
        assert _cost(projector, widened)[0] <= bound
        best = -math.inf
        for values in itertools.product(*([v for v in c.values if not c.label.endswith("width") or v >= start[c.label]]
                                          for c in free)):
            trial = {**start, **{c.label: v for c, v in zip(free, values)}}
            if _trades_ok(start, trial) and _cost(projector, trial)[0] <= bound:
                best = max(best, sum(math.log2(v) for v in values))
        assert sum(math.log2(widened[c.label]) for c in free) == pytest.approx(best)
    assert checked  # the case this guards: a total between two whole cycles


def test_on_darts_cells_no_layer_gives_up_bits_to_raise_another():
    """No width choices: a layer's bits never fall (the first version took the stem 8 -> 4 bits to raise
    eight late layers 4 -> 8 on darts-cifar, 0.46 points less accurate); the widening stays within the cost."""
    from uboost.search import SearchConfig, build_cost_model, build_space
    from uboost.strategy import UBoost, build_supernet_cost, quiet_nni
    from uboost.strategy.architecture import argmax_indices, choice_groups, indices_to_arch, preferences
    from uboost.strategy.projection import Projector
    from uboost.strategy.widening import widen_free

    quiet_nni()
    config = SearchConfig(space="darts-cifar", space_options={"width": 4, "cells": 3}, dataset="digits", image_size=8,
                          pe="bitfusion", bits=(2, 4, 8), array="16x16")
    space, shape, _ = build_space(config)
    cost_model = build_cost_model(config)
    supernet = UBoost(cost_model=cost_model, **config.bits_options()).mutate_model(space)
    cost = build_supernet_cost(supernet, cost_model, torch.zeros(1, *shape), mode="expected")
    choices, nodes = choice_groups(supernet)
    projector = Projector(cost, choices, nodes)
    bits = [c for c in choices if c.kind == "bits"]
    indices = argmax_indices(choices, nodes)
    for i, c in enumerate(bits):  # the stem and every other layer at 8 bits, the rest at 2: room to raise
        indices[id(c.alpha)] = c.values.index(8 if i % 2 == 0 else 2)
    start = indices_to_arch(choices, nodes, indices, preferences(choices, nodes))
    widened = widen_free(projector, supernet, start)
    assert all(widened[c.label] >= start[c.label] for c in bits)
    assert _cost(projector, widened)[0] <= _cost(projector, start)[0] * (1 + 1e-9)
    assert {k: v for k, v in widened.items() if not k.startswith("bits:")} == {k: v for k, v in start.items() if not k.startswith("bits:")}
