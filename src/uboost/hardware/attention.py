"""``nn.MultiheadAttention`` priced as the GEMMs it runs (NNI's mixed and frozen ones are subclasses).

Per sample, with ``L`` query tokens, ``S`` key tokens (one more for ``bias_k``, one more for
``add_zero_attn``), embedding ``E``, ``h`` heads of ``E / h`` channels and key/value widths
``kdim``/``vdim``, an attention is these layer rows (``Linear`` rows: ``in->out`` over tokens):

* the input projection, as PyTorch computes it: self-attention (one tensor for query, key and value,
  ``kdim == vdim == E``) is one ``E -> 3E`` GEMM over ``L`` tokens (``in_proj``); key and value one
  tensor: ``q_proj`` ``E -> E`` over ``L`` and ``kv_proj`` ``E -> 2E`` over ``S``; else ``q_proj``,
  ``k_proj`` (``kdim -> E``) and ``v_proj`` (``vdim -> E``);
* ``scores`` (``Q K^T``): ``h`` GEMMs of ``L x E/h`` by ``E/h x S``, a ``Linear`` row ``E -> h*S``
  in ``h`` groups over ``L`` tokens, the keys standing where a layer's weights stand;
* ``context`` (attention times ``V``): ``h`` GEMMs of ``L x S`` by ``S x E/h``, ``h*S -> E`` in ``h``
  groups over ``L``;
* ``out_proj``: ``E -> E`` over ``L`` (at the bits of ``out_proj``, the rest at the attention's own).

Each sample has its own keys and values, so ``scores`` and ``context`` are ``per_sample`` rows
(:attr:`~uboost.hardware.layers.LayerShape.per_sample`): at a batch ``B`` every cost model prices
them as ``B * h`` independent GEMMs of ``M = L`` (each fold's fill and drain, and one load of its
keys or values, per sample), not as ``h`` GEMMs of ``M = B * L`` sharing one load; the projections
share their weights across the batch as any ``Linear`` does. At batch 1 the two are the same.

Left out: the softmax, scaling, masks and dropout (vector work, 0 cycles as every elementwise op).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from uboost.hardware.layers import LayerShape, _bits


def attention_inputs(args: Sequence, kwargs: Mapping) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """``(query, key, value)`` of a call to an attention (positional or by keyword); None if not tensors."""
    names = ("query", "key", "value")
    given = [args[i] if i < len(args) else kwargs.get(n) for i, n in enumerate(names)]
    return tuple(given) if all(isinstance(t, torch.Tensor) for t in given) else None


def _tokens(x: torch.Tensor, batch_first: bool) -> int:
    if x.dim() == 2:  # unbatched (tokens, channels)
        return int(x.shape[0])
    return int(x.shape[1] if batch_first else x.shape[0])


def attention_shapes(module: nn.MultiheadAttention, name: str, query: torch.Tensor, key: torch.Tensor,
                     value: torch.Tensor, *, embed_dim: int | None = None, num_heads: int | None = None,
                     kdim: int | None = None, vdim: int | None = None) -> list[LayerShape]:
    """The rows of one call of ``module`` (see the module docstring). The widths default to the
    module's; a supernet's trace passes one sampled set (its tensors are at the widest widths)."""
    e = int(embed_dim if embed_dim is not None else module.embed_dim)
    h = int(num_heads if num_heads is not None else module.num_heads)
    kd = int(kdim if kdim is not None else (e if embed_dim is not None else module.kdim))
    vd = int(vdim if vdim is not None else (e if embed_dim is not None else module.vdim))
    batch_first = bool(getattr(module, "batch_first", False))
    length, keys = _tokens(query, batch_first), _tokens(key, batch_first)
    bits = _bits(module)

    def linear(part: str, cin: int, cout: int, tokens: int, groups: int = 1, per_sample: bool = False,
               **precision) -> LayerShape:
        return LayerShape(name=f"{name}.{part}", kind="linear", in_channels=cin, out_channels=cout, groups=groups,
                          in_h=tokens, out_h=tokens, per_sample=per_sample, **(precision or bits))

    same = kd == vd == e
    if same and query is key and key is value:
        rows = [linear("in_proj", e, 3 * e, length)]
    elif same and key is value:
        rows = [linear("q_proj", e, e, length), linear("kv_proj", e, 2 * e, keys)]
    else:
        rows = [linear("q_proj", e, e, length), linear("k_proj", kd, e, keys), linear("v_proj", vd, e, keys)]
    keys += int(getattr(module, "bias_k", None) is not None) + int(bool(getattr(module, "add_zero_attn", False)))
    activations = {"weight_bits": bits["act_bits"], "act_bits": bits["act_bits"]}  # both operands are activations
    # keys and values are the sample's own: per_sample rows (B * h GEMMs at a batch B)
    rows += [linear("scores", e, h * keys, length, h, True, **activations),
             linear("context", h * keys, e, length, h, True, **activations),
             linear("out_proj", e, e, length, **_bits(module.out_proj))]
    return rows
