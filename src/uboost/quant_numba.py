"""The activation fake quantization in one pass forward and one backward, and the weight fake
quantization (scale included) in one call, with numba (optional).

:class:`uboost.quant._FakeQuantAct` runs four passes over a layer's input in the forward
(``x * inv``, ``round_``, ``clamp``, ``mul_``: two of them allocate) and one in the backward; on
``darts-cifar`` at width 8 these passes cost about what the 8-channel convolutions they feed cost.
With `numba <https://numba.pydata.org>`_ installed (``pip install uboost[fast]``), the same
float32 operations run as one loop each way:

* forward: ``q = clamp(rint(x * inv), lo, hi) * s`` and a one-byte mask ``lo <= rint(x * inv) <= hi``
  (one read, one write and a quarter);
* backward: the gradient where the mask is set, 0 elsewhere (what ``hardtanh_backward`` on the
  rounded values gives; a NaN input gets 0, as in the vectorized body of torch's kernel -- its
  scalar tail, the last few elements of a tensor, lets a NaN's gradient through);
* weights (:func:`fake_quant_weight`): per output channel the scale ``max(max|W_c|, 1e-8) / qmax``
  and ``torch.fake_quantize_per_channel_affine``'s values in one call (torch: five small ops and
  a two-pass scalar kernel, ~110 weights per ``darts-cifar`` step); the gradient is the incoming
  one where every element is in range, which a finite weight always is (its scale is its peak).
  torch rounds through int64 there: ``r + 0`` drops a -0 as that does (an addition before the
  product: nothing to fuse), NaN and values beyond int64 go to the low bound as its cast does.

**Same numbers.** The same IEEE float32 operations in the same order: a product of two float32
numbers, ``rint`` (round half to even in the default rounding mode, as torch's ``round``), the two
comparisons of ``clamp`` (NaN passes through both, as in torch), a product; no addition, so no
fused multiply-add can form (numba's LLVM does not contract without ``fastmath``).
``tests/test_quant_numba.py`` checks values and gradients with ``torch.equal`` against the torch
path, exact half steps, the two values just outside the range, NaN and infinities included.

Used only where it is the faster path: a float32 CPU tensor, contiguous or a view in order such
as the shifted input ``x[:, :, 1:, 1:]`` of a factorized reduction (copied to a contiguous tensor
first: torch's passes give their result in that layout too), while torch runs one intra-op
thread (the loops are single-threaded; with more threads torch's parallel passes are kept).
numba compiles the loops on first use (~1 s, cached on disk next to this module when
the directory is writable). ``UBOOST_NUMBA=0`` turns it off.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import torch

logger = logging.getLogger(__name__)

_KERNELS: tuple | None | bool = False  # False: not tried yet; None: unavailable


def _compile():
    import numba

    @numba.njit(cache=True, nogil=True, boundscheck=False)
    def forward(x, out, mask, inv, scale, lo, hi):  # pragma: no cover - compiled
        for i in range(x.shape[0]):
            r = np.rint(x[i] * inv)
            mask[i] = np.uint8(1) if (r >= lo and r <= hi) else np.uint8(0)  # NaN: 0
            if r < lo:
                r = lo
            elif r > hi:
                r = hi
            out[i] = r * scale  # NaN stays NaN, as in torch's clamp

    @numba.njit(cache=True, nogil=True, boundscheck=False)
    def backward(grad, mask, out):  # pragma: no cover - compiled
        zero = np.float32(0.0)
        for i in range(grad.shape[0]):
            out[i] = grad[i] if mask[i] else zero

    @numba.njit(cache=True, nogil=True, boundscheck=False)
    def weight_forward(w, out, mask, qmax, floor):  # pragma: no cover - compiled
        every = True  # every element in range (mask all set)
        for c in range(w.shape[0]):
            peak = np.float32(0.0)  # max |w| of the channel, NaN if it has one (as amax)
            nan = False
            for k in range(w.shape[1]):
                a = abs(w[c, k])
                if a > peak:
                    peak = a
                elif a != a:
                    nan = True
            if nan:
                peak = np.float32(np.nan)
            if peak < floor:  # clamp_min (NaN stays)
                peak = floor
            scale = peak / qmax
            inv = np.float32(1.0) / scale
            for k in range(w.shape[1]):
                r = np.rint(w[c, k] * inv)
                inside = r >= -qmax and r <= qmax
                mask[c, k] = inside
                if not inside:
                    every = False
                    # torch casts to int64 first: NaN and beyond int64 become its minimum, then the low bound
                    r = qmax if (r > qmax and r < np.float32(9.2e18)) else -qmax
                out[c, k] = (r + np.float32(0.0)) * scale  # + 0: torch's integer q has no -0
        return every

    return forward, backward, weight_forward


def kernels():
    """``(forward, backward, weight_forward)`` numba loops, or ``None`` when numba is missing or turned off."""
    global _KERNELS
    if _KERNELS is False:
        _KERNELS = None
        if os.environ.get("UBOOST_NUMBA", "1") != "0":
            try:
                _KERNELS = _compile()
            except ImportError:
                pass
            except Exception as exc:  # a broken numba install: the torch path, said once
                logger.warning("numba fake quantization unavailable (%s); using torch's passes", exc)
    return _KERNELS


def usable(x: torch.Tensor) -> bool:
    """True when the one-pass loops serve ``x`` (see the module docstring)."""
    return (x.dtype == torch.float32 and x.device.type == "cpu" and (x.is_contiguous() or _in_order(x))
            and torch.get_num_threads() == 1 and kernels() is not None)


def _in_order(x: torch.Tensor) -> bool:
    """A view whose strides fall dimension after dimension, none zero (e.g. ``x[:, :, 1:, 1:]``):
    torch's elementwise passes give a contiguous result for it, so a contiguous copy and the loops
    give the same values in the same layout."""
    strides = [s for s, n in zip(x.stride(), x.shape) if n > 1]
    return all(s > 0 for s in strides) and all(a > b for a, b in zip(strides, strides[1:]))


def fake_quant_forward(x: torch.Tensor, scale: float, lo: float, hi: float, inv: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(q, mask)`` for a float32 CPU ``x`` (:func:`usable`); numbers as float32."""
    forward = kernels()[0]
    x = x.detach().contiguous()  # a view in order (usable): its values, as torch's passes would read them
    out = torch.empty_like(x)
    mask = np.empty(x.shape, np.uint8)  # numpy arrays and reshapes: ~1 us less per array than torch views
    forward(x.numpy().reshape(-1), out.numpy().reshape(-1), mask.reshape(-1),
            np.float32(inv), np.float32(scale), np.float32(lo), np.float32(hi))
    return out, torch.from_numpy(mask)


def masked_grad(grad: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``grad`` where ``mask`` is set, 0 elsewhere."""
    backward = kernels()[1]
    grad = grad.detach().contiguous()
    out = torch.empty_like(grad)
    backward(grad.numpy().reshape(-1), mask.numpy().reshape(-1), out.numpy().reshape(-1))
    return out


_FLOOR = np.float32(1e-8)


def fake_quant_weight(weight: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(q, mask)``: ``weight`` (float32 CPU, :func:`usable`) fake-quantized symmetrically per output
    channel at ``bits`` as :func:`uboost.quant.fake_quant_weight` does it with torch -- the scale
    ``max(max|W_c|, 1e-8) / qmax`` and ``torch.fake_quantize_per_channel_affine`` -- in one call;
    ``mask`` is ``None`` when every element is in range (always, for finite weights: the scale is
    the channel's own peak), else where it is (the gradient passes there)."""
    weight = weight.detach().contiguous()
    out = torch.empty_like(weight)
    mask = np.empty(weight.shape, np.bool_)
    channels = weight.shape[0]
    every = kernels()[2](weight.numpy().reshape(channels, -1), out.numpy().reshape(channels, -1),
                         mask.reshape(channels, -1), np.float32(2 ** (bits - 1) - 1), _FLOOR)
    return out, (None if every else torch.from_numpy(mask))


__all__ = ["fake_quant_forward", "fake_quant_weight", "kernels", "masked_grad", "usable"]
