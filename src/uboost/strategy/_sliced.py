"""A quantized mixed operation's weight scales over the part of its super-kernel a path uses.

NNI's mixed ``Conv2d``/``Linear`` (width and kernel choices) read their whole super-kernel
``self.weight`` -- which runs the quantizer's weight parametrization (:mod:`uboost.quant`) -- and only
then slice or mask it: a kernel choice keeps the kernel's centre, an input-width choice a prefix of the
input channels, an output-width choice a prefix of the output channels. Output channel ``c``'s scale
``max|W_c|`` over the whole super-kernel is not the scale of the layer ``space.freeze(arch)`` builds,
which holds the slice only. :func:`track` gives the quantizer, for each forward pass, the forward
arguments NNI's sampling policy hands the operation as :class:`Slices` (an output width needs none: a
channel's scale is its own):

* one value per argument (single path: a one-entry distribution; a pinned alpha): the scales over that
  part, so the layer computes the frozen layer (weight, and int32 bias at the sampled bits);
* a distribution over several (the mixture): every candidate ``c`` of the input-width x kernel cross
  product at its own scales, mixed per element as ``sum_c P_c m_c Q_c(W) / sum_c P_c m_c`` (``m_c`` its
  0/1 mask, ``P_c`` its weight): NNI's mask ``sum_c P_c m_c`` times it is ``sum_c P_c m_c Q_c(W)``, the
  mixture of the candidates' own quantized kernels; a fixed-width layer's bias is ``sum_c P_c Qb_c``.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from nni.nas.oneshot.pytorch.supermodule._expression_utils import evaluate_constant
from nni.nas.oneshot.pytorch.supermodule.operation import MixedConv2d, MixedLinear

from uboost.quant import ATTR, SLICES, fake_quant_weight, weight_scale


class Slices:
    """The parts ``[(index, weight)]`` of a layer's weight one forward pass uses: ``index`` a tuple of
    slices (``None``: all of it), ``weight`` the candidate's weight in a mixture (``None``: one part)."""

    def __init__(self, parts: list[tuple[tuple | None, torch.Tensor | None]]):
        self.parts = parts
        self.bias: tuple = (None, None)  # (bias, its quantization) of this forward pass: NNI reads the bias twice

    @staticmethod
    def scale(weight: torch.Tensor, bits: int, index) -> torch.Tensor:
        return weight_scale(weight if index is None else weight[index], bits)

    def fake_quant(self, weight: torch.Tensor, bits: int) -> torch.Tensor:
        """``weight`` with each part quantized as the frozen layer's slice (the same call), 0 outside it."""
        if len(self.parts) == 1:
            return _quantized_part(weight, bits, self.parts[0][0])
        num = den = None
        for index, p in self.parts:
            mask = (torch.ones_like(weight) if index is None else _mask(weight, index)) * p
            term = p * _quantized_part(weight, bits, index)  # (0 outside the part: its mask's product)
            num, den = (term, mask) if num is None else (num + term, den + mask)
        return num / den.clamp_min(torch.finfo(den.dtype).tiny)  # 0/0 only where every weight is 0: NNI's mask is 0 there

    def quantize_bias(self, bias: torch.Tensor, weight: torch.Tensor, bits: int, rounding) -> torch.Tensor:
        """``rounding(bias, s_w)`` (the int32 bias at weight scales ``s_w``) of each part, weighed by the parts' weights."""
        values = [rounding(bias, self.scale(weight, bits, index)) for index, _ in self.parts]
        out = values[0] if len(values) == 1 else sum(p * v for (_, p), v in zip(self.parts, values))
        self.bias = (bias, out)
        return out


def _quantized_part(weight: torch.Tensor, bits: int, index) -> torch.Tensor:
    if index is None:
        return fake_quant_weight(weight, bits)
    pad = []  # the part quantized on its own, then zeros around it (F.pad: the last dimension first)
    for part, size in reversed(list(zip(index, weight.shape))):
        pad += [part.start or 0, size - (size if part.stop is None else min(part.stop, size))]
    return F.pad(fake_quant_weight(weight[index], bits), pad)


def _mask(weight: torch.Tensor, index: tuple) -> torch.Tensor:
    mask = torch.zeros_like(weight)
    mask[index] = 1.0
    return mask


def _options(value) -> list:
    """NNI's forward argument as ``[(value, weight or None)]``: a distribution ``{value: weight}`` or one value."""
    return list(value.items()) if isinstance(value, dict) else [(value, None)]


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _product(*weights):
    out = None
    for w in weights:
        if w is not None:
            out = w if out is None else out * w
    return out


def slices(operation, args: dict) -> Slices:
    """The input-width x kernel parts of ``operation``'s super-kernel that its forward arguments
    ``args`` select, sliced as NNI's ``_freeze_weight_impl`` / ``freeze_weight`` slice them."""
    weight = operation.parametrizations.weight.original
    if isinstance(operation, MixedLinear):
        kernels = [((), None)]
        ins = [(v, p) for v, p in _options(args["in_features"])]
    else:
        groups = args["groups"]
        if isinstance(groups, dict):  # NNI: in_channels / groups is a constant
            mutable = operation.mutable_arguments
            ins = [(int(evaluate_constant(mutable["in_channels"] / mutable["groups"])), None)]
        else:
            ins = [(v // groups, p) for v, p in _options(args["in_channels"])]
        (max_a, max_b), kernels = operation.kernel_size, []
        for k, p in _options(args["kernel_size"]):
            ka, kb = _pair(k)
            a, b = (max_a - ka) // 2, (max_b - kb) // 2
            kernels.append(((slice(a, a + ka), slice(b, b + kb)), p))
    parts = []
    for (n_in, p_in), (kernel, p_k) in itertools.product(ins, kernels):
        index = (slice(None), slice(0, n_in), *kernel)
        whole = all(s.start in (None, 0) and (s.stop is None or s.stop >= size) for s, size in zip(index, weight.shape))
        parts.append((None if whole else index, _product(p_in, p_k)))
    if len(parts) == 1:
        parts = [(parts[0][0], None)]
    return Slices(parts)


class _Recording:
    """A mixed operation's sampling policy that also gives the layer's quantizer the :class:`Slices` of the
    forward arguments it hands the operation (``MixedOperation.forward`` asks for all of them, in order,
    before it reads the weight)."""

    def __init__(self, policy):
        self.policy = policy
        self.args: dict = {}

    def resample(self, operation, memo):
        return self.policy.resample(operation, memo)

    def export(self, operation, memo):
        return self.policy.export(operation, memo)

    def export_probs(self, operation, memo):
        return self.policy.export_probs(operation, memo)

    def forward_argument(self, operation, name: str):
        value = self.policy.forward_argument(operation, name)
        names = operation.argument_list
        if name == names[0]:
            self.args = {}
        self.args[name] = value
        if name == names[-1] and len(self.args) == len(names):
            getattr(operation, ATTR).__dict__[SLICES] = slices(operation, self.args)
            self.args = {}
        return value


def _forget(module, args, output):
    getattr(module, ATTR).__dict__.pop(SLICES, None)  # a later read of the weight outside a forward pass: all of it


SLICING = ("in_channels", "kernel_size", "groups", "in_features")  # the arguments that change a channel's part


def track(module: torch.nn.Module) -> None:
    """Quantize ``module`` (a quantized supernet layer) over the part of its weight each forward pass uses,
    if it is one of NNI's mixed ``Conv2d``/``Linear`` with a choice of input width or kernel (else nothing
    changes: every path uses all of each output channel)."""
    if (isinstance(module, (MixedConv2d, MixedLinear)) and not isinstance(module.sampling_policy, _Recording)
            and any(name in module.mutable_arguments for name in SLICING)):
        module.sampling_policy = _Recording(module.sampling_policy)
        module.register_forward_hook(_forget)
