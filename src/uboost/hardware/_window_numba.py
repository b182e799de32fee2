"""The exact window traces (:mod:`uboost.hardware._window_trace`: WS tiles, OS passes) as numba loops (optional).

The trace follows SCALE-Sim's read window tile by tile: a network on a small array has thousands of filter tiles
(resnet18 on 16x16: 9,216 in one layer), and numpy steps all layers of a table through every tile together at a
few microseconds per operation (45 ms per evaluation of resnet18, where the closed form took 2 ms). The same float64
operations in the same order as one scalar loop per layer run in microseconds. Every quantity is a whole number of
lines or words well inside float64's exact range, apart from ``ceil`` of a quotient, which both compute as the same
IEEE division; ``tests/hardware/test_window_trace.py`` checks that both give the same counts. With numba missing
(it comes with ``uboost[fast]`` and ``uboost[dev]``) or ``UBOOST_NUMBA=0``, numpy runs the trace.
"""

from __future__ import annotations

import functools
import logging
import os

import numpy as np

logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def _kernels():
    """The compiled loops ``(stationary, passes)``, or ``None`` (numba missing, turned off, or broken: said once)."""
    if os.environ.get("UBOOST_NUMBA", "1") == "0":
        return None
    try:
        import numba
    except ImportError:
        return None
    try:
        return _compile(numba)
    except Exception as exc:  # a broken numba install: numpy runs the traces
        logger.warning("numba window traces unavailable (%s); using numpy", exc)
        return None


def stationary_kernel():
    """The loop of :func:`uboost.hardware._window_trace.traced_stationary`, or ``None``."""
    kernels = _kernels()
    return None if kernels is None else kernels[0]


def passes_kernel():
    """The loop of :func:`uboost.hardware._window_trace.traced_passes`, or ``None``."""
    kernels = _kernels()
    return None if kernels is None else kernels[1]


def _compile(numba):
    @numba.njit(cache=True, nogil=True)
    def stationary(k, n, per, rows, cols, per_line, active_cap, step_cap, cap, out):  # pragma: no cover - compiled
        for i in range(k.shape[0]):
            lines = np.floor(k[i] * n[i] * per[i] / per_line) + 1.0
            active = min(lines, active_cap)
            step = min(lines - active, step_cap)
            if not step > 0:  # the operand fits: nothing moves
                out[i] = 0.0
                continue
            row_folds, col_folds = np.ceil(k[i] / rows), np.ceil(n[i] / cols)
            tiles = row_folds * col_folds
            rounds = min(cap, tiles)
            start = moves = early = 0.0
            t = 0
            while t < rounds:
                if t == cap // 2:
                    early = moves
                fc = np.floor(t / max(row_folds, 1.0))
                fr = t - fc * row_folds
                used = min(max(n[i] - fc * cols, 1.0), cols)
                base = fc * k[i] * cols
                top = min(fr * rows + rows, k[i]) - 1.0
                bottom = fr * rows
                first = np.floor((base + top * used) * per[i] / per_line)
                last = np.floor((base + top * used + used - 1.0) * per[i] / per_line)
                reach = max(np.ceil((((first - start) % lines) - active + 1.0) / step), 0.0)
                start = (start + reach * step) % lines
                u = first - ((first - start) % lines)
                walk = max(np.ceil((last - u - active + 1.0) / step), 0.0)
                u = u + walk * step
                moves += reach + walk
                while True:  # down the rows: the next one whose first line is under the window's start
                    row = min(np.ceil((u * per_line / per[i] - base) / used) - 1.0, top - 1.0)
                    if not row >= bottom:
                        break
                    first = np.floor((base + row * used) * per[i] / per_line)
                    last = np.floor((base + row * used + used - 1.0) * per[i] / per_line)
                    circle = max(np.ceil((((first - u) % lines) - active + 1.0) / step), 0.0)
                    u2 = first - ((first - (u + circle * step)) % lines)
                    walk = max(np.ceil((last - u2 - active + 1.0) / step), 0.0)
                    u = u2 + walk * step
                    top = row
                    moves += circle + walk
                start = u % lines
                t += 1
            late = max(cap - cap // 2, 1)
            out[i] = moves + (moves - early) / late * max(tiles - cap, 0.0)

    @numba.njit(cache=True, nogil=True)
    def passes(rows, width, last_width, per, folds, repeats, cyclic, per_line, active_cap, step_cap, cap, out):  # pragma: no cover
        def triangle(x, w):  # inner functions, not closures over other kernels: numba caches the loop on disk
            x = max(x, 0.0)
            return x * (x + 1.0) / 2.0 if x <= w else w * (w + 1.0) / 2.0 + (x - w) * w

        def before(x, rows, width, last_width, folds):
            full = (folds - 1.0) * rows
            a, b = min(x, full), min(x, folds * rows)
            tail = triangle(x - full, last_width) - triangle(x - b, last_width) if b > full else 0.0
            return triangle(x, width) - triangle(x - a, width) + tail

        for i in range(rows.shape[0]):
            operand = ((folds[i] - 1.0) * width[i] + last_width[i]) * rows[i]
            lines = np.floor(operand * per[i] / per_line) + 1.0
            active = min(lines, active_cap)
            step = min(lines - active, step_cap)
            if not step > 0:
                out[i] = 0.0
                continue
            total = folds[i] * repeats[i]
            rounds = min(cap, total)
            full, stacked = (folds[i] - 1.0) * rows[i], folds[i] * rows[i]
            start = moves = early = 0.0
            p = 0
            while p < rounds:
                if p == cap // 2:
                    early = moves
                fold = (p % max(folds[i], 1.0)) if cyclic > 0 else np.floor(p / max(repeats[i], 1.0))
                bottom = (fold + 1.0) * rows[i] - 1.0
                diagonal = bottom + (width[i] if fold < folds[i] - 1.0 else last_width[i]) - 1.0
                top = min(diagonal, stacked - 1.0)
                below = max(top - bottom, 0.0) - max(min(top, diagonal - last_width[i]) - max(bottom + 1.0, full) + 1.0, 0.0)
                head = before(fold * rows[i], rows[i], width[i], last_width[i], folds[i])
                tail = before(diagonal, rows[i], width[i], last_width[i], folds[i]) + below
                first, last = np.floor(head * per[i] / per_line), np.floor(tail * per[i] / per_line)
                reach = max(np.ceil((((first - start) % lines) - active + 1.0) / step), 0.0)
                start = (start + reach * step) % lines
                u = first - ((first - start) % lines)
                walk = max(np.ceil((last - u - active + 1.0) / step), 0.0)
                moves += reach + walk
                start = (u + walk * step) % lines
                p += 1
            late = max(cap - cap // 2, 1)
            out[i] = moves + (moves - early) / late * max(total - cap, 0.0)

    return stationary, passes
