"""One trial: suggest a point, run its search in a child process, record the result."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from uboost.exceptions import ConfigError, UBoostError
from uboost.io import write_text
from uboost.search import SearchConfig
from uboost.tuning import objectives as objs
from uboost.tuning.accelerator_space import AREA_CONSTRAINT, area_of
from uboost.tuning.child import TrialFailed, _check_interrupt, _run_child
from uboost.tuning import inner_accelerator as inner_choice
from uboost.tuning import inner_rounds as alternating
from uboost.tuning.cost_cache import FOLDER as COST_CACHE
from uboost.tuning.recovery import INTERRUPTED_REASON, hold_worker_lock, running_here, worker_name, write_pending
from uboost.tuning.space import TuneSpace
from uboost.tuning.storage import StorageUnavailable, trial_dir

if TYPE_CHECKING:
    import optuna

MODES = ("pareto", "budget")
DEFAULT_STUDY = "uboost"
METRIC_NAMES = {"pareto": ["accuracy", "latency_ms"], "budget": ["accuracy"]}
DIRECTIONS = {"pareto": ["maximize", "minimize"], "budget": ["maximize"]}
BUDGET_CONSTRAINT = "latency_over_budget_ms"
"""Constraint key (and user attribute): latency minus budget, feasible when <= 0."""
UNRECORDED: list[Path] = []
"""Results of finished trials this process could not write to the storage (kept on disk)."""


def study_metrics(mode: str, objectives=None) -> tuple[list[str], list[str]]:
    """``(metric names, directions)`` of a study in ``mode`` with ``objectives`` (pareto mode only)."""
    if mode == "pareto":
        names = objs.check_objectives(objectives)
        return objs.metric_names(names), objs.directions(names)
    if objectives is not None:
        raise ConfigError(f"--objectives needs --mode pareto (mode {mode!r} maximizes accuracy under --budget-ms)")
    return METRIC_NAMES[mode], DIRECTIONS[mode]


def check_mode(mode: str, budget_ms: float | None, *, timeout: float | None = None, retrain_epochs: int = 0,
               objectives=None) -> None:
    """The study's settings, checked before the storage is touched (a bad one would fail every trial)."""
    if isinstance(retrain_epochs, bool) or not isinstance(retrain_epochs, int) or retrain_epochs < 0:
        raise ConfigError(f"retrain_epochs (--retrain-epochs) must be an integer >= 0 (0: no retraining), got {retrain_epochs!r}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf):
        raise ConfigError(f"timeout (--timeout) must be a positive number of seconds, got {timeout!r}")
    if mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r}; expected one of: {', '.join(MODES)}")
    if budget_ms is not None and (not isinstance(budget_ms, (int, float)) or not math.isfinite(budget_ms) or budget_ms <= 0):
        raise ConfigError(f"budget_ms must be a positive number of milliseconds, got {budget_ms!r}")
    if mode == "budget" and budget_ms is None:
        raise ConfigError("mode 'budget' needs a latency budget: pass budget_ms (--budget-ms)")
    study_metrics(mode, objectives)


def _base_config(base: SearchConfig | None, config: dict[str, Any]) -> SearchConfig:
    if base is None:
        return SearchConfig.from_dict(config)
    if config:
        unknown = sorted(set(config) - {f.name for f in dataclasses.fields(SearchConfig)})
        if unknown:
            raise ConfigError(f"unknown config keys {unknown}")
        return base.replace(**config)
    return base


def _fail(trial: "optuna.Trial", reason: str) -> TrialFailed:
    trial.set_user_attr("fail_reason", reason)
    return TrialFailed(f"trial {trial.number}: {reason}")


def objective(
    trial: "optuna.Trial",
    *,
    base: SearchConfig | None = None,
    tune_space: TuneSpace | None = None,
    out_root: str | os.PathLike = "runs/tune",
    retrain_epochs: int = 0,
    mode: str = "pareto",
    budget_ms: float | None = None,
    start_method: str | None = None,
    poll_seconds: float = 0.25,
    progress: Callable[[int, dict[str, Any]], None] | None = None,
    objectives: Any = None,
    inner_accelerator: str | None = None,
    inner_rounds: int | None = None,
    **config: Any,
) -> float | tuple[float, ...]:
    """One trial: suggest lambda, T, rows, cols (...), run a fresh search in a child process.

    ``base`` is the :class:`SearchConfig` the suggestions are applied to; keyword arguments
    (``space="lenet", dataset="digits", epochs=2``...) build it or override its fields.
    Returns ``(accuracy, latency_ms)`` in ``"pareto"`` mode and ``accuracy`` in ``"budget"`` mode,
    where the latency budget is an Optuna constraint and each epoch's validation accuracy is
    reported for pruning. Accuracy is the search's validation accuracy, or the test accuracy of
    a ``retrain_epochs`` retrain. Arch, hardware metrics and the run directory are stored as user
    attributes. Raises :class:`TrialFailed` when the trial cannot give a result. ``progress(number,
    info)`` is called as the search goes (``info``: epoch, epochs, val_acc, latency_ms).

    ``objectives`` (``"pareto"`` mode): two or three of accuracy, latency, energy, area
    (:mod:`~uboost.tuning.objectives`; default accuracy and latency), returned in that order. With an
    accelerator space (``tune_space.accelerator``) the trial's accelerator is part of the point; one
    over its area budget returns the worst values without a search (see
    :mod:`~uboost.tuning.accelerator_space`). The trial's cost model caches its layer costs per
    accelerator in ``out_root/cost-cache`` (:mod:`~uboost.tuning.cost_cache`).

    ``inner_accelerator="exhaustive"`` (the default under an area budget in mm²): the searched
    network is priced on every accelerator of the space within the budget and the trial reports
    the best one (:mod:`~uboost.tuning.inner_accelerator`); ``"off"`` reports the sampled one.
    ``inner_rounds=2`` (with the inner choice) searches the network a second time on the chosen
    accelerator and chooses again; the trial reports one of the two pairs (:mod:`~uboost.tuning.inner_rounds`).
    """
    try:
        with running_here(trial):  # a later record_pending leaves this trial's result to us
            return _objective(trial, base=base, tune_space=tune_space, out_root=out_root, retrain_epochs=retrain_epochs,
                              mode=mode, budget_ms=budget_ms, start_method=start_method, poll_seconds=poll_seconds,
                              config=config, progress=progress, objectives=objectives, inner_accelerator=inner_accelerator,
                              inner_rounds=inner_rounds)
    except KeyboardInterrupt:  # Optuna records the trial as FAIL and re-raises; say why
        with contextlib.suppress(Exception):
            trial.set_user_attr("fail_reason", INTERRUPTED_REASON)
        raise


def _objective(trial, *, base, tune_space, out_root, retrain_epochs, mode, budget_ms, start_method, poll_seconds, config,
               progress, objectives, inner_accelerator, inner_rounds):
    _check_interrupt()  # a Ctrl-C while Optuna was busy
    trial.set_user_attr("worker", worker_name())
    lock = hold_worker_lock(trial.study)  # journal files: how a later worker tells we died (recovery.py)
    if lock is not None:
        trial.set_user_attr("worker_lock", lock)
    check_mode(mode, budget_ms, objectives=objectives)
    names, wanted = study_metrics(mode, objectives)
    base = _base_config(base, config)
    tune_space = (tune_space if tune_space is not None else TuneSpace()).for_cost_mode(base.cost_mode)
    inner, rounds = check_inner_options(inner_accelerator, inner_rounds, tune_space, base, "area_mm2" in names)
    if isinstance(retrain_epochs, bool) or not isinstance(retrain_epochs, int) or retrain_epochs < 0:
        raise ConfigError(f"retrain_epochs must be a non-negative integer, got {retrain_epochs!r}")
    directions = len(trial.study.directions)
    if directions != len(wanted):
        raise ConfigError(
            f"mode {mode!r} returns {' and '.join(names)} but the study has {directions} "
            f"direction(s); create it with directions={wanted} (uboost.tuning.create_study does)"
        )

    try:
        changes = tune_space.suggest(trial)
    except ValueError as exc:  # Optuna refuses e.g. new choices for a parameter of a running study
        raise ConfigError(f"cannot suggest parameters for trial {trial.number}: {exc}") from None
    trial.set_user_attr("array", changes["array"])
    violation = tune_space.area_violation(changes["array"])
    if violation:
        trial.set_user_attr("skipped", "area_budget")  # failed without running: not counted by run_study
        raise _fail(trial, violation)
    try:
        cfg = tune_space.apply(base, changes)
        cfg.hardware_spec()
        area = _area(cfg, tune_space, names)
    except UBoostError as exc:
        raise _fail(trial, f"invalid combination: {exc}") from None
    trial.set_user_attr("dataflow", cfg.dataflow)
    over = _area_constraint(trial, tune_space, area)
    if over is not None and over > 0:  # never searched: recorded with the worst values (accelerator_space.py)
        trial.set_user_attr("config", cfg.to_dict())
        trial.set_user_attr("skipped", "area_budget_mm2")
        trial.set_user_attr("fail_reason", f"area {area:.4g} mm² is over the budget of {tune_space.accelerator.area_budget_mm2:g} mm²")
        worst = [area if n == "area_mm2" else objs.WORST[d] for n, d in zip(names, wanted)]
        return tuple(worst) if mode == "pareto" else worst[0]
    run_dir = trial_dir(out_root, trial.study.study_name, trial.number).resolve()
    if run_dir.exists() and any(run_dir.iterdir()):
        raise _fail(trial, f"trial directory {run_dir} already exists (left by another study?); remove it")
    trial.set_user_attr("run_dir", str(run_dir))
    trial.set_user_attr("config", cfg.to_dict())
    hardware_names = names if mode == "pareto" else ["latency_ms"]

    def run_round(cfg: SearchConfig, run_dir: Path) -> dict[str, Any]:  # one search (+ retrain, + inner choice)
        return _search_round(trial, cfg, run_dir, tune_space=tune_space, names=names, hardware_names=hardware_names,
                             inner=inner, retrain_epochs=retrain_epochs, out_root=out_root, mode=mode,
                             start_method=start_method, poll_seconds=poll_seconds, progress=progress)

    attrs = run_round(cfg, run_dir)
    if rounds == 2:  # network -> accelerator -> network (inner_rounds.py)
        attrs = alternating.second_round(attrs, run_round, run_dir, names)
    accuracy = attrs["accuracy"]
    latency = attrs["latency_ms"]
    if accuracy is None or not math.isfinite(accuracy) or not math.isfinite(latency) or not all(
            attrs.get(n) is not None and math.isfinite(attrs[n]) for n in names):
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        raise _fail(trial, "the search reported no validation accuracy" if accuracy is None else
                    f"non-finite result: accuracy={accuracy}, latency_ms={latency}")
    if budget_ms is not None:
        attrs[BUDGET_CONSTRAINT] = latency - budget_ms
    values = objs.values_from(attrs, names)
    pending = write_pending(run_dir, trial, values, attrs)  # on disk first: the storage may be gone by now
    try:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        if budget_ms is not None and hasattr(trial, "set_constraint"):  # Optuna >= 5; older versions read the user attr
            trial.set_constraint(BUDGET_CONSTRAINT, attrs[BUDGET_CONSTRAINT])
    except StorageUnavailable:
        UNRECORDED.append(pending)
        raise
    return tuple(values) if mode == "pareto" else values[0]


def _search_round(trial, cfg: SearchConfig, run_dir: Path, *, tune_space, names, hardware_names, inner, retrain_epochs,
                  out_root, mode, start_method, poll_seconds, progress) -> dict[str, Any]:
    """Search (and retrain) a network on ``cfg`` in a child process writing ``run_dir``; its user
    attributes, after the inner accelerator choice when ``inner`` is ``"exhaustive"``."""
    area = _area(cfg, tune_space, names)
    over = None if tune_space.accelerator is None or area is None else tune_space.accelerator.area_violation_mm2(area)
    retrain = None
    if retrain_epochs:
        retrain = dict(epochs=retrain_epochs, batch_size=cfg.batch_size, max_samples=cfg.max_samples, seed=cfg.seed,
                       accelerator=cfg.accelerator, devices=cfg.devices)
    payload = {"config": cfg.to_dict(), "run_dir": str(run_dir), "retrain": retrain,
               "cost_cache": str(Path(out_root).resolve() / COST_CACHE)}
    message = _run_child(trial, payload, report=mode == "budget", start_method=start_method, poll_seconds=poll_seconds,
                         progress=progress)
    if not message["ok"]:
        if message.get("traceback") and run_dir.is_dir():
            write_text(run_dir / "error.txt", message["traceback"])
        raise _fail(trial, message["error"])

    summary = message["summary"]
    attrs = {
        "arch": message["arch"], "latency_ms": summary["latency_ms"], "cycles": summary["cycles"],
        "utilization": summary["utilization"], "macs": summary["macs"], "val_acc": summary["val_acc"],
        "search_seconds": summary["search_seconds"], "array": message["array"], "dataflow": message["dataflow"],
        "energy_uj": summary.get("energy_uj"), "config": cfg.to_dict(),
    }
    if area is not None:
        attrs["area_mm2"] = area
    if over is not None:
        attrs[AREA_CONSTRAINT] = over
    if "cost_cache" in message:
        attrs["cost_cache"] = message["cost_cache"]
    if "precision" in message:  # searched bits per layer: the network is priced and retrained at them
        attrs["precision"] = message["precision"]
    if inner == "exhaustive":  # the searched network on the best accelerator of the space (inner_accelerator.py)
        try:
            attrs.update(inner_choice.trial_attrs(message["layers"], cfg, tune_space, hardware_names, run_dir))
        except UBoostError as exc:
            raise _fail(trial, f"inner accelerator choice: {exc}") from None
    if "test_acc" in message:
        attrs["test_acc"] = message["test_acc"]
        attrs["retrain_seconds"] = message["retrain_seconds"]
    attrs["accuracy"] = attrs.get("test_acc", attrs["val_acc"])
    return attrs


def inner_mode(inner_accelerator: str | None, tune_space: TuneSpace, area_objective: bool = False) -> str:
    """The inner accelerator choice a study runs: as given, else exhaustive under an area budget in mm², unless
    area is one of the study's objectives: a choice per trial would pick the area for the sampler (the largest
    array within the budget, for latency), and the front would have one area; the sampler searches it instead."""
    space = tune_space.accelerator
    return inner_choice.check_inner(inner_accelerator, area_budget=space is not None and space.prices_area and not area_objective)


def check_inner_options(inner_accelerator: str | None, inner_rounds: int | None, tune_space: TuneSpace,
                        base: SearchConfig, area_objective: bool = False) -> tuple[str, int]:
    """The study's inner choice and rounds, checked before anything is written: an unknown mode, a
    space too large to enumerate per trial, or rounds the mode cannot run raise :class:`ConfigError`."""
    inner = inner_mode(inner_accelerator, tune_space, area_objective)
    if inner == "exhaustive":
        inner_choice.check_space(tune_space, base)
    return inner, alternating.check_rounds(inner_rounds, inner=inner)


def _area(cfg: SearchConfig, tune_space: TuneSpace, names: list[str]) -> float | None:
    """The accelerator's area (mm²) when it is constrained or an objective, else ``None``."""
    space = tune_space.accelerator
    if "area_mm2" in names or (space is not None and space.prices_area):
        return area_of(cfg)
    return None


def _area_constraint(trial, tune_space: TuneSpace, area: float | None) -> float | None:
    """Record ``area - budget`` as the trial's constraint (every trial of a budgeted study has one)."""
    space = tune_space.accelerator
    over = None if space is None or area is None else space.area_violation_mm2(area)
    if over is None:
        return None
    trial.set_user_attr("area_mm2", area)
    trial.set_user_attr(AREA_CONSTRAINT, over)
    if hasattr(trial, "set_constraint"):  # Optuna >= 5; older versions read the user attr (study.py)
        trial.set_constraint(AREA_CONSTRAINT, over)
    return over
