"""Two-objective hypervolume of accuracy-latency fronts (Optuna's exact implementation).

Both objectives are minimized: test error (percentage points, ``100 - accuracy %``) and latency
(µs, cycle-exact on the array). The hypervolume of a set of points is the area they dominate
inside the box ``[0, error_ref] x [0, latency_ref]`` below a *fixed* reference point: the larger,
the better the front. Points worse than the reference in either objective dominate nothing there
and are left out (Optuna refuses them). :func:`normalized_hypervolume` divides by the box's area,
so 1.0 would be a zero-error, zero-latency network and values of different (space, array) pairs
read alike.

The computation is ``optuna._hypervolume.compute_hypervolume`` (the WFG algorithm, exact 2-D
sweep); Optuna keeps it in a private module, so this file is the one place that imports it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def _inside(points: Iterable[Sequence[float]], reference: Sequence[float]) -> np.ndarray:
    ref = np.asarray(reference, dtype=float)
    if ref.shape != (2,) or not np.all(np.isfinite(ref)) or np.any(ref <= 0):
        raise ValueError(f"reference must be two positive finite numbers (error %, latency µs), got {tuple(reference)}")
    array = np.asarray([tuple(p) for p in points], dtype=float).reshape(-1, 2)
    if not np.all(np.isfinite(array)):
        raise ValueError("points must be finite (error %, latency µs) pairs")
    return array[np.all(array <= ref, axis=1)]


def hypervolume(points: Iterable[Sequence[float]], reference: Sequence[float]) -> float:
    """Area dominated by ``points`` (``(error %, latency µs)``, both minimized) below ``reference``."""
    from optuna._hypervolume import compute_hypervolume

    inside = _inside(points, reference)
    if len(inside) == 0:
        return 0.0
    return float(compute_hypervolume(inside, np.asarray(reference, dtype=float)))


def normalized_hypervolume(points: Iterable[Sequence[float]], reference: Sequence[float]) -> float:
    """:func:`hypervolume` as a share of the reference box ``error_ref x latency_ref`` (0..1)."""
    return hypervolume(points, reference) / (float(reference[0]) * float(reference[1]))


def pareto_front(points: Iterable[Sequence[float]]) -> list[tuple[float, float]]:
    """The non-dominated points (both objectives minimized), sorted by the first objective."""
    from optuna.study._multi_objective import _is_pareto_front

    array = np.asarray([tuple(p) for p in points], dtype=float).reshape(-1, 2)
    if len(array) == 0:
        return []
    unique = np.unique(array, axis=0)  # lexsorted
    on_front = _is_pareto_front(unique, assume_unique_lexsorted=True)
    return [(float(a), float(b)) for a, b in unique[on_front]]
