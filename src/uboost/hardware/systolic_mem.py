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
  half a buffer per prefetch (at least one full chunk per walk; an operand of ``half + d`` lines,
  ``d < half``, crawls: a prefetch moves the window only ``d`` lines but fetches a full chunk), once
  per walk: in WS the ifmap once
  per column fold of the filters and the filters once; in OS the ifmap once per column fold and,
  when a column fold's filters overflow the active half, the filters once per row fold of the
  outputs. The fetch order is the demand order rolled along the array's skew, so two consecutive
  folds of an operand share about ``rows x rows`` words: when a window edge falls among them, the
  previous fold moves the window past the next fold's first words and the window circles the whole
  operand to find them (``lines / half`` prefetches), which shifts its edges by ``-lines mod half``
  lines. For the streamed ifmap (WS: folds ``m * rows`` words apart; OS: ``k * rows``) the model
  traces this boundary by boundary: shapes and buffers that are powers of two resonate (a 3x3 conv
  with 32 channels at 16x16 circles at every fold of a 16 kB buffer; a 5x5 conv with 16 channels
  at 32x32 circles once in a 64 kB buffer, whose edges then move half a window). The stationary
  operand (WS: the filters; IS: the ifmap) is read tile by tile, each ``rows x cols`` tile last row
  first: every window edge inside a tile is crossed backwards and circles the operand; the model
  traces these tile by tile too (a 128x128 tile spans several edges of an 8-16 kB buffer; IS's
  stationary ifmap is the big operand, so IS thrashes most; its im2col copies are traced: a
  demanded pixel hits when any copy of it lies in the window, :mod:`uboost.hardware.im2col_reach`).
  SCALE-Sim's IS is its WS with the operands swapped, and so is the model.
* The filter port is traced exactly in every dataflow, with no fitted weight
  (:mod:`uboost.hardware._window_trace`): OS and IS pass by pass (OS: every column fold read once per
  row fold of the outputs; IS: every fold of ``K`` in turn, once per column fold of ``M``; the window
  moved forward, wrapping, to each pass's first element's line and up to its last's, their places in
  the rolled fetch order in closed form), WS tile by tile (the top row first, then a circle at every
  row that starts under the window). The counts equal a replay of SCALE-Sim's read buffer on every
  point of the data (265 WS, 265 OS, 264 IS) and on 207 GEMM points per dataflow
  (``tests/hardware/test_window_trace.py``); numba runs them as one loop per layer where it is
  installed (:mod:`uboost.hardware._window_numba`). So is the ifmap port of a layer that reads each
  input pixel once (pointwise convs, ``Linear``, GEMMs: its addresses are its places in the fetch
  order; WS and OS stream it as IS streams its filters, IS holds it as WS holds its filters). The
  closed form's walks above stay as their gradient in ``smooth`` cost mode. The ifmap port of a
  layer with im2col copies (a pixel read by several windows: a copy may hit where the trace would
  circle) keeps its fitted wrap-around weight per dataflow.
* im2col repeats each input pixel ``reuse`` times (``k_h k_w`` at stride 1): an ifmap word demanded
  behind the window is often found in another copy of it. The ifmap's wrap-arounds are damped by
  ``reuse ** -(e * tile)`` (``tile``: the share of an array tile the active half holds) and by
  ``cover ** c`` (``cover``: the words of the pixels the windows cover over the active half, at most
  1: when they all fit, most demands hit a copy), ``e`` and ``c`` fitted per dataflow (IS's
  stationary ifmap, whose copies are traced, keeps almost none of it).
* Each port's time is its prefetch count times the chunk time; the array waits for the slower port
  (plus a fitted share of the other). The ofmap SRAM frees half its space when a drain starts, so
  its port behaves like twice the bandwidth; partial sums are written once per row fold in WS.
* A layer costs ``max(compute, reads) + overlap * min(compute, reads) + writes * write time`` (per
  group; a depthwise layer is ``C`` one-channel layers, each with fresh buffers). The 12 constants
  (per dataflow the ifmap's wrap-around weight and its two damping exponents; ``overlap``,
  ``writes``, ``ports``) are fitted by ``tools/fit_systolic_mem.py`` on ``tests/hardware/data/scalesim_user.csv``
  (32x32 WS/OS, 16-256 kB) and ``scalesim_user_groups.csv`` (128x128 WS/OS/IS, 32x32 IS, 8 kB; issue
  22) at once (least squares on the relative error, the error that is scored); ``bench_memory_model.py
  --groups`` scores constants refitted without the scored layers, per (array, dataflow, SRAM,
  bandwidth) group: see ``benchmarks/RESULTS.md``. SCALE-Sim's USER mode has quirks (stalls counted
  twice, full-chunk prefetches when the window moves a few lines, im2col copies of a pixel that hit
  by chance) that a closed form only approximates: where it is measured over 25 % off held out
  (:data:`HELD_OUT_MAPE`), :meth:`memory_note` says so and points to ``--cost-model scalesim``.

With unbounded memory (``spec.memory_bound`` false) it is exactly ``systolic``. Every term is a
tensor expression in the (possibly soft) channel counts: with ``temperature`` set, the tile
ceilings become smooth ceilings and the "does it fit" steps become sigmoids, so the model works in
``smooth`` cost mode and gives gradients to channel widths. The traced wrap-arounds are piecewise
constant in the channels and, like SCALE-Sim, not monotone in them (one more channel can end a
resonance); the sequential prefetch counts are monotone. Accuracy against SCALE-Sim USER mode is
measured by ``benchmarks/bench_memory_model.py`` on both data files.
"""

from __future__ import annotations

import math

import torch

from uboost.hardware.access import reduction_rows
from uboost.hardware.base import Ceil, CostModel
from uboost.hardware._window_trace import LINES, TRACED_FOLDS, WORDS_PER_KB, traced_passes, traced_stationary, traced_tiles, traced_wraps
from uboost.hardware.im2col_reach import ifmap_reach
from uboost.hardware.layers import LayerTable
from uboost.hardware.mem_coverage import HELD_OUT_MAPE, MEASURED_TEXT, thin_linear_layers, unmeasured
from uboost.hardware.registry import register
from uboost.hardware.systolic import compute_cycles



@register(
    "systolic-mem",
    description="systolic array with finite SRAM and DRAM bandwidth (closed form of SCALE-Sim USER mode; = systolic when unbounded)",
)
class MemorySystolicArray(CostModel):
    """Compute cycles of :class:`SystolicArray`, or the DRAM time of the read ports when longer."""

    prices_memory = True

    name = "systolic-mem"

    def memory_note(self) -> str | None:
        """A one-line warning on the corners where the closed form is measured over 25 % off
        SCALE-Sim held out (:data:`HELD_OUT_MAPE`), or not measured at all (:func:`unmeasured`):
        ``--cost-model scalesim`` is exact there."""
        spec = self.spec
        sized = any(kb is not None for kb in spec.buffer_kb)
        if sized != (spec.dram_words_per_cycle is not None):  # one limit alone: nothing to stall on
            given = "SRAM sizes but no DRAM bandwidth (--dram-bw-words)" if sized else "a DRAM bandwidth but no SRAM sizes (--sram-kb)"
            return f"systolic-mem with {given} prices unbounded memory (no stalls, every word fetched once)"
        if not spec.memory_bound:
            return None
        outside = unmeasured(spec)
        if outside:
            return (f"systolic-mem is not measured against SCALE-Sim at {outside} (measured: {MEASURED_TEXT}): "
                    f"check the network with --cost-model scalesim")
        if len(set(spec.buffer_kb)) != 1:
            return None
        mape = HELD_OUT_MAPE.get((spec.rows, spec.cols, spec.dataflow, spec.buffer_kb[0]))
        if mape is None or mape <= 0.25:
            return None
        return (f"systolic-mem is {100 * mape:.0f} % off SCALE-Sim (held out, worst bandwidth) on {spec.array} {spec.dataflow} "
                f"arrays with {spec.buffer_kb[0]} kB buffers: use --cost-model scalesim for exact cycles there")

    def layers_note(self, layers) -> str | None:
        """Batch-1 ``Linear`` layers that stall (:func:`~uboost.hardware.mem_coverage.thin_linear_layers`):
        the model is 0.54-1.00x of SCALE-Sim on some of them (few prefetches: their time, not their count)."""
        if not self.spec.memory_bound:
            return None
        names = thin_linear_layers(self.spec, layers, _half_words(self.spec.buffer_kb[1]))
        if not names:
            return None
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        return (f"systolic-mem prices {len(names)} batch-1 Linear layer{'s' if len(names) > 1 else ''} whose weights "
                f"overflow half the filter buffer ({shown}): a class its SCALE-Sim data barely covers (0.5-1.0x of "
                "SCALE-Sim in a sweep): check with --cost-model scalesim")

    def cycles(self, layers: LayerTable, *, in_channels=None, out_channels=None, temperature=None) -> torch.Tensor:
        spec = self.spec
        groups, compute, (ceil, m, k, n) = compute_cycles(spec, layers, in_channels, out_channels, temperature)
        if not spec.memory_bound:
            return groups * compute
        # a b-bit operand takes b/8 words (bytes): buffers hold more narrow elements, DRAM moves bits
        reuse, cover = (t.to(compute.dtype) for t in window_reuse(layers, spec.batch_size, spec.buffer_kb[0], in_channels))
        terms = self.terms(compute, m, k, n, ceil, temperature, layers.weight_bits / 8.0, layers.act_bits / 8.0,
                           ifmap_copies=reuse > 1.0, ifmap_reach=self.ifmap_reach(layers, m, k),
                           k_rows=reduction_rows(spec, layers))
        terms["reuse"], terms["cover"] = reuse, cover
        return groups * combine(terms, spec.dataflow)

    def terms(self, compute, m, k, n, ceil: Ceil, temperature: float | None, weight_words=1.0, act_words=1.0,
              ifmap_copies=None, ifmap_reach=None, k_rows=None) -> dict[str, torch.Tensor]:
        """Per-group quantities that :func:`combine` weighs with the fitted constants: ``compute``; per
        read port (``ifmap``, ``filter``) its sequential prefetches (``_seq``), its wrap-around
        prefetches (``_wrap``, before their weight) and the DRAM cycles of one prefetch (``_chunk``);
        ``writes``: the write port's DRAM cycles. None of them depends on a constant, so a fit
        computes them once (``tools/fit_systolic_mem.py``). The caller adds ``reuse`` and ``cover``
        (:func:`window_reuse`; ``ifmap_copies``: where its reuse exceeds 1, and ``ifmap_reach``: see
        :meth:`read_prefetches`); ``k_rows``: the rows ``K`` folds over for the partial sums
        (:func:`~uboost.hardware.access.reduction_rows`; default the array's rows)."""
        out = {"compute": compute}
        for name, (seq, wrap, kb) in zip(("ifmap", "filter"), self.read_prefetches(m, k, n, ceil, temperature, weight_words, act_words,
                                                                                   ifmap_copies, ifmap_reach)):
            out[f"{name}_seq"], out[f"{name}_wrap"] = seq, wrap
            out[f"{name}_chunk"] = torch.zeros_like(seq) if kb is None else torch.full_like(seq, self._chunk_cycles(kb))
        out["writes"] = self.write_cycles(m, k, n, ceil, temperature, act_words, k_rows)
        # share of an array-sized tile the ifmap's active half holds (copies of a pixel lie in other tiles)
        out["tile"] = torch.full_like(compute, min(1.0, _half_words(self.spec.buffer_kb[0]) / (self.spec.rows * self.spec.cols)))
        return out

    def write_cycles(self, m, k, n, ceil: Ceil, temperature: float | None, act_words=1.0, k_rows=None) -> torch.Tensor:
        """Per-group DRAM time of the write port: the ofmap SRAM frees half its space when a drain
        starts, so it behaves like twice the bandwidth; partial sums are written once per row fold in
        WS/IS (folds over ``k_rows``, default the array's rows: the access counts' partial sums)."""
        spec = self.spec
        ofmap_kb = spec.buffer_kb[2]
        if ofmap_kb is None:
            return torch.zeros_like(m * k * n)
        words = (1.0 if spec.dataflow == "os" else ceil(k, spec.rows if k_rows is None else k_rows)) * m * n * act_words
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
        fits its buffer's active half is read once, as SCALE-Sim lays it out for prefetching (its folds
        padded to the array's rows or columns, at most half a buffer); one that does not, its first
        half-buffer fill plus half a buffer per prefetch (:meth:`read_prefetches`). Unbounded buffers read
        each word once. Against SCALE-Sim USER mode: ``benchmarks/bench_energy_hw.py --part c``."""
        spec = self.spec
        groups, _, (ceil, m, k, n) = compute_cycles(spec, layers, in_channels, out_channels, temperature)
        weight_words, act_words = layers.weight_bits / 8.0, layers.act_bits / 8.0  # words (bytes) per element
        out = {}
        coef = COEFFICIENTS[spec.dataflow]
        copies = window_reuse(layers, spec.batch_size, spec.buffer_kb[0])[0] > 1.0
        prefetches_kb = [(seq + coef.get(name, 0.0) * wrap, kb) for name, (seq, wrap, kb)
                         in zip(("ifmap", "filter"), self.read_prefetches(m, k, n, ceil, temperature, weight_words, act_words, copies,
                                                                           self.ifmap_reach(layers, m, k)))]
        r, c = spec.rows, spec.cols
        # an operand that fits is read as SCALE-Sim lays it out for prefetching, its folds padded to the array's
        # rows or columns (a 256 -> 10 classifier on 32x32 OS: 8,192 filter words read, not 2,560)
        padded = {"ws": (m * r * ceil(k, r), k * c * ceil(n, c)), "os": (k * r * ceil(m, r), k * c * ceil(n, c)),
                  "is": (k * c * ceil(m, c), n * r * ceil(k, r))}[spec.dataflow]
        for key, size, fill, per, (prefetches, kb) in zip(("ifmap_dram_reads", "filter_dram_reads"), (m * k, k * n), padded,
                                                          (act_words, weight_words), prefetches_kb):
            if kb is None or not spec.memory_bound:
                out[key] = groups * size
                continue
            half, per_line = _half_words(kb), math.ceil(kb * WORDS_PER_KB / LINES)
            over = _overflows(size * per / per_line, half / per_line, temperature)  # as _prefetch_counts decides
            # in elements (the unit of the other access counts): a half buffer holds half / per of them
            fill = torch.minimum(fill, half / per)  # (a fitting operand padded past the active half: that half)
            out[key] = groups * ((1.0 - over) * fill + (over * half + prefetches * half) / per)
        return out

    def cycles_and_accesses(self, layers: LayerTable) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """:meth:`cycles` and :meth:`accesses` of ``layers`` (no gradient), the same numbers, with the read
        prefetches both need traced once (what the inner accelerator choice prices on every accelerator)."""
        memo = self.__dict__["_prefetch_memo"] = {}
        try:
            with torch.no_grad():
                return self.cycles(layers), self.accesses(layers)
        finally:
            memo.clear()
            self.__dict__.pop("_prefetch_memo", None)

    def read_prefetches(self, m, k, n, ceil: Ceil, temperature: float | None, weight_words=1.0,
                        act_words=1.0, ifmap_copies=None, ifmap_reach=None) -> list[tuple[torch.Tensor, torch.Tensor, int | None]]:
        memo = self.__dict__.get("_prefetch_memo")
        if memo is None:
            return self._read_prefetches(m, k, n, ceil, temperature, weight_words, act_words, ifmap_copies, ifmap_reach)
        key = tuple((tuple(t.shape), t.detach().to(torch.float64).cpu().numpy().tobytes()) if isinstance(t, torch.Tensor) else t
                    for t in (m, k, n, temperature, weight_words, act_words, ifmap_copies))
        if key not in memo:
            memo[key] = self._read_prefetches(m, k, n, ceil, temperature, weight_words, act_words, ifmap_copies, ifmap_reach)
        return memo[key]

    def _read_prefetches(self, m, k, n, ceil: Ceil, temperature: float | None, weight_words=1.0,
                         act_words=1.0, ifmap_copies=None, ifmap_reach=None) -> list[tuple[torch.Tensor, torch.Tensor, int | None]]:
        """Per-group prefetches (half a buffer each) of the ifmap and filter ports: the sequential walks,
        the wrap-arounds (before their fitted weight) and the buffer size in kB (``None``: unbounded,
        no prefetch).
        ``weight_words``/``act_words``: words (bytes) per weight / activation (``bits / 8``).
        ``ifmap_copies``: true where the im2col ifmap repeats pixels (:func:`window_reuse`): a window
        that holds most of its lines holds a copy of nearly every pixel, so it does not crawl.
        ``ifmap_reach``: :meth:`ifmap_reach`, where IS's stationary ifmap finds copies of its pixels."""
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
        else:  # is, WS mirrored (SCALE-Sim's IS is WS with ifmap and filters swapped): the filters stream once per column fold of M
            m_cols = ceil(m, c)
            walks = (torch.ones_like(row_folds), m_cols)
            boundaries = (m_cols * row_folds, m_cols * row_folds)
        streamed = {"ws": "ifmap", "os": "ifmap", "is": "filter"}[flow]
        ports = []
        for operand, size, walk, edges, kb in (
            ("ifmap", m * k * act_words, walks[0], boundaries[0], ifmap_kb),
            ("filter", k * n * weight_words, walks[1], boundaries[1], filter_kb),
        ):
            if kb is None:
                ports.append((torch.zeros_like(m * k), torch.zeros_like(m * k), None))
                continue
            if operand == "filter":  # traced exactly below: the closed form's walks only give the gradient
                edges = torch.zeros_like(size)
            elif operand == streamed:
                # the streamed ifmap's folds lie fold_words apart in fetch order: trace which boundaries circle
                fold_words, folds = {"ws": (m * r, row_folds), "os": (k * r, m_folds)}[flow]
                edges = walks[0] * traced_wraps(fold_words * act_words, size, r, folds, kb)
            else:  # IS's stationary ifmap: its tiles are read in reverse; copies of a pixel may hit
                edges = traced_tiles(k, m, r, c, kb, size, act_words, ifmap_reach)
            crawls = True if operand == "filter" or ifmap_copies is None else ~ifmap_copies
            seq, wrap = _prefetch_counts(size, walk, edges, kb * WORDS_PER_KB, temperature, crawls)
            # traced exactly where every demanded word has one place in the fetch order: the filters, and an ifmap
            # whose pixels are read once each (pointwise, Linear, GEMM); the closed form's walks give the gradient
            traced = torch.ones_like(seq, dtype=torch.bool) if operand == "filter" else (
                None if ifmap_copies is None or bool(ifmap_copies.all()) else ~ifmap_copies)
            if traced is not None:
                exact = _exact_prefetches(operand, flow, m, k, n, ceil, r, c, weight_words if operand == "filter" else act_words, kb)
                seq = torch.where(traced, exact + (seq - seq.detach()), seq)
                wrap = torch.where(traced, torch.zeros_like(wrap), wrap)
            ports.append((seq, wrap, kb))
        return ports

    def ifmap_reach(self, layers: LayerTable, m, k):
        """Per traced tile of IS's stationary ifmap, where the copies of its pixels reach
        (:func:`uboost.hardware.im2col_reach.ifmap_reach`); None for other dataflows."""
        spec = self.spec
        kb = spec.buffer_kb[0]
        if spec.dataflow != "is" or kb is None:
            return None
        return ifmap_reach(layers, m.detach(), k.detach(), spec.rows, spec.cols, _half_words(kb), layers.act_bits / 8.0,
                           TRACED_FOLDS, spec.batch_size)

    def _chunk_cycles(self, kb: int) -> float:
        """DRAM cycles of one prefetch: half a buffer at ``dram_words_per_cycle`` (``dram_bw_words``, or
        ``dram_bw_gbps`` at the clock: stalls grow with the clock), plus one."""
        half = kb * WORDS_PER_KB // 2
        return math.ceil(half / self.spec.dram_words_per_cycle) + 1.0


def _exact_prefetches(operand: str, flow: str, m, k, n, ceil: Ceil, r: int, c: int, per, kb: int) -> torch.Tensor:
    """The prefetches of ``operand``'s port, traced (:mod:`uboost.hardware._window_trace`): streamed operands pass by
    pass over their folds, stationary ones (WS's ``k x n`` filters, IS's ``k x m`` ifmap: WS's filters mirrored) tile
    by tile."""
    if operand == "filter" and flow == "os":  # each column fold once per row fold of the outputs
        return traced_passes(k, c, n, per, ceil(m, r), kb)
    if operand == "filter" and flow == "is":  # WS's streamed ifmap mirrored: every fold of K in turn, once per column fold of M
        return traced_passes(n, r, k, per, ceil(m, c), kb, cyclic=True)
    if operand == "ifmap" and flow != "is":  # every fold of K (WS) or M (OS) in turn, once per column fold of N
        return traced_passes(m, r, k, per, ceil(n, c), kb, cyclic=True) if flow == "ws" else \
            traced_passes(k, r, m, per, ceil(n, c), kb, cyclic=True)
    return traced_stationary(k, n if operand == "filter" else m, per, r, c, kb)


def combine(terms: dict[str, torch.Tensor], dataflow: str, coefficients: dict | None = None) -> torch.Tensor:
    """Per-group cycles from :meth:`MemorySystolicArray.terms` and the constants (default: the shipped
    ``COEFFICIENTS``): each read port's time is its prefetches (wrap-arounds weighted) times its
    chunk time; the array waits for the slower port plus a share of the other, then
    ``max(compute, reads) + overlap * min(compute, reads) + writes * write time``."""
    coef = COEFFICIENTS if coefficients is None else coefficients
    flow, c = coef[dataflow], coef["combine"]
    # an ifmap word demanded behind the window is often found in another copy of it (im2col repeats
    # each pixel reuse times): its wrap-arounds shrink as reuse ** -(fitted exponent)
    # and when all the pixels fit in the active half (cover < 1) most demands find a copy
    damp = {"ifmap": terms["reuse"] ** (-flow.get("reuse", 0.0) * terms["tile"]) * terms["cover"] ** flow.get("cover", 0.0), "filter": 1.0}
    ports = [(terms[f"{p}_seq"] + flow.get(p, 0.0) * damp[p] * terms[f"{p}_wrap"]) * terms[f"{p}_chunk"] for p in ("ifmap", "filter")]
    reads = torch.maximum(*ports) + c["ports"] * torch.minimum(*ports)
    compute = terms["compute"]
    return torch.maximum(compute, reads) + c["overlap"] * torch.minimum(compute, reads) + c["writes"] * terms["writes"]


def window_reuse(layers: LayerTable, batch_size: int, ifmap_kb: int | None, in_channels=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(reuse, cover)``: how many times SCALE-Sim's im2col ifmap repeats each input pixel
    (``k_h k_w out_h out_w`` over the pixels the windows cover, no padding; >= 1), and the words of
    those pixels over the ifmap buffer's active half, at most 1. Both 1 for ``Linear`` and batched
    layers, which it runs as GEMMs with distinct addresses, and for an unbounded buffer. A
    ``per_sample`` layer is run one sample at a time, as at batch 1. ``in_channels``: the input
    channels priced (soft in ``smooth`` cost mode, one-hot for the derived network), instead of the
    table's."""
    cover_h = (layers.out_h - 1) * layers.stride + layers.kernel_h
    cover_w = (layers.out_w - 1) * layers.stride + layers.kernel_w
    reuse = torch.clamp(layers.kernel_h * layers.kernel_w * layers.out_h * layers.out_w / (cover_h * cover_w), min=1.0)
    cin = layers.in_channels if in_channels is None else in_channels
    channels = torch.where(layers.depthwise, torch.ones_like(cin), cin / layers.groups)
    pixels = cover_h * cover_w * channels * layers.act_bits / 8.0
    cover = torch.clamp(pixels / _half_words(ifmap_kb), max=1.0)
    gemm = layers.linear | ((batch_size > 1) & ~layers.per_sample)
    return torch.where(gemm, torch.ones_like(reuse), reuse), torch.where(gemm, torch.ones_like(cover), cover)


# Weight of a fold boundary's full circle per dataflow and read operand, the exponents that damp the
# ifmap's (reuse, cover), and how the two read ports, the write port and compute combine; fitted on
# every row of tests/hardware/data/scalesim_user.csv and scalesim_user_groups.csv by
# tools/fit_systolic_mem.py (bench_memory_model.py --groups scores constants refitted without the
# scored layers). Near-zero values (the slower port's share, some exponents) are what the fit
# found: the walks and the max explain those. The filters have no weight: they are traced exactly.
COEFFICIENTS: dict[str, dict[str, float]] = {
    "ws": {"ifmap": 0.922, "reuse": 5.607e-22, "cover": 0.2279},
    "os": {"ifmap": 1.086, "reuse": 2.171e-14, "cover": 2.518},
    "is": {"ifmap": 1.399, "reuse": 0.06327, "cover": 0.4607},
    "combine": {"overlap": 0.2636, "writes": 0.1748, "ports": 0.03836},
}



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


def _prefetch_counts(size, walks, boundaries, buffer_words: int, temperature: float | None, crawls=True):
    """Prefetches of an operand of ``size`` words walked ``walks`` times through a buffer of ``buffer_words``.

    ``sequential``: the window walks the operand after the free initial fill, at least one full chunk
    per walk once the operand overflows the active half (SCALE-Sim fetches a whole chunk however few
    lines the window moves). Each prefetch moves the window by the lines the active half leaves out,
    at most half a buffer: an operand of ``half + d`` lines (``d < half``) moves ``d`` lines per chunk,
    so walking it again costs ``(half + d) / d`` chunks (issue 11's "crawl" of OS filters just over
    half a buffer). ``crawls`` is false where that does not happen: an im2col ifmap whose pixels
    repeat (:func:`window_reuse`) keeps a copy of nearly every pixel in a window that holds most of
    its lines. ``wrap``: at a fold boundary a demand behind the window makes it circle the whole
    operand (``lines / half`` prefetches); the caller weights how often. The gradients of both counts
    are non-negative in the operand (the crawl step is held constant for them; its value, like
    SCALE-Sim, falls as the operand grows towards a full buffer).
    """
    per_line = math.ceil(buffer_words / LINES)
    half = math.ceil(buffer_words / 2 / per_line)  # lines of the active half (50)
    lines = size / per_line
    over = _overflows(lines, half, temperature)
    # SCALE-Sim's prefetch moves the window by the lines the active half leaves out, at most half a
    # buffer: an operand just over half a buffer crawls (a full chunk fetched per few lines moved).
    # The step is held constant for the gradient (like the traced wrap-arounds): its count falls
    # as the operand grows towards a full buffer, but the words walked grow with the channels.
    crawl = torch.clamp(lines.detach() - half, min=1.0, max=float(half))
    step = torch.where(torch.as_tensor(crawls), crawl, torch.full_like(crawl, float(half)))
    seq = over * torch.maximum(torch.relu(walks * lines - half) / step, walks * torch.ones_like(lines))
    return seq, over * boundaries * lines / half
