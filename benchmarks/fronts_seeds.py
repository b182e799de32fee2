"""K retrains per network for ``bench_fronts.py`` (``--retrain-seeds K``): a point's accuracy is the
mean of K retrains of its network, seeds 0 .. K-1.

One retrain of a lenet network moves by about 2 points between retrain seeds, enough to reorder
fronts whose hypervolumes differ by 0.01. With K > 1 every retrain is shared through the run
root's retrain cache (``_reuse.mean_retrain_acc``: a network derived by several points, lambdas or
search seeds is retrained K times in all, not K times per point); ``point.json`` records
``retrain_seeds`` (K) and ``retrain_accs`` (the per-seed accuracies, seed 0 first) and its
settings' retrain part holds ``seeds``: K. K = 1 (the default) is the single seed-0 retrain and
writes ``point.json`` exactly as before the option existed (no ``seeds``, no per-seed fields).

Reuse: a point finished with another K has other settings, so it is re-evaluated, but its search
(or frontier projection) is reused when its search settings still match: only the retrains of the
seeds not yet done run (seed 0's comes from the run's own ``retrain/`` or the cache).

The report reads a point retrained K' >= K times at K (the mean of its first K accuracies: a K = 3
point counts at K = 1 with its seed-0 accuracy, the number it had before) and leaves out points
retrained fewer than K times.
"""

from __future__ import annotations

from pathlib import Path

import _reuse

SEEDS_KEY = "seeds"  # in a point's settings["retrain"]; absent = 1


def retrain_settings(epochs: int, max_samples: int | None, seeds: int = 1) -> dict:
    """The retrain part of a point's settings (K = 1: as before ``--retrain-seeds`` existed)."""
    if not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"retrain seeds must be an integer >= 1, got {seeds!r}")
    return {"epochs": epochs, "max_samples": max_samples, **({SEEDS_KEY: seeds} if seeds > 1 else {})}


def seeds_of(retrain: dict) -> int:
    return int(retrain.get(SEEDS_KEY, 1))


def without_seeds(settings: dict) -> dict:
    """A point's settings with the retrain seed count dropped: what must match for the search to stand."""
    retrain = {k: v for k, v in (settings.get("retrain") or {}).items() if k != SEEDS_KEY}
    return {**settings, "retrain": retrain}


def evaluate(run: Path, retrain: dict, cache: Path | None) -> tuple[dict, dict]:
    """``(accuracy fields, trailing fields)`` of the network in ``run``: test accuracy (the mean over
    the seeds), error %, and with K > 1 the seed count and per-seed accuracies; the trailing fields
    are K = 1's ``retrain_from`` (the run whose retrain was shared), kept last as before."""
    epochs, max_samples, k = retrain["epochs"], retrain["max_samples"], seeds_of(retrain)
    if k == 1:
        if cache is None:
            acc, source = _reuse.retrain_acc(run, epochs, max_samples), None
        else:
            acc, source = _reuse.shared_retrain_acc(run, epochs, max_samples, cache)
        return {"test_acc": acc, "error_pct": 100.0 * (1.0 - acc)}, ({"retrain_from": source} if source else {})
    if cache is None:
        accs = [_reuse.retrain_acc(run, epochs, max_samples, seed) for seed in range(k)]
        acc = sum(accs) / len(accs)
    else:
        acc, accs = _reuse.mean_retrain_acc(run, epochs, max_samples, cache, k)
    return {"test_acc": acc, "error_pct": 100.0 * (1.0 - acc), "retrain_seeds": k, "retrain_accs": accs}, {}


def at_seeds(point: dict, k: int) -> dict | None:
    """``point`` as measured with its first ``k`` retrains, or None when it has fewer."""
    stored = int(point.get("retrain_seeds", 1))
    if stored < k:
        return None
    if stored == k:
        return point
    accs = point["retrain_accs"][:k]
    acc = sum(accs) / len(accs)
    seen = {**point, "test_acc": acc, "error_pct": 100.0 * (1.0 - acc), "retrain_seeds": k, "retrain_accs": accs}
    if k == 1:  # as a single-retrain point was written
        del seen["retrain_seeds"], seen["retrain_accs"]
    return seen
