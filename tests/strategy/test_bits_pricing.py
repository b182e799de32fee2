"""How searched bits are priced (uboost.strategy.precision): the bits' gradient on the derived ops,
and the widening of bits that buy nothing on the exported network."""

from __future__ import annotations

import itertools

import pytest
import torch

from uboost.hardware import create
from uboost.search_spaces.lenet import lenet
from uboost.strategy import UBoost
from uboost.strategy.architecture import argmax_indices, indices_to_arch, one_hot, preferences
from uboost.strategy.precision import widen_bits


def fixed_mem():  # the fixed-PE array: 16x16 WS, 16 kB SRAMs, 4 words per cycle
    return create("systolic-mem", rows=16, cols=16, dataflow="ws", pe="fixed", sram_kb=16, dram_bw_words=4)


def bitfusion():
    return create("systolic", rows=16, cols=16, dataflow="ws", pe="bitfusion")


def searched_lenet(model):
    strategy = UBoost(bits=(2, 4, 8), sampling="single-path", cost_model=model)
    supernet = strategy.mutate_model(lenet())
    loss = strategy.hardware_loss
    loss.attach(supernet, torch.randn(1, 1, 8, 8))
    return loss


def prefer(loss, entry: int, logit: float = 0.3) -> None:
    """Every non-bits choice prefers ``entry`` (0: narrowest, -1: widest) but stays spread."""
    with torch.no_grad():
        for c in loss.choices:
            c.alpha.zero_()
            if c.kind != "bits":
                c.alpha[entry] = logit


def gradients(loss) -> dict[str, torch.Tensor]:
    for c in loss.choices:
        c.alpha.grad = None
    loss().loss.backward()
    return {c.label: c.alpha.grad.clone() for c in loss.choices}


def test_bits_get_the_gradient_of_the_derived_ops_and_the_rest_of_the_expectation():
    loss = searched_lenet(fixed_mem())
    prefer(loss, 0)  # derives the narrowest lenet: compute-bound, every width costs the same on it
    loss.bits_on_derived = False
    expected = gradients(loss)
    value = float(loss.expected_cost().latency_ms)
    assert any(expected[c.label].abs().max() > 1e-4 for c in loss.choices if c.kind == "bits")  # the wide candidates stall at 8 bits
    loss.bits_on_derived = True
    assert float(loss.expected_cost().latency_ms) == value  # the value is the expectation's
    derived = gradients(loss)
    for c in loss.choices:
        if c.kind == "bits":
            assert derived[c.label].abs().max() < 1e-12, c.label  # bits buy nothing on the derived ops
    # the other choices get the expectation's gradient with the bits' probabilities held
    bits = {id(c.alpha) for c in loss.choices if c.kind == "bits"}
    for c in loss.choices:
        c.alpha.grad = None
    cost = loss.supernet_cost(detach=bits)
    (loss.latency_weight * cost.latency_ms / loss.latency_ref_ms + loss.utilization_weight * (1 - cost.utilization)).backward()
    for c in loss.choices:
        if c.kind != "bits":
            assert torch.allclose(derived[c.label], c.alpha.grad, atol=1e-12), c.label


def test_on_a_stalling_derived_network_the_bits_gradient_is_the_derived_costs():
    loss = searched_lenet(fixed_mem())
    prefer(loss, -1)  # the widest lenet stalls in 16 kB at 8 bits
    grads = gradients(loss)
    ops = one_hot([c for c in loss.choices if c.kind != "bits"], argmax_indices(loss.choices, loss.nodes))
    for c in loss.choices:
        c.alpha.grad = None
    cost = loss.supernet_cost(distributions=ops)
    (loss.latency_weight * cost.latency_ms / loss.latency_ref_ms + loss.utilization_weight * (1 - cost.utilization)).backward()
    moved = 0
    for c in loss.choices:
        if c.kind == "bits":
            assert torch.allclose(grads[c.label], c.alpha.grad, atol=1e-12), c.label
            moved += int(c.alpha.grad.abs().max() > 1e-6)
    assert moved  # 8 bits costs more there


@pytest.mark.parametrize("make", [fixed_mem, bitfusion], ids=["fixed-mem", "bitfusion"])
@pytest.mark.parametrize("entry", [0, -1], ids=["narrow", "wide"])
def test_widened_bits_are_the_widest_that_cost_no_more_brute_force(make, entry):
    loss = searched_lenet(make())
    prefer(loss, entry)
    bits = [c for c in loss.choices if c.kind == "bits"]
    indices = argmax_indices(loss.choices, loss.nodes)
    indices.update({id(c.alpha): 0 for c in bits})  # every layer at 2 bits
    arch = indices_to_arch(loss.choices, loss.nodes, indices, preferences(loss.choices, loss.nodes))

    def latency(values) -> float:
        trial = {**indices, **{id(c.alpha): c.values.index(v) for c, v in zip(bits, values)}}
        with torch.no_grad():
            return float(loss.supernet_cost(distributions=one_hot(loss.choices, trial)).latency_ms)

    base = latency([2] * len(bits))
    widened = widen_bits(loss.supernet_cost, loss.choices, loss.nodes, arch)
    assert {k: v for k, v in widened.items() if k not in {c.label for c in bits}} == {
        k: v for k, v in arch.items() if k not in {c.label for c in bits}}
    got = [widened[c.label] for c in bits]
    assert latency(got) <= base * (1 + 1e-9)
    # maximal: no layer can be widened further at no extra cost (brute force over every wider width)
    for i, c in enumerate(bits):
        for wider in (v for v in c.values if v > got[i]):
            assert latency(got[:i] + [wider] + got[i + 1:]) > base * (1 + 1e-9), (c.label, wider)
    # and the widest affordable combination is what was found, where one exists uniquely
    affordable = [v for v in itertools.product(*(c.values for c in bits)) if latency(list(v)) <= base * (1 + 1e-9)]
    top = max(sum(v) for v in affordable)
    assert sum(got) == top
    if make is fixed_mem and entry == 0:
        assert got == [8] * len(bits)  # compute-bound: every width costs the same, so the widest
