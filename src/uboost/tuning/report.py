"""Reading results: finished trials, the Pareto front, the best trial."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from uboost.tuning.accelerator_space import AREA_CONSTRAINT
from uboost.tuning.objective import BUDGET_CONSTRAINT
from uboost.tuning.objectives import dominates, objectives_of, signs

if TYPE_CHECKING:
    import optuna


CONSTRAINTS = (BUDGET_CONSTRAINT, AREA_CONSTRAINT)
LABELS = {"accuracy": "accuracy (%)", "latency_ms": "latency (ms)", "energy_uj": "energy (µJ)", "area_mm2": "area (mm²)"}


def feasible(trial, budget_ms: float | None = None, area_budget_mm2: float | None = None) -> bool:
    """Within the latency and area budgets (or none was set). ``budget_ms``: judge the latency on this
    budget instead of the one the trial ran under (a report or export may tighten or loosen it);
    ``area_budget_mm2`` likewise the area (a study continued under another area budget is judged on
    the one it has now: :func:`study_area_budget`)."""
    attrs = trial.user_attrs
    if area_budget_mm2 is None:
        area_ok = attrs.get(AREA_CONSTRAINT) is None or attrs[AREA_CONSTRAINT] <= 0
    else:
        area_ok = attrs.get("area_mm2") is None or attrs["area_mm2"] <= area_budget_mm2
    if budget_ms is not None:
        latency = attrs.get("latency_ms")
        return latency is not None and latency <= budget_ms and area_ok
    return area_ok and (attrs.get(BUDGET_CONSTRAINT) is None or attrs[BUDGET_CONSTRAINT] <= 0)


def study_area_budget(study: "optuna.Study") -> float | None:
    """The area budget of the study's space as it stands (the last run's: a continued study stores its new space)."""
    space = study.user_attrs.get("uboost_space") or {}
    value = (space.get("accelerator") or {}).get("area_budget_mm2") if isinstance(space, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


def front_metrics(study: "optuna.Study") -> list[str]:
    """The metrics a study's Pareto front is over: its objectives, or accuracy and latency (budget mode)."""
    names = study.metric_names
    return list(names) if names and len(names) > 1 and objectives_of(names) else ["accuracy", "latency_ms"]


def completed(study: "optuna.Study") -> list:
    """Finished trials with accuracy and latency recorded."""
    import optuna

    return [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if t.user_attrs.get("accuracy") is not None and t.user_attrs.get("latency_ms") is not None]


def pareto_front(study: "optuna.Study", *, feasible_only: bool = True, budget_ms: float | None = None,
                 area_budget_mm2: float | None = None) -> list:
    """Completed trials no other trial beats on every objective (:func:`front_metrics`: accuracy
    higher, latency lower by default), sorted by latency. Over-budget trials (latency or area) are
    left out when a budget was set (``budget_ms``: this latency budget, not the trials' own; the area on
    ``area_budget_mm2``, else the study's current one)."""
    metrics = front_metrics(study)
    area = area_budget_mm2 if area_budget_mm2 is not None else study_area_budget(study)
    trials = [t for t in completed(study) if (not feasible_only or feasible(t, budget_ms, area))
              and all(t.user_attrs.get(m) is not None for m in metrics)]
    points = [[t.user_attrs[m] for m in metrics] for t in trials]
    sign = signs(metrics)
    front = [t for t, p in zip(trials, points) if not any(dominates(q, p, sign) for q in points)]
    return sorted(front, key=lambda t: (t.user_attrs["latency_ms"], -t.user_attrs["accuracy"], t.number))


def best_trial(study: "optuna.Study", *, budget_ms: float | None = None, area_budget_mm2: float | None = None):
    """The most accurate trial of the Pareto front (:func:`pareto_front`, with the same budgets: the study's
    latency budget or ``budget_ms``, the area budget ``area_budget_mm2`` or the study's current one); ties go
    to the better value of the study's other objectives (:func:`front_metrics`, in their order), then to the
    lower trial number. Never a dominated trial. ``None`` if the front is empty."""
    front = pareto_front(study, budget_ms=budget_ms, area_budget_mm2=area_budget_mm2)
    if not front:
        return None
    metrics = [m for m in front_metrics(study) if m != "accuracy"]
    sign = signs(metrics)
    return max(front, key=lambda t: (t.user_attrs["accuracy"], *(s * t.user_attrs[m] for m, s in zip(metrics, sign)), -t.number))


def pareto_plot(study: "optuna.Study", path: str | os.PathLike, *, title: str | None = None) -> Path:
    """Accuracy vs latency of every finished trial (or the study's two or three objectives: a 3-D
    plot for three), drawn by Optuna's own ``optuna.visualization.matplotlib.plot_pareto_front``
    (front, dominated and over-budget trials in its colours), written atomically as a PNG. Works for
    both modes: the points come from the trials' user attributes, so a ``"budget"`` study (one
    objective) gets the same two-axis front."""
    import inspect
    import warnings

    import optuna

    from uboost.io import atomic_path
    from uboost.plots import _pyplot

    plt = _pyplot()  # Agg, or one line naming the plot extra
    from optuna.visualization.matplotlib import plot_pareto_front

    metrics = front_metrics(study)
    copy = optuna.create_study(directions=["maximize" if s > 0 else "minimize" for s in signs(metrics)])
    has_constraints = "constraints" in inspect.signature(optuna.trial.create_trial).parameters
    for trial in completed(study):
        a, extra = trial.user_attrs, {}
        if any(a.get(m) is None for m in metrics):
            continue
        limits = {k: a[k] for k in CONSTRAINTS if a.get(k) is not None}
        if limits:
            extra = ({"constraints": limits} if has_constraints else {"system_attrs": {"constraints": list(limits.values())}})
        values = [100 * a[m] if m == "accuracy" else a[m] for m in metrics]
        copy.add_trial(optuna.trial.create_trial(values=values, user_attrs={"trial": trial.number}, **extra))
    order = [i for i, m in enumerate(metrics) if m != "accuracy"] + [i for i, m in enumerate(metrics) if m == "accuracy"]
    with warnings.catch_warnings():  # "experimental" matplotlib backend of optuna.visualization
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        ax = plot_pareto_front(copy, target_names=[LABELS[metrics[i]] for i in order],
                               targets=lambda t: tuple(t.values[i] for i in order))
    figure = ax.figure
    try:
        ax.set_title(title or f"uboost tune: {study.study_name} ({len(copy.trials)} finished trials)")
        legend = ax.get_legend()
        names = {"Best Trial": "Pareto front", "Trial": "other trials", "Feasible Trial": "other trials", "Infeasible Trial": "over budget"}
        for text in legend.get_texts() if legend is not None else ():
            text.set_text(names.get(text.get_text(), text.get_text()))
        figure.set_size_inches(7, 4.5)
        figure.tight_layout()
        with atomic_path(path, suffix=".png") as tmp:
            figure.savefig(tmp, dpi=120)
    finally:
        plt.close(figure)
    return Path(path)
