"""``systolic-mem``: a closed-form, differentiable systolic array with finite SRAM and DRAM bandwidth.

It prices what SCALE-Sim 3.0's ``USER`` bandwidth mode simulates (one word = one byte), from the
same facts about its memory system:

* Each read SRAM (ifmap, filter) of ``S`` words is an active half and a prefetch half. The active
  half is filled before the layer starts (free). When the array asks for a word outside the active
  window, the window moves by half a buffer and a chunk of ``S/2`` words is fetched, taking
  ``ceil(S / 2 / bw) + 1`` cycles on that port's DRAM timeline. Prefetches run back to back on the
  timeline, whenever it is behind the array: idle DRAM time is banked, so a port only stalls the
  array when its *total* transfer time runs ahead of the compute that consumes it.
* An operand whose im2col size fits in the active half never misses. One that does not is read
  once per pass, and a pass that starts over (the ifmap for every column fold of the filters, in
  both WS and OS) re-fetches the whole operand: traffic = passes x size - S/2.
* The ofmap SRAM frees half its space when a drain starts, so its port behaves like twice the
  bandwidth; partial sums are written once per row fold in WS.
* A layer's cycles are the compute cycles (:class:`~uboost.hardware.systolic.SystolicArray`) or the
  busiest port's DRAM time, whichever is longer; a depthwise layer is ``C`` one-channel layers, each
  with fresh buffers.

With unbounded memory (``spec.memory_bound`` false) it is exactly ``systolic``. Every term is a
tensor expression in the (possibly soft) channel counts: with ``temperature`` set, the tile
ceilings become smooth ceilings and the "does it fit" steps become sigmoids, so the model works in
``smooth`` cost mode and gives gradients to channel widths. Accuracy against SCALE-Sim USER mode is
measured by ``benchmarks/bench_memory_model.py`` on ``tests/hardware/data/scalesim_user.csv``.
"""

from __future__ import annotations

import math

import torch

from uboost.hardware.base import EXACT, Ceil, CostModel
from uboost.hardware.layers import LayerTable
from uboost.hardware.registry import register
from uboost.hardware.systolic import DATAFLOW_FOLDS

WORDS_PER_KB = 1024


def _fits(size: torch.Tensor, half: float, temperature: float | None) -> torch.Tensor:
    """1 where an operand of ``size`` words overflows the active half, 0 where it fits (smooth with T)."""
    if temperature is None:
        return (size > half).to(size.dtype)
    return torch.sigmoid(temperature * (size / half - 1.0))


@register(
    "systolic-mem",
    description="systolic array with finite SRAM and DRAM bandwidth (closed form of SCALE-Sim USER mode; = systolic when unbounded)",
)
class MemorySystolicArray(CostModel):
    """Compute cycles of :class:`SystolicArray`, or the DRAM time of the busiest port when longer."""

    name = "systolic-mem"

    def cycles(self, layers: LayerTable, *, in_channels=None, out_channels=None, temperature=None) -> torch.Tensor:
        spec = self.spec
        ceil = EXACT if temperature is None else Ceil(temperature)
        groups, m, k, n = layers.gemm(spec.batch_size, in_channels, out_channels)
        folds, streamed, fill_drain = DATAFLOW_FOLDS[spec.dataflow](ceil, spec.rows, spec.cols, m, k, n)
        compute = folds * (streamed + fill_drain) - 1
        if not spec.memory_bound:
            return groups * compute
        reads, writes = self.dram_cycles(layers, m, k, n, ceil, temperature, in_channels)
        c = COEFFICIENTS["combine"]
        return groups * (torch.maximum(compute, reads) + c["overlap"] * torch.minimum(compute, reads) + c["writes"] * writes)

    def dram_cycles(self, layers: LayerTable, m, k, n, ceil: Ceil, temperature: float | None,
                    in_channels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-group DRAM time of the read ports (prefetches, banked ahead of the array) and of the write port."""
        spec = self.spec
        bw = float(spec.dram_bw_words)
        r, c = spec.rows, spec.cols
        ifmap_kb, filter_kb, ofmap_kb = spec.buffer_kb
        ones = torch.ones_like(m * k)
        flow = spec.dataflow
        if flow == "is":  # ifmap stationary: the filters stream, once per column fold of the outputs
            passes = (ones, torch.ceil(m / c))
        else:  # ws / os: the ifmap streams, once per column fold of the filters
            passes = (ceil(n, c), ones)
        row_folds = ones if flow == "os" else ceil(k, r)
        # words one demand of the array spans in the operand's fetch order (a skewed ifmap line, a filter tile)
        spans = (r * r, c * r)
        # a batch-1 convolution with a kernel reads an im2col matrix full of repeated addresses: a word left
        # behind the window is often found again inside it, so such an ifmap wraps around far less
        reuse = (spec.batch_size == 1) & ~layers.linear & ((layers.kernel_h * layers.kernel_w) > 1)
        coef = COEFFICIENTS["os" if flow == "os" else "ws"]
        reads = torch.zeros_like(m * k)  # the read ports share the array's timeline: their prefetch times add up
        for operand, size, npass, span, kb in (
            ("ifmap", m * k, passes[0], spans[0], ifmap_kb),
            ("filter", k * n, passes[1], spans[1], filter_kb),
        ):
            if kb is None:
                continue
            if operand == "ifmap":
                w = [torch.where(reuse, a, b) for a, b in zip(coef["ifmap_reuse"], coef["ifmap"])]
            else:
                w = coef["filter"]
            seq, spanned, wrap = _prefetch_counts(size, npass, span, kb * WORDS_PER_KB, temperature)
            reads = reads + (w[0] * seq + w[1] * spanned + w[2] * wrap) * self._chunk_cycles(kb)
        writes = torch.zeros_like(reads)
        if ofmap_kb is not None:
            words = row_folds * m * n  # WS/IS write partial sums once per row fold
            writes = _overflows(words, ofmap_kb * WORDS_PER_KB, temperature) * words / (2 * bw)
        return reads, writes

    def _chunk_cycles(self, kb: int) -> float:
        """DRAM cycles of one prefetch: half a buffer at ``dram_bw_words`` per cycle, plus one."""
        half = kb * WORDS_PER_KB // 2
        return math.ceil(half / float(self.spec.dram_bw_words)) + 1.0


# Weights of (sequential, spanned, wrap-around) prefetch counts per dataflow and operand, and how the
# read, write and compute times combine; chosen on the ``fit`` rows of tests/hardware/data/scalesim_user.csv
# by tools/fit_systolic_mem.py (benchmarks/bench_memory_model.py scores the held-out rows).
COEFFICIENTS: dict[str, dict[str, tuple[float, ...]] | dict[str, float]] = {
    "ws": {"ifmap_reuse": (1, 0.934, 0.01041), "ifmap": (0.4363, 3.259, 1.8e-32), "filter": (2.916e-27, 3.581e-28, 1.104)},
    "os": {"ifmap_reuse": (0.6564, 0.6512, 0.02538), "ifmap": (1.201, 0.5707, 0.1474), "filter": (3.28, 2.315, 0.2651)},
    "combine": {"overlap": 0.544, "writes": 2.279},
}

LINES = 100  # SCALE-Sim hashes a read buffer into 100 lines; a prefetch moves its window by up to half of them


def _overflows(size: torch.Tensor, words: float, temperature: float | None) -> torch.Tensor:
    """1 where ``size`` words overflow ``words`` (smooth with a temperature), else 0."""
    if temperature is None:
        return (size > words).to(size.dtype)
    return torch.sigmoid(temperature * (size / words - 1.0))


def _prefetch_counts(size, passes, span, buffer_words: int, temperature: float | None):
    """Prefetches of an operand of ``size`` words read ``passes`` times through a buffer of ``buffer_words``.

    ``sequential``: the window walks the operand half a buffer at a time after the free initial fill, at
    least one full chunk per pass once the operand overflows the active half (SCALE-Sim fetches a whole
    chunk however few lines the window moves). ``wrap``: at each step a demand that straddles the window
    edge (probability: the demand's span over a buffer line, at most 1) leaves words behind the window,
    which then circles the whole operand (``lines / half`` prefetches) to find them.
    Every count grows with the operand, so the cost is monotone in channels, as a search needs.
    """
    per_line = math.ceil(buffer_words / LINES)
    half = math.ceil(buffer_words / 2 / per_line)  # lines of the active half (50)
    lines = size / per_line
    over = _overflows(lines, half, temperature)
    seq = over * torch.maximum(torch.relu(passes * lines - half) / half, passes)
    straddle = min(span / per_line, 1.0)
    return seq, seq * straddle, seq * straddle * (lines / half + 1.0)
