"""The bits' quantization-noise loss (uboost.strategy.bits_noise): the estimate by hand, its place in a search."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from uboost.exceptions import ConfigError
from uboost.quant import fake_quant_weight
from uboost.strategy import UBoost, bits_noise
from uboost.strategy.precision import BitsChoice

from tests.strategy.test_bits import TinySpace, conv_of


@pytest.mark.parametrize("coupled", [True, False])
def test_the_measured_noise_loss_is_the_fisher_weighted_quantization_error_by_hand(coupled):
    kwargs = {"bits": (2, 4, 8)} if coupled else {"weight_bits": (2, 8), "act_bits": (4, 8)}
    strategy = UBoost(sampling="single-path", bits_noise_weight=1.0, **kwargs)
    supernet = strategy.mutate_model(TinySpace())
    conv = conv_of(supernet, "op.0")
    quant: BitsChoice = conv.uboost_quant
    supernet.train()
    quant.probing = True
    x = torch.randn(4, 8, 6, 6)
    y = conv(x)
    y.square().mean().backward()
    bits_noise.settle([quant])

    # by hand: the gradients of the same loss at the drawn widths' quantized input and weight
    index = {key: strategy._sampler.index(alpha) for key, alpha in quant.alphas.items()}
    a_bits = quant.values["act"][index["bits" if coupled else "act"]]
    w_bits = quant.values["weight"][index["bits" if coupled else "weight"]]
    weight = conv.parametrizations.weight.original.detach()
    qx = quant.quantize_act(x, a_bits).detach().requires_grad_()
    qw = fake_quant_weight(weight, w_bits).detach().requires_grad_()
    gx, gw = torch.autograd.grad(F.conv2d(qx, qw, conv.bias, padding=1).square().mean(), [qx, qw])
    span = float(quant.act_max - quant.act_min)
    act = torch.tensor([0.5 * 4 * float(gx.square().sum()) * (span / (2 ** b - 1)) ** 2 / 12 for b in quant.values["act"]])
    wgt = torch.tensor([0.5 * 4 * float((gw.square() * (fake_quant_weight(weight, b) - weight).square()).sum())
                        for b in quant.values["weight"]])
    if coupled:
        assert torch.allclose(quant.get_buffer("noise_bits"), act + wgt, rtol=1e-4)
    else:
        assert torch.allclose(quant.get_buffer("noise_act"), act, rtol=1e-4)
        assert torch.allclose(quant.get_buffer("noise_weight"), wgt, rtol=1e-4)
    assert int(quant.noise_seen) == 1
    # narrower is noisier: the estimate falls with the width
    for name in [n for n in quant._buffers if n.startswith("noise_") and n != "noise_seen"]:
        values = quant.get_buffer(name)
        assert (values[:-1] > values[1:]).all()

    # a second measurement is averaged in (1/2 each), and the loss the distribution expects is softmax . average
    before = {n: b.clone() for n, b in quant._buffers.items() if n.startswith("noise_")}
    quant.probing = True
    strategy._sampler.invalidate()  # the next step's draw
    conv(2 * x).square().mean().backward()
    bits_noise.settle([quant])
    name = "noise_bits" if coupled else "noise_act"
    assert not torch.allclose(quant.get_buffer(name), before[name])
    expected = sum((torch.softmax(alpha, -1) * quant.get_buffer(bits_noise.buffer_name(key))).sum()
                   for key, alpha in quant.alphas.items())
    assert torch.allclose(bits_noise.expected_loss([quant]), expected)


def test_the_expected_loss_of_many_choices_of_mixed_sizes_is_the_sum_of_theirs_value_and_gradient():
    strategy = UBoost(weight_bits=(2, 4, 8), act_bits=(4, 8), sampling="single-path", bits_noise_weight=1.0)
    supernet = strategy.mutate_model(TinySpace())
    choices = [m for m in supernet.modules() if isinstance(m, BitsChoice)]
    assert len(choices) > 1
    generator = torch.Generator().manual_seed(0)
    for choice in choices:
        for key, alpha in choice.alphas.items():
            choice.get_buffer(bits_noise.buffer_name(key)).copy_(torch.rand(alpha.numel(), generator=generator))
            with torch.no_grad():
                alpha.copy_(torch.randn(alpha.numel(), generator=generator))
    alphas = [alpha for choice in choices for alpha in choice.alphas.values()]
    loss = bits_noise.expected_loss(choices)
    grads = torch.autograd.grad(loss, alphas)
    by_hand = sum((torch.softmax(alpha, -1) * choice.get_buffer(bits_noise.buffer_name(key))).sum()
                  for choice in choices for key, alpha in choice.alphas.items())
    assert {alpha.numel() for alpha in alphas} == {2, 3}
    assert torch.allclose(loss, by_hand)
    for grad, expected in zip(grads, torch.autograd.grad(by_hand, alphas)):
        assert torch.allclose(grad, expected)


def test_nothing_is_measured_unless_probing_and_a_checkpoint_without_the_averages_loads():
    strategy = UBoost(bits=(2, 8), sampling="single-path", bits_noise_weight=1.0)
    supernet = strategy.mutate_model(TinySpace())
    quant: BitsChoice = conv_of(supernet, "stem").uboost_quant
    supernet.train()
    conv_of(supernet, "stem")(torch.randn(2, 1, 6, 6)).sum().backward()
    bits_noise.settle([quant])
    assert int(quant.noise_seen) == 0 and not quant.get_buffer("noise_bits").any()
    old = {k: v for k, v in supernet.state_dict().items() if "noise_" not in k}  # made before the averages existed
    supernet.load_state_dict(old)
    assert int(quant.noise_seen) == 0


def test_a_bad_weight_is_refused():
    from uboost.search import SearchConfig

    for bad in (-1.0, float("nan"), float("inf"), True, "1"):
        with pytest.raises(ConfigError, match="bits_noise_weight"):
            UBoost(bits=(2, 8), bits_noise_weight=bad)
        with pytest.raises(ConfigError, match="bits_noise_weight"):
            SearchConfig(space="lenet", bits=(2, 8), bits_noise_weight=bad)


def test_a_noise_weight_without_bits_is_refused_as_by_search_config():
    with pytest.raises(ConfigError, match="bits_noise_weight.*precision search"):
        UBoost(bits_noise_weight=1.0)
    assert UBoost(bits_noise_weight=0.0).bits_noise_weight == 0.0


def test_a_task_only_search_with_the_noise_loss_keeps_every_layer_at_its_widest(tmp_path):
    """Without a hardware term, the only price of narrow bits is their noise: with it every layer ends at 8 bits;
    without it lenet's conv1 and conv2, each before a batch norm, get no task gradient for their bits and stay
    where they started (benchmarks/RESULTS.md, "the bits' task gradient")."""
    from uboost.search import SearchConfig, run_search

    def bits(weight):
        config = SearchConfig(space="lenet", dataset="digits", seed=0, epochs=4, accelerator="cpu", bits=(2, 8),
                              latency_weight=0.0, utilization_weight=0.0, bits_noise_weight=weight)
        run_search(config, tmp_path / str(weight))
        probabilities = json.loads((tmp_path / str(weight) / "probabilities.json").read_text())
        return {k[len("bits:"):]: v["8"] for k, v in probabilities.items() if k.startswith("bits:")}

    priced = bits(1.0)
    assert len(priced) == 4 and all(p > 0.9 for p in priced.values()), priced
    unpriced = bits(0.0)
    # no task gradient: only rounding-level noise, which Adam's normalised steps turn into a small random walk
    # (0.458-0.5 across machines), far from the priced search's > 0.9
    assert unpriced["conv1"] == pytest.approx(0.5, abs=0.1) and unpriced["conv2"] == pytest.approx(0.5, abs=0.1), unpriced


def test_a_probe_leaves_no_hook_behind_and_later_backward_passes_add_nothing():
    """The weight is a leaf: a hook left on it ran on every later backward pass (architecture steps included) and
    the measured weight term grew with each probe."""
    strategy = UBoost(weight_bits=(2, 8), act_bits=(4, 8), sampling="single-path", bits_noise_weight=1.0)
    supernet = strategy.mutate_model(TinySpace())
    conv = conv_of(supernet, "op.0")
    quant: BitsChoice = conv.uboost_quant
    weight = conv.parametrizations.weight.original
    supernet.train()
    x = torch.randn(4, 8, 6, 6)
    measured = []
    for probe in range(3):
        strategy._sampler.invalidate()
        quant.probing = True
        conv(x).square().mean().backward()
        bits_noise.settle([quant])
        assert not weight._backward_hooks  # removed with the probe
        measured.append(quant.get_buffer("noise_weight").clone())
        for _ in range(2):  # steps that do not probe: nothing measured, nothing pending
            strategy._sampler.invalidate()
            conv(x).square().mean().backward()
            assert "_noise_pending" not in quant.__dict__
    # the same input and weights (no optimizer step): every probe measures about the same, not a growing sum
    assert torch.allclose(measured[0], measured[-1], rtol=0.5)


def test_a_bits_checkpoint_made_before_the_noise_averages_still_belongs_to_its_run(tmp_path):
    from uboost.exceptions import SearchError
    from uboost.search import SearchConfig, _check_checkpoint_matches, build_space

    config = SearchConfig(space="lenet", dataset="digits", bits=(2, 8))
    space, _, _ = build_space(config)
    state = UBoost(sampling=config.sampling, **config.bits_options()).mutate_model(space).state_dict()
    old = {"training_module._model." + k: v for k, v in state.items() if ".noise_" not in k}
    _check_checkpoint_matches(tmp_path / "last.ckpt", {"state_dict": old}, config)  # no refusal
    other = dict(old)
    other.pop(next(k for k in old if k.endswith("conv1.weight") or "conv1" in k))
    with pytest.raises(SearchError, match="does not belong"):
        _check_checkpoint_matches(tmp_path / "last.ckpt", {"state_dict": other}, config)
