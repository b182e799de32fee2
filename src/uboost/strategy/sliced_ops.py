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

A distribution of widths (``--sampling mixture``, and single-path sampling's eval-mode pass) is
the mixture of the candidates, as for every other choice: ``sum_w p_w * pad(op_w(x[:w]))`` over
the joint values of the operation's labels, each candidate sliced as above. NNI's own treated it
as the widest width (the layer norm's statistics over the masked channels; the attention at its
widest embedding whatever the distribution, so its width alpha got no gradient from it), so the
mixture at a one-hot distribution was not the frozen network. It costs one pass of the operation
per candidate (a layer norm is cheap; an attention with 3 widths runs 3 attentions).

A searched ``num_heads`` or ``dropout`` of an attention is refused: NNI's mixed attention has no
mixture of them for the eval-mode pass (nor does ``--sampling mixture``).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import torch
import torch.nn.functional as F
from nni.nas.oneshot.pytorch.supermodule.differentiable import MixedOpDifferentiablePolicy
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


def _candidates(operation):
    """``(arguments in argument_list order, weight)`` of every joint value of the operation's labels (each label
    weighted once, as single path's draw); ``None`` where the policy gives plain values (NNI's forward then)."""
    if not operation.mutable_arguments or not isinstance(operation.sampling_policy, MixedOpDifferentiablePolicy):
        return None
    labels = [(str(label), list(spec.values)) for label, spec in operation.simplify().items()]
    probs = {label: operation._softmax(operation._arch_alpha[label]) for label, _ in labels}
    candidates = []
    for picks in itertools.product(*(list(enumerate(values)) for _, values in labels)):
        sample = {label: value for (label, _), (_, value) in zip(labels, picks)}
        weight = math.prod(probs[label][index] for (label, _), (index, _) in zip(labels, picks))
        candidates.append(([operation.mutable_arguments[n].freeze(sample) if n in operation.mutable_arguments
                            else operation.forward_argument(n) for n in operation.argument_list], weight))
    return candidates


class MixtureMixedLayerNorm(MixedLayerNorm):
    """NNI's mixed ``LayerNorm``; a distribution of widths runs the mixture of the candidates' layer norms."""

    def _one(self, shape, eps, inputs: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
        sizes = (int(shape),) if isinstance(shape, int) else tuple(int(n) for n in shape)
        out = self.forward_with_args(sizes, eps, _narrow(inputs, sizes))
        return _widen(out, sizes, tuple(self.normalized_shape), weight)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        candidates = _candidates(self)
        if candidates is None:
            return super().forward(inputs)
        return sum(self._one(shape, eps, inputs, weight) for (shape, eps), weight in candidates)


class SinglePathMixedLayerNorm(MixtureMixedLayerNorm):
    """In training mode the layer norm of the sampled width; else the mixture."""

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        drawn = _drawn(self)
        if drawn is None:
            return super().forward(inputs)
        (shape, eps), weight = drawn
        return self._one(shape, eps, inputs, weight)


class MixtureMixedMultiHeadAttention(MixedMultiHeadAttention):
    """NNI's mixed ``MultiheadAttention``; a distribution of widths runs the mixture of the candidates' attentions
    (and returns the same mixture of their attention weights, which have no width to pad)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        searched = [name for name in ("num_heads", "dropout") if name in self.mutable_arguments]
        if searched:
            raise ConfigError(f"MultiheadAttention with a searched {' and '.join(searched)}: NNI's mixed attention "
                              "searches embed_dim, kdim and vdim only (with either --sampling); fix it, or search "
                              "whole attention modules with a LayerChoice")

    def _one(self, arguments, weight, query, key, value, *args, **kwargs):
        embed_dim, num_heads, kdim, vdim, dropout = arguments
        narrowed: dict[tuple[int, int], torch.Tensor] = {}  # self-attention stays one tensor

        def prefix(x: torch.Tensor, n: int) -> torch.Tensor:
            return narrowed.setdefault((id(x), n), _narrow(x, (n,)))

        embed_dim = int(embed_dim)
        q, k, v = prefix(query, embed_dim), prefix(key, int(kdim or embed_dim)), prefix(value, int(vdim or embed_dim))
        out, attention = self.forward_with_args(embed_dim, num_heads, kdim, vdim, dropout, q, k, v, *args, **kwargs)
        return _widen(out, (embed_dim,), (self.embed_dim,), weight), attention

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *args, **kwargs):
        candidates = _candidates(self)
        if candidates is None:
            return super().forward(query, key, value, *args, **kwargs)
        parts = [self._one(arguments, weight, query, key, value, *args, **kwargs) for arguments, weight in candidates]
        outputs, attentions = zip(*parts)
        weights = [weight for _, weight in candidates]
        mixed = None if any(a is None for a in attentions) else sum(a * w for a, w in zip(attentions, weights))
        return sum(outputs), mixed


class SinglePathMixedMultiHeadAttention(MixtureMixedMultiHeadAttention):
    """In training mode the attention of the sampled widths; else the mixture."""

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *args, **kwargs):
        drawn = _drawn(self)
        if drawn is None:
            return super().forward(query, key, value, *args, **kwargs)
        arguments, weight = drawn
        return self._one(arguments, weight, query, key, value, *args, **kwargs)


SLICED = {MixedLayerNorm: SinglePathMixedLayerNorm, MixedMultiHeadAttention: SinglePathMixedMultiHeadAttention}
"""NNI's mixed operation -> the one single-path sampling uses instead."""

MIXTURES = {MixedLayerNorm: MixtureMixedLayerNorm, MixedMultiHeadAttention: MixtureMixedMultiHeadAttention}
"""NNI's mixed operation -> the one ``--sampling mixture`` uses instead."""
