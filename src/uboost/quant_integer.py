"""A frozen quantized layer computed on its integer codes, so that torch and onnxruntime agree.

A fake-quantized layer computes ``conv(s_x X, s_w W) + b`` with ``X`` and ``W`` integer-valued: the
float sums run in whatever order the runtime's kernel picks, and two runtimes (torch's oneDNN,
onnxruntime's NCHWc kernels) differ in the last bits. At 8 bits a value that sits at a rounding
near-tie of the next quantizer then lands one level apart (benchmarks/RESULTS.md, "8-bit ONNX
default session"). Here the same layer computes

    y = (s_x * s_w[c]) * conv(X, W) + b

on the codes themselves (``X = clamp(round(x * (1 / s_x)), -z, 2^b - 1 - z)``, ``W = clamp(round(w *
(1 / s_w)), -q, q)``: torch's fake quantization, the same float32 operations, before its final
multiply). Every product and every partial sum of ``conv(X, W)`` is an integer of magnitude at most
``K * (2^b_a - 1) * (2^(b_w - 1) - 1)`` (``K``: the inputs one output sums, ``C_in / groups * k_h * k_w``
or ``in_features``); while that is <= 2^24 each is a float32 number, so the sum is **exact in any
order** and both runtimes get the same integer, then the same two IEEE operations (a product, a
sum). :func:`exact_form` checks the bound per layer; a layer above it keeps the fake-quantized
float form (logged).

Where: only layers of a **frozen** network (:func:`uboost.quant.apply_precision`: retrain, export,
profile, a derived network), and only where no gradient is wanted -- eval mode under
``torch.no_grad``/``inference_mode``, or an ONNX export. Training (retrain's steps) and an eval
forward with gradients keep the fake-quantized form and its straight-through gradients unchanged,
and the search's mixture (``BitsChoice``: a weighted sum of candidates on the tensors, not codes)
never takes this path. The two forms are the same function up to float rounding (~1e-7 relative,
tests/test_quant_integer.py).

The batch norms of such a network (:func:`affine_batchnorm`) compute ``x * a + c`` on the same occasions:
torch's eval kernel and onnxruntime's ``BatchNormalization`` round differently (29 % of the outputs by
an ulp on ``lenet``), which is the same near-tie mechanism one op later; a Mul and an Add are the same
IEEE operations in both runtimes. Other ops between quantized layers (ReLU, max pooling, the sums of
two branches) are exact or computed in the same order; an average pool sums in its kernel's order (it
agreed on ``lenet``: RESULTS).

In ONNX (:func:`uboost.quant_onnx.export_mode`) the layer is ``Mul(x, 1/s_x) -> Round -> Clip`` (the
codes: onnxruntime's QuantizeLinear divides by the scale where torch multiplies by its reciprocal,
which rounds near-ties differently -- RESULTS), the float ``Conv``/``Gemm`` on them with weights
``DequantizeLinear(int8 codes, scale 1)``, then ``Mul(s_x s_w, y)`` and ``Add(b)``. The weights stay
behind the DequantizeLinear, which onnxruntime's default session does not fold into a constant, so
its ``ConvMulFusion`` cannot multiply the scale into them (which would make them non-integer);
the scale is also the Mul's *first* input (a second guard, not tested alone). With
``session.disable_quant_qdq=1`` the weights are folded but stay integer, and the rescale Muls become
1x1 per-channel NCHWc convolutions: one product per value, still exact (RESULTS).
"""

from __future__ import annotations

import logging

import torch
from torch import nn

logger = logging.getLogger(__name__)

EXACT_LIMIT = 2 ** 24  # float32 holds every integer up to this magnitude
SCALE = "_integer_scale"  # the quantizer's per-forward-pass note: s_x, then s_x * s_w


def partial_sum_bound(module: nn.Module, weight_bits: int, act_bits: int) -> int:
    """The largest magnitude any partial sum of ``conv(X, W)`` can reach: ``K (2^a - 1) (2^(w-1) - 1)``
    (an activation code spans at most ``2^a - 1`` either side of 0, a weight code ``2^(w-1) - 1``)."""
    fan_in = module.weight.shape[1:].numel()  # C_in / groups * k_h * k_w, or in_features
    return fan_in * (2 ** act_bits - 1) * (2 ** (weight_bits - 1) - 1)


def exact_form(module: nn.Module, quantizer) -> bool:
    """Compute ``module`` on codes (see the module docstring) when its partial sums are exact in float32."""
    bound = partial_sum_bound(module, quantizer.weight_bits, quantizer.act_bits)
    if bound > EXACT_LIMIT:
        logger.info("%s at %d/%d bits: partial sums up to %d > 2^24 are not exact in float32; "
                    "it keeps the fake-quantized float form", type(module).__name__, quantizer.weight_bits,
                    quantizer.act_bits, bound)
        return False
    quantizer.integer = True
    module.register_forward_hook(_rescale)
    return True


def affine_batchnorm(model: nn.Module) -> None:
    """Every ``BatchNorm`` of a frozen quantized network computes ``x * a + c`` in eval without gradients and
    in ONNX (``a = gamma / sqrt(var + eps)``, ``c = beta - mean * a``: a Mul and an Add in both runtimes)."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
            module.uboost_affine = True
            module.register_forward_hook(_affine)


def affine_batchnorm_off(model: nn.Module) -> list[nn.Module]:
    """Switch :func:`affine_batchnorm` off (an export in the standard QDQ form); returns the modules to switch back."""
    switched = [m for m in model.modules() if getattr(m, "uboost_affine", False)]
    for module in switched:
        module.uboost_affine = False
    return switched


def _affine(module: nn.Module, args: tuple, output: torch.Tensor):
    """Forward hook: the batch norm's eval output as ``x * a + c`` (the same function; torch's CPU kernel and
    onnxruntime's ``BatchNormalization`` round it differently -- 29 % of the outputs by an ulp, enough to move a
    value at a near-tie of the next quantizer a level; a Mul then an Add are the same IEEE operations in both)."""
    if not module.uboost_affine or module.training or not (torch.onnx.is_in_onnx_export() or not torch.is_grad_enabled()):
        return None
    x = args[0]
    root = torch.sqrt(module.running_var + module.eps)  # correctly rounded ops: the same constants folded anywhere
    a = 1.0 / root if module.weight is None else module.weight / root
    c = -module.running_mean * a if module.bias is None else module.bias - module.running_mean * a
    shape = (-1, *([1] * (x.dim() - 2)))
    return x * a.reshape(shape).to(x.dtype) + c.reshape(shape).to(x.dtype)


def active(quantizer) -> bool:
    """Whether this forward pass runs on codes (a frozen layer, no gradient wanted or an export)."""
    return quantizer.integer and (quantizer.exporting or not (quantizer.training or torch.is_grad_enabled()))


def input_codes(quantizer, x: torch.Tensor) -> torch.Tensor:
    """The input's codes ``clamp(round(x * (1 / s_x)), -z, 2^b - 1 - z)`` (integer-valued, in x's float
    dtype); notes ``s_x`` for :func:`weight_codes` and :func:`_rescale` in the same pass."""
    bits = quantizer.act_bits
    if x.device.type == "cpu" and not quantizer.exporting:
        scale, inv, zero = quantizer.host_qparams(bits)  # numbers, as the fake-quantized CPU path
    else:
        scale, zero = quantizer.act_qparams(bits)
        inv = 1.0 / scale
        if quantizer.exporting:  # constants of the graph
            scale, inv, zero = float(scale), float(inv), float(zero)
        else:
            zero = zero.to(torch.float32)
    quantizer.__dict__[SCALE] = scale
    source = x if x.dtype == torch.float32 else x.float()
    codes = torch.clamp(torch.round(source * inv), -zero, 2 ** bits - 1 - zero)
    return codes if x.dtype == torch.float32 else codes.to(x.dtype)


def weight_codes(quantizer, weight: torch.Tensor) -> torch.Tensor | None:
    """The weight's codes ``clamp(round(w * (1 / s_w)), -q, q)`` when this pass runs on codes, else None;
    the note becomes ``s_x * s_w`` (per output channel). In an export: ``DequantizeLinear(int8, 1)``."""
    s_x = quantizer.__dict__.get(SCALE)
    if s_x is None:
        return None
    from uboost.quant import weight_scale

    bits, qmax = quantizer.weight_bits, 2 ** (quantizer.weight_bits - 1) - 1
    source = weight if weight.dtype == torch.float32 else weight.float()
    s_w = weight_scale(source, bits)
    inv = (1.0 / s_w).reshape(-1, *([1] * (weight.dim() - 1)))
    codes = torch.clamp(torch.round(source * inv), -qmax, qmax)
    if quantizer.exporting:  # int8 initializer + DequantizeLinear (scale 1): not folded, see the module docstring
        codes = torch.fake_quantize_per_tensor_affine(codes, 1.0, 0, -128, 127)
    quantizer.__dict__[SCALE] = s_w * s_x
    return codes if weight.dtype == torch.float32 else codes.to(weight.dtype)


def in_pass(quantizer) -> bool:
    """Whether the layer's forward pass in progress runs on codes (the bias then waits for :func:`_rescale`)."""
    return quantizer.__dict__.get(SCALE) is not None


def _rescale(module: nn.Module, args: tuple, output: torch.Tensor):
    """Forward hook: ``(s_x s_w) * conv(X, W) + b`` after the layer ran on codes (a no-op otherwise)."""
    from uboost.quant import ATTR

    quantizer = getattr(module, ATTR)
    scale = quantizer.__dict__.pop(SCALE, None)
    if scale is None:
        return None
    shape = (-1, 1, 1) if isinstance(module, nn.Conv2d) else (-1,)  # per output channel
    out = torch.mul(scale.reshape(shape).to(output.dtype), output)  # the scale first: see the module docstring
    if module.bias is not None:  # the quantized bias (the note is gone, so it is the value again)
        out = out + module.bias.reshape(shape).to(output.dtype)
    return out
