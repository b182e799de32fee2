"""Mean test accuracies compared on their exact values (a share of correctly classified test images).

A stored test accuracy misses its exact value (images right / test images) by its rounding: float32's in
``retrain.json`` (below 6e-8), six decimals' in a ``points.csv`` (up to 5e-7). A mean over retrains carries that
error, so two networks with equally many correct images get means up to 1e-6 apart, and a mean exactly 0.5 points
below another can come out a hair further below. Rounding the means to fixed digits does not remove that: an exact
mean next to a rounding boundary falls either way (786 of the 8,613 chosen-seed means of
``fronts/lenet-k5-s10/points.csv`` round to another sixth decimal than their exact value). So two accuracies count
as equal within :data:`SLACK`: above any storage error, and far below the least difference of two exact means
(1 / (retrains x test images): 1.4e-4 for 20 retrains of lenet's 360 images; it holds while that product is below
100,000).
"""

from __future__ import annotations

from collections.abc import Sequence

SLACK = 5e-6


def at_least(a: float, b: float) -> bool:
    """Accuracy ``a`` is at least ``b`` on the exact values (``b`` may be a line such as ``reference - 0.005``)."""
    return a >= b - SLACK


def dominates(a: Sequence[float], b: Sequence[float], signs: Sequence[int]) -> bool:
    """:func:`uboost.tuning.objectives.dominates` with the first objective an accuracy (or error) share compared
    on its exact value, the others (cycle-model costs: exact) as they are."""
    from uboost.tuning.objectives import dominates as dominates_exactly

    return dominates_exactly(a, b, signs, ties=(SLACK,))
