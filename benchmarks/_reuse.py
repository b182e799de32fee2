"""Finished benchmark runs are reused only when they were made with the same settings.

A run directory's ``config.json`` is the search's full :class:`~uboost.search.SearchConfig`;
``result.json`` is written last. A run is reused when both exist and the config equals the one
asked for now (a default that changed since, e.g. the sampling mode, makes it run again, in
place: the old files are replaced, not mixed in). A field ``SearchConfig`` gained after a run was
made is compared at its default (:func:`as_today`)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path


def environment() -> dict:
    """The library versions a result was made with. Not part of the reuse rule (a new torch does not re-run a
    sweep), but stored beside it: the same network retrains up to a test image apart on another torch
    (benchmarks/RESULTS.md, "the Gumbel schedule"), so a summary says which versions its points mix."""
    import platform
    from importlib import metadata

    import torch

    versions = {"python": platform.python_version(), "torch": torch.__version__}  # with its build (+cu130, +cpu)
    for name in ("lightning", "nni"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def environments_line(points: list[dict]) -> str:
    """``"torch 2.14.1: 66 points; not recorded: 3 points"``: which torch made the summarized points."""
    counts: dict[str, int] = {}
    for point in points:
        torch_version = (point.get("environment") or {}).get("torch")
        key = f"torch {torch_version}" if torch_version else "not recorded (before 2026-12-05)"
        counts[key] = counts.get(key, 0) + 1
    return "; ".join(f"{k}: {n} point{'s' if n != 1 else ''}" for k, n in sorted(counts.items()))


BEFORE = {"utilization_on_bits": True}
"""Fields whose default today searches otherwise than runs made before the field existed did: such a run is
filled with the value it searched with (the utilization term moved the bits on every PE until 2026-12-07; today's
default resolves to False on BitFusion and bit-serial PEs, so those runs are stale, fixed-PE runs are not)."""


def _resolved(config: dict) -> dict:
    """``config`` with each ``BEFORE`` field as what the search does with it (its ``resolved_<name>()``): auto (None)
    and the value it resolves to search alike, so a run stored either way is reused for the other."""
    from uboost.exceptions import ConfigError
    from uboost.search import SearchConfig

    known = {f.name for f in dataclasses.fields(SearchConfig)}
    try:
        built = SearchConfig.from_dict({k: v for k, v in config.items() if k in known})
    except ConfigError:  # a config today's code refuses stays as stored (it is not today's anyway)
        return config
    return {**config, **{name: getattr(built, f"resolved_{name}")() for name in BEFORE}}


def as_today(stored: dict) -> dict:
    """A stored search config (JSON) with every ``SearchConfig`` field it lacks set to that field's
    default. A new field's default keeps the behaviour from before it (but see ``BEFORE``; energy weight 0, one
    process, fp32, fixed PEs...), so a run made before the field existed equals one made today at
    the default (checked: lenet searches re-run after such fields were added give identical
    alphas) and differs from one that asks for another value; a default that changed still makes
    the run stale, since every field the run knew is stored with its value.
    A default the config resolves from its other settings (``widen``: "bits", or "all" for a bits search) is
    filled resolved, as today's config stores it."""
    from uboost.exceptions import ConfigError
    from uboost.search import SearchConfig

    filled = dict(stored)
    missing = [field.name for field in dataclasses.fields(SearchConfig) if field.name not in filled]
    for name, before in BEFORE.items():  # a run made before the field searched with ``before``
        if name in missing:
            missing.remove(name)
            filled[name] = before
    for field in dataclasses.fields(SearchConfig):
        if field.name in missing:
            default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
            filled[field.name] = default
    try:
        resolved = dataclasses.asdict(SearchConfig.from_dict(filled))
    except ConfigError:  # a config today's code refuses stays as stored (it is not today's anyway)
        resolved = {}
    for name in missing:
        if name in resolved:
            filled[name] = resolved[name]
    return json.loads(json.dumps(filled))  # tuples -> lists, as stored


def same_settings(out: Path, config) -> bool:
    stored = out / "config.json"
    if not (out / "result.json").is_file() or not stored.is_file():
        return False
    wanted = json.loads(json.dumps(dataclasses.asdict(config)))  # tuples -> lists, as stored
    return _resolved(as_today(json.loads(stored.read_text()))) == _resolved(wanted)


def search(out: Path, config) -> dict:
    """The run's summary: reused when finished with ``config``, else searched (again) into ``out``."""
    from uboost.search import run_search

    if same_settings(out, config):
        return json.loads((out / "result.json").read_text())
    started = time.perf_counter()
    summary = run_search(config, out, force=True).summary()
    summary["wall_s"] = time.perf_counter() - started
    return summary


def retrain_dir(run: Path, seed: int = 0) -> Path:
    """Where ``run``'s retrain with ``seed`` goes: ``retrain/`` for seed 0 (``uboost retrain``'s own
    place and default seed), ``retrain-seed<S>/`` for the repeats that average out retrain noise, and
    for seed 0 too when ``retrain/`` holds a retrain with another seed (a ``uboost tune`` trial's,
    made with its study's seed), so that one is never replaced."""
    if seed == 0 and _stored(run / "retrain").get("config", {}).get("seed", 0) == 0:
        return run / "retrain"
    return run / f"retrain-seed{seed}"


def _stored(out: Path) -> dict:
    done = out / "retrain.json"
    return json.loads(done.read_text()) if done.is_file() else {}


def _fresh_acc(run: Path, out: Path, wanted: dict) -> float | None:
    """The test accuracy of the retrain in ``out`` when it was made after ``run``'s ``arch.json`` was last
    written (the last search/projection) with every setting in ``wanted`` (a seed not stored is 0)."""
    done = out / "retrain.json"
    if not done.is_file() or done.stat().st_mtime < (run / "arch.json").stat().st_mtime:
        return None
    stored = json.loads(done.read_text())
    settings = {"seed": 0, **stored.get("config", {})}
    return stored["test_acc"] if all(k in settings and settings[k] == v for k, v in wanted.items()) else None


def retrain_acc(run: Path, epochs: int, max_samples: int | None = None, seed: int = 0,
                settings: dict | None = None) -> float:
    """Test accuracy of ``run``'s network retrained from scratch with ``seed`` (reused when it was
    retrained with ``epochs``, ``max_samples`` and ``seed`` after its ``arch.json`` was last written).
    ``settings``: any other :class:`~uboost.retrain.RetrainConfig` fields (batch size, accelerator...)
    the retrain is made with and a reused one must have (JSON values). Besides :func:`retrain_dir`,
    ``retrain/`` is reused when it holds that retrain (``uboost tune`` trials retrain there with their
    study's seed and settings)."""
    from uboost.retrain import RetrainConfig, retrain

    wanted = json.loads(json.dumps({**(settings or {}), "epochs": epochs, "max_samples": max_samples, "seed": seed}))
    out = retrain_dir(run, seed)
    for place in dict.fromkeys((out, run / "retrain")):
        acc = _fresh_acc(run, place, wanted)
        if acc is not None:
            return acc
    return retrain(run, RetrainConfig(**wanted), out=out).summary()["test_acc"]


# -- retrains shared between runs that derived the same network -------------------------------------------------
# A retrain reads the frozen network (arch.json, precision.json), the space and its data (the search config's
# space, space_options, dataset, data_dir, image_size, and its seed: since 2026-12-05 a retrain splits train and
# test images with the search's seed, so the same network found by two search seeds is tested on two test sets)
# and its own RetrainConfig: checked deterministic on the 16x16 fronts (51 groups of points with one network, 277
# retrains, one accuracy per group). These SearchConfig fields steer only the search; every other field, including
# any added later, is part of the key, so an unknown field can only miss the cache, never share a retrain wrongly.
SEARCH_ONLY = frozenset({
    "cost_model", "array", "dataflow", "inference_batch", "sram_kb", "dram_bw_words", "clock_hz", "latency_weight",
    "utilization_weight", "utilization_scale", "energy_weight", "target_latency_ms", "budget_lr", "budget_floor",
    "budget_commit", "entropy_weight", "cost_mode", "temperature", "sampling", "sharpen", "epochs", "warmup_epochs",
    "batch_size", "learning_rate", "arch_lr", "data_split", "accelerator", "devices",
})
RETRAIN_CACHE = "retrain-cache"  # under a benchmark's run root: one <digest>.json per retrained network


def retrain_key(run: Path, retrain_config) -> dict:
    """What decides the retrain of ``run``'s network under ``retrain_config`` (JSON-normalized)."""
    from uboost import runs

    config = as_today(json.loads((run / runs.CONFIG).read_text()))
    precision = run / runs.PRECISION
    return json.loads(json.dumps({
        "arch": json.loads((run / runs.ARCH).read_text()),
        "precision": json.loads(precision.read_text()) if precision.is_file() else None,
        "network": {k: v for k, v in config.items() if k not in SEARCH_ONLY},
        "retrain": dataclasses.asdict(retrain_config),
    }))


def _entry(cache: Path, key: dict) -> Path:
    return cache / f"{hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]}.json"


def _remember(cache: Path, key: dict, acc: float, run: Path) -> None:
    from uboost.io import write_json

    entry = _entry(cache, key)
    if not entry.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        write_json(entry, {"key": key, "test_acc": acc, "source": str(run)})


def shared_retrain_acc(run: Path, epochs: int, max_samples: int | None, cache: Path,
                       seed: int = 0, settings: dict | None = None) -> tuple[float, str | None]:
    """``(test accuracy, source)`` of ``run``'s network retrained with ``seed``: from ``cache`` when a
    run with an equal :func:`retrain_key` was retrained (``source``: that run), else :func:`retrain_acc`
    (``source`` None); ``settings`` as :func:`retrain_acc`."""
    from uboost.retrain import RetrainConfig

    key = retrain_key(run, RetrainConfig(**{**(settings or {}), "epochs": epochs, "max_samples": max_samples, "seed": seed}))
    entry = _entry(cache, key)
    if entry.is_file():
        stored = json.loads(entry.read_text())
        if stored["key"] == key and stored["source"] != str(run):
            return stored["test_acc"], stored["source"]
    acc = retrain_acc(run, epochs, max_samples, seed, settings)
    _remember(cache, key, acc, run)
    return acc, None


def mean_retrain_acc(run: Path, epochs: int, max_samples: int | None, cache: Path,
                     seeds: int, settings: dict | None = None) -> tuple[float, list[float]]:
    """``(mean, per-seed accuracies)`` of ``run``'s network retrained with seeds ``0 .. seeds - 1``
    (each one shared through ``cache`` as :func:`shared_retrain_acc`; ``settings`` as :func:`retrain_acc`)."""
    accs = [shared_retrain_acc(run, epochs, max_samples, cache, seed, settings)[0] for seed in range(seeds)]
    return sum(accs) / len(accs), accs


def index_retrains(root: Path, cache: Path) -> int:
    """Enter every fresh retrain under ``root`` (retrained after its ``arch.json``) into ``cache``;
    returns how many networks the cache holds."""
    from uboost.retrain import RetrainConfig

    known = {f.name for f in dataclasses.fields(RetrainConfig)}
    for done in [*Path(root).glob("**/retrain/retrain.json"), *Path(root).glob("**/retrain-seed*/retrain.json")]:
        run = done.parent.parent
        if not (run / "config.json").is_file() or done.stat().st_mtime < (run / "arch.json").stat().st_mtime:
            continue
        stored = json.loads(done.read_text())
        settings = RetrainConfig(**{k: v for k, v in stored.get("config", {}).items() if k in known})
        _remember(cache, retrain_key(run, settings), stored["test_acc"], run)
    return len(list(cache.glob("*.json"))) if cache.is_dir() else 0
