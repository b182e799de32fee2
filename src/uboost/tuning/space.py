"""What Optuna searches: :class:`TuneSpace` (lambda, T, rows, cols, dataflow, beta, and with an
:class:`~uboost.tuning.accelerator_space.AcceleratorSpace` the rest of the accelerator) and its distributions."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from uboost.exceptions import ConfigError
from uboost.hardware.spec import DATAFLOWS
from uboost.tuning.accelerator_space import AcceleratorSpace

if TYPE_CHECKING:
    import optuna

    from uboost.search_config import SearchConfig

ACCELERATOR_POINT = "accelerator_point"
"""Key of :meth:`TuneSpace.suggest`'s changes holding the accelerator point (see :meth:`TuneSpace.apply`)."""
SEED_OFFSET = "search_seed"
"""Optuna parameter (and key of :meth:`TuneSpace.suggest`'s changes) of a trial's search seed, as an offset
from the base config's seed (see :attr:`TuneSpace.search_seeds`)."""


def _float_range(name: str, value: Any, *, positive: bool) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a (low, high) pair of numbers, got {value!r}") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise ConfigError(f"{name} must have finite low <= high, got {value!r}")
    if positive and low <= 0:
        raise ConfigError(f"{name} is searched on a log scale and must be positive, got {value!r}")
    if not positive and low < 0:
        raise ConfigError(f"{name} must be non-negative, got {value!r}")
    return low, high


def _int_choices(name: str, value: Any) -> tuple[int, ...] | range:
    if isinstance(value, range):
        if len(value) == 0 or value.step < 1 or value.start < 1:
            raise ConfigError(f"{name} range must be non-empty, increasing and positive, got {value!r}")
        return _within_side(name, value)
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ConfigError(f"{name} must be a list of positive integers or a range, got {value!r}")
    choices = tuple(value)
    if not choices or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in choices):
        raise ConfigError(f"{name} must be a non-empty list of positive integers, got {value!r}")
    return _within_side(name, tuple(dict.fromkeys(choices)))


def _within_side(name: str, choices):
    """Every choice an array side a trial can build (at most :data:`MAX_ARRAY_SIDE`): said once, before any trial."""
    from uboost.hardware.spec import MAX_ARRAY_SIDE

    if max(choices) > MAX_ARRAY_SIDE:
        raise ConfigError(f"{name} must be at most {MAX_ARRAY_SIDE} (an array side), got {max(choices)}")
    return choices


@dataclass(frozen=True, kw_only=True)
class TuneSpace:
    """What Optuna searches: one value of each per trial.

    ``rows``/``cols`` are choices (a sequence) or a ``range`` (``range(8, 65, 8)``: 8..64 in steps
    of 8). With ``area_budget`` a trial whose ``rows * cols`` exceeds it fails at once, without
    running. ``dataflows``/``utilization_weight`` are searched only when given; otherwise the base
    config's values are used. ``latency_weight`` (lambda) and ``temperature`` are log-scale ranges,
    ``utilization_weight`` a linear one; ``low == high`` fixes a value. The temperature T shapes
    only the smooth cost (``cost_mode="smooth"``): :meth:`for_cost_mode` drops it otherwise, and
    ``temperature=None`` never searches it. ``accelerator`` extends the search to buffers, bandwidth,
    operating point and PE mode under an area budget in mm² (:mod:`~uboost.tuning.accelerator_space`).

    ``search_seeds`` (n > 1) also draws each trial's search seed: ``search_seed`` in 0..n-1, and the
    trial searches and retrains with ``base.seed + search_seed``. With one seed the study maps each
    sampled point to one network, and nearby points mostly derive the same one (a 20-trial lenet
    co-search derives 12-13 distinct networks); n seeds give each point n chances at another (measured on
    that co-search it did not widen it: 9-11 distinct networks with 4 seeds, benchmarks/RESULTS.md).
    """

    latency_weight: tuple[float, float] = (0.01, 10.0)
    temperature: tuple[float, float] | None = (1.0, 50.0)
    rows: Sequence[int] | range = (8, 16, 32)
    cols: Sequence[int] | range = (8, 16, 32)
    area_budget: int | None = None
    dataflows: Sequence[str] | None = None
    utilization_weight: tuple[float, float] | None = None
    accelerator: AcceleratorSpace | None = None
    search_seeds: int = 1

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 - frozen dataclass
        set_("latency_weight", _float_range("latency_weight (lambda) range", self.latency_weight, positive=True))
        if self.temperature is not None:
            set_("temperature", _float_range("temperature range", self.temperature, positive=True))
        if self.utilization_weight is not None:
            set_("utilization_weight", _float_range("utilization_weight range", self.utilization_weight, positive=False))
        set_("rows", _int_choices("rows", self.rows))
        set_("cols", _int_choices("cols", self.cols))
        if self.dataflows is not None:
            flows = tuple(dict.fromkeys([self.dataflows] if isinstance(self.dataflows, str) else self.dataflows))
            bad = [d for d in flows if d not in DATAFLOWS]
            if not flows or bad:
                raise ConfigError(f"unknown dataflow {bad[0] if bad else '(none)'!r}; expected some of: {', '.join(DATAFLOWS)}")
            set_("dataflows", flows)
        if isinstance(self.search_seeds, bool) or not isinstance(self.search_seeds, int) or self.search_seeds < 1:
            raise ConfigError(f"search_seeds must be a positive integer, got {self.search_seeds!r}")
        if self.accelerator is not None and not isinstance(self.accelerator, AcceleratorSpace):
            raise ConfigError(f"accelerator must be an AcceleratorSpace, got {type(self.accelerator).__name__}")
        if self.area_budget is not None:
            if isinstance(self.area_budget, bool) or not isinstance(self.area_budget, int) or self.area_budget < 1:
                raise ConfigError(f"area_budget must be a positive integer (rows*cols PEs), got {self.area_budget!r}")
            smallest = min(self.rows) * min(self.cols)
            if smallest > self.area_budget:
                raise ConfigError(
                    f"no array fits the area budget {self.area_budget}: the smallest is "
                    f"{min(self.rows)}x{min(self.cols)} = {smallest} PEs"
                )

    def suggest(self, trial: "optuna.Trial") -> dict[str, Any]:
        """Ask ``trial`` for one point; returns the :class:`SearchConfig` changes (``array``...)."""
        changes: dict[str, Any] = {"latency_weight": trial.suggest_float("latency_weight", *self.latency_weight, log=True)}
        if self.temperature is not None:
            changes["temperature"] = trial.suggest_float("temperature", *self.temperature, log=True)
        rows, cols = (self._suggest_int(trial, name, getattr(self, name)) for name in ("rows", "cols"))
        changes["array"] = f"{rows}x{cols}"
        if self.dataflows is not None:
            changes["dataflow"] = trial.suggest_categorical("dataflow", list(self.dataflows))
        if self.utilization_weight is not None:
            changes["utilization_weight"] = trial.suggest_float("utilization_weight", *self.utilization_weight)
        if self.accelerator is not None:
            changes[ACCELERATOR_POINT] = self.accelerator.suggest(trial)
        if self.search_seeds > 1:
            changes[SEED_OFFSET] = int(trial.suggest_categorical(SEED_OFFSET, list(range(self.search_seeds))))
        return changes

    def apply(self, base: "SearchConfig", changes: dict[str, Any]) -> "SearchConfig":
        """``base`` with the changes of :meth:`suggest` applied (the accelerator point included)."""
        changes = dict(changes)
        point = changes.pop(ACCELERATOR_POINT, None)
        offset = changes.pop(SEED_OFFSET, 0)
        if offset:
            changes["seed"] = base.seed + offset
        config = base.replace(**changes)
        return self.accelerator.configure(config, point) if self.accelerator is not None and point else config

    def check_accelerator(self, base: "SearchConfig", *, area: bool = False) -> None:
        """Refuse an accelerator space no trial could run (:meth:`AcceleratorSpace.check`); ``area``:
        area is an objective, so every accelerator of the space must have one."""
        if self.accelerator is not None or area:
            (self.accelerator or AcceleratorSpace()).check(base, rows=self.rows, cols=self.cols, area=area)

    def distributions(self) -> dict[str, "optuna.distributions.BaseDistribution"]:
        """The Optuna distributions :meth:`suggest` uses, by parameter name."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        def ints(space: tuple[int, ...] | range):
            if isinstance(space, range):
                return IntDistribution(space.start, space[-1], step=space.step)
            return CategoricalDistribution(list(space))

        found = {"latency_weight": FloatDistribution(*self.latency_weight, log=True)}
        if self.temperature is not None:
            found["temperature"] = FloatDistribution(*self.temperature, log=True)
        found.update(rows=ints(self.rows), cols=ints(self.cols))
        if self.dataflows is not None:
            found["dataflow"] = CategoricalDistribution(list(self.dataflows))
        if self.utilization_weight is not None:
            found["utilization_weight"] = FloatDistribution(*self.utilization_weight)
        if self.accelerator is not None:
            found.update(self.accelerator.distributions())
        if self.search_seeds > 1:
            found[SEED_OFFSET] = CategoricalDistribution(list(range(self.search_seeds)))
        return found

    def check_compatible(self, study: "optuna.Study") -> None:
        """Raise :class:`ConfigError` if ``study``'s trials used a parameter in a way Optuna cannot
        continue with (e.g. other choices for a categorical ``rows``)."""
        from optuna.distributions import check_distribution_compatibility

        seen: dict[str, Any] = {}
        trials = study.get_trials(deepcopy=False)
        for trial in trials:
            seen.update(trial.distributions)
        if trials:
            self._check_area_budget(study)
        for name, new in self.distributions().items():
            old = seen.get(name)
            if old is None:
                continue
            try:
                check_distribution_compatibility(old, new)
            except ValueError as exc:
                raise ConfigError(
                    f"study {study.study_name!r} searched {name} as {_describe(old)}, now {_describe(new)}: "
                    f"Optuna cannot continue with that ({exc}); keep the old setting or use a new --study-name"
                ) from None

    def _check_area_budget(self, study: "optuna.Study") -> None:
        """Refuse to continue ``study`` under another area budget in mm² than its trials ran under (none included):
        each trial's area constraint was stored once, against that budget, and a report or an export judges the
        trials on the budget the study stores (a dropped one let an over-budget accelerator become "best")."""
        stored = study.user_attrs.get("uboost_space")
        if not isinstance(stored, dict):  # a study of an older version, or not run by uboost: nothing to compare
            return
        old = (stored.get("accelerator") or {}).get("area_budget_mm2")
        new = None if self.accelerator is None else self.accelerator.area_budget_mm2
        if old == new or (old is not None and new is not None and math.isclose(old, new)):
            return
        was = f"under an area budget of {old:g} mm²" if old is not None else "without an area budget"
        now = f"--area-budget-mm2 {new:g}" if new is not None else "no --area-budget-mm2"
        fix = f"repeat --area-budget-mm2 {old:g}" if old is not None else "drop --area-budget-mm2"
        raise ConfigError(f"study {study.study_name!r} was searched {was} (this command: {now}); its trials were judged "
                          f"on it: {fix} or use a new --study-name")

    def for_cost_mode(self, cost_mode: str) -> "TuneSpace":
        """The space as it acts on a search with ``cost_mode``: T only where it has an effect."""
        if cost_mode == "smooth" or self.temperature is None:
            return self
        return dataclasses.replace(self, temperature=None)

    @staticmethod
    def _suggest_int(trial: "optuna.Trial", name: str, space: tuple[int, ...] | range) -> int:
        if isinstance(space, range):
            return trial.suggest_int(name, space.start, space[-1], step=space.step)
        return int(trial.suggest_categorical(name, list(space)))

    def area_violation(self, array: str) -> str | None:
        """Why ``array`` is invalid under the area budget, or ``None``."""
        if self.area_budget is None:
            return None
        rows, cols = (int(v) for v in array.split("x"))
        if rows * cols <= self.area_budget:
            return None
        return f"array {array} has {rows * cols} PEs, over the area budget of {self.area_budget} (rows*cols)"

    def to_dict(self) -> dict[str, Any]:
        def plain(v: Any) -> Any:
            if isinstance(v, range):
                return {"low": v.start, "high": v[-1], "step": v.step}
            return list(v) if isinstance(v, tuple) else v

        found = {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)
                 if f.name != "accelerator" and (f.name != "search_seeds" or self.search_seeds > 1)}
        if self.accelerator is not None:  # absent otherwise (search_seeds too): the stored space of earlier studies is unchanged
            found["accelerator"] = self.accelerator.to_dict()
        return found


def _describe(dist) -> str:
    if hasattr(dist, "choices"):
        return "choices " + ",".join(str(c) for c in dist.choices)
    step = getattr(dist, "step", None)
    return f"range {dist.low:g}:{dist.high:g}" + (f":{step:g}" if step not in (None, 1) else "") + (" (log)" if getattr(dist, "log", False) else "")
