"""The supernet's cost prices a (searched) MultiheadAttention as the frozen network's trace does.

Before: neither priced it (the trace hooked Conv2d/Linear, the attention runs F.linear), so a
searched embed_dim changed the priced cost through the Linear layers around it only.
"""

import pytest
import torch

from uboost.hardware import create
from uboost.strategy import HardwareLoss, UBoost
from uboost.strategy.single_path import find_sampler, sampled_cost
from uboost.strategy.supernet_cost import set_architecture

from tests.strategy.test_sliced_ops import AttentionSpace


def attention_macs(e: int, tokens: int = 4) -> int:
    """in_proj (E -> 3E), Q K^T, attention x V and out_proj (E -> E) over ``tokens`` tokens."""
    return tokens * (3 * e * e + e * tokens + tokens * e + e * e)


@pytest.mark.parametrize("cost_mode", ["expected", "smooth"])
@pytest.mark.parametrize("sampling", ["single-path", "mixture"])
def test_the_pinned_supernet_cost_is_the_frozen_network_s_with_its_attention(cost_mode, sampling):
    torch.manual_seed(0)
    model = create("systolic", rows=8, cols=8)
    net = UBoost(cost_model="systolic", hardware=dict(rows=8, cols=8), sampling=sampling, cost_mode=cost_mode,
                 seed=0).mutate_model(AttentionSpace())
    hw = HardwareLoss(model)
    hw.attach(net, torch.randn(1, 4, 6))
    for e in (8, 16):
        set_architecture(net, {"e": e}, logit=30.0)
        frozen = model.evaluate(AttentionSpace().freeze({"e": e}), (4, 6))
        assert sum(l.macs for l in frozen.layers if l.layer.name.startswith("att.")) == attention_macs(e)
        if sampling == "single-path":
            net.train()
            find_sampler(net).invalidate()
            net(torch.randn(2, 4, 6))  # draws the (pinned) path
            cost = sampled_cost(hw.supernet_cost, find_sampler(net))
        else:
            with torch.no_grad():
                cost = hw.supernet_cost()
        assert float(cost.macs) == pytest.approx(frozen.macs, rel=1e-6)
        assert float(cost.cycles) == pytest.approx(frozen.cycles, rel=1e-6)


@pytest.mark.parametrize("cost_mode", ["expected", "smooth"])
def test_at_batch_four_the_supernet_prices_each_sample_s_keys_and_values_as_the_frozen_network(cost_mode):
    """The supernet's rows carry ``per_sample`` (Q K^T and attention x V: one sample's GEMMs per sample)
    into its table, in both cost modes: pinned, it costs what the frozen network costs at batch 4.
    Before, both shared the keys across the batch (the frozen scores row: 4 x its batch-1 cycles now)."""
    torch.manual_seed(0)
    hardware = dict(rows=8, cols=8, batch_size=4)
    model = create("systolic", **hardware)
    net = UBoost(cost_model="systolic", hardware=hardware, sampling="mixture", cost_mode=cost_mode, seed=0).mutate_model(
        AttentionSpace())
    hw = HardwareLoss(model)
    hw.attach(net, torch.randn(1, 4, 6))
    for e in (8, 16):
        set_architecture(net, {"e": e}, logit=30.0)
        frozen = model.evaluate(AttentionSpace().freeze({"e": e}), (4, 6))
        one = create("systolic", rows=8, cols=8).evaluate(AttentionSpace().freeze({"e": e}), (4, 6))
        scores = [next(l.cycles for l in r.layers if l.layer.name == "att.scores") for r in (frozen, one)]
        assert scores[0] == 4 * scores[1]
        with torch.no_grad():
            cost = hw.supernet_cost()
        assert float(cost.macs) == pytest.approx(frozen.macs, rel=1e-6)
        assert float(cost.cycles) == pytest.approx(frozen.cycles, rel=1e-6)
