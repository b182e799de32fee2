"""``systolic-mem``: a closed-form, differentiable systolic array with finite SRAM and DRAM bandwidth.

It prices what SCALE-Sim 3.0's ``USER`` bandwidth mode simulates (one word = one byte), from the
same facts about its memory system:

* Each read SRAM (ifmap, filter) of ``S`` words is hashed into 100 lines, an active half and a
  prefetch half. The active half is filled before the layer starts (free). When the array asks for
  a word outside the active window, the window moves by half a buffer and a chunk of ``S/2`` words
  is fetched, taking ``ceil(S / 2 / bw) + 1`` cycles on that port's own DRAM timeline. Prefetches
  run back to back on it, whatever the array does: idle DRAM time is banked, so a port only stalls
  the array when its *total* transfer time runs ahead of the compute that consumes it.
* An operand whose im2col size fits in the active half never misses. One that does not is walked
  half a buffer per prefetch (at least one full chunk per walk), once per walk: in WS the ifmap once
  per column fold of the filters and the filters once; in OS the ifmap once per column fold and,
  when a column fold's filters overflow the active half, the filters once per row fold of the
  outputs. The fetch order is the demand order rolled along the array's skew, so two consecutive
  folds of an operand share about ``rows x rows`` words: when a window edge falls among them, the
  previous fold moves the window past the next fold's first words and the window circles the whole
  operand to find them (``lines / half`` prefetches), which shifts its edges by ``-lines mod half``
  lines. For the streamed ifmap (WS: folds ``m * rows`` words apart; OS: ``k * rows``) the model
  traces this boundary by boundary: shapes and buffers that are powers of two resonate (a 3x3 conv
  with 32 channels at 16x16 circles at every fold of a 16 kB buffer; a 5x5 conv with 16 channels
  at 32x32 circles once in a 64 kB buffer, whose edges then move half a window). For the filters a
  boundary circles with a chance of ``rows**2 / (S/2)``. Each wrap-around count has a fitted
  weight per dataflow and operand.
* Each port's time is its prefetch count times the chunk time; the array waits for the slower port
  (plus a fitted share of the other). The ofmap SRAM frees half its space when a drain starts, so
  its port behaves like twice the bandwidth; partial sums are written once per row fold in WS.
* A layer costs ``max(compute, reads) + overlap * min(compute, reads) + writes * write time`` (per
  group; a depthwise layer is ``C`` one-channel layers, each with fresh buffers). The seven
  constants (the four wrap-around weights, ``overlap``, ``writes``, ``ports``) are fitted by
  ``tools/fit_systolic_mem.py`` on ``tests/hardware/data/scalesim_user.csv`` (least squares on the
  relative error, the error that is scored); it also scores constants refitted without the scored
  layers (the fixed ``held-out`` split, 3-fold and leave-one-layer-out cross-validation): see
  ``benchmarks/RESULTS.md``. SCALE-Sim's USER mode has quirks (stalls counted twice, full-chunk
  prefetches when the window moves a few lines) that a closed form only approximates. The input-stationary dataflow mirrors the
  weight-stationary one with its weights (not measured against SCALE-Sim).

With unbounded memory (``spec.memory_bound`` false) it is exactly ``systolic``. Every term is a
tensor expression in the (possibly soft) channel counts: with ``temperature`` set, the tile
ceilings become smooth ceilings and the "does it fit" steps become sigmoids, so the model works in
``smooth`` cost mode and gives gradients to channel widths. The traced wrap-arounds are piecewise
constant in the channels and, like SCALE-Sim, not monotone in them (one more channel can end a
resonance); the sequential prefetch counts are monotone. Accuracy against SCALE-Sim USER mode is
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
    """Compute cycles of :class:`SystolicArray`, or the DRAM time of the read ports when longer."""

    prices_memory = True

    name = "systolic-mem"

    def cycles(self, layers: LayerTable, *, in_channels=None, out_channels=None, temperature=None) -> torch.Tensor:
        spec = self.spec
        groups, compute, (ceil, m, k, n) = compute_cycles(spec, layers, in_channels, out_channels, temperature)
        if not spec.memory_bound:
            return groups * compute
        # a b-bit operand takes b/8 words (bytes): buffers hold more narrow elements, DRAM moves bits
        terms = self.terms(compute, m, k, n, ceil, temperature, layers.weight_bits / 8.0, layers.act_bits / 8.0)
        return groups * combine(terms, spec.dataflow)

    def terms(self, compute, m, k, n, ceil: Ceil, temperature: float | None, weight_words=1.0, act_words=1.0) -> dict[str, torch.Tensor]:
        """Per-group quantities that :func:`combine` weighs with the fitted constants: ``compute``; per
        read port (``ifmap``, ``filter``) its sequential prefetches (``_seq``), its wrap-around
        prefetches (``_wrap``, before their weight) and the DRAM cycles of one prefetch (``_chunk``);
        ``writes``: the write port's DRAM cycles. None of them depends on a constant, so a fit
        computes them once (``tools/fit_systolic_mem.py``)."""
        out = {"compute": compute}
        for name, (seq, wrap, kb) in zip(("ifmap", "filter"), self.read_prefetches(m, k, n, ceil, temperature, weight_words, act_words)):
            out[f"{name}_seq"], out[f"{name}_wrap"] = seq, wrap
            out[f"{name}_chunk"] = torch.zeros_like(seq) if kb is None else torch.full_like(seq, self._chunk_cycles(kb))
        out["writes"] = self.write_cycles(m, k, n, ceil, temperature, act_words)
        return out

    def write_cycles(self, m, k, n, ceil: Ceil, temperature: float | None, act_words=1.0) -> torch.Tensor:
        """Per-group DRAM time of the write port: the ofmap SRAM frees half its space when a drain
        starts, so it behaves like twice the bandwidth; partial sums are written once per row fold in WS/IS."""
        spec = self.spec
        ofmap_kb = spec.buffer_kb[2]
        if ofmap_kb is None:
            return torch.zeros_like(m * k * n)
        words = (1.0 if spec.dataflow == "os" else ceil(k, spec.rows)) * m * n * act_words
        return _overflows(words, ofmap_kb * WORDS_PER_KB, temperature) * words / (2.0 * spec.dram_words_per_cycle)

    def accesses(self, layers: LayerTable, *, in_channels=None, out_channels=None, temperature=None) -> dict[str, torch.Tensor]:
        """With memory limits, the DRAM reads are :meth:`dram_read_words` (re-fetches included), as
        SCALE-Sim's USER mode counts them: it fetches the im2col operand (every window's words, in
        demand order) rather than the unique input pixels that CALC mode reports. Without limits, the
        unbounded-memory counts. The SRAM counts and the DRAM writes are the unbounded ones."""
        counts = super().accesses(layers, in_channels=in_channels, out_channels=out_channels, temperature=temperature)
        if self.spec.memory_bound:
            counts.update(self.dram_read_words(layers, in_channels=in_channels, out_channels=out_channels, temperature=temperature))
        return counts

    def dram_read_words(self, layers: LayerTable, *, in_channels=None, out_channels=None, temperature=None) -> dict[str, torch.Tensor]:
        """DRAM words the ifmap and filter ports read per layer, re-fetches included: an operand that
        fits its buffer's active half is read once; one that does not, its first half-buffer fill plus
        half a buffer per prefetch (:meth:`read_prefetches`). Unbounded buffers read each word once."""
        spec = self.spec
        groups, _, (ceil, m, k, n) = compute_cycles(spec, layers, in_channels, out_channels, temperature)
        weight_words, act_words = layers.weight_bits / 8.0, layers.act_bits / 8.0  # words (bytes) per element
        out = {}
        coef = COEFFICIENTS[spec.dataflow]
        prefetches_kb = [(seq + coef[name] * wrap, kb) for name, (seq, wrap, kb)
                         in zip(("ifmap", "filter"), self.read_prefetches(m, k, n, ceil, temperature, weight_words, act_words))]
        for key, size, per, (prefetches, kb) in zip(("ifmap_dram_reads", "filter_dram_reads"), (m * k, k * n),
                                                    (act_words, weight_words), prefetches_kb):
            if kb is None or not spec.memory_bound:
                out[key] = groups * size
                continue
            half, per_line = _half_words(kb), math.ceil(kb * WORDS_PER_KB / LINES)
            over = _overflows(size * per / per_line, half / per_line, temperature)  # as _prefetch_counts decides
            # in elements (the unit of the other access counts): a half buffer holds half / per of them
            out[key] = groups * ((1.0 - over) * size + (over * half + prefetches * half) / per)
        return out

    def read_prefetches(self, m, k, n, ceil: Ceil, temperature: float | None, weight_words=1.0,
                        act_words=1.0) -> list[tuple[torch.Tensor, torch.Tensor, int | None]]:
        """Per-group prefetches (half a buffer each) of the ifmap and filter ports: the sequential walks,
        the wrap-arounds (before their fitted weight) and the buffer size in kB (``None``: unbounded,
        no prefetch).
        ``weight_words``/``act_words``: words (bytes) per weight / activation (``bits / 8``)."""
        spec = self.spec
        r, c = spec.rows, spec.cols
        ifmap_kb, filter_kb, ofmap_kb = spec.buffer_kb
        flow = spec.dataflow
        # the streamed operand is walked once per fold of the other GEMM side; at every fold of the
        # array the next demand may start behind the window (the skewed demands of two folds overlap)
        row_folds, col_folds = ceil(k, r), ceil(n, c)
        m_folds = ceil(m, r)
        if flow == "os":  # for each filter column fold, every row fold of M re-reads that fold's filters
            walks = (col_folds, 1.0 + _overflows(k * torch.clamp(n, max=c) * weight_words, _half_words(filter_kb), temperature) * (m_folds * col_folds - 1.0))
            boundaries = (col_folds * m_folds, col_folds * m_folds)
        elif flow == "ws":  # the ifmap once per filter column fold; each filter tile is read once
            walks = (col_folds, torch.ones_like(row_folds))
            boundaries = (col_folds * row_folds, col_folds * row_folds)
        else:  # is, mirrored (not measured against SCALE-Sim): the filters stream once per column fold of M
            m_cols = ceil(m, c)
            walks = (torch.ones_like(row_folds), m_cols)
            boundaries = (m_cols * row_folds, m_cols * row_folds)
        ports = []
        for operand, size, walk, edges, kb in (
            ("ifmap", m * k * act_words, walks[0], boundaries[0], ifmap_kb),
            ("filter", k * n * weight_words, walks[1], boundaries[1], filter_kb),
        ):
            if kb is None:
                ports.append((torch.zeros_like(m * k), torch.zeros_like(m * k), None))
                continue
            if operand == "ifmap" and flow in ("ws", "os"):
                # the ifmap's folds lie fold_words apart in fetch order: trace which boundaries circle
                fold_words, folds = (m * r, row_folds) if flow == "ws" else (k * r, m_folds)
                edges = col_folds * _traced_wraps(fold_words * act_words, m * k * act_words, r, folds, kb)
            seq, wrap = _prefetch_counts(size, walk, edges, kb * WORDS_PER_KB, temperature)
            chance = 1.0 if operand == "ifmap" and flow in ("ws", "os") else _straddle(r, kb)
            ports.append((seq, chance * wrap, kb))
        return ports

    def _chunk_cycles(self, kb: int) -> float:
        """DRAM cycles of one prefetch: half a buffer at ``dram_words_per_cycle`` (``dram_bw_words``, or
        ``dram_bw_gbps`` at the clock: stalls grow with the clock), plus one."""
        half = kb * WORDS_PER_KB // 2
        return math.ceil(half / self.spec.dram_words_per_cycle) + 1.0


def combine(terms: dict[str, torch.Tensor], dataflow: str, coefficients: dict | None = None) -> torch.Tensor:
    """Per-group cycles from :meth:`MemorySystolicArray.terms` and the constants (default: the shipped
    ``COEFFICIENTS``): each read port's time is its prefetches (wrap-arounds weighted) times its
    chunk time; the array waits for the slower port plus a share of the other, then
    ``max(compute, reads) + overlap * min(compute, reads) + writes * write time``."""
    coef = COEFFICIENTS if coefficients is None else coefficients
    flow, c = coef[dataflow], coef["combine"]
    ports = [(terms[f"{p}_seq"] + flow[p] * terms[f"{p}_wrap"]) * terms[f"{p}_chunk"] for p in ("ifmap", "filter")]
    reads = torch.maximum(*ports) + c["ports"] * torch.minimum(*ports)
    compute = terms["compute"]
    return torch.maximum(compute, reads) + c["overlap"] * torch.minimum(compute, reads) + c["writes"] * terms["writes"]


# Weight of a fold boundary's full circle per dataflow and read operand, and how the two read ports,
# the write port and compute combine; fitted on every row of tests/hardware/data/scalesim_user.csv by
# tools/fit_systolic_mem.py (which also scores constants refitted without the scored layers). The OS
# filter wrap-around and the slower port's share came out zero: the walks and the max explain them.
COEFFICIENTS: dict[str, dict[str, float]] = {
    "ws": {"ifmap": 0.8607, "filter": 0.9556},
    "os": {"ifmap": 1.059, "filter": 1.396e-16},
    "is": {"ifmap": 0.8607, "filter": 0.9556},  # WS's (not yet fitted)
    "combine": {"overlap": 0.09905, "writes": 0.4138, "ports": 4.332e-13},
}

LINES = 100  # SCALE-Sim hashes a read buffer into 100 lines; a prefetch moves its window by up to half of them


def _overflows(size: torch.Tensor, words: float, temperature: float | None) -> torch.Tensor:
    """1 where ``size`` words overflow ``words`` (smooth with a temperature), else 0."""
    if temperature is None:
        return (size > words).to(size.dtype)
    return torch.sigmoid(temperature * (size / words - 1.0))


def _half_words(kb: int | None) -> float:
    """Words of a read buffer's active half (unbounded: infinite)."""
    if kb is None:
        return math.inf
    per_line = math.ceil(kb * WORDS_PER_KB / LINES)
    return per_line * math.ceil(kb * WORDS_PER_KB / 2 / per_line)


def _straddle(rows: int, kb: int) -> float:
    """Chance that the ``rows x rows`` words two skewed folds share straddle the window's edge."""
    return min(rows * rows / _half_words(kb), 1.0)


TRACED_FOLDS = 64  # fold boundaries traced one by one; beyond, they circle at the traced rate


def _traced_wraps(fold_words, operand_words, rows: int, folds, kb: int) -> torch.Tensor:
    """Fold boundaries of one walk of a streamed operand at which SCALE-Sim's window circles it.

    Fold ``f`` starts at word ``f * fold_words - rows (rows - 1) / 2`` of the fetch order (rolled along
    the skew) and the previous fold's demands reach ``rows * rows - rows`` words past that: when a
    window edge falls in between, the previous fold moves the window past the next fold's first
    words and the window circles the whole operand, which shifts its edges by ``-lines mod half``
    lines. Window edges start at multiples of the active half, so shapes and buffers that are
    powers of two resonate: every boundary circles, or the first and then none. Piecewise constant
    in the channels (not monotone, like SCALE-Sim); a short loop over boundaries, batched over layers.
    """
    words = kb * WORDS_PER_KB
    per_line = math.ceil(words / LINES)
    half = math.ceil(words / 2 / per_line)
    edge = float(half * per_line)
    fold_words, folds = fold_words.detach(), folds.detach()
    shift = torch.remainder(-torch.ceil(operand_words.detach() / per_line), half) * per_line
    offset = torch.zeros_like(fold_words)
    wraps = torch.zeros_like(fold_words)
    for f in range(1, TRACED_FOLDS + 1):
        ahead = torch.remainder(offset - (f * fold_words - rows * (rows - 1) / 2.0), edge)
        hit = ((ahead > 0) & (ahead <= rows * rows - rows) & (f <= folds - 1.0)).to(wraps.dtype)
        wraps = wraps + hit
        offset = offset + hit * shift
    return wraps * (1.0 + torch.relu(folds - 1.0 - TRACED_FOLDS) / TRACED_FOLDS)


def _prefetch_counts(size, walks, boundaries, buffer_words: int, temperature: float | None):
    """Prefetches of an operand of ``size`` words walked ``walks`` times through a buffer of ``buffer_words``.

    ``sequential``: the window walks the operand half a buffer at a time after the free initial fill, at
    least one full chunk per walk once the operand overflows the active half (SCALE-Sim fetches a whole
    chunk however few lines the window moves). ``wrap``: at a fold boundary a demand behind the window
    makes it circle the whole operand (``lines / half`` prefetches); the caller weights how often.
    Both counts grow with the operand, so the cost is monotone in channels, as a search needs.
    """
    per_line = math.ceil(buffer_words / LINES)
    half = math.ceil(buffer_words / 2 / per_line)  # lines of the active half (50)
    lines = size / per_line
    over = _overflows(lines, half, temperature)
    seq = over * torch.maximum(torch.relu(walks * lines - half) / half, walks * torch.ones_like(lines))
    return seq, over * boundaries * lines / half
