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
