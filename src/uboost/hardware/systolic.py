"""Systolic-array cost models: cycle-exact (SCALE-Sim) and the published U-Boost formula.

A layer is ``groups`` im2col GEMMs of ``M x K`` by ``K x N`` (see :mod:`uboost.hardware.layers`)
on an ``R x C`` array. Each dataflow keeps one operand stationary in the array and streams
another through it; the stationary operand is cut into ``folds`` tiles of ``R x C`` and each
fold costs its streamed length plus the array's fill and drain:

===========  ==========================  ================  ============================
dataflow     folds                       streamed          fill + drain per fold
===========  ==========================  ================  ============================
``ws``       ceil(K/R) * ceil(N/C)       M                 2R + C - 2
``os``       ceil(M/R) * ceil(N/C)       K                 R + C - 2
``is``       ceil(K/R) * ceil(M/C)       N                 2R + C - 2
===========  ==========================  ================  ============================

and the layer costs ``groups * (folds * (streamed + fill_drain) - 1)`` cycles. These match
SCALE-Sim 3.0's compute cycles (its default "CALC" bandwidth mode) to the cycle on every
golden point in ``tests/hardware/data/scalesim_golden.csv``; depthwise layers are
``in_channels`` one-channel GEMMs, each paying its own fill and drain, as SCALE-Sim runs them.

At CIFAR sizes the fill/drain term dominates (an 8x8 output has M = 64 rows to stream, against
2R + C - 2 = 382 fill cycles on a 128x128 array); the published formula (``systolic-paper``)
leaves it out.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from uboost.hardware.base import EXACT, Ceil, CostModel
from uboost.hardware.layers import LayerTable
from uboost.hardware.registry import register

# (ceil, R, C, M, K, N) -> (folds, streamed, fill_drain); the channel-dependent ceilings use `ceil`.
Fold = Callable[[Ceil, int, int, torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, float]]


def _ws(ceil: Ceil, r: int, c: int, m, k, n):
    return ceil(k, r) * ceil(n, c), m, 2 * r + c - 2


def _os(ceil: Ceil, r: int, c: int, m, k, n):
    return torch.ceil(m / r) * ceil(n, c), k, r + c - 2


def _is(ceil: Ceil, r: int, c: int, m, k, n):
    return ceil(k, r) * torch.ceil(m / c), n, 2 * r + c - 2


DATAFLOW_FOLDS: dict[str, Fold] = {"ws": _ws, "os": _os, "is": _is}


def compute_cycles(spec, layers: LayerTable, in_channels=None, out_channels=None, temperature=None):
    """``(groups, compute cycles per group, (ceil, m, k, n))`` of every layer's GEMM on ``spec``'s
    array: the folds of its dataflow, each with fill and drain (exact ceiling, or smooth at
    ``temperature``). Shared by every model built on the array's compute time."""
    ceil = EXACT if temperature is None else Ceil(temperature)
    groups, m, k, n = layers.gemm(spec.batch_size, in_channels, out_channels)
    folds, streamed, fill_drain = DATAFLOW_FOLDS[spec.dataflow](ceil, spec.rows, spec.cols, m, k, n)
    return groups, folds * (streamed + fill_drain) - 1, (ceil, m, k, n)


@register("systolic", description="cycle-exact systolic array (WS/OS/IS, fill and drain included; equals SCALE-Sim)")
class SystolicArray(CostModel):
    """Cycle-exact systolic array, per dataflow, with per-fold fill and drain."""

    name = "systolic"

    def cycles(self, layers: LayerTable, *, in_channels=None, out_channels=None, temperature=None) -> torch.Tensor:
        groups, compute, _ = compute_cycles(self.spec, layers, in_channels, out_channels, temperature)
        return groups * compute


@register("systolic-paper", description="published U-Boost formula ceil(k1k2c/s1)*ceil(f/s2)*h*w*B (no fill/drain)")
class PaperSystolicArray(CostModel):
    """The formula of the U-Boost paper: ``ceil(k1*k2*c / s1) * ceil(f / s2) * h * w * B``.

    ``s1 = rows``, ``s2 = cols``, ``h * w`` the output positions; grouped layers repeat it per
    group. It ignores the dataflow and the fill/drain cycles, so it is kept to reproduce and
    compare the paper, not to predict a real array.
    """

    name = "systolic-paper"

    def cycles(self, layers: LayerTable, *, in_channels=None, out_channels=None, temperature=None) -> torch.Tensor:
        spec = self.spec
        ceil = EXACT if temperature is None else Ceil(temperature)
        groups, m, k, n = layers.gemm(spec.batch_size, in_channels, out_channels)
        return groups * ceil(k, spec.rows) * ceil(n, spec.cols) * m
