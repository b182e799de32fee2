"""bench_cosearch.py --retrain-seeds K: each trial network's accuracy as the mean of K retrains.

With one short retrain per trial the verdict (accuracy within 0.5 points of the baseline's most
accurate trial) is decided by retrain noise: on lenet the same network retrains to 94.4 % with one
seed and 96.4 % with another, and 1 test image of 360 is 0.28 points. Here every completed trial
network of both studies is retrained with seeds ``0 .. K-1`` and the settings of the trial's own
retrain (``retrain/retrain.json``, written by ``uboost tune``: epochs, batch size, max_samples,
accelerator...; its seed is the study's), through :func:`_reuse.mean_retrain_acc`: the trial's own
retrain is reused as the seed it was made with (seed ``s`` of a study with seed ``s``), the other
seeds go to ``retrain-seed<S>/`` beside it, and a network that repeats (same architecture, precision
and network settings: :func:`_reuse.retrain_key`) is retrained once per seed, shared through the
cache ``<run root>/retrain-cache``. With ``--inner-rounds 2`` a trial's network is its kept round's
(its ``run_dir``); the summary's list of both rounds' pairs stays on their single retrains.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from pathlib import Path

OWN = ("epochs", "max_samples", "seed")  # passed to _reuse by name; every other field as settings


def trial_settings(run: Path) -> tuple[int, int | None, dict]:
    """``(epochs, max_samples, other RetrainConfig fields)`` of the retrain ``uboost tune`` made of the
    trial in ``run`` (its ``retrain/retrain.json``)."""
    from uboost.exceptions import ConfigError
    from uboost.retrain import RetrainConfig

    done = Path(run) / "retrain" / "retrain.json"
    if not done.is_file():
        raise ConfigError(f"{run} has no retrain/retrain.json (a study run without --retrain-epochs): "
                          "there is no retrain to repeat with other seeds")
    stored = json.loads(done.read_text())["config"]
    names = {f.name for f in dataclasses.fields(RetrainConfig)} - set(OWN)
    return stored["epochs"], stored.get("max_samples"), {k: v for k, v in stored.items() if k in names}


def retrain_trials(trials: dict[str, list], seeds: int, cache: Path, root: Path) -> tuple[dict, dict]:
    """Retrain every trial of ``trials`` (``{kind: [optuna trials]}``) with seeds ``0 .. seeds-1``:
    ``({kind: {trial number: [accuracy per seed]}}, record)``; ``record`` holds the seeds, the
    distinct (network, seed) retrains the trials need, how many were run now (the others reused:
    the trials' own retrains, earlier repeats under ``root``, or a network retrained for another
    trial) and their wall time."""
    import _reuse

    from uboost.retrain import RetrainConfig

    started = time.perf_counter()
    known = _reuse.index_retrains(root, cache)  # every retrain already made under root counts as made
    accuracies: dict[str, dict[int, list[float]]] = {}
    needed = set()
    for kind, kind_trials in trials.items():
        accuracies[kind] = {}
        for trial in kind_trials:
            run = Path(trial.user_attrs["run_dir"])
            epochs, max_samples, settings = trial_settings(run)
            accuracies[kind][trial.number] = _reuse.mean_retrain_acc(run, epochs, max_samples, cache, seeds, settings)[1]
            needed.update(json.dumps(_reuse.retrain_key(run, RetrainConfig(
                **settings, epochs=epochs, max_samples=max_samples, seed=s)), sort_keys=True) for s in range(seeds))
    made = len(list(cache.glob("*.json"))) - known
    return accuracies, {"seeds": seeds, "distinct_retrains": len(needed), "retrained_now": made,
                        "wall_s": time.perf_counter() - started}


def average(rows: list[dict], accuracies: dict[int, list[float]]) -> None:
    """Each summary row's accuracy becomes the mean over its seeds; the row keeps the trial's own
    single-retrain accuracy (``trial_accuracy``), the per-seed accuracies and their (sample) std."""
    for row in rows:
        accs = accuracies[row["trial"]]
        row.update(trial_accuracy=row["accuracy"], accuracy=statistics.fmean(accs), accuracy_seeds=accs,
                   accuracy_std=statistics.stdev(accs) if len(accs) > 1 else 0.0)
