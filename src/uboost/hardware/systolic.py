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
golden point in ``tests/hardware/data/scalesim_golden.csv`` and on the corners of
``scalesim_corners.csv`` beside it (``tools/make_scalesim_corners.py``: non-square and degenerate
arrays, grouped and channel-multiplier depthwise layers, strides 2 and 3, kernels larger than
their input, per-sample rows); depthwise layers are ``in_channels`` one-channel GEMMs, each
paying its own fill and drain, as SCALE-Sim runs them.

At CIFAR sizes the fill/drain term dominates (an 8x8 output has M = 64 rows to stream, against
2R + C - 2 = 382 fill cycles on a 128x128 array); the published formula (``systolic-paper``)
leaves it out.

The PE mode of the spec (:mod:`uboost.hardware.precision`) enters through the table
``REDUCTION_SIDE``: its ``perf`` MACs per PE per cycle widen the reduction side (``rows * perf``
effective rows tile ``K`` under WS and IS, ``ceil(K / perf)`` streamed cycles under OS) and its
``slowdown`` multiplies the streamed length (bit-serial PEs). Fill and drain still cross the
array's physical rows: a fused PE takes its ``perf`` operands in one cycle, so BitFusion on
``R x C`` folds like an ``(R * perf) x C`` array but fills like ``R x C``. ``fixed`` PEs leave
every number unchanged. ``scalesim_precision.csv`` checks these relations against SCALE-Sim runs of
the wider array, the shorter ``K`` and the longer stream.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from uboost.hardware.base import EXACT, Ceil, CostModel
from uboost.hardware.layers import LayerTable
from uboost.hardware.registry import register

# (ceil, R, C, M, K, N, fill rows) -> (folds, streamed, fill_drain); the channel-dependent ceilings use `ceil`.
# R tiles the GEMM; the fill and drain run through the array's physical rows (R unless the PEs fuse, precision.py).
Fold = Callable[[Ceil, int, int, torch.Tensor, torch.Tensor, torch.Tensor, int], tuple[torch.Tensor, torch.Tensor, float]]


def _ws(ceil: Ceil, r, c: int, m, k, n, fill_r):
    return ceil(k, r) * ceil(n, c), m, 2 * fill_r + c - 2


def _os(ceil: Ceil, r, c: int, m, k, n, fill_r):
    return torch.ceil(m / r) * ceil(n, c), k, fill_r + c - 2


def _is(ceil: Ceil, r, c: int, m, k, n, fill_r):
    return ceil(k, r) * torch.ceil(m / c), n, 2 * fill_r + c - 2


DATAFLOW_FOLDS: dict[str, Fold] = {"ws": _ws, "os": _os, "is": _is}

# where a PE's `perf` MACs per cycle go, per dataflow: (rows, k, perf) -> (effective rows, effective k).
# WS/IS hold the reduction on the rows (rows * perf of them); OS streams it through each PE in time.
REDUCTION_SIDE: dict[str, Callable] = {
    "ws": lambda ceil, rows, k, perf: (rows * perf, k),
    "os": lambda ceil, rows, k, perf: (rows, torch.where(perf > 1, ceil(k, perf), k)),  # perf 1: k as is (soft k keeps its gradient)
    "is": lambda ceil, rows, k, perf: (rows * perf, k),
}


def compute_cycles(spec, layers: LayerTable, in_channels=None, out_channels=None, temperature=None, ceil=None):
    """``(groups, compute cycles per group, (ceil, m, k, n))`` of every layer's GEMM on ``spec``'s
    array: the folds of its dataflow, each with fill and drain (exact ceiling, or smooth at
    ``temperature``; ``ceil``: another ceiling function, as a benchmark compares them), on the spec's
    PEs at the layers' bits. Shared by every model built on the array's compute time; ``(m, k, n)``
    are the GEMM's own sizes (memory models read them)."""
    from uboost.hardware.precision import perf_and_slowdown

    ceil = ceil if ceil is not None else EXACT if temperature is None else Ceil(temperature)
    groups, m, k, n = layers.gemm(spec.batch_size, in_channels, out_channels)
    perf, slowdown = perf_and_slowdown(spec, layers.weight_bits, layers.act_bits)
    rows, k_pe = REDUCTION_SIDE[spec.dataflow](ceil, spec.rows, k, perf)
    folds, streamed, fill_drain = DATAFLOW_FOLDS[spec.dataflow](ceil, rows, spec.cols, m, k_pe, n, spec.rows)
    return groups, folds * (streamed * slowdown + fill_drain) - 1, (ceil, m, k, n)


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
        from uboost.hardware.precision import perf_and_slowdown

        groups, m, k, n = layers.gemm(spec.batch_size, in_channels, out_channels)
        perf, slowdown = perf_and_slowdown(spec, layers.weight_bits, layers.act_bits)  # as compute_cycles (WS)
        return groups * ceil(k, spec.rows * perf) * ceil(n, spec.cols) * m * slowdown
