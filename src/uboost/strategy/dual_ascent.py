"""One dual-ascent step of a budget's Lagrange multiplier (one multiplier per budget).

The multiplier ``mu`` of a budget ``target`` on a metric (latency, energy) moves on the *derived*
network's value after every architecture step (see :mod:`uboost.strategy.loss`):

* a plain upper bound (no window): ``mu <- max(0, mu + lr * (derived / target - 1))``;
* a window ``[floor, target]``: over it ``mu`` rises from ``max(mu, 0)`` by the relative
  violation; under it ``mu`` falls from ``min(mu, 0)`` by ``derived / floor - 1`` (a negative
  multiplier *rewards* the metric, pulling the network up into the window); inside it ``mu``
  is released to 0 (the task alone decides).
"""

from __future__ import annotations


def dual_step(mu: float, derived: float, target: float, floor: float | None, lr: float) -> float:
    """The multiplier after one step; ``floor`` None or 0: a plain upper bound."""
    if not floor:
        return max(0.0, mu + lr * (derived / target - 1.0))
    if derived > target:  # over the window: push down, starting from 0 if it was pulling up
        return max(mu, 0.0) + lr * (derived / target - 1.0)
    if derived < floor:  # under it: reward the metric (mu < 0), from 0 if it was pushing down
        return min(mu, 0.0) + lr * (derived / floor - 1.0)
    return 0.0  # inside: a multiplier held here keeps drifting the alphas out


def dual_step_(mu, derived, target: float, floor: float | None, lr: float):
    """:func:`dual_step` on tensors, in place on ``mu`` (a float64 buffer), as tensor ops where
    ``mu`` lives: a search step reads nothing on the host to move its multipliers. ``derived`` is
    a tensor (the derived network's cost) or a float. Returns ``mu``."""
    import torch

    d = derived.to(mu.dtype) if isinstance(derived, torch.Tensor) else torch.full((), derived, dtype=mu.dtype, device=mu.device)
    up = torch.clamp(mu, min=0.0) + lr * (d / target - 1.0)
    if not floor:
        return mu.copy_(torch.clamp(mu + lr * (d / target - 1.0), min=0.0))
    down = torch.clamp(mu, max=0.0) + lr * (d / floor - 1.0)
    return mu.copy_(torch.where(d > target, up, torch.where(d < floor, down, torch.zeros_like(mu))))
