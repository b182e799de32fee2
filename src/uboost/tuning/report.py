"""Reading results: finished trials, the Pareto front, the best trial."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from uboost.tuning.objective import BUDGET_CONSTRAINT

if TYPE_CHECKING:
    import optuna


def feasible(trial) -> bool:
    """Within the latency budget (or no budget was set)."""
    over = trial.user_attrs.get(BUDGET_CONSTRAINT)
    return over is None or over <= 0


def completed(study: "optuna.Study") -> list:
    """Finished trials with accuracy and latency recorded."""
    import optuna

    return [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if t.user_attrs.get("accuracy") is not None and t.user_attrs.get("latency_ms") is not None]


def pareto_front(study: "optuna.Study", *, feasible_only: bool = True) -> list:
    """Completed trials no other trial beats on both accuracy (higher) and latency (lower),
    sorted by latency. Over-budget trials are left out when a budget was set."""
    trials = [t for t in completed(study) if not feasible_only or feasible(t)]
    points = [(t.user_attrs["accuracy"], t.user_attrs["latency_ms"]) for t in trials]
    front = []
    for t, (acc, lat) in zip(trials, points):
        dominated = any(a >= acc and l <= lat and (a > acc or l < lat) for a, l in points)
        if not dominated:
            front.append(t)
    return sorted(front, key=lambda t: (t.user_attrs["latency_ms"], -t.user_attrs["accuracy"], t.number))


def best_trial(study: "optuna.Study", *, budget_ms: float | None = None):
    """The most accurate completed trial within the latency budget (the study's, or ``budget_ms``);
    ties go to the lower latency. ``None`` if there is none."""
    candidates = [t for t in completed(study) if feasible(t)]
    if budget_ms is not None:
        candidates = [t for t in candidates if t.user_attrs["latency_ms"] <= budget_ms]
    if not candidates:
        return None
    return max(candidates, key=lambda t: (t.user_attrs["accuracy"], -t.user_attrs["latency_ms"], -t.number))


def pareto_plot(study: "optuna.Study", path: str | os.PathLike, *, title: str | None = None) -> Path:
    """Accuracy vs latency of every finished trial, drawn by Optuna's own
    ``optuna.visualization.matplotlib.plot_pareto_front`` (front, dominated and over-budget trials
    in its colours), written atomically as a PNG. Works for both modes: the points come from the
    trials' user attributes, so a ``"budget"`` study (one objective) gets the same two-axis front."""
    import inspect
    import warnings

    import optuna

    from uboost.io import atomic_path
    from uboost.plots import _pyplot

    plt = _pyplot()  # Agg, or one line naming the plot extra
    from optuna.visualization.matplotlib import plot_pareto_front

    copy = optuna.create_study(directions=["maximize", "minimize"])
    has_constraints = "constraints" in inspect.signature(optuna.trial.create_trial).parameters
    for trial in completed(study):
        a, extra = trial.user_attrs, {}
        if a.get(BUDGET_CONSTRAINT) is not None:
            extra = ({"constraints": {BUDGET_CONSTRAINT: a[BUDGET_CONSTRAINT]}} if has_constraints
                     else {"system_attrs": {"constraints": [a[BUDGET_CONSTRAINT]]}})
        copy.add_trial(optuna.trial.create_trial(values=[100 * a["accuracy"], a["latency_ms"]], user_attrs={"trial": trial.number}, **extra))
    with warnings.catch_warnings():  # "experimental" matplotlib backend of optuna.visualization
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        ax = plot_pareto_front(copy, target_names=["latency (ms)", "accuracy (%)"], targets=lambda t: (t.values[1], t.values[0]))
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
