"""Fake quantization of ``Conv2d``/``Linear`` layers: the one quantizer the search, the retrain
and the ONNX export share.

* **Weights**: symmetric, per output channel, ``b`` bits -> integers in ``[-(2^(b-1) - 1), 2^(b-1) - 1]``
  (the narrow range: 2 bits is {-1, 0, 1}); the scale of channel ``c`` is ``max|W_c| / (2^(b-1) - 1)``
  (min/max, recomputed from the weights at every use).
* **Activations** (a layer's input): asymmetric, per tensor, ``b`` bits -> ``[0, 2^b - 1]`` with a zero
  point; the range is an exponential moving average (momentum 0.1) of the batch min/max, widened to
  hold 0, updated in training and fixed in eval mode (what the exported model uses).
* **Bias**: int32 at the scale ``s_x * s_w[c]``, as integer kernels hold it and as onnxruntime
  quantizes it -- at a layer's one width per operand (retrain, export, pinned layers, a single-path
  search's sampled widths); a search's mixture of widths keeps a float bias.
* **A supernet's mixed layer** (NNI's width/kernel choices, :mod:`uboost.strategy._sliced`): the
  scales are over the part of the super-kernel the forward pass uses, as the frozen layer's.
* **Gradients**: straight-through (``torch.fake_quantize_per_*_affine``: the identity inside the
  range, 0 outside it; weights never leave theirs).

:class:`LayerQuantizer` quantizes one layer at one bitwidth per operand, or -- through
:meth:`LayerQuantizer.mixture`, which the search's choice module overrides
(:mod:`uboost.strategy.precision`) -- at a weighted mixture of bitwidths: ``sum_i p_i Q_i(W)`` and
``sum_j q_j Q_j(x)``, then **one** convolution (exact by bilinearity: EdMIPS). :func:`attach` puts a
quantizer on a module (a weight parametrization and an input pre-hook) and marks the module's
``uboost_precision = (weight_bits, act_bits)``, which the cost models read.

A frozen network's layers (:func:`apply_precision`) compute on their integer codes where no gradient
is wanted and in ONNX (:mod:`uboost.quant_integer`: the same function, with sums exact in any order, so
that onnxruntime computes what torch computes). For ONNX (:func:`uboost.quant_onnx.export_mode`), a layer that cannot
(partial sums above 2^24) exports as ``Clip`` to the ``b``-bit range followed by 8-bit
``QuantizeLinear``/``DequantizeLinear`` with the same scale and zero point (ONNX has only 8-bit QDQ;
REFERENCES §2), weights as per-axis int8 QDQ of their own ``b``-bit integers.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from uboost import quant_integer, quant_numba
from uboost.exceptions import ArchitectureError, ConfigError, comma_items

MIN_BITS, MAX_BITS = 2, 16
ATTR = "uboost_quant"  # the child module holding a layer's quantizer
SLICES = "_slices"  # in a quantizer's __dict__ during a mixed layer's forward pass: the parts of the weight it uses
PRECISION_FILE = "precision.json"


def check_bits(values, what: str = "bits") -> tuple[int, ...]:
    """A non-empty tuple of whole bitwidths in [2, 16], or a ConfigError saying what was expected."""
    if isinstance(values, bool):
        raise ConfigError(f"{what} must be whole numbers from {MIN_BITS} to {MAX_BITS}, got {values!r}")
    if isinstance(values, (int, float)):
        values = (values,)
    if isinstance(values, str):  # "2,4,8", as the command line takes it (a TOML --config may spell it so)
        return parse_bits(values, what)
    if values is not None and not isinstance(values, (list, tuple)):
        raise ConfigError(f"{what} must be a list of whole numbers from {MIN_BITS} to {MAX_BITS}, got {values!r}")
    values = tuple(values) if values is not None else ()
    if not values:
        raise ConfigError(f"{what} must list at least one bitwidth")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not MIN_BITS <= v <= MAX_BITS or v != int(v):
            raise ConfigError(f"{what} must be whole numbers from {MIN_BITS} to {MAX_BITS}, got {v!r}")
        out.append(int(v))
    return tuple(dict.fromkeys(out))  # in order, without repeats


def parse_bits(text: str, what: str = "--bits") -> tuple[int, ...]:
    """``"2,4,8"`` -> ``(2, 4, 8)``; bad text raises a ConfigError."""
    parts = comma_items(text, what)
    values = []
    for p in parts:
        try:
            value = float(p)
        except ValueError:
            raise ConfigError(f"{what} must be comma-separated whole numbers (e.g. 2,4,8), got {text!r}") from None
        if not MIN_BITS <= value <= MAX_BITS or value != int(value):  # said as typed (1.5, 33, inf, not 33.0)
            raise ConfigError(f"{what} must be whole numbers from {MIN_BITS} to {MAX_BITS}, got {p}")
        if value in values:  # a typo for another width (2,2 for 2,4?), not a second choice
            raise ConfigError(f"{what} lists {int(value)} twice, got {text!r}; give each bitwidth once")
        values.append(value)
    return check_bits(values, what)


def fake_quant_weight(weight: torch.Tensor, bits: int, scale: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric per-output-channel fake quantization at ``bits`` (straight-through gradient)."""
    if scale is None and weight.dim() > 1 and quant_numba.usable(weight) and not (
            torch.jit.is_tracing() or torch.jit.is_scripting()):  # one call, the same numbers (a trace records torch ops)
        return _FakeQuantWeight.apply(weight, bits)
    qmax = 2 ** (bits - 1) - 1
    if scale is None:
        scale = weight_scale(weight, bits)
    return torch.fake_quantize_per_channel_affine(weight, scale, _zeros(weight.shape[0], weight.device), 0, -qmax, qmax)


def _zeros(n: int, device) -> torch.Tensor:
    """The int32 zero points of ``n`` channels (read-only: made once per size and device)."""
    return _zeros_on(n, str(device))


@functools.lru_cache(maxsize=256)
def _zeros_on(n: int, device: str) -> torch.Tensor:
    return torch.zeros(n, dtype=torch.int32, device=device)


def weight_scale(weight: torch.Tensor, bits: int) -> torch.Tensor:
    qmax = 2 ** (bits - 1) - 1
    # max |W_c| per output channel: the inf-norm (torch.linalg.vector_norm(ord=inf) is 2-12x slower on CPU)
    with torch.no_grad():
        peak = weight.reshape(weight.shape[0], -1).abs().amax(1)
        scale = peak.clamp_min_(1e-8).div_(qmax)  # in place on a fresh tensor: the same values
    return scale if scale.dtype == torch.float32 else scale.float()


class LayerQuantizer(nn.Module):
    """Fake-quantizes one layer's weight and input at ``weight_bits`` / ``act_bits``."""

    def __init__(self, weight_bits: int = 8, act_bits: int = 8, momentum: float = 0.1):
        super().__init__()
        self.weight_bits, self.act_bits = int(weight_bits), int(act_bits)
        self.momentum = momentum
        self.register_buffer("act_min", torch.zeros(()))
        self.register_buffer("act_max", torch.zeros(()))
        self.register_buffer("observed", torch.zeros((), dtype=torch.bool))
        self.exporting = False
        self.integer = False  # a frozen layer, computed on codes where no gradient is wanted (uboost.quant_integer)

    # -- what to quantize at: overridden by the search's choice (uboost.strategy.precision) ----
    def mixture(self, operand: str) -> list[tuple[int, torch.Tensor | None]]:
        """``[(bits, coefficient or None)]`` for ``operand`` ("weight" or "act"); ``None``: 1."""
        return [(self.weight_bits if operand == "weight" else self.act_bits, None)]

    @property
    def precision(self) -> tuple[int, int]:
        return self.weight_bits, self.act_bits

    def bias_precision(self) -> tuple[int, int] | None:
        """``(weight_bits, act_bits)`` of this pass, the bias's; ``None``: a mixture of widths (a float bias)."""
        return self.precision

    # -- activations ---------------------------------------------------------------------------
    def _observe(self, x: torch.Tensor) -> None:
        lo, hi = torch.aminmax(x.detach())  # one pass; detached, so no graph (cheaper than a no_grad block per layer)
        seen = self.__dict__.get("_seen")
        if seen is None:  # one host read per quantizer and process (a resumed EMA continues)
            seen = self.__dict__["_seen"] = bool(self.observed)
        weight = self.momentum if seen else 1.0
        if lo.dtype != torch.float32:
            lo, hi = lo.float(), hi.float()
        buffers = self._buffers  # (not nn.Module.__getattr__ per buffer)
        buffers["act_min"].lerp_(lo.clamp_max_(0.0), weight)  # in place on aminmax's fresh results: the same values
        buffers["act_max"].lerp_(hi.clamp_min_(0.0), weight)
        if not seen:
            buffers["observed"].fill_(True)
            self.__dict__["_seen"] = True

    def _load_from_state_dict(self, *args, **kwargs):
        self.__dict__.pop("_seen", None)  # the loaded `observed` decides again
        return super()._load_from_state_dict(*args, **kwargs)

    def act_qparams(self, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Scale and zero point of the input range at ``bits`` (0-d float32 / int32 tensors)."""
        levels = 2 ** bits - 1
        scale = ((self.act_max - self.act_min) / levels).clamp_min(1e-8).float()
        zero = torch.clamp(torch.round(-self.act_min / scale), 0, levels).to(torch.int32)
        return scale, zero

    def act_scale(self, bits: int) -> torch.Tensor | float:
        """The input scale at ``bits`` (on a CPU :meth:`host_qparams`'s number: the same value)."""
        host = self.act_min.device.type == "cpu" and not (self.exporting or torch.jit.is_tracing() or torch.jit.is_scripting())
        return self.host_qparams(bits)[0] if host else self.act_qparams(bits)[0]

    def host_qparams(self, bits: int) -> tuple[float, float, float]:
        """:meth:`act_qparams` computed on the host, as numbers: ``(scale, 1 / scale, zero)``, the
        same float32 operations in the same order (numpy float32 scalars: IEEE, as torch's kernels;
        ``1 / scale`` as torch's ``1.0 / scale``, a float32 reciprocal). On a CPU this replaces a dozen
        tiny tensor ops per layer and forward pass by two reads (tests/test_quant.py checks the equality)."""
        buffers = self._buffers
        lo, hi = np.float32(buffers["act_min"].item()), np.float32(buffers["act_max"].item())
        levels = np.float32(2 ** bits - 1)
        scale = max((hi - lo) / levels, np.float32(1e-8))
        zero = min(max(np.rint(-lo / scale), np.float32(0.0)), levels)
        return float(scale), float(np.float32(1.0) / scale), float(zero)

    def quantize_act(self, x: torch.Tensor, bits: int) -> torch.Tensor:
        if x.device.type == "cpu" and x.dtype == torch.float32 and not (
                self.exporting or torch.jit.is_tracing() or torch.jit.is_scripting()):
            scale, inv, zero = self.host_qparams(bits)  # numbers: clamp with tensor bounds is ~10x slower on CPU
            return _FakeQuantAct.apply(x, scale, -zero, 2 ** bits - 1 - zero, inv)
        scale, zero = self.act_qparams(bits)
        if self.exporting:  # Clip to the b-bit range, then 8-bit QDQ with the same scale (ONNX), as constants
            scale, zero = float(scale), int(zero)  # (computed bounds let onnxruntime's Clip/Q fusion drop the Clip)
            lo, hi = (0 - zero) * scale, (2 ** bits - 1 - zero) * scale
            return torch.fake_quantize_per_tensor_affine(torch.clamp(x, lo, hi), scale, zero, 0, 255)
        if x.device.type == "cpu" and not (torch.jit.is_tracing() or torch.jit.is_scripting()):
            z = float(zero)  # bounds as numbers (no sync to fear)
            return _FakeQuantAct.apply(x, scale.to(x.dtype), -z, 2 ** bits - 1 - z)
        # traced, or on an accelerator: torch's kernel with the qparams as tensors (no host read), one
        # pass each way. A GPU step on small layers is bound by kernel launches: this is 2 per layer
        # where _FakeQuantAct with tensor bounds took 12 (benchmarks/RESULTS.md, "bits on a GPU")
        return torch.fake_quantize_per_tensor_affine(x, scale, zero, 0, 2 ** bits - 1)

    def quantize_input(self, x: torch.Tensor) -> torch.Tensor:
        if not self.exporting and (self.training or not bool(self.observed)):  # first use in eval: observe once, then fixed
            self._observe(x)
        self.__dict__.pop(quant_integer.SCALE, None)
        if quant_integer.active(self):  # eval/export of a frozen layer: its codes, exact in torch and onnxruntime
            return quant_integer.input_codes(self, x)
        terms = self.mixture("act")
        carry = None
        if len(terms) == 1 and terms[0][1] is not None and not self.exporting:
            # one sampled width: its straight-through weight c moves onto the weight, conv(c Q(x), W) =
            # conv(Q(x), c W) (bilinear), a multiply of the small weight instead of the activation
            (bits, carry), = terms
            terms = [(bits, None)]
        self.__dict__["_carry"] = carry  # read by quantize_weight in the same forward pass
        if x.dtype == torch.float32:
            return _combine([(self.quantize_act(x, b), c) for b, c in terms])
        return _combine([(self.quantize_act(x.float(), b).to(x.dtype), c) for b, c in terms])

    # -- weights -------------------------------------------------------------------------------
    def quantize_weight(self, weight: torch.Tensor) -> torch.Tensor:
        codes = quant_integer.weight_codes(self, weight)
        if codes is not None:  # this forward pass runs on codes (quantize_input began it)
            return codes
        if self.exporting:  # per-axis int8 QDQ of the b-bit integers (same values)
            (bits, _), = self.mixture("weight")
            return torch.fake_quantize_per_channel_affine(
                weight, weight_scale(weight, bits), torch.zeros(weight.shape[0], dtype=torch.int32), 0, -128, 127)
        terms = self.mixture("weight")
        carry = self.__dict__.pop("_carry", None)
        if carry is not None:  # the activation's straight-through weight (see quantize_input)
            terms = [(b, carry if c is None else c * carry) for b, c in terms]
        if weight.dtype == torch.float32:
            return _combine([(self.weight_at(weight, b), c) for b, c in terms])
        return _combine([(self.weight_at(weight.float(), b).to(weight.dtype), c) for b, c in terms])

    def weight_at(self, weight: torch.Tensor, bits: int) -> torch.Tensor:
        """``weight`` at ``bits``; a mixed layer's, at the scales of the part it uses (uboost.strategy._sliced)."""
        slices = self.__dict__.get(SLICES)
        return fake_quant_weight(weight, bits) if slices is None else slices.fake_quant(weight, bits)


class _FakeQuantAct(torch.autograd.Function):
    """``torch.fake_quantize_per_tensor_affine(x, scale, zero, 0, 2^b - 1)``, the same numbers and
    straight-through gradient (x's gradient passes where ``round(x / scale)`` is in range) in
    fewer passes over the tensor on a CPU, where the bounds are numbers read on the host:
    ``round(x * (1 / scale))`` clamped to ``[-zero, 2^b - 1 - zero]``, times ``scale``
    (``(q - zero) * scale`` with the integer ``q``: exact) -- four passes forward. The rounded,
    unclamped ``r`` is kept for the backward, which is one pass: ``hardtanh_backward(grad, r, lo -
    1/2, hi + 1/2)`` (``r`` is whole, so strictly inside those bounds is exactly ``lo <= r <= hi``).
    Forward + backward ~2x faster than torch's kernel on CPU, 1.1-1.3x faster than building a 0/1
    mask in the forward (tests/test_quant.py checks the equality). A GPU uses torch's kernel
    (:meth:`LayerQuantizer.quantize_act`)."""

    @staticmethod
    def forward(ctx, x, scale, lo, hi, inv=None):
        if inv is not None and quant_numba.usable(x):  # one pass each way, the same numbers (uboost.quant_numba)
            q, mask = quant_numba.fake_quant_forward(x, scale, lo, hi, inv)
            ctx.save_for_backward(mask)
            ctx.bounds = None
            return q
        # torch's kernel: nearbyint(x * inv_scale), inv_scale = 1 / scale in fp32 (``inv``, given with a number scale)
        r = (x * (1.0 / scale if inv is None else inv)).round_()
        q = r.clamp(lo, hi)
        ctx.save_for_backward(r)
        ctx.bounds = (lo - 0.5, hi + 0.5)
        return q.mul_(scale)

    @staticmethod
    def backward(ctx, grad):
        r, = ctx.saved_tensors
        if ctx.bounds is None:  # r is the numba forward's mask
            if grad.dtype == torch.float32 and not torch.is_grad_enabled():
                return quant_numba.masked_grad(grad, r), None, None, None, None
            return torch.where(r.bool(), grad, 0.0), None, None, None, None
        return torch.ops.aten.hardtanh_backward(grad, r, *ctx.bounds), None, None, None, None


class _FakeQuantWeight(torch.autograd.Function):
    """:func:`fake_quant_weight` with the scale in one numba call (:func:`uboost.quant_numba.fake_quant_weight`):
    the same values; the gradient ``grad * mask`` as torch's, which is ``grad`` itself when every
    element is in range (a finite weight's always is)."""

    @staticmethod
    def forward(ctx, weight, bits):
        out, ctx.mask = quant_numba.fake_quant_weight(weight, bits)
        return out

    @staticmethod
    def backward(ctx, grad):
        return (grad if ctx.mask is None else grad * ctx.mask), None


def _combine(terms: list[tuple[torch.Tensor, torch.Tensor | None]]) -> torch.Tensor:
    if len(terms) == 1 and terms[0][1] is None:
        return terms[0][0]
    out = None
    for value, coef in terms:
        term = value if coef is None else value * coef.to(value.dtype)
        out = term if out is None else out + term
    return out


class _BiasParametrization(nn.Module):
    """``bias -> round(bias / s) * s`` with ``s = s_x * s_w`` (the input's scale times each output
    channel's weight scale): the int32 bias of integer kernels. onnxruntime quantizes a float bias
    next to QDQ inputs this way (its WeightBiasQuantization); doing it here too makes its default
    session compute what the fake-quantized model computes (idempotent on an already quantized bias)."""

    def __init__(self, quantizer: LayerQuantizer, module: nn.Module):
        super().__init__()
        self.__dict__["quantizer"], self.__dict__["module"] = quantizer, module

    def forward(self, bias: torch.Tensor) -> torch.Tensor:
        quantizer = self.__dict__["quantizer"]
        if quant_integer.in_pass(quantizer):  # a pass on codes adds the bias after the rescale (quant_integer)
            return torch.zeros_like(bias)
        slices = quantizer.__dict__.get(SLICES)  # a mixed layer: the scales of the part of the weight it uses
        if slices is not None and slices.bias[0] is bias:  # (read a second time in the same pass)
            return slices.bias[1]
        precision = quantizer.bias_precision()
        if precision is None:  # a mixture of widths
            return bias
        weight_bits, act_bits = precision
        weight = self.__dict__["module"].parametrizations.weight.original
        s_x = quantizer.act_scale(act_bits)
        if slices is None:
            return _round_bias(bias, s_x * weight_scale(weight, weight_bits))
        return slices.quantize_bias(bias, weight, weight_bits, lambda b, s_w: _round_bias(b, s_x * s_w))


def _round_bias(bias: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    q = torch.clamp(torch.round(bias.detach() * (1.0 / scale)), -2 ** 31, 2 ** 31 - 1) * scale
    return bias + (q - bias.detach())  # straight-through


def _old_bias_key(module, state_dict, prefix, *args) -> None:
    """A state dict saved before biases were quantized holds ``bias`` (now ``parametrizations.bias.original``)."""
    if prefix + "bias" in state_dict and prefix + "parametrizations.bias.original" not in state_dict:
        state_dict[prefix + "parametrizations.bias.original"] = state_dict.pop(prefix + "bias")


class _WeightParametrization(nn.Module):
    """``weight -> quantizer.quantize_weight(weight)`` (the quantizer is not a submodule here)."""

    def __init__(self, quantizer: LayerQuantizer):
        super().__init__()
        self.__dict__["quantizer"] = quantizer

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return self.__dict__["quantizer"].quantize_weight(weight)


def _input_hook(module: nn.Module, args: tuple):
    if not args or not isinstance(args[0], torch.Tensor):
        return None
    return (getattr(module, ATTR).quantize_input(args[0]), *args[1:])


def attach(module: nn.Module, quantizer: LayerQuantizer) -> LayerQuantizer:
    """Quantize ``module`` (a ``Conv2d``/``Linear``) with ``quantizer``: weight parametrization,
    input pre-hook, ``module.uboost_quant`` and ``module.uboost_precision``."""
    if not isinstance(module, (nn.Conv2d, nn.Linear)):
        raise ConfigError(f"only Conv2d and Linear layers are quantized, got {type(module).__name__}")
    if hasattr(module, ATTR):
        raise ConfigError(f"{type(module).__name__} is already quantized")
    setattr(module, ATTR, quantizer)
    parametrize.register_parametrization(module, "weight", _WeightParametrization(quantizer), unsafe=True)
    if module.bias is not None:
        parametrize.register_parametrization(module, "bias", _BiasParametrization(quantizer, module), unsafe=True)
        module._register_load_state_dict_pre_hook(_old_bias_key, with_module=True)
    module.register_forward_pre_hook(_input_hook)
    module.__dict__["uboost_precision"] = quantizer.precision
    return quantizer


def quantized_layers(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            yield name, module


# -- precision.json: bits per layer of a frozen network --------------------------------------
def check_precision(data, what: str = PRECISION_FILE) -> dict[str, tuple[int, int]]:
    """``{layer: {"weight_bits": w, "act_bits": a}}`` validated into ``{layer: (w, a)}``."""
    if not isinstance(data, Mapping) or not data:
        raise ArchitectureError(f"{what} must map layer names to their bits")
    out = {}
    for name, entry in data.items():
        if not isinstance(entry, Mapping) or set(entry) != {"weight_bits", "act_bits"}:
            raise ArchitectureError(f"{what}: layer {name!r} needs exactly weight_bits and act_bits")
        for key in ("weight_bits", "act_bits"):  # one width each: not a list, text or a flag
            value = entry[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ArchitectureError(f"{what}: {name} {key} must be one whole number from {MIN_BITS} to {MAX_BITS}, "
                                        f"got {value!r}")
        try:
            w, = check_bits(entry["weight_bits"], f"{what}: {name} weight_bits")
            a, = check_bits(entry["act_bits"], f"{what}: {name} act_bits")
        except ConfigError as exc:
            raise ArchitectureError(str(exc)) from None
        out[str(name)] = (w, a)
    return out


def precision_dict(bits: Mapping[str, tuple[int, int]]) -> dict[str, dict[str, int]]:
    return {name: {"weight_bits": int(w), "act_bits": int(a)} for name, (w, a) in bits.items()}


def apply_precision(model: nn.Module, precision: Mapping[str, tuple[int, int]]) -> nn.Module:
    """Quantize every ``Conv2d``/``Linear`` of a frozen network at its bits from ``precision``
    (:func:`check_precision` output); a layer missing from it, or a name it has that the network
    lacks, raises an :class:`ArchitectureError` before anything changes."""
    layers = dict(quantized_layers(model))
    missing, extra = sorted(set(layers) - set(precision)), sorted(set(precision) - set(layers))
    if missing or extra:
        raise ArchitectureError(
            f"{PRECISION_FILE} does not fit the network: {len(missing)} layers without bits {missing[:3]}, "
            f"{len(extra)} unknown layers {extra[:3]}")
    for name, module in layers.items():
        quant_integer.exact_form(module, attach(module, LayerQuantizer(*precision[name])))  # frozen: exact on codes
    quant_integer.affine_batchnorm(model)
    return model


def read_precision(path) -> dict[str, tuple[int, int]]:
    try:
        data = json.loads(open(path, encoding="utf-8").read())
    except (OSError, ValueError) as exc:
        raise ArchitectureError(f"cannot read {path}: {exc}") from None
    return check_precision(data, str(path))


def apply_run_precision(network: nn.Module, root) -> dict[str, tuple[int, int]] | None:
    """Quantize a run's frozen network at the bits of its ``precision.json`` (if it has one)."""
    from pathlib import Path

    path = Path(root) / PRECISION_FILE
    if not path.is_file():
        return None
    precision = read_precision(path)
    apply_precision(network, precision)
    return precision


__all__ = [
    "LayerQuantizer", "PRECISION_FILE", "apply_precision", "apply_run_precision", "attach", "check_bits", "check_precision",
    "fake_quant_weight", "parse_bits", "precision_dict", "read_precision",
]
