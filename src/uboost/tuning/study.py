"""Create, continue, run and load studies."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from uboost.exceptions import ConfigError, UBoostError
from uboost.search import SearchConfig
from uboost.tuning.child import _check_interrupt, _interrupt_guard, _start_method
from uboost.tuning.accelerator_space import AREA_CONSTRAINT
from uboost.tuning.objective import (
    BUDGET_CONSTRAINT, DEFAULT_STUDY, MODES, UNRECORDED, check_inner_options, check_mode, objective, study_metrics,
)
from uboost.tuning.objectives import check_sampler
from uboost.tuning.recovery import fail_dead_trials, record_pending, recorded, requeue_interrupted
from uboost.tuning.space import TuneSpace
from uboost.tuning.storage import StorageUnavailable, check_storage, refuse_foreign_trials, resolve_storage, trial_dir

if TYPE_CHECKING:
    import optuna

logger = logging.getLogger(__name__)


def _constraints_from_attrs(trial) -> Sequence[float]:  # Optuna < 5 (no Trial.set_constraint)
    return tuple(float(trial.user_attrs.get(key, 0.0)) for key in (BUDGET_CONSTRAINT, AREA_CONSTRAINT))


def create_study(
    out_root: str | os.PathLike = "runs/tune",
    *,
    mode: str = "pareto",
    storage: Any = None,
    study_name: str = DEFAULT_STUDY,
    seed: int | None = None,
    population_size: int = 20,
    pruner: "optuna.pruners.BasePruner | None" = None,
    objectives: Any = None,
    sampler: str = "nsga2",
    check: "Callable[[optuna.Study], None] | None" = None,
) -> "optuna.Study":
    """Create or continue (``load_if_exists``) a study with metric names set. ``check(study)`` (e.g.
    :meth:`TuneSpace.check_compatible`) runs before this call writes anything to a continued study.

    ``"pareto"``: maximize accuracy, minimize latency_ms with a seeded NSGA-II -- or any two or three
    ``objectives`` of accuracy, latency, energy, area (:mod:`~uboost.tuning.objectives`), with
    NSGA-II or ``sampler="nsga3"``; a continued study must have the same objectives. ``"budget"``:
    maximize accuracy with TPE (latency budget as a constraint) and a median pruner on the
    per-epoch validation accuracy.

    The sampler's random stream comes from ``(seed, session)``, where ``session`` counts the earlier
    ``create_study`` calls with this seed on this study (kept in the study's user attributes): a
    fresh study with a seed is reproducible, a continued one does not replay its first samples, and
    workers with different seeds never share a stream (``seed + n_trials``, the old scheme, made
    seed 1 after one trial replay seed 2). Parallel workers should use different seeds (or none).
    """
    import optuna

    if mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r}; expected one of: {', '.join(MODES)}")
    names, wanted = study_metrics(mode, objectives)
    check_sampler(sampler)
    if isinstance(population_size, bool) or not isinstance(population_size, int) or population_size < 2:
        raise ConfigError(f"population_size must be an integer >= 2, got {population_size!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    legacy = not hasattr(optuna.trial.Trial, "set_constraint")

    def make_sampler(seed_: int | None):
        if mode == "pareto":
            extra = {"constraints_func": _constraints_from_attrs} if legacy else {}
            if sampler == "nsga3":
                with warnings.catch_warnings():  # "experimental" in Optuna 3.2-5.x
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    return optuna.samplers.NSGAIIISampler(seed=seed_, population_size=population_size, **extra)
            return optuna.samplers.NSGAIISampler(seed=seed_, population_size=population_size, **extra)
        extra = {"constraints_func": _constraints_from_attrs} if legacy else {}
        return optuna.samplers.TPESampler(seed=seed_, n_startup_trials=5, **extra)

    if pruner is None:
        pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1) if mode == "budget" else optuna.pruners.NopPruner()
    file = check_storage(storage, out_root)
    if file is not None and not file.is_file():  # a new study: checked before its journal is created
        refuse_foreign_trials(out_root, study_name, storage)
    resolved = resolve_storage(storage, out_root)
    try:  # a continued study is loaded and checked first: creating it again writes a record to a journal
        resolved.get_study_id_from_name(study_name)
        study = optuna.load_study(study_name=study_name, storage=resolved, sampler=make_sampler(None), pruner=pruner)
    except KeyError:
        refuse_foreign_trials(out_root, study_name, storage)
        study = optuna.create_study(storage=resolved, study_name=study_name, directions=wanted, sampler=make_sampler(None),
                                    pruner=pruner, load_if_exists=True)  # (another worker may create it meanwhile)
    _check_metrics(study, mode, names, wanted)
    if check is not None:  # a refused continuation leaves the study as it was
        check(study)
    if study.metric_names != names:
        with warnings.catch_warnings():  # "experimental" in Optuna 3.2-5.0; it is what the dashboard reads
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)
    if seed is not None:
        key = f"uboost_seed_sessions:{seed}"  # one key per seed: workers with other seeds never race on it
        session = int(study.user_attrs.get(key, 0))
        study.set_user_attr(key, session + 1)
        study.sampler = make_sampler(_stream_seed(seed, session))
    return study


def _check_metrics(study: "optuna.Study", mode: str, names: list[str], wanted: list[str]) -> None:
    """Refuse to continue ``study`` in another mode or with other objectives than it was created with."""
    import optuna

    found = ["maximize" if d == optuna.study.StudyDirection.MAXIMIZE else "minimize" for d in study.directions]
    if found == wanted and (study.metric_names is None or study.metric_names == names):
        return
    other = "budget" if len(found) == 1 else "pareto"
    if other != mode:
        raise ConfigError(f"study {study.study_name!r} was created in {other!r} mode ({', '.join(found)}), not {mode!r}; "
                          f"use --mode {other} or a new --study-name")
    raise ConfigError(f"study {study.study_name!r} optimizes {', '.join(study.metric_names or found)}, not {', '.join(names)}; "
                      f"use the same --objectives or a new --study-name")


def _stream_seed(seed: int, session: int) -> int:
    """A 32-bit sampler seed from ``(seed, session)``: distinct pairs give independent streams."""
    import numpy as np

    return int(np.random.SeedSequence([seed, session]).generate_state(1)[0])


def run_study(
    *,
    base: SearchConfig,
    tune_space: TuneSpace | None = None,
    out_root: str | os.PathLike = "runs/tune",
    n_trials: int | None = 10,
    timeout: float | None = None,
    mode: str = "pareto",
    budget_ms: float | None = None,
    retrain_epochs: int = 0,
    storage: Any = None,
    study_name: str = DEFAULT_STUDY,
    seed: int | None = None,
    population_size: int = 20,
    pruner: "optuna.pruners.BasePruner | None" = None,
    callbacks: Sequence[Callable] | None = None,
    start_method: str | None = None,
    study: "optuna.Study | None" = None,
    progress: Callable[[int, dict[str, Any]], None] | None = None,
    objectives: Any = None,
    sampler: str = "nsga2",
    inner_accelerator: str | None = None,
    inner_rounds: int | None = None,
) -> "optuna.Study":
    """Create/continue the study (or use ``study``) and run ``n_trials`` more searches here.

    ``n_trials`` counts searches: trials skipped at once for the area budget (recorded as FAIL with
    user attribute ``skipped``, or for ``--area-budget-mm2`` as COMPLETE, infeasible and worst) come on top. Failed trials are recorded as FAIL and the study goes
    on. ``progress(number, info)`` sees each running trial's epoch, val_acc and latency_ms.
    Ctrl-C stops the running trial's process, records that trial as FAIL and raises
    ``KeyboardInterrupt``; finished trials stay in storage.

    First it cleans up after dead workers and storages (:mod:`uboost.tuning.recovery`): results
    kept on disk are recorded, trials of dead workers are failed and queued again, and so are trials a Ctrl-C
    stopped (when this call runs trials: they run again with their parameters). When the storage
    stops answering, :class:`StorageUnavailable` says where a finished trial's result was kept.

    ``inner_accelerator``: ``"exhaustive"`` or ``"off"`` (:mod:`~uboost.tuning.inner_accelerator`);
    default exhaustive when the accelerator space has an area budget in mm². ``inner_rounds``: 1 or
    2 (:mod:`~uboost.tuning.inner_rounds`: the network searched again on the chosen accelerator).
    """
    check_mode(mode, budget_ms, timeout=timeout, retrain_epochs=retrain_epochs, objectives=objectives)
    _start_method(start_method)
    tune_space = (tune_space if tune_space is not None else TuneSpace()).for_cost_mode(base.cost_mode)
    if n_trials is not None and (isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 0):
        raise ConfigError(f"n_trials must be a non-negative integer, got {n_trials!r}")
    names, _ = study_metrics(mode, objectives)
    tune_space.check_accelerator(base, area="area_mm2" in names)  # before the storage is touched
    inner, rounds = check_inner_options(inner_accelerator, inner_rounds, tune_space, base, "area_mm2" in names)
    if study is None:
        study = create_study(out_root, mode=mode, storage=storage, study_name=study_name, seed=seed,
                             population_size=population_size, pruner=pruner, objectives=objectives, sampler=sampler)
    tune_space.check_compatible(study)
    attrs = {"uboost_base": base.to_dict(), "uboost_space": tune_space.to_dict(), "uboost_budget_ms": budget_ms,
             "uboost_retrain_epochs": retrain_epochs, "uboost_inner_accelerator": inner, "uboost_inner_rounds": rounds}
    for key, value in attrs.items():
        old, value = study.user_attrs.get(key), _as_stored(value)
        if old is not None and old != value:
            what = "; ".join(differences(old, value)) if isinstance(old, dict) and isinstance(value, dict) else f"{old!r} -> {value!r}"
            logger.warning("study %r continues with a different %s than it started with: %s", study.study_name,
                           key.removeprefix("uboost_"), what)
        if old != value:
            study.set_user_attr(key, value)
    record_pending(study, out_root)
    fail_dead_trials(study)
    if n_trials == 0:
        return study
    for number in requeue_interrupted(study):  # the point a Ctrl-C stopped runs first, as it would have uninterrupted
        logger.warning("trial %d was interrupted (Ctrl-C or SIGTERM); queued again", number)
    storage_failed: list[StorageUnavailable] = []

    def func(trial):
        try:
            return objective(trial, base=base, tune_space=tune_space, out_root=out_root, retrain_epochs=retrain_epochs,
                             mode=mode, budget_ms=budget_ms, start_method=start_method, progress=progress,
                             objectives=objectives, inner_accelerator=inner, inner_rounds=rounds)
        except StorageUnavailable as exc:  # a UBoostError, but not one to go on after
            storage_failed.append(exc)
            trial.study.stop()
            raise

    ran = attempts = 0
    limit = None if n_trials is None else 20 * n_trials + 20

    def count(study_, frozen) -> None:  # n_trials counts searches run: area-budget skips are extra
        nonlocal ran, attempts
        attempts += 1
        ran += not frozen.user_attrs.get("skipped")
        if frozen.state.name == "COMPLETE":  # the pending copy is in the trial's folder (run_dir may be a round-2/ in it)
            recorded(trial_dir(out_root, study_.study_name, frozen.number))
            recorded(frozen.user_attrs.get("run_dir"))
        record_pending(study_, out_root)  # first: a dead worker's finished result is recorded, not failed and run again
        fail_dead_trials(study_)
        if n_trials is not None and ran >= n_trials:
            study_.stop()
        elif limit is not None and attempts >= limit:
            logger.warning("stopping: %d of %d suggested accelerators exceeded the area budget", attempts - ran, attempts)
            study_.stop()

    try:
        with _interrupt_guard():
            study.optimize(func, n_trials=None, timeout=timeout, catch=(UBoostError,),
                           callbacks=[count, *(callbacks or []), _check_interrupt])
    except Exception as exc:  # noqa: BLE001 - Optuna's tell path can turn a storage failure into another error
        cause = _storage_cause(exc)
        if cause is None:
            raise
        storage_failed.append(cause)
    if storage_failed:
        raise _storage_failure(storage_failed[0]) from None
    return study


def _storage_cause(exc: BaseException | None) -> StorageUnavailable | None:
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, StorageUnavailable):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _storage_failure(exc: StorageUnavailable) -> StorageUnavailable:
    kept, message = list(UNRECORDED), str(exc)
    UNRECORDED.clear()
    if kept:
        which = ", ".join(str(int(p.parent.name)) for p in kept)
        message += (f"; the result of trial {which} is kept in {kept[0].parent}"
                    f"{' (and the others beside it)' if len(kept) > 1 else ''}: run uboost tune on this storage again to record it")
    return StorageUnavailable(message)


def _as_stored(value: Any) -> Any:
    """``value`` as the storage holds it (JSON: tuples become lists)."""
    import json

    return json.loads(json.dumps(value))


def differences(old: dict, new: dict, prefix: str = "", *, limit: int = 6) -> list[str]:
    """The settings in which ``new`` differs from ``old``, ``"sram_kb 4 -> 64"`` each (nested ones dotted:
    ``"accelerator.area_budget_mm2 0.05 -> None"``); past ``limit`` the rest are counted in one last item."""

    def walk(a: dict, b: dict, prefix: str) -> list[str]:
        found = []
        for key in sorted(set(a) | set(b), key=str):
            x, y = a.get(key), b.get(key)
            if x == y:
                continue
            if isinstance(x, dict) and isinstance(y, dict):
                found += walk(x, y, f"{prefix}{key}.")
            else:
                found.append(f"{prefix}{key} {x!r} -> {y!r}")
        return found

    found = walk(old, new, prefix)
    return found if len(found) <= limit else [*found[:limit], f"and {len(found) - limit} more"]


def settings_difference(study: "optuna.Study", base: SearchConfig, tune_space: TuneSpace) -> str | None:
    """The first setting in which ``base`` / ``tune_space`` differ from what ``study`` stored when its searches ran
    (``"space 'lenet' (this command: 'darts-cifar')"``), or ``None`` when they agree or it stored none."""
    for key, value in (("uboost_base", base.to_dict()), ("uboost_space", tune_space.to_dict())):
        old, new = study.user_attrs.get(key), _as_stored(value)
        # fields added since the study ran count as agreeing (the study stored none)
        differ = [k for k in sorted(old or {}) if old[k] != new.get(k, old[k])]
        if differ:
            return f"{differ[0]} {old[differ[0]]!r} (this command: {new.get(differ[0])!r})"
    return None


def load_study(out_root: str | os.PathLike = "runs/tune", *, storage: Any = None, study_name: str = DEFAULT_STUDY) -> "optuna.Study":
    """An existing study, whatever its mode (for reports and export)."""
    import optuna

    path = check_storage(storage, out_root) if storage is not None else None
    if path is not None and not path.is_file():  # a report or an export creates no storage
        raise ConfigError(f"no study storage at {path}: the file does not exist")
    resolved = resolve_storage(storage, out_root) if storage is not None or (Path(out_root) / "study.journal").is_file() else None
    if resolved is None:
        raise ConfigError(f"no study in {out_root}: {Path(out_root) / 'study.journal'} does not exist (pass --storage?)")
    try:
        return optuna.load_study(study_name=study_name, storage=resolved)
    except KeyError:
        names = optuna.get_all_study_names(resolved)
        raise ConfigError(f"no study named {study_name!r} in that storage; studies there: {', '.join(names) or '(none)'}") from None
