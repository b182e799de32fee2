"""The one-pass numba fake quantization equals the torch passes bit for bit (values and gradients)."""

import pytest
import torch

from uboost import quant_numba
from uboost.quant import LayerQuantizer, _FakeQuantAct

pytest.importorskip("numba")


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def hard_inputs(scale: float, zero: float, bits: int) -> torch.Tensor:
    """Random values over and beyond the range, exact half steps, the two values just outside the
    range, the bounds themselves, zeros of both signs, NaN and infinities."""
    levels = 2 ** bits - 1
    g = torch.Generator().manual_seed(bits)
    x = (torch.rand(4096, generator=g) * (levels + 8) - zero - 4) * scale
    halves = (torch.arange(-zero - 2, levels - zero + 2) + 0.5) * scale
    edges = torch.tensor([-zero - 0.5, -zero - 0.5000001, levels - zero + 0.5, levels - zero + 0.5000001,
                          -zero, levels - zero]) * scale
    special = torch.tensor([0.0, -0.0, float("nan"), float("inf"), -float("inf")])
    # the special values first: torch's kernels treat a NaN in their scalar tail (the last < 16
    # elements) otherwise than in their vectorized body (hardtanh_backward passes its gradient there)
    return torch.cat([special, x, halves, edges]).float()


def both_paths(x: torch.Tensor, grad: torch.Tensor, args: tuple):
    out = []
    for kernels in (quant_numba.kernels(), None):
        saved = quant_numba._KERNELS
        quant_numba._KERNELS = kernels
        try:
            leaf = x.clone().requires_grad_()
            q = _FakeQuantAct.apply(leaf, *args)
            q.backward(grad)
            out.append((q.detach(), leaf.grad))
        finally:
            quant_numba._KERNELS = saved
    return out


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_same_values_and_gradients_as_torch_passes(one_thread, bits):
    assert quant_numba.kernels() is not None
    quantizer = LayerQuantizer(8, bits)
    quantizer.act_min.fill_(-0.37)
    quantizer.act_max.fill_(1.91)
    quantizer.observed.fill_(True)
    scale, inv, zero = quantizer.host_qparams(bits)
    x = hard_inputs(scale, zero, bits)
    grad = torch.randn(x.shape, generator=torch.Generator().manual_seed(7))
    grad[::5] = -0.0
    (q_numba, g_numba), (q_torch, g_torch) = both_paths(x, grad, (scale, -zero, 2 ** bits - 1 - zero, inv))
    assert torch.equal(q_numba.isnan(), q_torch.isnan())
    keep = ~q_torch.isnan()
    assert torch.equal(q_numba[keep], q_torch[keep]) and torch.equal(q_numba[keep].signbit(), q_torch[keep].signbit())
    assert torch.equal(g_numba, g_torch) and torch.equal(g_numba.signbit(), g_torch.signbit())
    # and both are torch's own fake quantization (NaN aside: torch's kernel maps it to a bound)
    ref = torch.fake_quantize_per_tensor_affine(x[keep], scale, int(zero), 0, 2 ** bits - 1)
    assert torch.equal(q_numba[keep], ref)


def test_a_4d_activation_and_the_quantizer_path(one_thread):
    """A layer input as the search quantizes it (LayerQuantizer.quantize_act): same values and gradient."""
    quantizer = LayerQuantizer(8, 4)
    x = torch.randn(16, 8, 6, 6).relu()
    quantizer._observe(x)
    grad = torch.randn(x.shape)
    results = []
    for kernels in (quant_numba.kernels(), None):
        saved, quant_numba._KERNELS = quant_numba._KERNELS, kernels
        try:
            leaf = x.clone().requires_grad_()
            q = quantizer.quantize_act(leaf, 4)
            q.backward(grad)
            results.append((q.detach(), leaf.grad))
        finally:
            quant_numba._KERNELS = saved
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])


def test_a_view_in_order_same_values_layout_and_gradient(one_thread):
    """A factorized reduction's shifted input ``x[:, :, 1:, 1:]`` (not contiguous): copied, then the
    loops; the same values, the same (contiguous) layout and the same gradient as torch's passes."""
    quantizer = LayerQuantizer(8, 4)
    base = torch.randn(8, 4, 7, 7).relu()
    quantizer._observe(base[:, :, 1:, 1:])
    grad = torch.randn(8, 4, 6, 6)
    results = []
    for kernels in (quant_numba.kernels(), None):
        saved, quant_numba._KERNELS = quant_numba._KERNELS, kernels
        try:
            leaf = base.clone().requires_grad_()
            view = leaf[:, :, 1:, 1:]
            assert not view.is_contiguous() and (kernels is None or quant_numba.usable(view))
            q = quantizer.quantize_act(view, 4)
            q.backward(grad)
            results.append((q.detach(), leaf.grad))
        finally:
            quant_numba._KERNELS = saved
    (q_numba, g_numba), (q_torch, g_torch) = results
    assert q_numba.stride() == q_torch.stride() == q_torch.contiguous().stride()
    assert torch.equal(q_numba, q_torch) and torch.equal(g_numba, g_torch)


def test_used_only_where_faster(one_thread):
    x = torch.zeros(2, 3)
    assert quant_numba.usable(x)
    assert not quant_numba.usable(x.t())  # not in order
    assert not quant_numba.usable(torch.zeros(2, 1).expand(2, 3))  # overlapping
    assert not quant_numba.usable(x.double())
    torch.set_num_threads(2)
    assert not quant_numba.usable(x)  # torch's passes run in parallel

