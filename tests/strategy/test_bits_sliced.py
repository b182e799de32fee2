"""A bits search on a space with width and kernel choices quantizes the weight the sampled path uses.

NNI's mixed conv/linear read the whole super-kernel (which runs the quantizer) and slice it afterwards;
each output channel's weight scale was the max over every input channel and the whole max kernel, while
the frozen layer's is over its slice (lenet conv1 at kernel 3 of 5, 2 bits: the layer's output moved by
0.22 of 2.6). The pinned supernet must compute the network ``uboost.quant.apply_precision`` freezes.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from uboost.predict.network import network_indices
from uboost.predict.supernet import pinned
from uboost.quant import apply_precision, fake_quant_weight, weight_scale
from uboost.search_spaces.lenet import LeNetSpace
from uboost.strategy import UBoost, bits_noise
from uboost.strategy.architecture import choice_groups
from uboost.strategy.precision import split_precision

ARCHS = [  # none at the widest conv kernel or width; one at the widest of everything
    {"conv1_width": 4, "conv1_kernel": 3, "conv2_width": 4, "conv2_kernel": 3, "fc1_width": 16,
     "bits:conv1": 2, "bits:conv2": 4, "bits:fc2": 2},
    {"conv1_width": 4, "conv1_kernel": 5, "conv2_width": 8, "conv2_kernel": 3, "fc1_width": 32,
     "bits:conv1": 4, "bits:conv2": 2, "bits:fc2": 8},
    {"conv1_width": 8, "conv1_kernel": 5, "conv2_width": 8, "conv2_kernel": 5, "fc1_width": 32,
     "bits:conv1": 2, "bits:conv2": 2, "bits:fc2": 4},
]


def space():
    return LeNetSpace(widths=(4, 8), kernels=(3, 5), hidden=(16, 32))


def centre(weight: torch.Tensor, k: int) -> torch.Tensor:
    a = (weight.shape[-1] - k) // 2
    return weight[..., a:a + k, a:a + k]


def sliced_into(supernet, frozen, arch) -> None:
    """The supernet's weights, sliced as NNI freezes them, into the frozen network (its quantized layers' originals)."""
    def raw(module, name):
        return getattr(module.parametrizations, name).original if hasattr(module, "parametrizations") and \
            name in module.parametrizations else getattr(module, name)

    with torch.no_grad():
        for name, target in frozen.named_modules():
            if name not in ("conv1", "conv2", "fc1", "fc2", "bn1", "bn2"):
                continue
            source = getattr(supernet, name)
            for tensor in ("weight", "bias", "running_mean", "running_var"):
                if getattr(target, tensor, None) is None:
                    continue
                value, into = raw(source, tensor), raw(target, tensor)
                if value.dim() == 4:
                    value = centre(value, into.shape[-1])
                value = value[tuple(slice(0, n) for n in into.shape[:2])]
                into.copy_(value)


PINS = {"fc-pinned": {"fc1": 4, "fc2": 8}, "fc2-searched": {"fc1": 4}}


@pytest.mark.parametrize("pins", PINS.values(), ids=PINS.keys())
@pytest.mark.parametrize("arch", ARCHS, ids=["narrow-3x3", "kernel5-mixed-widths", "widest"])
def test_the_pinned_single_path_supernet_computes_the_frozen_quantized_network(arch, pins):
    """Biases included: a pinned (fixed-width) layer's and a searched layer's are int32 at the (drawn) widths."""
    torch.manual_seed(0)
    supernet = UBoost(bits=(2, 4, 8), pin_bits=pins, sampling="single-path").mutate_model(space())
    arch = {k: v for k, v in arch.items() if k.removeprefix("bits:") not in pins}
    choices, nodes = choice_groups(supernet)
    nni_arch, precision = split_precision(supernet, arch, choices)
    frozen = apply_precision(space().freeze(nni_arch), precision)
    sliced_into(supernet, frozen, arch)
    weight = supernet.conv1.parametrizations.weight.original
    if arch["conv1_kernel"] == 3:  # the case: the super-kernel's scales are not the slice's
        assert not torch.equal(weight.abs().amax((1, 2, 3)), centre(weight, 3).abs().amax((1, 2, 3)))
    x = torch.randn(6, 1, 28, 28)
    supernet.train(), frozen.train()  # (batch norm on batch statistics, the activation ranges observed alike)
    with pinned(choices, network_indices(choices, nodes, arch), supernet), torch.no_grad():
        y = supernet(x)
    assert torch.allclose(y, frozen(x), rtol=0, atol=1e-6), (y - frozen(x)).abs().max()


def mixture_supernet():
    torch.manual_seed(0)
    supernet = UBoost(bits=(2, 8), pin_bits={"fc1": 4}, sampling="mixture",
                      gumbel_temperature=None).mutate_model(space())  # (a plain softmax: no noise to redraw)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for c in choice_groups(supernet)[0]:
            c.alpha.copy_(torch.randn(c.alpha.shape, generator=g))
    supernet.eval()
    return supernet, {c.label: c.alpha for c in choice_groups(supernet)[0]}


def weighted(alpha, *labels_values):
    return itertools.product(*[zip(values, torch.softmax(alpha[label], -1)) for label, values in labels_values])


def test_the_mixture_mixes_each_kernel_and_width_quantized_at_its_own_scales():
    """conv2 of the mixture: ``sum over (in width, kernel, out width, bits pairs)`` of the candidates' own
    quantized convolutions, each at the scales of its slice (one convolution on the mixed tensors); the
    alphas' gradients are the explicit sum's."""
    supernet, alpha = mixture_supernet()
    conv = supernet.conv2
    quant = conv.uboost_quant
    x = torch.randn(2, 8, 7, 7)
    y = conv(x)
    weight = conv.parametrizations.weight.original
    p = dict(zip((2, 8), torch.softmax(alpha["bits:conv2"], -1)))
    expected = 0
    for (n_in, p_in), (k, p_k), (n_out, p_out) in weighted(
            alpha, ("conv1_width", (4, 8)), ("conv2_kernel", (3, 5)), ("conv2_width", (4, 8))):
        for w, a in itertools.product((2, 8), repeat=2):
            q = torch.zeros_like(weight)
            a0 = (5 - k) // 2
            q[:n_out, :n_in, a0:a0 + k, a0:a0 + k] = fake_quant_weight(centre(weight, k)[:n_out, :n_in], w)
            expected = expected + p_in * p_k * p_out * p[w] * p[a] * F.conv2d(quant.quantize_act(x, a), q, padding=2)
    assert torch.allclose(y, expected, rtol=0, atol=1e-5), (y - expected).abs().max()
    inputs = [alpha["conv1_width"], alpha["conv2_kernel"], weight]
    for got, want in zip(torch.autograd.grad(y.square().sum(), inputs), torch.autograd.grad(expected.square().sum(), inputs)):
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-5)
    whole = sum(p[w] * p[a] * F.conv2d(quant.quantize_act(x, a), fake_quant_weight(weight, w), padding=2)
                for w, a in itertools.product((2, 8), repeat=2))
    assert not torch.allclose(y, whole, atol=1e-3)  # (and it is not the super-kernel's quantization, masked or not)


def test_a_pinned_mixed_linear_in_the_mixture_mixes_its_int32_biases_at_each_input_widths_scales():
    supernet, alpha = mixture_supernet()
    fc = supernet.fc1  # pinned at 4 bits: its bias is int32 at s_x * s_w, s_w over the input prefix of each candidate
    quant = fc.uboost_quant
    x = torch.randn(3, 32)
    y = fc(x)
    weight, bias = fc.parametrizations.weight.original, fc.parametrizations.bias.original
    s_x = quant.act_qparams(4)[0]
    expected = 0
    for (n_in, p_in), (n_out, p_out) in weighted(alpha, ("conv2_width", (4, 8)), ("fc1_width", (16, 32))):
        w = torch.zeros_like(weight)
        w[:n_out, :n_in * 4] = fake_quant_weight(weight[:n_out, :n_in * 4], 4)
        s = s_x * weight_scale(weight[:, :n_in * 4], 4)
        b = torch.zeros_like(bias)
        b[:n_out] = (torch.round(bias / s) * s)[:n_out]
        expected = expected + p_in * p_out * (F.linear(quant.quantize_act(x, 4), w) + b)
    assert torch.allclose(y, expected, rtol=0, atol=1e-5), (y - expected).abs().max()


def test_the_bits_noise_term_measures_the_weight_error_of_the_slice_the_path_uses():
    """conv1 at kernel 3 of 5: the measured weight noise is ``1/2 B sum g^2 (Q_b(W) - W)^2`` over the 3x3
    slice quantized at its own scales (uboost.strategy.bits_noise)."""
    torch.manual_seed(0)
    supernet = UBoost(weight_bits=(2, 8), sampling="single-path", bits_noise_weight=1.0).mutate_model(space())
    choices, nodes = choice_groups(supernet)
    arch = {**{k: v for k, v in ARCHS[0].items() if not k.startswith("bits:")},
            **{f"wbits:{name}": 2 for name in ("conv1", "conv2", "fc1", "fc2")}}
    quant = supernet.conv1.uboost_quant
    supernet.train()
    x = torch.randn(4, 1, 28, 28)
    with pinned(choices, network_indices(choices, nodes, arch), supernet):
        quant.probing = True
        supernet(x).square().mean().backward()
        bits_noise.settle([quant])
    weight = supernet.conv1.parametrizations.weight.original
    w, g = centre(weight, 3)[:4].detach(), centre(weight.grad, 3)[:4]
    assert g.abs().sum() > 0 and torch.count_nonzero(weight.grad) == torch.count_nonzero(g)  # only the slice is used
    expected = torch.stack([0.5 * 4 * (g.square() * (fake_quant_weight(w, b) - w).square()).sum() for b in (2, 8)])
    assert torch.allclose(quant.get_buffer("noise_weight"), expected, rtol=1e-5)


def test_a_search_checkpoint_saved_with_float_searched_biases_loads():
    """Searched layers' biases became parametrized (int32 in single path): a state dict with ``fc2.bias`` still loads."""
    def build():
        torch.manual_seed(0)
        return UBoost(bits=(2, 4, 8), sampling="single-path").mutate_model(space())

    saved = build().state_dict()
    old = {k.replace("parametrizations.bias.original", "bias"): v for k, v in saved.items()}
    assert "fc2.bias" in old and "fc2.parametrizations.bias.original" in saved
    fresh = build()
    with torch.no_grad():
        fresh.fc2.parametrizations.bias.original.zero_()
    fresh.load_state_dict(old)
    assert torch.equal(fresh.fc2.parametrizations.bias.original, saved["fc2.parametrizations.bias.original"])
