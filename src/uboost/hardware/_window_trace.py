"""SCALE-Sim's read-buffer window traced fold by fold. Exact prefetch counts, where every demanded word
has one place in the fetch order (every filter port; an ifmap that reads each pixel once):
:func:`traced_passes` (a streamed operand, pass by pass) and :func:`traced_stationary` (a stationary
one, tile by tile), checked against SCALE-Sim's own read buffer (``tests/hardware/test_window_trace.py``).
Where a word is demanded and fetched in several copies (an im2col ifmap), the circles of a fitted model:
:func:`traced_wraps` (a streamed operand's fold boundaries) and :func:`traced_tiles` (a stationary
operand's tiles read in reverse). Constants of the layer shapes, no gradient; used by
:mod:`uboost.hardware.systolic_mem`, whose docstring describes the memory system they trace."""

from __future__ import annotations

import math

import numpy as np
import torch

from uboost.hardware import _window_numba

WORDS_PER_KB = 1024
LINES = 100  # SCALE-Sim hashes a read buffer into 100 lines; a prefetch moves its window by up to half of them
TRACED_FOLDS = 64  # fold boundaries traced one by one; beyond, they circle at the traced rate


def traced_wraps(fold_words, operand_words, rows: int, folds, kb: int) -> torch.Tensor:
    """Fold boundaries of one walk of a streamed operand at which SCALE-Sim's window circles it.

    Fold ``f`` starts at word ``f * fold_words - rows (rows - 1) / 2`` of the fetch order (rolled along
    the skew) and the previous fold's demands reach ``rows * rows - rows`` words past that: when a
    window edge falls in between, the previous fold moves the window past the next fold's first
    words and the window circles the whole operand, which shifts its edges by ``-lines mod half``
    lines. Window edges start at multiples of the active half, so shapes and buffers that are
    powers of two resonate: every boundary circles, or the first and then none. Piecewise constant
    in the channels (not monotone, like SCALE-Sim); a short loop over boundaries, batched over layers.
    The trace is a constant of the shapes (no gradient): see :func:`_arrays` for where it runs.
    """
    words = kb * WORDS_PER_KB
    per_line = math.ceil(words / LINES)
    half = math.ceil(words / 2 / per_line)
    edge = float(half * per_line)
    like = operand_words
    xp, (fold_words, folds, operand_words) = _arrays(fold_words, folds, operand_words)
    folds = xp.round(folds)  # a smooth fold count counts whole folds
    shift = xp.remainder(-xp.ceil(operand_words / per_line), half) * per_line
    offset = xp.zeros_like(fold_words)
    wraps = xp.zeros_like(fold_words)
    for f in range(1, _last_fold(xp, folds - 1.0) + 1):  # past every layer's last boundary nothing is hit
        ahead = xp.remainder(offset - (f * fold_words - rows * (rows - 1) / 2.0), edge)
        hit = (ahead > 0) & (ahead <= rows * rows - rows) & (f <= folds - 1.0)
        wraps = wraps + hit
        offset = offset + hit * shift
    return _like(wraps * (1.0 + (folds - 1.0 - TRACED_FOLDS).clip(min=0.0) / TRACED_FOLDS), like=like)


def _arrays(*values):
    """``(xp, arrays)``: the trace inputs as float64 numpy arrays on the host (``xp`` numpy) when they live there,
    a few microseconds per traced step against tens for torch ops on such small tensors (the inner accelerator
    choice traces every layer on thousands of accelerators); as detached torch tensors (``xp`` torch) on an
    accelerator, where reading them would wait for the device (the same operations either way)."""
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    if any(t.device.type != "cpu" for t in tensors):
        return torch, [v.detach().to(torch.float64) if isinstance(v, torch.Tensor) else v for v in values]
    return np, [v.detach().to(torch.float64).numpy() if isinstance(v, torch.Tensor) else np.asarray(v, dtype=np.float64)
                for v in values]


def _like(values, like) -> torch.Tensor:
    """``values`` (numpy or torch) as a tensor of ``like``'s dtype and device."""
    out = torch.from_numpy(values) if isinstance(values, np.ndarray) else values
    return out.to(like.device, like.dtype) if isinstance(like, torch.Tensor) else out


def _last_fold(xp, folds, cap: int = TRACED_FOLDS) -> int:
    """How many steps the loops of the traces take: ``cap``, or on the host ``ceil(max(folds))`` when fewer
    (later steps add nothing)."""
    if xp is not np:  # on an accelerator: no host read
        return cap
    if folds.size == 0:
        return 0
    top = float(folds.max())
    return min(cap, int(math.ceil(top))) if math.isfinite(top) else cap


def _host(*values):
    """``(np, arrays)``: the values as float64 numpy arrays on the host, wherever they live. The exact traces
    (:func:`traced_passes`, :func:`traced_stationary`) stop early per layer batch, so on an accelerator one
    read of a few shape numbers per evaluation beats a fixed count of hundreds of tiny launches."""
    return np, [v.detach().to("cpu", torch.float64).numpy() if isinstance(v, torch.Tensor) else np.asarray(v, dtype=np.float64)
                for v in values]


def traced_tiles(k, other, rows: int, cols: int, kb: int, operand_words, per, reach=None) -> torch.Tensor:
    """Window edges crossed backwards while the stationary operand's tiles are read (WS: the filters,
    ``other = n``; IS: the ifmap, ``other = m``); each makes the window circle the whole operand.

    SCALE-Sim fetches the stationary ``k x other`` operand column fold by column fold (``k x cols``
    words each, row-major) and reads fold ``(fc, fr)``'s ``rows x cols`` tile last row first: a
    window edge strictly inside a tile is crossed backwards. Window edges lie on a lattice of
    half-buffer steps that shifts by ``-lines mod half`` at every circle, as in :func:`traced_wraps`;
    a tile bigger than the active half (128x128 arrays with 8-16 kB) crosses several. ``reach``
    (IS's im2col ifmap, :mod:`uboost.hardware.im2col_reach`): per tile, the smallest last and the
    largest first position the copies of its pixels reach; the window then moves only as far as
    the first copies need and circles only for a pixel whose copies all lie behind it (a 3x3
    stride-1 conv on a 32x32 array never circles). Traced tile by tile (``TRACED_FOLDS``, then at
    the traced rate); piecewise constant in the channels."""
    words = kb * WORDS_PER_KB
    per_line = math.ceil(words / LINES)
    half = math.ceil(words / 2 / per_line)
    edge = float(half * per_line)
    like = k
    xp, (k, other, operand_words, per, *reach) = _arrays(k, other, operand_words, per, *(reach or ()))
    row_folds, col_folds = xp.ceil(k / rows), xp.ceil(other / cols)
    folds = row_folds * col_folds
    shift = xp.remainder(-xp.ceil(operand_words / per_line), half) * per_line
    offset = xp.zeros_like(k)
    wraps = xp.zeros_like(k)
    ahead = xp.zeros_like(k)  # the farthest word the window has had to reach
    for f in range(_last_fold(xp, folds)):  # tiles past every layer's last cross nothing
        fc = xp.floor(f / row_folds)
        fr = f - fc * row_folds
        used_cols = (other - fc * cols).clip(max=cols)
        lo = (fc * k * cols + fr * rows * used_cols) * per
        hi = lo + (k - fr * rows).clip(max=rows) * used_cols * per - 1.0
        if reach:  # copies of the tile's pixels elsewhere (IS ifmap): where they reach
            lo = xp.where(xp.isnan(reach[0][:, f]), lo, reach[0][:, f])
            hi = xp.where(xp.isnan(reach[1][:, f]), hi, reach[1][:, f])
        ahead = xp.maximum(ahead, hi)
        crossed = (xp.floor((ahead - offset) / edge) - xp.floor((lo - offset) / edge)).clip(min=0.0)
        crossed = crossed * (f < folds)
        wraps = wraps + crossed
        offset = offset + crossed * shift
        ahead = xp.where(crossed > 0, lo, ahead)  # the circle leaves the window at the word it looked for
    return _like(wraps * (1.0 + (folds - TRACED_FOLDS).clip(min=0.0) / TRACED_FOLDS), like=like)


TRACED_STEPS = 16384  # OS passes and WS tiles traced one by one (resnet18 on 16x16: 9,216 tiles in a layer)


def traced_passes(rows_per_fold, width: int, total_width, per, repeats, kb: int, cyclic: bool = False) -> torch.Tensor:
    """Prefetches of SCALE-Sim's read window over a streamed operand read fold by fold, pass by pass.

    SCALE-Sim cuts the operand's ``total_width`` columns into folds ``width`` wide (the last narrower), stacks them
    (each ``rows_per_fold`` rows; soft counts of smooth cost mode are rounded) and
    fetches them rolled along the skew: diagonal by diagonal of the stacked matrix, the last fold's missing
    columns skipped. So a pass over fold ``f`` runs from its first element's place in that order to its last's
    (:func:`_fold_ends`, exact), its demands rising through them. The OS filters: column fold ``fc``'s ``k x cols``
    filters, read once per row fold of the outputs (``repeats`` passes in a row). ``cyclic``: IS's filters, every
    ``rows x n`` fold of ``K`` in turn, the whole operand once per column fold of ``M``. The window (``active``
    lines from ``start``, the operand hashed into ``lines`` lines) moves ``step`` lines per prefetch, wrapping
    around the operand, until a demanded line is inside: each pass moves it to the pass's first line (a circle
    when that line lies behind it: the next pass over a fold that overflows the window, or a fold boundary the
    previous pass ran past), then on to its last. Counted exactly for the first ``TRACED_STEPS`` passes
    (:func:`_extrapolated` past them). A constant of the shapes (no gradient), like :func:`traced_wraps`."""
    per_line, active_cap, step_cap = _window_lines(kb)
    like = rows_per_fold
    xp, (rows_per_fold, total_width, per, repeats) = _host(rows_per_fold, total_width, per, repeats)
    rows_per_fold, total_width, repeats = xp.round(rows_per_fold), xp.round(total_width), xp.round(repeats)
    folds = xp.ceil(total_width / width)
    width, last_width = xp.full_like(folds, float(width)), total_width - (folds - 1.0) * width
    kernel = _window_numba.passes_kernel()
    if kernel is not None:  # the same operations, one scalar loop per layer (uboost.hardware._window_numba)
        return _like(_run(kernel, (rows_per_fold, width, last_width, per, folds, repeats), float(cyclic), per_line, active_cap,
                          step_cap), like=like)
    operand = ((folds - 1.0) * width + last_width) * rows_per_fold
    lines = xp.floor(operand * per / per_line) + 1.0  # SCALE-Sim closes a last (partial) line
    active = lines.clip(max=active_cap)
    step = (lines - active).clip(max=step_cap)
    stride = xp.where(step > 0, step, xp.ones_like(step))  # step 0: the operand fits, nothing moves
    passes = folds * repeats
    start, moves, early = xp.zeros_like(lines), xp.zeros_like(lines), xp.zeros_like(lines)
    rounds = _last_fold(xp, passes, TRACED_STEPS)
    for p in range(rounds):  # each pass: forward to its first line (the window wraps), then up to its last
        if p == TRACED_STEPS // 2:
            early = moves
        live = (p < passes) & (step > 0)
        fold = xp.remainder(p, folds.clip(min=1.0)) if cyclic else xp.floor(p / repeats.clip(min=1.0))
        head, tail = _fold_ends(fold, rows_per_fold, width, last_width, folds)
        first, last = xp.floor(head * per / per_line), xp.floor(tail * per / per_line)
        # moves until a line ``ahead`` lines past the window's start is inside: steps of at most
        # the active lines never jump over it
        reach = xp.ceil((xp.remainder(first - start, lines) - active + 1.0) / stride).clip(min=0.0) * live
        start = xp.remainder(start + reach * step, lines)
        u = first - xp.remainder(first - start, lines)  # the window's start, unwrapped about the first line
        walk = xp.ceil((last - u - active + 1.0) / stride).clip(min=0.0) * live
        moves = moves + reach + walk
        start = xp.where(live, xp.remainder(u + walk * step, lines), start)
    return _like(_extrapolated(moves, early, passes), like=like)


def _triangle(x, w):
    """``sum(min(w, j) for j in 1..x)``: the elements of the diagonals before ``x`` of a ``w``-wide matrix."""
    x = np.maximum(x, 0.0)
    return np.where(x <= w, x * (x + 1.0) / 2.0, w * (w + 1.0) / 2.0 + (x - w) * w)


def _before(x, rows, width, last_width, folds):
    """Elements of the stacked folds on the diagonals before diagonal ``x`` (the last fold ``last_width`` wide)."""
    full = (folds - 1.0) * rows
    a, b = np.minimum(x, full), np.minimum(x, folds * rows)
    return _triangle(x, width) - _triangle(x - a, width) + np.where(b > full, _triangle(x - full, last_width)
                                                                    - _triangle(x - b, last_width), 0.0)


def _fold_ends(fold, rows, width, last_width, folds):
    """Places in the rolled fetch order of fold ``fold``'s first element (its top-left) and last (its bottom
    right): the elements on earlier diagonals, plus, for the last, those of its diagonal listed before it (the
    rows below it, of the next folds, where their columns exist). Checked against the order itself."""
    full, total = (folds - 1.0) * rows, folds * rows
    bottom = (fold + 1.0) * rows - 1.0
    diagonal = bottom + np.where(fold < folds - 1.0, width, last_width) - 1.0
    top = np.minimum(diagonal, total - 1.0)
    below = np.maximum(top - bottom, 0.0) - np.maximum(np.minimum(top, diagonal - last_width) - np.maximum(bottom + 1.0, full) + 1.0, 0.0)
    return _before(fold * rows, rows, width, last_width, folds), _before(diagonal, rows, width, last_width, folds) + below


def _window_lines(kb: int) -> tuple[int, int, int]:
    """``(words per line, lines of the active window, lines a prefetch moves it)`` of a ``kb`` read buffer
    hashed into ``LINES`` lines, at most (an operand of fewer lines caps both, as SCALE-Sim's read buffer does)."""
    words = kb * WORDS_PER_KB
    per_line = math.ceil(words / LINES)
    return per_line, math.ceil(math.ceil(words * 0.5) / per_line), math.ceil((words - math.ceil(words * 0.5)) / per_line)


def _run(kernel, arrays, *numbers) -> np.ndarray:
    """A numba trace over flat float64 copies of ``arrays`` (broadcast together) and ``numbers``, shaped back."""
    arrays = np.broadcast_arrays(*arrays)
    shape, out = arrays[0].shape, np.empty(arrays[0].size)
    flat = [np.array(a, dtype=np.float64).reshape(-1) for a in arrays]  # writable copies (numba reads them)
    kernel(*flat, *(float(x) for x in numbers), TRACED_STEPS, out)
    return out.reshape(shape)


def _extrapolated(moves, early, steps):
    """Past ``TRACED_STEPS`` passes or tiles, the later half of the traced ones' rate (past the free first fill)."""
    late = TRACED_STEPS - TRACED_STEPS // 2
    return moves + (moves - early) / late * (steps - TRACED_STEPS).clip(min=0.0)


def traced_stationary(k, n, per, rows: int, cols: int, kb: int) -> torch.Tensor:
    """Prefetches of SCALE-Sim's read window over WS's stationary ``k x n`` filters, tile by tile.

    SCALE-Sim fetches the filters column fold by column fold (``k x cols`` words each, row-major) and
    reads fold ``(fc, fr)``'s ``rows x cols`` tile last row first, each row left to right. Per tile the
    window moves forward, wrapping, to the top row's first line and up to its last; then, going down the
    rows, every row whose first line lies under the window's start makes it circle the operand (and
    walk up to that row's last line). The rows that start under the window are found in closed form, so
    a tile costs a few steps however many rows it has. Exact on every WS point of the data for up to
    ``TRACED_STEPS`` tiles (:func:`_extrapolated` past them). A constant of the shapes."""
    per_line, active_cap, step_cap = _window_lines(kb)
    like = k
    xp, (k, n, per) = _host(k, n, per)
    kernel = _window_numba.stationary_kernel()
    if kernel is not None:  # the same operations, one scalar loop per layer (uboost.hardware._window_numba)
        return _like(_run(kernel, (k, n, per), rows, cols, per_line, active_cap, step_cap), like=like)
    lines = xp.floor(k * n * per / per_line) + 1.0
    active = lines.clip(max=active_cap)
    step = (lines - active).clip(max=step_cap)
    stride = xp.where(step > 0, step, xp.ones_like(step))
    row_folds, col_folds = xp.ceil(k / rows), xp.ceil(n / cols)
    tiles = row_folds * col_folds
    start, moves, early = xp.zeros_like(lines), xp.zeros_like(lines), xp.zeros_like(lines)
    rounds = _last_fold(xp, tiles, TRACED_STEPS)
    # circles one tile can make: one per line its rows span, and one (the loop ends sooner)
    descents = int(math.ceil(rows * cols * max(float(per.max()) if per.size else 1.0, 1.0) / per_line)) + 2
    for t in range(rounds):
        if t == TRACED_STEPS // 2:
            early = moves
        live = (t < tiles) & (step > 0)
        fc = xp.floor(t / row_folds.clip(min=1.0))
        fr = t - fc * row_folds
        used = (n - fc * cols).clip(min=1.0, max=cols)
        base = fc * k * cols
        top = xp.minimum(fr * rows + rows, k) - 1.0
        bottom = fr * rows
        first, last = xp.floor((base + top * used) * per / per_line), xp.floor((base + top * used + used - 1.0) * per / per_line)
        reach = xp.ceil((xp.remainder(first - start, lines) - active + 1.0) / stride).clip(min=0.0) * live
        start = xp.remainder(start + reach * step, lines)
        u = first - xp.remainder(first - start, lines)  # the window's start, unwrapped about the row
        walk = xp.ceil((last - u - active + 1.0) / stride).clip(min=0.0) * live
        u, moves = u + walk * step, moves + reach + walk
        for _ in range(descents):  # down the rows: the next one whose first line is under the window's start
            row = xp.minimum(xp.ceil((u * per_line / per - base) / used) - 1.0, top - 1.0)
            event = live & (row >= bottom)
            if not event.any():
                break
            first = xp.floor((base + row * used) * per / per_line)
            last = xp.floor((base + row * used + used - 1.0) * per / per_line)
            circle = xp.ceil((xp.remainder(first - u, lines) - active + 1.0) / stride).clip(min=0.0) * event
            u2 = first - xp.remainder(first - (u + circle * step), lines)
            walk = xp.ceil((last - u2 - active + 1.0) / stride).clip(min=0.0) * event
            u = xp.where(event, u2 + walk * step, u)
            top = xp.where(event, row, top)
            moves = moves + circle + walk
        start = xp.where(live, xp.remainder(u, lines), start)
    return _like(_extrapolated(moves, early, tiles), like=like)
