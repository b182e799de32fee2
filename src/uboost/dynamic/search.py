"""Which exits to keep, their thresholds and the operating point: a three-objective search.

Objectives: accuracy on the validation split (maximize), expected energy and expected latency
per input (minimize), optionally under a bound on the worst-case latency. A candidate is one
threshold per exit from a grid or ``None`` (the exit is dropped; all ``None`` is the static
network) and one operating point. Accuracy and exit shares depend on the thresholds only, the
costs on the kept exits and the point, so a candidate costs one vectorised :func:`outcome`.

``exact`` enumerates the whole grid (``(len(grid) + 1) ** K x P`` candidates) and is the default
while that is at most ``EXACT_LIMIT``; ``optuna`` runs a seeded NSGA-II study (HADAS's inner loop)
whose storage is a journal file in the output directory, so a second call continues it and
several processes may share it, as ``uboost tune`` does. The points returned are every stored
trial's parameters scored again on the caller's data (the heads of this call), and a study is only
continued with the same exits, threshold grid and operating points. Either way :func:`pareto`
keeps the non-dominated points.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from uboost.dynamic.policy import outcome
from uboost.dynamic.pricing import ExitCosts
from uboost.exceptions import ConfigError

logger = logging.getLogger(__name__)
EXACT_LIMIT = 20000
METHODS = ("auto", "exact", "optuna")
DEFAULT_GRID = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99, 0.999)
STUDY_NAME = "exits"


def check_grid(grid: Sequence[float]) -> tuple[float, ...]:
    from uboost.dynamic.model import check_thresholds

    values = tuple(sorted(set(check_thresholds(list(grid), len(grid)))))
    if not values or None in values:
        raise ConfigError("give at least one threshold in [0, 1]")
    return values  # type: ignore[return-value]


def evaluate(thresholds: Sequence[float | None], p: int, confidence: np.ndarray, correct: np.ndarray, costs: ExitCosts) -> dict:
    """One candidate: accuracy and shares on the given data, expected and worst-case costs at point ``p``."""
    accuracy, shares = outcome(confidence, correct, thresholds)
    kept = [t is not None for t in thresholds]
    latency, energy = costs.expected(shares, kept, p)
    worst_latency, worst_energy = costs.worst(kept, p)
    return {
        "thresholds": list(thresholds), "point": p, "freq_hz": float(costs.freq_hz[p]), "voltage_v": float(costs.voltage_v[p]),
        "accuracy": accuracy, "shares": shares.tolist(), "expected_latency_ms": latency, "expected_energy_uj": energy,
        "worst_latency_ms": worst_latency, "worst_energy_uj": worst_energy,
    }


def pareto(points: Sequence[dict]) -> list[dict]:
    """The non-dominated points (accuracy up, expected energy and latency down), one per objective
    triple, sorted by expected energy."""
    keys = np.array([[-p["accuracy"], p["expected_energy_uj"], p["expected_latency_ms"]] for p in points]).reshape(-1, 3)
    keep, seen = [], set()
    for i, row in enumerate(keys):
        dominated = np.any(np.all(keys <= row, axis=1) & np.any(keys < row, axis=1))
        triple = tuple(np.round(row, 12))
        if not dominated and triple not in seen:
            seen.add(triple)
            keep.append(points[i])
    return sorted(keep, key=lambda p: (p["expected_energy_uj"], -p["accuracy"]))


def search_policies(confidence: np.ndarray, correct: np.ndarray, costs: ExitCosts, *, grid: Sequence[float] = DEFAULT_GRID,
                    max_worst_latency_ms: float | None = None, method: str = "auto", trials: int = 200,
                    out: str | Path | None = None, seed: int = 0, exits: Sequence[int] | None = None) -> list[dict]:
    """Every candidate evaluated (exact) or tried (optuna) within the worst-case bound; see the module docstring.
    ``exits`` limits which exits may be kept (default all; ``[]``: DVFS alone)."""
    grid = check_grid(grid)
    if method not in METHODS:
        raise ConfigError(f"unknown search method {method!r}; expected one of: {', '.join(METHODS)}")
    if max_worst_latency_ms is not None and not (isinstance(max_worst_latency_ms, (int, float)) and math.isfinite(max_worst_latency_ms)
                                                 and max_worst_latency_ms > 0):
        raise ConfigError(f"the worst-case latency bound must be a positive number of ms, got {max_worst_latency_ms!r}")
    k, n_points = costs.exits, len(costs.freq_hz)
    allowed = set(range(k)) if exits is None else set(exits)
    options = [([None, *grid] if j in allowed else [None]) for j in range(k)]
    size = math.prod(len(o) for o in options) * n_points
    if method == "auto":
        method = "exact" if size <= EXACT_LIMIT else "optuna"
    fits = (lambda r: True) if max_worst_latency_ms is None else (lambda r: r["worst_latency_ms"] <= max_worst_latency_ms * (1 + 1e-12))
    if method == "exact":
        logger.info("exits: enumerating %d candidates", size)
        found = []
        for thresholds in itertools.product(*options):
            for p in range(n_points):
                row = evaluate(thresholds, p, confidence, correct, costs)
                if fits(row):
                    found.append(row)
        return found
    if out is None:
        raise ConfigError("the optuna search needs an output directory for its study")
    return _optuna(confidence, correct, costs, options, n_points, fits, trials, Path(out), seed)


def _optuna(confidence, correct, costs, options, n_points, fits, trials, out: Path, seed: int) -> list[dict]:
    import optuna

    from uboost.tuning.storage import resolve_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # its "Trial failed" warning prints a Ctrl-C's traceback
    legacy = not hasattr(optuna.trial.Trial, "set_constraint")  # Optuna < 5: constraints through a function
    extra = {"constraints_func": lambda t: [t.user_attrs.get("over_ms", 0.0)]} if legacy else {}
    sampler = optuna.samplers.NSGAIISampler(seed=seed, **extra)
    study = optuna.create_study(storage=resolve_storage(out / "study.journal", out), study_name=STUDY_NAME, sampler=sampler,
                                directions=["maximize", "minimize", "minimize"], load_if_exists=True)
    space = {"options": [[None if t is None else float(t) for t in o] for o in options], "points": costs.freq_hz.tolist(),
             "positions": list(costs.positions)}
    stored = study.user_attrs.get("space")
    if stored is None:
        study.set_user_attr("space", space)
    elif stored != space:
        raise ConfigError(f"the exits study in {out} searched other exits, thresholds or operating points; "
                          "repeat those settings to continue it, or use another --out")

    def objective(trial):
        thresholds = [trial.suggest_categorical(f"threshold_{j}", o) for j, o in enumerate(options)]
        p = trial.suggest_int("point", 0, n_points - 1)
        row = evaluate(thresholds, p, confidence, correct, costs)
        over = 0.0 if fits(row) else row["worst_latency_ms"]
        trial.set_user_attr("over_ms", over)
        if not legacy:
            trial.set_constraint("worst_latency_over_ms", over)
        return row["accuracy"], row["expected_energy_uj"], row["expected_latency_ms"]

    try:
        study.optimize(objective, n_trials=trials)
    except Exception as exc:  # a Ctrl-C inside Optuna's journal write can surface as its own UnboundLocalError
        if isinstance(exc.__context__, KeyboardInterrupt):
            raise KeyboardInterrupt from None
        raise
    # the network without exits at every operating point is always a candidate (NSGA-II may never sample it:
    # "no policy meets" the bound was said where the static network met it)
    found = [row for row in (evaluate([None] * len(options), p, confidence, correct, costs) for p in range(n_points)) if fits(row)]
    for t in study.trials:  # judged on today's bound: a continued study's trials may have run under another
        if t.state == optuna.trial.TrialState.COMPLETE:
            row = evaluate([t.params[f"threshold_{j}"] for j in range(len(options))], t.params["point"], confidence, correct, costs)
            if fits(row):
                found.append(row)
    return found
