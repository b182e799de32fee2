"""Where SCALE-Sim's copies of an input pixel lie in the input-stationary ifmap's fetch order.

SCALE-Sim's im2col ifmap repeats each input pixel once per window that covers it (a 3x3 stride-1
conv: up to 9 times), all with the pixel's one address. Its read buffer hits a demanded address
when *any* copy of it lies in the active window. In IS the ifmap is the stationary operand: it is
fetched column fold by column fold (``cols`` windows, ``k``-major), and each ``rows x cols`` tile
is demanded last row first. Without copies, a window edge inside a tile is crossed backwards and
the window circles the operand (``_window_trace.traced_tiles``). With copies:

* the window moves forward only when a demanded pixel has no copy in it: it trails the earliest
  copies of the pixels demanded so far (``hi``: per tile, the largest first-reachable copy);
* it circles only when a demanded pixel's copies all lie behind its start (``lo``: per tile, the
  smallest last-reachable copy).

A copy is reachable from the next one when they lie less than a window apart (the window slides
over the gap without losing the pixel); a pixel whose copies lie farther apart (a 5x5 conv with
32 channels: one image row of windows later) is lost in the gap like a pixel without copies.

:func:`tile_reach` computes ``(lo, hi)`` for the first ``tiles`` tiles from the addresses SCALE-Sim
gives the im2col matrix (no padding: the input is ``(out - 1) * stride + kernel`` pixels wide),
exactly and once per layer shape (cached): numpy over the windows of the traced tiles and their
neighbours, a few milliseconds for a 32x32 array.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch


def ifmap_reach(layers, m, k, rows: int, cols: int, window_words: float, act_words, tiles: int, batch_size: int):
    """``(lo, hi)`` tensors (layers x ``tiles``, words of the fetch order) of the IS ifmap's tiles for
    conv layers whose windows overlap (their im2col repeats pixels), NaN elsewhere (``Linear``,
    batched layers, which SCALE-Sim runs as GEMMs with distinct addresses, and layers without overlap;
    a ``per_sample`` layer runs one sample at a time, as at batch 1).
    ``m``, ``k``: the per-group GEMM sides (soft channel counts are rounded: the trace is piecewise
    constant in them)."""
    n = len(m)
    lo = torch.full((n, tiles), math.nan, dtype=torch.float64)
    hi = torch.full((n, tiles), math.nan, dtype=torch.float64)
    gemm = layers.linear | ((batch_size > 1) & ~layers.per_sample)
    if bool(gemm.all()):
        return lo, hi
    act = torch.as_tensor(act_words, dtype=torch.float64).expand(n).tolist()
    columns = (layers.out_h, layers.out_w, layers.kernel_h, layers.kernel_w, layers.stride, gemm)
    for i, (oh, ow, kh, kw, s, as_gemm) in enumerate(zip(*(c.tolist() for c in columns))):
        oh, ow, kh, kw, s = int(oh), int(ow), int(kh), int(kw), int(s)
        if as_gemm or (kh <= s and kw <= s):  # distinct addresses, or no two windows share a pixel
            continue
        channels = max(1, round(float(k[i]) / (kh * kw)))
        if round(float(m[i])) != oh * ow:
            continue
        a, b = tile_reach(oh, ow, kh, kw, s, channels, rows, cols, float(window_words) / act[i], tiles)
        lo[i, : len(a)] = torch.from_numpy(a) * act[i]
        hi[i, : len(b)] = torch.from_numpy(b) * act[i]
    return lo, hi


@functools.lru_cache(maxsize=4096)
def tile_reach(out_h: int, out_w: int, kernel_h: int, kernel_w: int, stride: int, channels: int, rows: int, cols: int,
               window: float, tiles: int) -> tuple[np.ndarray, np.ndarray]:
    """Per tile (column fold major, row fold minor; at most ``tiles``): the smallest last-reachable
    and the largest first-reachable copy position (in elements of the fetch order) of the tile's
    words; copies closer than ``window`` elements reach each other."""
    big_k = kernel_h * kernel_w * channels
    windows = out_h * out_w
    row_folds = math.ceil(big_k / rows)
    traced = min(tiles, row_folds * math.ceil(windows / cols))
    last_window = min(windows, math.ceil(traced / row_folds) * cols)
    # copies of a pixel used by a traced window lie at most this many windows later
    margin = (kernel_h // stride + 1) * out_w + kernel_w // stride + 1
    w = np.arange(min(windows, last_window + margin))[:, None]
    j = np.arange(big_k)[None, :]
    orow, ocol = np.divmod(w, out_w)
    krow, rest = np.divmod(j, kernel_w * channels)
    kcol, ch = np.divmod(rest, channels)
    width = (out_w - 1) * stride + kernel_w
    pixel = ((orow * stride + krow) * width + ocol * stride + kcol) * channels + ch
    fold, lane = np.divmod(w, cols)
    used = np.minimum(cols, windows - fold * cols)  # the last column fold holds fewer windows
    pos = fold * big_k * cols + j * used + lane
    flat_pos, flat_pixel = pos.ravel(), pixel.ravel()
    order = np.argsort(flat_pixel * (int(flat_pos.max()) + 1) + flat_pos, kind="stable")
    sp, spx = flat_pos[order], flat_pixel[order]
    new = np.ones(len(sp), dtype=bool)
    new[1:] = (spx[1:] != spx[:-1]) | (sp[1:] - sp[:-1] >= window)
    starts = np.flatnonzero(new)
    segment = np.cumsum(new) - 1
    last = np.empty_like(sp)
    first = np.empty_like(sp)
    last[order] = np.maximum.reduceat(sp, starts)[segment]
    first[order] = np.minimum.reduceat(sp, starts)[segment]
    last, first = last.reshape(pos.shape), first.reshape(pos.shape)
    lo, hi = np.empty(traced), np.empty(traced)
    for t in range(traced):
        fc, fr = divmod(t, row_folds)
        ws, ks = slice(fc * cols, min(fc * cols + cols, windows)), slice(fr * rows, min(fr * rows + rows, big_k))
        lo[t], hi[t] = last[ws, ks].min(), first[ws, ks].max()
    return lo, hi
