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
