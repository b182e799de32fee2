"""The utilization term blind to the bits (``utilization_on_bits=False``, strategy/precision.blind_utilization):
on precision-aware PEs a narrower width runs a layer faster at a lower utilization, so the term would pull
the bits up against the latency term; blind, it gives the bits no gradient and keeps its value and its
gradient on every other choice."""

from __future__ import annotations

import pytest
import torch

from uboost.exceptions import ConfigError
from uboost.hardware import create
from uboost.search_config import SearchConfig
from uboost.search_spaces.lenet import lenet
from uboost.strategy import UBoost


def searched_lenet(utilization_on_bits: bool):
    model = create("systolic", rows=16, cols=16, dataflow="ws", pe="bitfusion")
    strategy = UBoost(bits=(2, 4, 8), sampling="single-path", cost_model=model, utilization_on_bits=utilization_on_bits)
    supernet = strategy.mutate_model(lenet())
    loss = strategy.hardware_loss
    loss.attach(supernet, torch.randn(1, 1, 8, 8))
    torch.manual_seed(0)
    with torch.no_grad():  # a spread, non-uniform distribution (the same in every loss built here)
        for c in loss.choices:
            c.alpha.copy_(torch.randn_like(c.alpha) * 0.5)
    return loss


def grads_of(loss, term) -> dict[str, torch.Tensor]:
    for c in loss.choices:
        c.alpha.grad = None
    term(loss.expected_cost()).backward()
    return {c.label: c.alpha.grad.clone() if c.alpha.grad is not None else torch.zeros_like(c.alpha) for c in loss.choices}


@pytest.mark.parametrize("on_derived", [True, False])
def test_blind_utilization_gives_the_bits_no_gradient_and_keeps_the_rest(on_derived):
    seeing, blind = searched_lenet(True), searched_lenet(False)
    for loss in (seeing, blind):
        loss.bits_on_derived = on_derived
    bits = [c.label for c in seeing.choices if c.kind == "bits"]
    assert bits and len(bits) < len(seeing.choices)
    a, b = seeing.expected_cost(), blind.expected_cost()
    assert float(a.utilization) == pytest.approx(float(b.utilization), rel=1e-12)  # the value is unchanged
    assert float(a.latency_ms) == float(b.latency_ms)
    util_seeing = grads_of(seeing, lambda cost: cost.utilization)
    util_blind = grads_of(blind, lambda cost: cost.utilization)
    assert any(util_seeing[label].abs().max() > 1e-6 for label in bits)  # on bitfusion the bits move the utilization
    for label in bits:
        assert util_blind[label].abs().max() == 0, label
    for c in seeing.choices:  # every other choice: the same utilization gradient
        if c.kind != "bits":
            assert torch.allclose(util_seeing[c.label], util_blind[c.label], atol=1e-12), c.label
    latency_seeing = grads_of(seeing, lambda cost: cost.latency_ms)
    latency_blind = grads_of(blind, lambda cost: cost.latency_ms)
    assert any(latency_blind[label].abs().max() > 1e-9 for label in bits)  # latency still prices the bits
    for label in latency_seeing:
        assert torch.allclose(latency_seeing[label], latency_blind[label], atol=1e-15), label


def test_narrower_bits_lower_the_utilization_and_the_latency_on_bitfusion():
    """Why the option exists: on BitFusion the utilization's gradient on a bits choice points the other way
    from the latency's (it favours the wide width the latency term wants to leave)."""
    loss = searched_lenet(True)
    loss.bits_on_derived = False
    util = grads_of(loss, lambda cost: cost.utilization)
    latency = grads_of(loss, lambda cost: cost.latency_ms)
    opposed = [c.label for c in loss.choices if c.kind == "bits"
               and util[c.label][-1] > 0 and latency[c.label][-1] > 0]  # 8 bits: more utilization, more latency
    assert opposed


@pytest.mark.parametrize("pe, seeing", [("bitfusion", False), ("bit-serial", False), ("fixed", True)])
def test_by_default_the_utilization_is_blind_to_bits_only_on_precision_aware_pes(pe, seeing):
    model = create("systolic", rows=16, cols=16, dataflow="ws", pe=pe)
    assert UBoost(bits=(2, 4, 8), sampling="single-path", cost_model=model).hardware_loss.utilization_on_bits is seeing
    for given in (True, False):  # said explicitly, it holds on any PEs
        assert UBoost(bits=(2, 8), cost_model=model, utilization_on_bits=given).hardware_loss.utilization_on_bits is given


def test_the_config_keeps_auto_and_an_explicit_value_through_a_change_of_pes():
    """Auto (None) is decided from the PEs the search prices: a tuner that changes the PEs per trial
    (``base.replace(pe=...)``) keeps an explicit true/false (a resolved value could not tell them apart)."""
    assert SearchConfig(bits=(2, 8)).utilization_on_bits is None
    assert SearchConfig(bits=(2, 8)).resolved_utilization_on_bits() is True  # fixed PEs
    assert SearchConfig(bits=(2, 8), pe="bitfusion").resolved_utilization_on_bits() is False
    assert SearchConfig(bits=(4,), pe="bitfusion").resolved_utilization_on_bits() is True  # one width: nothing to blind
    assert SearchConfig(pe="bitfusion").resolved_utilization_on_bits() is True
    assert SearchConfig(weight_bits=(2, 8), pe="bit-serial").resolved_utilization_on_bits() is False
    assert SearchConfig(bits=(2, 8)).replace(pe="bitfusion").resolved_utilization_on_bits() is False  # auto follows
    explicit = SearchConfig(bits=(2, 8), utilization_on_bits=True).replace(pe="bitfusion")
    assert explicit.utilization_on_bits is True and explicit.resolved_utilization_on_bits() is True
    assert SearchConfig(bits=(2, 8), utilization_on_bits="auto").utilization_on_bits is None  # a TOML's "auto"


def test_the_option_is_a_boolean_or_unset_in_the_config():
    assert SearchConfig(bits=(2, 8)).bits_options()["utilization_on_bits"] is None  # auto: the strategy decides
    assert SearchConfig(bits=(2, 8), utilization_on_bits=False).bits_options()["utilization_on_bits"] is False
    with pytest.raises(ConfigError, match='utilization_on_bits must be true or false or "auto"'):
        SearchConfig(bits=(2, 8), utilization_on_bits="no")
