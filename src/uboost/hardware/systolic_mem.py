"""``systolic-mem``: a closed-form, differentiable systolic array with finite SRAM and DRAM bandwidth.

It prices what SCALE-Sim 3.0's ``USER`` bandwidth mode simulates (one word = one byte), from the
same facts about its memory system:

* Each read SRAM (ifmap, filter) of ``S`` words is an active half and a prefetch half. The active
  half is filled before the layer starts (free). When the array asks for a word outside the active
  window, the window moves by half a buffer and a chunk of ``S/2`` words is fetched, taking
  ``ceil(S / 2 / bw) + 1`` cycles on that port's DRAM timeline. Prefetches run back to back on the
  timeline, whenever it is behind the array: idle DRAM time is banked, so a port only stalls the
  array when its *total* transfer time runs ahead of the compute that consumes it.
* An operand whose im2col size fits in the active half never misses. One that does not is walked
  half a buffer per prefetch (at least one full chunk per pass), once per pass: the ifmap once per
  column fold of the filters in WS and OS. SCALE-Sim's buffer is 100 hashed lines; a demand line
  of the array (a skewed ifmap row, a flipped filter tile) that straddles the window edge leaves
  words *behind* the window, and the window then circles the whole operand to find them. A
  batch-1 convolution with a kernel repeats input words across im2col rows, so its ifmap is
  usually found again and wraps around far less.
* The ofmap SRAM frees half its space when a drain starts, so its port behaves like twice the
  bandwidth; partial sums are written once per row fold in WS. Write stalls are not banked.
* A layer costs ``max(compute, reads) + overlap * min(compute, reads) + writes`` (per group; a
  depthwise layer is ``C`` one-channel layers, each with fresh buffers), where the read time sums
  both read ports' weighted prefetch counts times the chunk time. The weights (per dataflow and
  operand) and ``overlap``/``writes`` are fitted (``tools/fit_systolic_mem.py``) on the ``fit``
  rows of ``tests/hardware/data/scalesim_user.csv``; the held-out rows score it. SCALE-Sim's USER
  mode has known quirks (stalls counted twice, full-chunk prefetches for a few lines, wrap-arounds)
  that a closed form only approximates: see ``benchmarks/RESULTS.md`` for how closely. The input-
  stationary dataflow reuses the weight-stationary weights (not measured against SCALE-Sim).

With unbounded memory (``spec.memory_bound`` false) it is exactly ``systolic``. Every term is a
tensor expression in the (possibly soft) channel counts: with ``temperature`` set, the tile
ceilings become smooth ceilings and the "does it fit" steps become sigmoids, so the model works in
``smooth`` cost mode and gives gradients to channel widths. Accuracy against SCALE-Sim USER mode is
measured by ``benchmarks/bench_memory_model.py`` on ``tests/hardware/data/scalesim_user.csv``.
"""

from __future__ import annotations

import math

import torch

from uboost.hardware.base import Ceil, CostModel
from uboost.hardware.layers import LayerTable
from uboost.hardware.registry import register
from uboost.hardware.systolic import compute_cycles

WORDS_PER_KB = 1024


@register(
    "systolic-mem",
    description="systolic array with finite SRAM and DRAM bandwidth (closed form of SCALE-Sim USER mode; = systolic when unbounded)",
)
class MemorySystolicArray(CostModel):
    """Compute cycles of :class:`SystolicArray`, or the DRAM time of the busiest port when longer."""

    name = "systolic-mem"

    def cycles(self, layers: LayerTable, *, in_channels=None, out_channels=None, temperature=None) -> torch.Tensor:
        spec = self.spec
        groups, compute, (ceil, m, k, n) = compute_cycles(spec, layers, in_channels, out_channels, temperature)
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
    "ws": {"ifmap_reuse": (1, 0.5364, 0.0275), "ifmap": (0.7037, 1.54, 0.02579), "filter": (1.763e-33, 1.34e-33, 1.186)},
    "os": {"ifmap_reuse": (1.074, 0.1968, 0.02888), "ifmap": (0.8914, 0.9083, 0.2813), "filter": (8.573e-07, 8.573e-07, 0.4971)},
    "combine": {"overlap": 0.3719, "writes": 1.874},
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
