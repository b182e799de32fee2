"""A quantized network in its ONNX form: which forms there are, what ONNX can hold, and the switch
that puts every :class:`~uboost.quant.LayerQuantizer` of a model into its export form while
``torch.onnx.export`` traces it."""

from __future__ import annotations

import contextlib
import warnings

import torch
from torch import nn

from uboost import quant_integer
from uboost.exceptions import ConfigError
from uboost.quant import LayerQuantizer

# ONNX graphs of a quantized network: "exact" computes what torch computes bit for bit in onnxruntime's default
# session; "qdq" is the standard QDQ form (equal below 8 bits; at 8 bits a near-tie can land a level apart)
ONNX_FORMS = ("exact", "qdq")


def check_onnx_exportable(model: nn.Module, form: str = "exact") -> list:
    """The model's quantizers, or a ConfigError for a form or bits ONNX cannot hold (checked before writing)."""
    if form not in ONNX_FORMS:
        raise ConfigError(f"unknown ONNX form {form!r}; expected one of: {', '.join(ONNX_FORMS)}")
    quantizers = [m for m in model.modules() if isinstance(m, LayerQuantizer)]
    for q in quantizers:
        if q.weight_bits > 8 or q.act_bits > 8:
            raise ConfigError(f"ONNX has 8-bit QuantizeLinear only: cannot export {q.weight_bits}/{q.act_bits}-bit layers")
    return quantizers


@contextlib.contextmanager
def export_mode(model: nn.Module, form: str = "exact"):
    """Quantizers in their ONNX form for the duration of an export. ``form="exact"``: frozen layers on their
    integer codes (:mod:`uboost.quant_integer`; a layer above its 2^24 bound as ``qdq``); ``"qdq"``: every layer
    as ``Clip`` + 8-bit QuantizeLinear/DequantizeLinear around the float op, batch norms as BatchNormalization
    (the form quantization toolchains fuse into integer kernels; see :data:`ONNX_FORMS`)."""
    quantizers = check_onnx_exportable(model, form)
    integer = [q.integer for q in quantizers]
    switched = quant_integer.affine_batchnorm_off(model) if form == "qdq" else []
    for q in quantizers:
        q.exporting = True
        q.integer = q.integer and form == "exact"
    try:
        with warnings.catch_warnings():  # the ranges become constants of the graph, as intended
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            yield model
    finally:
        for q, was in zip(quantizers, integer):
            q.exporting, q.integer = False, was
        for module in switched:
            module.uboost_affine = True
