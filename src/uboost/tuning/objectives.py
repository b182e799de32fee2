"""What a study optimizes: any two or three of accuracy, latency, energy and area.

``uboost tune --objectives accuracy,latency,area`` makes a three-objective study. Each objective
is a trial user attribute with a direction (:data:`OBJECTIVES`); the study's metric names are those
attributes, so ``study.metric_names`` says what a study optimizes and a continued study must ask
for the same. The default, ``accuracy,latency``, is today's Pareto study unchanged.

Multi-objective studies use NSGA-II (``sampler="nsga2"``, the default) or NSGA-III
(``"nsga3"``, Deb & Jain 2014: reference points keep three or more objectives spread).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from uboost.exceptions import ConfigError, comma_items

OBJECTIVES: dict[str, tuple[str, str]] = {
    "accuracy": ("accuracy", "maximize"),
    "latency": ("latency_ms", "minimize"),
    "energy": ("energy_uj", "minimize"),
    "area": ("area_mm2", "minimize"),
}
"""Objective name -> (trial user attribute = metric name, direction)."""
DEFAULT_OBJECTIVES = ("accuracy", "latency")
SAMPLERS = ("nsga2", "nsga3")
MAX_OBJECTIVES = 3
WORST = {"maximize": 0.0, "minimize": float("inf")}
"""Values of a trial that was not run (an accelerator over the area budget): worse than any result."""


def check_objectives(objectives: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"accuracy,latency,area"`` or a sequence -> a checked tuple of two or three distinct names."""
    if objectives is None:
        return DEFAULT_OBJECTIVES
    names = [o.strip().lower() for o in (comma_items(objectives, "objectives", "accuracy,latency") if isinstance(objectives, str) else objectives)]
    names = [n for n in names if n]
    unknown = [n for n in names if n not in OBJECTIVES]
    if unknown:
        raise ConfigError(f"unknown objective {unknown[0]!r}; expected two or three of: {', '.join(OBJECTIVES)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"objectives must be distinct, got {','.join(names)}")
    if not 2 <= len(names) <= MAX_OBJECTIVES:
        raise ConfigError(f"give two or three objectives (of {', '.join(OBJECTIVES)}), got {len(names)}: {','.join(names) or '(none)'}")
    return tuple(names)


def check_sampler(sampler: str) -> str:
    if sampler not in SAMPLERS:
        raise ConfigError(f"unknown sampler {sampler!r}; expected one of: {', '.join(SAMPLERS)} (multi-objective studies)")
    return sampler


def metric_names(objectives: Sequence[str]) -> list[str]:
    return [OBJECTIVES[o][0] for o in objectives]


def directions(objectives: Sequence[str]) -> list[str]:
    return [OBJECTIVES[o][1] for o in objectives]


def values_from(attrs: dict, names: Sequence[str]) -> list[float]:
    """The objective values of a trial, read from its user attributes ``attrs`` by metric name; one that is
    missing (or not a number) raises :class:`ConfigError` naming it."""
    values = []
    for name in names:
        try:
            values.append(float(attrs[name]))
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"the trial has no value for its objective {name} (got {attrs.get(name)!r})") from None
    return values


def objectives_of(names: Sequence[str] | None) -> tuple[str, ...] | None:
    """The objective names of a study whose metric names are ``names`` (``None`` if not a uboost study)."""
    by_metric = {metric: name for name, (metric, _) in OBJECTIVES.items()}
    if not names or any(n not in by_metric for n in names):
        return None
    return tuple(by_metric[n] for n in names)


def dominates(a: Sequence[float], b: Sequence[float], signs: Sequence[int], ties: Sequence[float] = ()) -> bool:
    """``a`` is at least as good as ``b`` everywhere and better somewhere (``signs``: +1 maximize, -1 minimize).
    ``ties``: per objective, a difference up to which two values count as equal (values stored with a rounding
    error, such as a float32 test accuracy); missing ones are 0."""
    ties = tuple(ties) + (0.0,) * (len(signs) - len(ties))
    better = [0.0 if abs(x - y) <= t else s * (x - y) for x, y, s, t in zip(a, b, signs, ties)]
    return all(d >= 0 for d in better) and any(d > 0 for d in better)


def signs(names: Sequence[str]) -> list[int]:
    """+1 for a maximized metric, -1 for a minimized one (metric names such as ``latency_ms``)."""
    by_metric = {metric: direction for metric, direction in OBJECTIVES.values()}
    return [1 if by_metric[n] == "maximize" else -1 for n in names]
