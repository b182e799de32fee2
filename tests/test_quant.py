"""The fake quantizer (uboost.quant): its fast activation path is torch's fake quantization."""

from __future__ import annotations

import pytest
import torch

from uboost.quant import LayerQuantizer


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_activation_fake_quant_equals_torch_in_values_and_straight_through_gradient(bits):
    quant = LayerQuantizer(bits, bits).train()
    g = torch.Generator().manual_seed(bits)
    x = torch.randn(4, 3, 7, 7, generator=g) * 3 + 0.5
    quant._observe(x * 0.6)  # a narrower range: some inputs fall outside it (zero gradient there)
    scale, zero = quant.act_qparams(bits)
    # exact half-steps too: round half to even as torch's nearbyint
    x = torch.cat([x.reshape(-1), (torch.arange(-6, 7) + 0.5) * scale - zero * scale])
    mine, ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    y = quant.quantize_act(mine, bits)
    expected = torch.fake_quantize_per_tensor_affine(ref, scale, zero, 0, 2 ** bits - 1)
    assert torch.equal(y, expected)
    upstream = torch.randn(x.shape, generator=g)
    (y * upstream).sum().backward()
    (expected * upstream).sum().backward()
    assert torch.equal(mine.grad, ref.grad)
    assert 0 < int((mine.grad == 0).sum()) < x.numel()  # some clipped, most not


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_a_gpu_layer_quantizes_as_the_cpu_one(bits):
    """On CUDA the activation goes through torch's kernel with tensor qparams (no host read, one
    launch each way); values, gradients and the observed range equal the CPU path's."""
    g = torch.Generator().manual_seed(bits)
    x = torch.randn(8, 4, 9, 9, generator=g) * 2 + 0.3
    upstream = torch.randn(x.shape, generator=g)
    out = []
    for device in ("cpu", "cuda"):
        quant = LayerQuantizer(bits, bits).train().to(device)
        quant._observe(x.to(device) * 0.7)
        leaf = x.clone().to(device).requires_grad_()  # a fresh leaf on each device
        y = quant.quantize_act(leaf, bits)
        (y * upstream.to(device)).sum().backward()
        out.append((y.detach().cpu(), leaf.grad.cpu(), quant.act_min.cpu(), quant.act_max.cpu()))
    for cpu, gpu in zip(*out):
        assert torch.equal(cpu, gpu)


def test_host_qparams_are_the_tensor_qparams_bit_for_bit():
    """The CPU search computes the activation scale, its reciprocal and the zero point on the host
    (numpy float32); they must be torch's float32 results exactly, over ranges of every kind."""
    quant = LayerQuantizer(8, 8)
    g = torch.Generator().manual_seed(0)
    lows = torch.cat([torch.zeros(1), -torch.rand(200, generator=g) * torch.logspace(-9, 4, 200), torch.tensor([-1e-12, -3.0])])
    highs = torch.cat([torch.zeros(1), torch.rand(200, generator=g) * torch.logspace(4, -9, 200), torch.tensor([0.0, 7.0])])
    for lo, hi in zip(lows, highs):
        quant.act_min.fill_(lo)
        quant.act_max.fill_(hi)
        for bits in range(2, 17):
            scale, zero = quant.act_qparams(bits)
            host = quant.host_qparams(bits)
            assert host == (scale.item(), (1.0 / scale).item(), float(zero)), (lo, hi, bits, host)


def _small_net(bits: int):
    from torch import nn

    from uboost.quant import apply_precision, quantized_layers

    torch.manual_seed(bits)
    net = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Conv2d(6, 8, 3, bias=True),
                        nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 64), nn.ReLU(), nn.Linear(64, 10))
    apply_precision(net, {name: (bits, bits) for name, _ in quantized_layers(net)})
    net.train()
    for _ in range(3):
        net(torch.randn(16, 1, 8, 8) * 2)
    return net.eval()


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_onnxruntime_default_session_computes_the_fake_quant_model(bits, tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from uboost.quant_onnx import export_mode

    net = _small_net(bits)
    x = torch.randn(256, 1, 8, 8) * 2
    with torch.no_grad():
        expected = net(x)
        with export_mode(net):
            torch.onnx.export(net, (x[:1],), str(tmp_path / "m.onnx"), dynamo=False, input_names=["input"],
                              dynamic_axes={"input": {0: "batch"}})
    # the default session: every optimization on. Frozen layers export on their integer codes
    # (uboost.quant_integer): the convolutions' sums are exact in any order, so onnxruntime's kernels
    # (NCHWc Conv, Gemm) compute what torch computes -- at 8 bits too, where the float form's summation
    # order used to land a value at a near-tie one level apart (2.7e-4; benchmarks/RESULTS.md)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
    assert torch.allclose(got, expected, atol=1e-4), (got - expected).abs().max()


def test_the_bias_is_int32_at_the_input_times_weight_scale_and_old_state_dicts_load():
    from uboost.quant import weight_scale

    net = _small_net(4)
    conv = net[3]
    quant = conv.uboost_quant
    scale = quant.act_qparams(4)[0] * weight_scale(conv.parametrizations.weight.original, 4)
    steps = conv.bias.detach() / scale
    assert torch.allclose(steps, steps.round(), atol=1e-3) and not torch.equal(conv.bias, conv.parametrizations.bias.original)
    old = {k.replace("parametrizations.bias.original", "bias"): v for k, v in net.state_dict().items()}
    fresh = _small_net(4)
    fresh.load_state_dict(old)  # a model.pt written before biases were quantized
    assert torch.equal(fresh[3].bias, conv.bias)


@pytest.mark.parametrize("values", [[float("nan")], [float("inf")], [4, float("-inf")], [1], [17], [2.5], [True]])
def test_check_bits_refuses_what_is_not_a_whole_width_with_a_config_error(values):
    from uboost.exceptions import ConfigError
    from uboost.quant import check_bits

    with pytest.raises(ConfigError, match="whole numbers from 2 to 16"):
        check_bits(values)
    assert check_bits([8, 4.0, 8]) == (8, 4)  # whole floats accepted, order kept, repeats dropped


def test_bits_given_as_the_command_lines_text_read_as_the_list():
    """`bits = "2,4,8"` in a --config TOML was read character by character ("got '2'", though 2 is allowed)."""
    from uboost.exceptions import ConfigError
    from uboost.search_config import SearchConfig

    assert SearchConfig(bits="2,4,8", pe="bitfusion").bits == (2, 4, 8)
    with pytest.raises(ConfigError, match="comma-separated"):
        SearchConfig(bits="2,x")
