"""The one-pass numba fake quantization equals the torch passes bit for bit (values and gradients)."""

import pytest
import torch

from uboost import quant_numba
from uboost.quant import LayerQuantizer, _FakeQuantAct, fake_quant_weight

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


def torch_weight_path(weight: torch.Tensor, bits: int, grad: torch.Tensor):
    saved, quant_numba._KERNELS = quant_numba._KERNELS, None
    try:
        return weight_path(weight, bits, grad)
    finally:
        quant_numba._KERNELS = saved


def weight_path(weight: torch.Tensor, bits: int, grad: torch.Tensor):
    leaf = weight.clone().requires_grad_()
    q = fake_quant_weight(leaf, bits)
    q.backward(grad)
    return q.detach(), leaf.grad


@pytest.mark.parametrize("bits", [2, 3, 4, 8, 16])
def test_weights_same_values_and_gradients_as_torch(one_thread, bits):
    """The one-call weight fake quantization (scale included) against torch's amax scale and
    fake_quantize_per_channel_affine: random weights of conv and linear shapes, a zero channel,
    channels below the 1e-8 floor, exact half steps."""
    g = torch.Generator().manual_seed(bits)
    qmax = 2 ** (bits - 1) - 1
    for shape in [(8, 8, 3, 3), (32, 1, 5, 5), (10, 128), (16, 24, 1, 1), (3, 700)]:
        weight = torch.randn(shape, generator=g) * torch.rand(shape[0], *[1] * (len(shape) - 1), generator=g)
        weight[0] = 0.0
        weight[1] *= 1e-12  # peak below the floor: the scale is 1e-8 / qmax
        flat = weight.view(shape[0], -1)
        flat[2, 1:] = (torch.arange(flat.shape[1] - 1) % (2 * qmax) - qmax + 0.5) / qmax  # k + 1/2 steps of peak 1
        flat[2, 0] = 1.0
        grad = torch.randn(shape, generator=g)
        assert quant_numba.usable(weight)
        (q, dw), (q_ref, dw_ref) = weight_path(weight, bits, grad), torch_weight_path(weight, bits, grad)
        assert torch.equal(q, q_ref) and torch.equal(q.signbit(), q_ref.signbit())
        assert torch.equal(dw, dw_ref) and q.stride() == q_ref.stride()


def test_weights_a_sliced_super_kernel_and_non_finite(one_thread):
    """A slice of a larger kernel (a mixed conv's smaller width) and a channel with NaN or inf: the
    values torch gives (NaN where torch has NaN) and its gradient (0 where an element is out of range)."""
    g = torch.Generator().manual_seed(5)
    big = torch.randn(16, 16, 5, 5, generator=g)
    grad = torch.randn(8, 8, 3, 3, generator=g)
    leaf_n, leaf_t = big.clone().requires_grad_(), big.clone().requires_grad_()
    results = []
    for leaf, kernels in ((leaf_n, quant_numba.kernels()), (leaf_t, None)):
        saved, quant_numba._KERNELS = quant_numba._KERNELS, kernels
        try:
            view = leaf[:8, :8, 1:4, 1:4]
            assert kernels is None or quant_numba.usable(view)
            q = fake_quant_weight(view, 4)
            q.backward(grad)
            results.append(q.detach())
        finally:
            quant_numba._KERNELS = saved
    assert torch.equal(results[0], results[1]) and torch.equal(leaf_n.grad, leaf_t.grad)
    weight = torch.randn(4, 6, generator=g)
    weight[1, 2], weight[2, 3], weight[3, 0] = float("nan"), float("inf"), -float("inf")
    grad = torch.randn(4, 6, generator=g)
    (q, dw), (q_ref, dw_ref) = weight_path(weight, 4, grad), torch_weight_path(weight, 4, grad)
    assert torch.equal(q.isnan(), q_ref.isnan()) and torch.equal(q[~q.isnan()], q_ref[~q_ref.isnan()])
    assert torch.equal(dw, dw_ref) and not bool(dw[1:].eq(grad[1:]).all())  # some masked
