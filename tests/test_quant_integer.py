"""Frozen quantized layers computed on their integer codes (uboost.quant_integer): the same function as the
fake-quantized form, exact in any summation order, so onnxruntime's default session computes it bit for bit."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from uboost.quant import apply_precision, fake_quant_weight, quantized_layers, weight_scale
from uboost.quant_onnx import export_mode
from uboost.quant_integer import EXACT_LIMIT, input_codes, partial_sum_bound


def _frozen(module: nn.Module, bits: int) -> nn.Module:
    net = nn.Sequential(module)
    apply_precision(net, {name: (bits, bits) for name, _ in quantized_layers(net)})
    return net


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_codes_times_their_scales_are_the_fake_quantized_tensors(bits):
    g = torch.Generator().manual_seed(bits)
    conv = _frozen(nn.Conv2d(3, 5, 3), bits)[0]
    quant = conv.uboost_quant
    quant._observe(torch.randn(2, 3, 6, 6, generator=g) * 2)
    x = torch.randn(4, 3, 6, 6, generator=g) * 3  # some outside the range: clipped
    scale, zero = quant.act_qparams(bits)
    codes = input_codes(quant, x)
    assert torch.equal(codes, codes.round()) and codes.min() >= -zero and codes.max() <= 2 ** bits - 1 - zero
    assert torch.equal(codes * scale, quant.quantize_act(x, bits))
    weight = conv.parametrizations.weight.original
    w_codes = quant.quantize_weight(weight)  # within the pass input_codes began
    assert torch.equal(w_codes, w_codes.round()) and w_codes.abs().amax() == 2 ** (bits - 1) - 1
    s_w = weight_scale(weight, bits).reshape(-1, 1, 1, 1)
    assert torch.equal(w_codes * s_w, fake_quant_weight(weight, bits))  # torch's kernel: (code - 0) * scale


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("layer", ["conv", "linear"])
def test_the_integer_form_is_the_fake_quantized_layer_within_float_rounding_and_gradients_keep_it(bits, layer):
    torch.manual_seed(bits)
    module = nn.Conv2d(6, 8, 3, padding=1) if layer == "conv" else nn.Linear(40, 7)
    net = _frozen(module, bits)
    x = torch.randn(16, 6, 5, 5) * 2 if layer == "conv" else torch.randn(16, 40) * 2
    net.train()
    net(x)  # the activation range
    net.eval()
    quant = module.uboost_quant
    assert quant.integer
    with torch.no_grad():
        exact = net(x)  # on codes
    fake = net(x)  # gradients wanted: the fake-quantized form, as in training
    weight = module.parametrizations.weight.original
    q = quant.quantize_act(x, bits)
    explicit = (F.conv2d(q, fake_quant_weight(weight, bits), module.bias, padding=1) if layer == "conv"
                else F.linear(q, fake_quant_weight(weight, bits), module.bias))
    assert torch.equal(fake, explicit)  # the training form is untouched
    assert fake.requires_grad and not exact.requires_grad
    assert not torch.equal(exact, fake)  # another rounding of the same function...
    assert torch.allclose(exact, fake, rtol=1e-6, atol=1e-6 * float(fake.abs().max()))  # ...within float32's
    assert module.weight is not None and torch.equal(module.weight, fake_quant_weight(weight, bits))  # outside a pass
    net.train()
    with torch.no_grad():  # a training step's forward (no_grad or not) keeps the fake-quantized form
        assert torch.equal(net(x), explicit)


def test_a_layer_whose_partial_sums_can_pass_2_to_the_24_keeps_the_float_form():
    # 8/8 bits: |x code| <= 255, |w code| <= 127: 518 * 255 * 127 = 16,775,430 <= 2^24 = 16,777,216 < 519 * 32,385
    assert partial_sum_bound(nn.Linear(518, 2), 8, 8) == 16_775_430 <= EXACT_LIMIT
    assert partial_sum_bound(nn.Linear(519, 2), 8, 8) == 16_807_815 > EXACT_LIMIT
    assert partial_sum_bound(nn.Conv2d(16, 4, 5), 4, 4) == 400 * 15 * 7  # C_in k_h k_w
    assert partial_sum_bound(nn.Conv2d(16, 16, 3, groups=16), 8, 8) == 9 * 255 * 127  # depthwise: one channel
    assert _frozen(nn.Linear(518, 2), 8)[0].uboost_quant.integer
    wide = _frozen(nn.Linear(519, 2), 8)
    assert not wide[0].uboost_quant.integer
    assert _frozen(nn.Linear(519, 2), 4)[0].uboost_quant.integer
    wide.train()
    x = torch.randn(3, 519)
    wide(x)
    wide.eval()
    with torch.no_grad():
        y = wide(x)
    layer = wide[0]
    expected = F.linear(layer.uboost_quant.quantize_act(x, 8), layer.weight, layer.bias)
    assert torch.equal(y, expected)


def _near_tie_net() -> tuple[nn.Module, torch.Tensor, float]:
    """conv (8 bits, codes chosen so that its integer sums S stay below 510) -> ReLU -> fc whose input step
    is 2 s_x s_w: every odd S lands at a half level of fc's quantizer, where rounding decides."""
    g = torch.Generator().manual_seed(0)
    conv, fc = nn.Conv2d(4, 8, 3, bias=False), nn.Linear(8 * 6 * 6, 10)
    net = _frozen(nn.Sequential(conv, nn.ReLU(), nn.Flatten(), fc), 8)
    with torch.no_grad():
        w = torch.randint(-1, 2, (8, 4, 3, 3), generator=g).float()
        w[:, 0, 1, 1] = 127  # every channel's peak: one weight scale
        conv.parametrizations.weight.original.copy_(w * 0.01)
        fc.parametrizations.weight.original.normal_(generator=g)
        fc.parametrizations.bias.original.zero_()
        cq, fq = conv.uboost_quant, fc.uboost_quant
        cq.act_min.zero_(), cq.act_max.fill_(2.55), cq.observed.fill_(True)
        s = float(cq.act_qparams(8)[0]) * float(fake_quant_weight(conv.weight, 8).abs().max() / 127)
        fq.act_min.zero_(), fq.act_max.fill_(510 * s), fq.observed.fill_(True)
    scale = float(cq.act_qparams(8)[0])
    x = torch.randint(0, 4, (64, 4, 8, 8), generator=g).float() * scale  # codes 0-3, on the grid
    return net.eval(), x, s


def test_onnxruntime_default_session_equals_torch_at_8_bits_where_the_next_quantizer_rounds_near_ties(tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    net, x, s = _near_tie_net()
    fc = net[0][3]
    with torch.no_grad():
        hidden = net[0][1](net[0][0](x)).flatten(1)
        levels = hidden * (1.0 / fc.uboost_quant.act_qparams(8)[0])
    near = ((levels - levels.floor() - 0.5).abs() < 1e-4) & (hidden > 0)
    assert int(near.sum()) > 1000  # thousands of values at a half level (odd integer sums)
    with torch.no_grad():
        expected = net(x)
    fake = net(x).detach()  # the fake-quantized float form: its summation order decides some of those ties
    assert (fake - expected).abs().max() > 1e-3
    with torch.no_grad(), export_mode(net):
        torch.onnx.export(net, (x[:1],), str(tmp_path / "m.onnx"), dynamo=False, input_names=["input"],
                          dynamic_axes={"input": {0: "batch"}})
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
    assert (got - expected).abs().max() <= 1e-6, (got - expected).abs().max()


def test_batch_norms_of_a_frozen_network_are_one_mul_and_one_add_which_onnxruntime_computes_bit_for_bit(tmp_path):
    torch.manual_seed(0)
    bn, plain = nn.BatchNorm2d(6), nn.BatchNorm2d(6, affine=False)
    net = _frozen(nn.Sequential(nn.Conv2d(3, 6, 3), bn, plain), 8)
    net.train()
    x = torch.randn(64, 3, 10, 10) * 2
    net(x)
    with torch.no_grad():
        bn.weight.normal_(), bn.bias.normal_()
    net.eval()
    with torch.no_grad():
        ours = net(x)
        conv = net[0][0](x)
    reference = plain(bn(conv))  # gradients wanted: torch's batch norm kernel
    assert reference.requires_grad and not torch.equal(ours, reference)
    assert torch.allclose(ours, reference, rtol=1e-6, atol=1e-6)
    with torch.no_grad():
        a = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        manual = conv * a.reshape(-1, 1, 1) + (bn.bias - bn.running_mean * a).reshape(-1, 1, 1)
        b = 1.0 / torch.sqrt(plain.running_var + plain.eps)
        manual = manual * b.reshape(-1, 1, 1) + (-plain.running_mean * b).reshape(-1, 1, 1)
    assert torch.equal(ours, manual)
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    with torch.no_grad(), export_mode(net):
        torch.onnx.export(net, (x[:1],), str(tmp_path / "m.onnx"), dynamo=False, input_names=["input"],
                          dynamic_axes={"input": {0: "batch"}})
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert torch.equal(torch.from_numpy(session.run(None, {"input": x.numpy()})[0]), ours)
