"""The accelerator half of a co-search: buffers, bandwidth, operating point, PE mode, area budget.

:class:`AcceleratorSpace` extends a :class:`~uboost.tuning.space.TuneSpace` (which searches rows,
cols and the dataflow) to the rest of the accelerator. Every dimension is opt-in: a space that
searches nothing leaves the base configuration's accelerator as it is.

* ``ifmap_sram_kb`` / ``filter_sram_kb`` / ``ofmap_sram_kb``: kB choices of each SRAM buffer
  (stored in the run config's ``hardware`` table, as an accelerator file states them);
* ``dram_bw_words``: DRAM bandwidth choices, words per cycle per port;
* ``clock_hz``: operating points, each a point of the base configuration's DVFS table
  (:mod:`uboost.hardware.operating`); the voltage is the table's at that point;
* ``pe_modes``: PE precision modes (:mod:`uboost.hardware.precision`);
* ``area_budget_mm2``: the silicon budget (:mod:`uboost.hardware.area`, the run's area table:
  ``--tech`` or the ``--hardware`` file's).

**Area budget.** A trial's area is exact and cheap (a linear formula), so it is computed in the
parent before any search. An accelerator over the budget never pays for a search: its trial is
recorded as COMPLETE with the constraint ``area_over_budget_mm2 = area - budget > 0`` set through
``Trial.set_constraint`` (Optuna >= 5, where it replaces the sampler's deprecated
``constraints_func``; older Optuna reads it through ``constraints_func``) and the worst values
(accuracy 0, infinite latency and energy, its real area). So the samplers learn the infeasible
region -- NSGA-II/III rank every infeasible trial behind every feasible one (constrained
domination), TPE models feasibility -- and ``study.best_trials`` never holds one. Recording it as
FAIL instead would hide the region from the sampler, which would keep proposing it.

**PE area.** The area presets carry a PE area only for the fixed 8-bit PE (no published factor
for BitFusion or bit-serial PEs is in the cited layouts), so with an area budget or an area
objective a ``bitfusion``/``bit-serial`` mode is refused up front unless the area table gives its
``pe_factor`` (an area TOML, ``[area.pe_factor]``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from uboost.exceptions import ConfigError

if TYPE_CHECKING:
    import optuna

    from uboost.search_config import SearchConfig

BUFFERS = ("ifmap_sram_kb", "filter_sram_kb", "ofmap_sram_kb")
AREA_CONSTRAINT = "area_over_budget_mm2"
"""Constraint key (and user attribute): area minus budget in mm², feasible when <= 0."""


def _choices(name: str, value: Any, *, integer: bool) -> tuple | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ConfigError(f"{name} must be a list of choices, got {value!r}")
    out = tuple(dict.fromkeys(value))
    kind = int if integer else (int, float)
    if not out or any(isinstance(v, bool) or not isinstance(v, kind) or not math.isfinite(v) or v <= 0 for v in out):
        what = "positive whole numbers" if integer else "positive finite numbers"
        raise ConfigError(f"{name} must be a non-empty list of {what}, got {list(value)!r}")
    return out


@dataclass(frozen=True, kw_only=True)
class AcceleratorSpace:
    """Accelerator dimensions Optuna searches besides rows, cols and dataflow (see the module docstring)."""

    ifmap_sram_kb: Sequence[int] | None = None
    filter_sram_kb: Sequence[int] | None = None
    ofmap_sram_kb: Sequence[int] | None = None
    dram_bw_words: Sequence[float] | None = None
    clock_hz: Sequence[float] | None = None
    pe_modes: Sequence[str] | None = None
    area_budget_mm2: float | None = None

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 - frozen dataclass
        for name in BUFFERS:
            set_(name, _choices(name, getattr(self, name), integer=True))
        set_("dram_bw_words", _choices("dram_bw_words", self.dram_bw_words, integer=False))
        set_("clock_hz", _choices("clock_hz (operating points)", self.clock_hz, integer=False))
        if self.pe_modes is not None:
            from uboost.hardware.precision import pe_mode

            modes = tuple(dict.fromkeys([self.pe_modes] if isinstance(self.pe_modes, str) else self.pe_modes))
            if not modes:
                raise ConfigError("pe_modes must name at least one PE mode")
            for mode in modes:
                pe_mode(mode)
            set_("pe_modes", modes)
        budget = self.area_budget_mm2
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float))
                                   or not math.isfinite(budget) or budget <= 0):
            raise ConfigError(f"area_budget_mm2 (--area-budget-mm2) must be a positive number of mm², got {budget!r}")

    @property
    def searched(self) -> list[str]:
        """Names of the searched dimensions (Optuna parameter names)."""
        names = [*BUFFERS, "dram_bw_words", "clock_hz"]
        found = [n for n in names if getattr(self, n) is not None]
        return found + (["pe"] if self.pe_modes is not None else [])

    def suggest(self, trial: "optuna.Trial") -> dict[str, Any]:
        """One accelerator point: ``{parameter: value}`` for the searched dimensions."""
        return {name: trial.suggest_categorical(name, list(choices)) for name, choices in self._choice_lists().items()}

    def distributions(self) -> dict[str, "optuna.distributions.BaseDistribution"]:
        from optuna.distributions import CategoricalDistribution

        return {name: CategoricalDistribution(list(choices)) for name, choices in self._choice_lists().items()}

    def _choice_lists(self) -> dict[str, tuple]:
        lists = {n: getattr(self, n) for n in (*BUFFERS, "dram_bw_words", "clock_hz")}
        lists["pe"] = self.pe_modes
        return {k: v for k, v in lists.items() if v is not None}

    def configure(self, config: "SearchConfig", point: dict[str, Any]) -> "SearchConfig":
        """``config`` with the accelerator ``point`` (from :meth:`suggest`) applied."""
        changes = point_fields(point)
        hardware = dict(config.hardware or {})
        hardware.update({name: changes.pop(name) for name in BUFFERS if name in changes})
        if "dram_bw_words" in changes:
            hardware.pop("dram_bw_gbps", None)  # the bandwidth is given once: the searched one
        if hardware != (config.hardware or {}):
            changes["hardware"] = hardware
        return config.replace(**changes) if changes else config

    @property
    def prices_area(self) -> bool:
        return self.area_budget_mm2 is not None

    def area_violation_mm2(self, area_mm2: float) -> float | None:
        """``area - budget`` (feasible when <= 0), or ``None`` without a budget."""
        return None if self.area_budget_mm2 is None else area_mm2 - self.area_budget_mm2

    def check(self, base: "SearchConfig", *, rows: Iterable[int], cols: Iterable[int], area: bool = False) -> None:
        """Refuse, before any trial, a space no trial could run: operating points outside the base's
        DVFS table, an area that cannot be priced (unbounded SRAM, a PE mode without an area), a budget
        below the smallest accelerator of the space. ``area``: the area is an objective."""
        if self.clock_hz is not None:
            from uboost.accelerator import points_table

            table = points_table(base.operating_points)
            if table is None:
                raise ConfigError("searching the operating point needs an operating-point table (--operating-points or the --hardware file's)")
            known = {p.freq_hz for p in table}
            missing = [f for f in self.clock_hz if not any(math.isclose(f, k, rel_tol=1e-9) for k in known)]
            if missing:
                raise ConfigError(f"operating point {missing[0] / 1e6:g} MHz is not in the table {table.name or ''} "
                                  f"({', '.join(f'{p.freq_hz / 1e6:g}' for p in table)} MHz)")
        if base.cost_model == "scalesim":
            self._check_whole_bandwidth(base)
        if not (area or self.prices_area):
            return
        for mode in self.pe_modes or (base.pe,):
            smallest = self.smallest(base, rows=rows, cols=cols, pe=mode)
            area_of(smallest)  # an unpriceable area (unbounded SRAM, a PE mode without a factor) is one ConfigError
        if self.area_budget_mm2 is not None:
            best = min(area_of(self.smallest(base, rows=rows, cols=cols, pe=m)) for m in self.pe_modes or (base.pe,))
            if best > self.area_budget_mm2:
                raise ConfigError(f"no accelerator of the space fits the area budget of {self.area_budget_mm2:g} mm²: "
                                  f"the smallest is {best:.4g} mm² ({base.area_table().name} area table)")

    def _check_whole_bandwidth(self, base: "SearchConfig") -> None:
        """SCALE-Sim takes whole DRAM words per cycle: a bandwidth in GB/s must give one at every searched clock
        (else trials fail one by one, mid-study), and searched words per cycle must be whole."""
        fractional = [w for w in self.dram_bw_words or () if float(w) != int(w)]
        if fractional:
            raise ConfigError(f"--cost-model scalesim needs whole DRAM words per cycle; --dram-bw-choices has {fractional[0]:g}")
        gbps = (base.hardware or {}).get("dram_bw_gbps")
        if gbps is None or self.dram_bw_words is not None:
            return
        from uboost.exceptions import HardwareError
        from uboost.hardware.scalesim_runner import whole_bandwidth

        buffers = {name: min(getattr(self, name)) for name in BUFFERS if getattr(self, name) is not None}
        for clock in self.clock_hz or ():
            spec = self.configure(base, {**buffers, "clock_hz": clock}).hardware_spec()  # sized as trials may be
            if not spec.memory_bound:  # SCALE-Sim's CALC mode takes no bandwidth (as `search` prices it)
                continue
            try:
                whole_bandwidth(spec)  # what the SCALE-Sim model checks per trial
            except HardwareError:
                raise ConfigError(f"--cost-model scalesim needs whole DRAM words per cycle: {gbps:g} GB/s is "
                                  f"{spec.dram_words_per_cycle:g} at the {clock / 1e6:g} MHz operating point; give a "
                                  "bandwidth whole at every searched point, or --dram-bw-words") from None

    def smallest(self, base: "SearchConfig", *, rows: Iterable[int], cols: Iterable[int], pe: str) -> "SearchConfig":
        """The accelerator of least area in the space (area grows with PEs and with each buffer)."""
        point: dict[str, Any] = {name: min(getattr(self, name)) for name in BUFFERS if getattr(self, name) is not None}
        point["pe"] = pe
        return self.configure(base.replace(array=f"{min(rows)}x{min(cols)}"), point)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: (list(v) if isinstance(v, tuple) else v) for f in dataclasses.fields(self) for v in [getattr(self, f.name)]}


def point_fields(point: dict[str, Any]) -> dict[str, Any]:
    """The fields an accelerator ``point`` sets, named as on both ``SearchConfig`` (its ``hardware``
    table for the buffers) and ``HardwareSpec``: buffers in kB, DRAM words per cycle, the clock
    (the voltage then follows the DVFS table: ``voltage_v=None``) and the PE mode."""
    fields: dict[str, Any] = {name: int(point[name]) for name in BUFFERS if name in point}
    if "dram_bw_words" in point:
        fields["dram_bw_words"] = float(point["dram_bw_words"])
    if "clock_hz" in point:
        fields.update(clock_hz=float(point["clock_hz"]), voltage_v=None)
    if "pe" in point:
        fields["pe"] = point["pe"]
    return fields


def area_of(config: "SearchConfig") -> float:
    """Silicon area (mm²) of ``config``'s accelerator on its area table (:func:`uboost.hardware.area.area_mm2`)."""
    from uboost.hardware.area import area_mm2

    return area_mm2(config.hardware_spec(), config.area_table())
