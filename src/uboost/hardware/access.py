"""Words each layer moves at each memory level of a systolic array, per dataflow.

A layer is ``groups`` im2col GEMMs of ``M x K`` by ``K x N`` (``M = batch * out_h * out_w``,
``K = kh * kw * in_channels / groups``, ``N = out_channels / groups``; a ``per_sample`` layer,
an attention's keys and values, is ``batch * groups`` GEMMs of ``M = out_h * out_w``; see
:meth:`uboost.hardware.layers.LayerTable.gemm`) on an ``R x C`` array. The words the array asks of its on-chip
buffers are those SCALE-Sim 3.0 counts in ``DETAILED_ACCESS_REPORT.csv`` (CALC mode, buffers large
enough), per group:

========  =====================  =====================  ======================================
dataflow  ifmap SRAM reads       filter SRAM reads      ofmap SRAM writes
========  =====================  =====================  ======================================
``ws``    M K ceil(N/C)          K N                    M N ceil(K/R)
``os``    M K ceil(N/C)          K N ceil(M/R)          M N + (R + C) ceil(M/R) ceil(N/C)
``is``    M K                    K N ceil(M/C)          M N ceil(K/R)
========  =====================  =====================  ======================================

The ``(R + C)`` per output fold in OS is a counting quirk of SCALE-Sim (it also counts the rows
and columns of each fold's drain as writes); we keep it so the counts equal the simulator's.
DRAM reads are the unique words of each operand: every filter weight (``K N`` per GEMM: once per
sample for a ``per_sample`` layer, whose "filters" are each sample's own) and every input
pixel a window touches, ``batch * rows * cols * in_channels`` with
``rows = min(in_h, (out_h - 1) * stride + kh, out_h * kh)`` (the last term when the stride skips
pixels; ``in_h`` when the layer is padded, where SCALE-Sim, which has no padding, reads the
unpadded-equivalent input). Ofmap DRAM writes are ``M N ceil(K/R)`` in WS and IS, where SCALE-Sim
writes every partial-sum fold back to DRAM, and ``M N`` in OS. Under WS and IS, ``R`` is the rows
``K`` folds over: ``R * perf`` for PEs that do ``perf`` MACs per cycle (:func:`reduction_rows`),
the same folds as the cycle model. With finite buffers the array
re-fetches operands (``systolic-mem`` prices the time, not the words): these counts are the
unbounded-memory ones.

Every count is a tensor expression in the (possibly soft) channel counts, batched over layers
like :func:`uboost.hardware.systolic.compute_cycles`, with the channel-dependent ceilings exact or
smooth at ``temperature``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from uboost.hardware.base import EXACT, Ceil
from uboost.hardware.layers import LayerTable
from uboost.hardware.spec import HardwareSpec

SRAM_KEYS = ("ifmap_sram_reads", "filter_sram_reads", "ofmap_sram_writes")
DRAM_KEYS = ("ifmap_dram_reads", "filter_dram_reads", "ofmap_dram_writes")
ACCESS_KEYS = SRAM_KEYS + DRAM_KEYS
"""Keys of :func:`access_counts`, in report order (words)."""

# (ceil, R, C, M, K, N) -> per-group (ifmap SRAM reads, filter SRAM reads, ofmap SRAM writes, ofmap DRAM writes)
Counts = Callable[[Ceil, int, int, torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, ...]]


def _ws(ceil: Ceil, r: int, c: int, m, k, n):
    psums = m * n * ceil(k, r)
    return m * k * ceil(n, c), k * n, psums, psums


def _os(ceil: Ceil, r: int, c: int, m, k, n):
    m_folds = torch.ceil(m / r)
    return m * k * ceil(n, c), k * n * m_folds, m * n + (r + c) * m_folds * ceil(n, c), m * n


def _is(ceil: Ceil, r: int, c: int, m, k, n):
    psums = m * n * ceil(k, r)
    return m * k, k * n * torch.ceil(m / c), psums, psums


DATAFLOW_ACCESSES: dict[str, Counts] = {"ws": _ws, "os": _os, "is": _is}


def reduction_rows(spec: HardwareSpec, layers: LayerTable):
    """The rows ``K`` folds over, per layer: ``rows * perf`` under WS and IS, where a PE's ``perf`` MACs
    per cycle widen the reduction side (:mod:`uboost.hardware.precision`: BitFusion on ``R x C``
    folds like ``(R * perf) x C``, and so writes that many partial-sum folds); the physical rows
    under OS, whose rows hold output pixels. ``fixed`` and ``bit-serial`` PEs: the rows."""
    if spec.dataflow == "os":
        return spec.rows
    from uboost.hardware.precision import perf_and_slowdown

    perf, _ = perf_and_slowdown(spec, layers.weight_bits, layers.act_bits)
    return spec.rows * perf


def touched_rows(out: torch.Tensor, kernel: torch.Tensor, stride: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """Input rows (or columns) some window reads: all of them, unless the stride skips some."""
    return torch.minimum(torch.minimum((out - 1) * stride + kernel, out * kernel), size)


def access_counts(
    spec: HardwareSpec,
    layers: LayerTable,
    *,
    in_channels: torch.Tensor | None = None,
    out_channels: torch.Tensor | None = None,
    temperature: float | None = None,
) -> dict[str, torch.Tensor]:
    """Words moved by every layer on ``spec``'s array, one ``(len(layers),)`` tensor per key of
    :data:`ACCESS_KEYS` (SRAM reads and writes, DRAM reads per operand and DRAM writes)."""
    ceil = EXACT if temperature is None else Ceil(temperature)
    groups, m, k, n = layers.gemm(spec.batch_size, in_channels, out_channels)
    cin = layers.in_channels if in_channels is None else in_channels
    rows = reduction_rows(spec, layers)
    ifmap_sram, filter_sram, ofmap_sram, ofmap_dram = DATAFLOW_ACCESSES[spec.dataflow](ceil, rows, spec.cols, m, k, n)
    pixels = touched_rows(layers.out_h, layers.kernel_h, layers.stride, layers.in_h) * touched_rows(
        layers.out_w, layers.kernel_w, layers.stride, layers.in_w
    )
    return {
        "ifmap_sram_reads": groups * ifmap_sram,
        "filter_sram_reads": groups * filter_sram,
        "ofmap_sram_writes": groups * ofmap_sram,
        "ifmap_dram_reads": spec.batch_size * pixels * cin,
        "filter_dram_reads": groups * k * n,
        "ofmap_dram_writes": groups * ofmap_dram,
    }
