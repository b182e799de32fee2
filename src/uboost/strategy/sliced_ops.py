"""Mixed operations that single-path sampling runs sliced to the sampled width, not masked.

A sampled width of a ``Linear``/``Conv2d`` is one mask of the super-kernel: the channels past it
are zero and the next layer reads a prefix, so the supernet computes the frozen network. NNI's
mixed ``LayerNorm`` and ``MultiheadAttention`` take any distribution of widths (the one-entry
``{width: weight}`` included) as "the widest": the layer norm's mean and variance then run over
the masked zeros too, and the attention splits its heads (and scales their scores) at the widest
embedding, so the supernet trained, priced and measured another function than the network it
exports. Here, in training mode, they take the *plain* sampled values (NNI slices its weights
exactly), run on the prefix of their inputs, put the output back at the widest width (zeros past
the sampled one, as a masked layer's) and scale it by the straight-through weight of their labels,
so the alphas keep a task gradient through them. In eval mode (the mixture the cost trace and the
supernet's validation run) they are NNI's.

A searched ``num_heads`` or ``dropout`` of an attention is refused: NNI's mixed attention has no
mixture of them for the eval-mode pass (nor does ``--sampling mixture``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from nni.nas.oneshot.pytorch.supermodule.operation import MixedLayerNorm, MixedMultiHeadAttention

from uboost.exceptions import ConfigError


def _drawn(operation) -> tuple[list[Any], torch.Tensor | None] | None:
    """The operation's arguments (``argument_list`` order) at the sampled values and their weight;
    ``None`` in eval mode or under another sampling policy (NNI's forward then)."""
    sampled = getattr(operation.sampling_policy, "sampled_arguments", None)
    if not operation.training or sampled is None:
        return None
    values, weight = sampled(operation)
    return [values[n] if n in values else operation.forward_argument(n) for n in operation.argument_list], weight


def _narrow(x: torch.Tensor, sizes: tuple[int, ...]) -> torch.Tensor:
    """The prefix of ``x``'s last ``len(sizes)`` dimensions."""
    return x[(Ellipsis, *(slice(0, n) for n in sizes))]


def _widen(y: torch.Tensor, sizes: tuple[int, ...], full: tuple[int, ...], weight: torch.Tensor | None) -> torch.Tensor:
    """``y`` zero-padded from ``sizes`` to ``full`` in its last dimensions, times ``weight``."""
    pad = [p for n, m in zip(reversed(sizes), reversed(full)) for p in (0, m - n)]
    y = F.pad(y, pad) if any(pad) else y
    return y if weight is None else y * weight


class SinglePathMixedLayerNorm(MixedLayerNorm):
    """NNI's mixed ``LayerNorm``; in training mode the layer norm of the sampled width."""

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        drawn = _drawn(self)
        if drawn is None:
            return super().forward(inputs)
        (shape, eps), weight = drawn
        sizes = (int(shape),) if isinstance(shape, int) else tuple(int(n) for n in shape)
        out = self.forward_with_args(sizes, eps, _narrow(inputs, sizes))
        return _widen(out, sizes, tuple(self.normalized_shape), weight)


class SinglePathMixedMultiHeadAttention(MixedMultiHeadAttention):
    """NNI's mixed ``MultiheadAttention``; in training mode the attention of the sampled widths."""

    def __post_init__(self) -> None:
        super().__post_init__()
        searched = [name for name in ("num_heads", "dropout") if name in self.mutable_arguments]
        if searched:
            raise ConfigError(f"MultiheadAttention with a searched {' and '.join(searched)}: NNI's mixed attention "
                              "searches embed_dim, kdim and vdim only (with either --sampling); fix it, or search "
                              "whole attention modules with a LayerChoice")

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *args, **kwargs):
        drawn = _drawn(self)
        if drawn is None:
            return super().forward(query, key, value, *args, **kwargs)
        (embed_dim, num_heads, kdim, vdim, dropout), weight = drawn
        narrowed: dict[tuple[int, int], torch.Tensor] = {}  # self-attention stays one tensor

        def prefix(x: torch.Tensor, n: int) -> torch.Tensor:
            return narrowed.setdefault((id(x), n), _narrow(x, (n,)))

        embed_dim = int(embed_dim)
        q, k, v = prefix(query, embed_dim), prefix(key, int(kdim or embed_dim)), prefix(value, int(vdim or embed_dim))
        out, attention = self.forward_with_args(embed_dim, num_heads, kdim, vdim, dropout, q, k, v, *args, **kwargs)
        return _widen(out, (embed_dim,), (self.embed_dim,), weight), attention


SLICED = {MixedLayerNorm: SinglePathMixedLayerNorm, MixedMultiHeadAttention: SinglePathMixedMultiHeadAttention}
"""NNI's mixed operation -> the one single-path sampling uses instead."""
