"""The smooth ceiling of U-Boost: a differentiable stand-in for ``ceil``.

``ceil(x)`` for ``x > 0`` is 1 plus the number of integers ``i >= 1`` below ``x``. The smooth
ceiling replaces each indicator ``[x > i]`` by ``sigmoid(T * (x - i))``::

    smooth_ceil(x; T) = 1 + sum_{i >= 1} sigmoid(T * (x - i))

The first tile is counted exactly (any layer with at least one channel occupies one tile), so
a depthwise layer -- one output channel per group, ``x = 1/cols`` -- costs one tile, not the
half tile a sigmoid at ``i = 0`` would give at moderate ``T``. Below one tile the cost is flat,
as on the hardware. The paper sums from ``i = 0``.

It is strictly increasing in ``x`` and converges to ``ceil(x)`` at every non-integer ``x`` as
the temperature ``T`` grows. **Bias at integers:** at ``x = n`` the step at ``i = n`` sits on
its midpoint, so the limit there is ``n + 1/2``: half a tile dearer than ``ceil``. That is the
worst place for it, because ``x = c / rows`` is an integer exactly when ``c`` channels fill
the array. Since channel counts are integers, the steps can be moved by ``offset`` (steps at
``i + offset``): with ``offset = 0.5 / rows`` the step falls half a channel above the full
tile, and the limit equals ``ceil(c / rows)`` at *every* integer ``c``. The cost models use
that offset; ``offset=0`` is the paper's definition. For small ``T`` the curve is a smooth
ramp of slope ~1 (the tile structure is gone), so ``T`` trades gradient signal for fidelity.

Only the steps within ``window(T)`` of ``x`` are evaluated; all steps further below count as
exactly 1 and all steps further above as exactly 0, an error below 1e-6 in total. There is no
cap on the number of tiles: ``x`` may be arbitrarily large.
"""

from __future__ import annotations

import math

import torch

TAIL_TOLERANCE = 1e-7


def window(temperature: float) -> int:
    """Steps on each side of ``x`` whose sigmoid is not yet within the tolerance of 0 or 1."""
    if not temperature > 0 or not math.isfinite(temperature):
        raise ValueError(f"temperature must be positive and finite, got {temperature!r}")
    # sum_{j>=w} sigmoid(-T j) <= exp(-T w) / (1 - exp(-T)) < TAIL_TOLERANCE
    tail = -math.log(TAIL_TOLERANCE * (1.0 - math.exp(-temperature)))
    return max(1, math.ceil(tail / temperature))


def smooth_ceil(x: torch.Tensor, temperature: float, offset: float | torch.Tensor = 0.0) -> torch.Tensor:
    """Smooth ceiling of ``x`` (any shape, ``x > 0``) at ``temperature``; differentiable in ``x``.

    ``offset`` (in ``[0, 1)``, scalar or broadcastable tensor) moves every step to ``i + offset``.
    """
    w = window(temperature)
    shifted = x - offset
    base = torch.floor(shifted.detach()) - (w - 1)  # first step evaluated explicitly
    offsets = torch.arange(2 * w, dtype=x.dtype, device=x.device)
    steps = base.unsqueeze(-1) + offsets  # (..., 2w) integers around x - offset
    steps = steps.masked_fill(steps < 1, math.inf)  # no steps below i = 1: sigmoid(-inf) = 0
    sig = torch.sigmoid((shifted.unsqueeze(-1) - steps) * temperature)
    below = torch.clamp(base - 1, min=0.0)  # steps 1 .. base-1, all ~1
    return 1.0 + below + sig.sum(-1)
