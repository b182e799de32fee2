"""Finished benchmark runs are reused only when they were made with the same settings.

A run directory's ``config.json`` is the search's full :class:`~uboost.search.SearchConfig`;
``result.json`` is written last. A run is reused when both exist and the config equals the one
asked for now (a default that changed since, e.g. the sampling mode, makes it run again, in
place: the old files are replaced, not mixed in). A field ``SearchConfig`` gained after a run was
made is compared at its default (:func:`as_today`)."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path


def as_today(stored: dict) -> dict:
    """A stored search config (JSON) with every ``SearchConfig`` field it lacks set to that field's
    default. A new field's default keeps the behaviour from before it (energy weight 0, one
    process, fp32, fixed PEs...), so a run made before the field existed equals one made today at
    the default (checked: lenet searches re-run after such fields were added give identical
    alphas) and differs from one that asks for another value; a default that changed still makes
    the run stale, since every field the run knew is stored with its value."""
    from uboost.search import SearchConfig

    filled = dict(stored)
    for field in dataclasses.fields(SearchConfig):
        if field.name not in filled:
            default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
            filled[field.name] = default
    return json.loads(json.dumps(filled))  # tuples -> lists, as stored


def same_settings(out: Path, config) -> bool:
    stored = out / "config.json"
    if not (out / "result.json").is_file() or not stored.is_file():
        return False
    wanted = json.loads(json.dumps(dataclasses.asdict(config)))  # tuples -> lists, as stored
    return as_today(json.loads(stored.read_text())) == wanted


def search(out: Path, config) -> dict:
    """The run's summary: reused when finished with ``config``, else searched (again) into ``out``."""
    from uboost.search import run_search

    if same_settings(out, config):
        return json.loads((out / "result.json").read_text())
    started = time.perf_counter()
    summary = run_search(config, out, force=True).summary()
    summary["wall_s"] = time.perf_counter() - started
    return summary


def retrain_acc(run: Path, epochs: int, max_samples: int | None = None) -> float:
    """Test accuracy of ``run``'s network retrained from scratch (reused when it was retrained with
    ``epochs`` and ``max_samples`` after its ``arch.json`` was last written)."""
    from uboost.retrain import RetrainConfig, retrain

    done = run / "retrain" / "retrain.json"
    if done.is_file():
        stored = json.loads(done.read_text())
        settings = stored.get("config", {})
        fresh = done.stat().st_mtime >= (run / "arch.json").stat().st_mtime  # retrained after the last search/projection
        if fresh and (settings.get("epochs"), settings.get("max_samples")) == (epochs, max_samples):
            return stored["test_acc"]
    return retrain(run, RetrainConfig(epochs=epochs, max_samples=max_samples)).summary()["test_acc"]
