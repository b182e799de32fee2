"""Inner accelerator choice: each trial's network priced on every accelerator of the space within budget.

In a co-search (``uboost tune --area-budget-mm2``) NSGA-II samples the network's latency weight
and the accelerator together, so a good network is only ever seen on the accelerator it was drawn
with: over ~20,000 accelerators that search needs far more trials than a study can afford
(benchmarks/RESULTS.md, "Co-search under an area budget"). The accelerator is cheap to choose
once the network is known -- pricing it takes only the cost model -- so with
``inner_accelerator="exhaustive"`` each trial does that choice itself, as an inner loop:

1. the trial's network is searched and derived on the *sampled* accelerator (which shapes the
   search through the hardware loss: the sampler keeps searching it);
2. the derived network is priced on every accelerator of the trial's space -- rows x cols x
   dataflows x each buffer x DRAM bandwidth x operating points x PE modes, the dimensions the
   :class:`~uboost.tuning.space.TuneSpace` searches, the others as the trial has them -- whose
   area is within the budget (area is a linear formula: pruned first, before any pricing);
3. the trial reports the accelerator of least **hardware objective** -- EDP when the study
   optimizes both latency and energy or neither, else the one of them it optimizes -- priced
   again through the ordinary path (``build_cost_model(config).evaluate``); its configuration is
   the trial's ``config`` (so ``tune --export`` carries it), the sampled one stays as
   ``search_config``, and ``inner-accelerator.json`` in the trial's directory keeps both with the
   chosen accelerator's per-layer report.

**Cost.** Cycles and words moved depend on the array, dataflow, buffers, bandwidth and PE mode but
not on the clock or the voltage (for the models of :data:`~uboost.tuning.inner_pricing.CLOCK_FREE_MODELS`; a GB/s bandwidth
enters through its words per cycle), so they are priced once per accelerator *structure* and each
operating point only re-prices energy (a closed form). They are also memoized per layer shape in
this process (:class:`InnerPricer`), so later trials price only the layer shapes no earlier trial
had. And most structures are never priced at all: each gets a cheap lower bound -- the same
accelerator with unbounded buffers, priced once per (array, dataflow) -- and structures are priced
in the order of their bounds until the next bound exceeds the best value found, which is the same
choice as pricing every one (:data:`~uboost.tuning.inner_pricing.BOUNDED_MODELS`; other models price every structure). A space
of more than :data:`MAX_CANDIDATES` accelerators is refused up front. Measured on the benchmark
space (23,328 accelerators, 18,300 within a 0.138 mm² budget) on the shared 2-core machine: ~10 s
for the lenet reference network alone, a median 20-30 s per trial in the studies (load 6-9),
against ~130 s to price every accelerator once (benchmarks/RESULTS.md). The memo grows with the
distinct layer shapes of the study (one entry per shape and accelerator structure).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from uboost.exceptions import ConfigError
from uboost.tuning.accelerator_space import AREA_CONSTRAINT, point_fields
from uboost.tuning.inner_pricing import Candidate, NetworkPricing, pricer_for

if TYPE_CHECKING:
    from uboost.hardware.base import NetworkCost
    from uboost.hardware.spec import HardwareSpec
    from uboost.search_config import SearchConfig
    from uboost.tuning.space import TuneSpace

logger = logging.getLogger(__name__)

INNER_MODES = ("off", "exhaustive")
MAX_CANDIDATES = 200_000
"""Most accelerators (before the area cut) an exhaustive inner choice enumerates."""
INNER_FILE = "inner-accelerator.json"
HARDWARE_OBJECTIVES = {"edp": "edp_uj_ms", "latency": "latency_ms", "energy": "energy_uj"}


def check_inner(mode: str | None, *, area_budget: bool) -> str:
    """The inner-choice mode: ``"off"`` or ``"exhaustive"``; ``None`` picks ``"exhaustive"`` for a
    co-search under an area budget (measured: benchmarks/RESULTS.md) and ``"off"`` otherwise."""
    if mode is None:
        return "exhaustive" if area_budget else "off"
    if mode not in INNER_MODES:
        raise ConfigError(f"unknown inner accelerator choice {mode!r} (--inner-accelerator); expected one of: {', '.join(INNER_MODES)}")
    return mode


def hardware_objective(metric_names: Sequence[str]) -> str:
    """What the inner choice minimizes: ``"latency"`` or ``"energy"`` when the study optimizes only
    that one of them, else ``"edp"`` (both, or neither: accuracy and area)."""
    latency, energy = "latency_ms" in metric_names, "energy_uj" in metric_names
    if latency != energy:
        return "latency" if latency else "energy"
    return "edp"


def prices_area(metric_names: Sequence[str]) -> bool:
    """Whether the study optimizes area: then every candidate is priced with its area (``choose(area=...)``)."""
    return "area_mm2" in metric_names


def _dimensions(tune_space: "TuneSpace", config: "SearchConfig") -> list[tuple[str, tuple]]:
    """(name, choices) of every searched accelerator dimension; the others keep ``config``'s value."""
    dims = [("rows", tuple(tune_space.rows)), ("cols", tuple(tune_space.cols)),
            ("dataflow", tuple(tune_space.dataflows) if tune_space.dataflows is not None else (config.dataflow,))]
    if tune_space.accelerator is not None:
        dims += [(name, tuple(choices)) for name, choices in tune_space.accelerator._choice_lists().items()]
    return dims


def count_candidates(tune_space: "TuneSpace", config: "SearchConfig") -> int:
    return math.prod(len(choices) for _, choices in _dimensions(tune_space, config))


def check_space(tune_space: "TuneSpace", config: "SearchConfig") -> int:
    """Refuse, before any trial, a space too large to enumerate per trial; returns its size."""
    total = count_candidates(tune_space, config)
    if total > MAX_CANDIDATES:
        raise ConfigError(f"--inner-accelerator exhaustive would price {total:,} accelerators per trial (at most "
                          f"{MAX_CANDIDATES:,}); search fewer rows/cols/buffer choices or use --inner-accelerator off")
    return total


def _spec_at(base: "HardwareSpec", values: dict[str, Any]) -> "HardwareSpec":
    """``base`` with searched values applied, as :meth:`TuneSpace.apply` + ``hardware_spec()`` would
    (the same :func:`~uboost.tuning.accelerator_space.point_fields`, on the spec directly: fast)."""
    changes = {"rows": values["rows"], "cols": values["cols"], "dataflow": values["dataflow"], **point_fields(values)}
    if "dram_bw_words" in changes:
        changes["dram_bw_gbps"] = None
    return dataclasses.replace(base, **changes)


def _pool_key(tune_space: "TuneSpace", config: "SearchConfig", area: bool = False) -> tuple:
    """What decides :func:`candidates`: the space, the area table, whether areas are priced, and the trial's
    hardware with its searched values replaced by the space's first (every candidate overwrites them: trials
    that sampled different accelerators share their candidates)."""
    dims = _dimensions(tune_space, config)
    first = _spec_at(config.hardware_spec(), {name: choices[0] for name, choices in dims})
    return repr(tune_space), repr(first), repr(config.area_table()), area


def structures(tune_space: "TuneSpace", config: "SearchConfig", *, area: bool = False
               ) -> tuple[list[Candidate], int, list[list[Candidate]]]:
    """``(candidates within the budget, candidates in the space, the same grouped by accelerator structure)``,
    kept by the process's pricer for the next trial of the study (:meth:`InnerPricer.pool`)."""
    pricer = pricer_for(config.cost_model)
    return pricer.pool(_pool_key(tune_space, config, area), functools.partial(_structures, pricer, tune_space, config, area))


def _structures(pricer, tune_space: "TuneSpace", config: "SearchConfig", area: bool = False
                ) -> tuple[list[Candidate], int, list[list[Candidate]]]:
    """:func:`candidates` and the same grouped by accelerator structure (cycles and words priced once per group)."""
    pool, total = candidates(tune_space, config, area=area)
    groups: dict[tuple, list[Candidate]] = {}
    for cand in pool:
        groups.setdefault(pricer.structure_key(cand.spec), []).append(cand)
    return pool, total, list(groups.values())


def candidates(tune_space: "TuneSpace", config: "SearchConfig", *, area: bool = False) -> tuple[list[Candidate], int]:
    """Every accelerator of the space within the area budget (mm², and rows x cols PEs under ``--area-budget``;
    ``config``: the trial's configuration), and how many the space holds before the area cut. Each carries its
    area under an mm² budget or with ``area`` (area is an objective of the study: the trial reports the
    chosen accelerator's), else ``None``."""
    from uboost.hardware.area import area_mm2

    check_space(tune_space, config)
    dims = _dimensions(tune_space, config)
    names = [n for n, _ in dims]
    budget = tune_space.accelerator.area_budget_mm2 if tune_space.accelerator is not None else None
    base = config.hardware_spec()
    table = config.area_table() if budget is not None or area else None
    areas: dict[tuple, float] = {}
    found, total = [], 0
    for combo in itertools.product(*(choices for _, choices in dims)):
        total += 1
        values = dict(zip(names, combo))
        spec = _spec_at(base, values)
        if tune_space.area_violation(f"{spec.rows}x{spec.cols}") is not None:  # --area-budget: rows x cols PEs
            continue
        mm2 = None
        if table is not None:  # area: PEs, PE mode and buffer sizes only
            key = (spec.rows, spec.cols, spec.pe, spec.buffer_kb)
            if key not in areas:
                areas[key] = area_mm2(spec, table)
            mm2 = areas[key]
            if budget is not None and mm2 > budget:
                continue
        point = {k: v for k, v in values.items() if k not in ("rows", "cols", "dataflow")}
        found.append(Candidate(array=f"{spec.rows}x{spec.cols}", dataflow=spec.dataflow, point=point, spec=spec, area_mm2=mm2))
    return found, total


def report_attrs(report: "NetworkCost", config: "SearchConfig") -> dict[str, Any]:
    """A trial's user attributes for ``report``, its network priced on ``config``'s accelerator."""
    return {"latency_ms": report.latency_ms, "cycles": report.cycles, "utilization": report.utilization, "macs": report.macs,
            "energy_uj": report.energy_uj, "array": report.spec.array, "dataflow": report.spec.dataflow, "config": config.to_dict()}


@dataclass(frozen=True, kw_only=True)
class InnerChoice:
    """The accelerator an inner choice kept, its exact report, and what the choice cost."""

    config: "SearchConfig"
    report: "NetworkCost"
    area_mm2: float | None
    objective: str
    value: float
    candidates: int
    within_budget: int
    structures: int
    priced_structures: int
    priced_layers: int
    seconds: float

    def attrs(self) -> dict[str, Any]:
        """The trial's user attributes this choice sets (its numbers replace the searched accelerator's)."""
        out = report_attrs(self.report, self.config)
        out["inner_accelerator"] = {"objective": self.objective, "value": self.value, "candidates": self.candidates,
                                    "within_budget": self.within_budget, "structures": self.structures,
                                    "priced_structures": self.priced_structures, "priced_layers": self.priced_layers,
                                    "seconds": self.seconds}
        if self.area_mm2 is not None:
            out["area_mm2"] = self.area_mm2
        return out


def choose(shapes: Sequence, tune_space: "TuneSpace", config: "SearchConfig", *, objective: str = "edp",
           prune: bool = True, area: bool = False) -> InnerChoice:
    """The accelerator of ``tune_space`` within its area budget on which the network ``shapes``
    (:class:`~uboost.hardware.layers.LayerShape` list) has the least ``objective`` (edp, latency,
    energy); ties go to the smaller area (when areas are priced: an mm² budget, or ``area``, the
    study's area objective), then to the first enumerated. ``config``: the trial's.

    With ``prune`` (and a cost model of :data:`~uboost.tuning.inner_pricing.BOUNDED_MODELS`), accelerator structures are priced in
    the order of a cheap lower bound, and the enumeration stops at the first whose bound exceeds the
    best value found: the same choice as pricing them all."""
    import torch

    from uboost.hardware.precision import check_bits
    from uboost.search import build_cost_model

    if objective not in HARDWARE_OBJECTIVES:
        raise ConfigError(f"unknown hardware objective {objective!r}; expected one of: {', '.join(HARDWARE_OBJECTIVES)}")
    started = time.perf_counter()
    pricer = pricer_for(config.cost_model)
    pool, total, groups = structures(tune_space, config, area=area)
    if not pool:
        limits = [f"{tune_space.accelerator.area_budget_mm2:g} mm²"] if tune_space.accelerator.area_budget_mm2 is not None else []
        limits += [f"{tune_space.area_budget} PEs"] if tune_space.area_budget is not None else []
        raise ConfigError(f"no accelerator of the space fits the area budget of {' and '.join(limits) or '(none)'}")
    before = pricer.priced_layers
    shapes = list(shapes)
    network = NetworkPricing(shapes, pricer, objective)
    bits = [b for s in shapes for b in (s.weight_bits, s.act_bits)]
    order = []  # (bound, enumeration order, group)
    for index, group in enumerate(groups):
        try:
            check_bits(group[0].spec, bits)  # a PE mode that cannot run these bits is no candidate
            bound = network.group_bound(group) if prune and pricer.bounded else -math.inf
        except ConfigError as exc:
            logger.debug("inner choice: %s %s skipped: %s", group[0].array, group[0].dataflow, exc)
            continue
        order.append((bound, index, group))
    order.sort(key=lambda item: item[:2])
    best, priced = None, 0
    for bound, index, group in order:
        if best is not None and bound > best[0][0]:
            break  # every later structure is bounded above the best value
        try:
            values = network.exact(group)
        except ConfigError as exc:
            logger.debug("inner choice: %s %s skipped: %s", group[0].array, group[0].dataflow, exc)
            continue
        priced += 1
        for position, (cand, value) in enumerate(zip(group, values)):
            rank = (value, cand.area_mm2 or 0.0, index, position)
            if math.isfinite(value) and (best is None or rank < best[0]):
                best = (rank, cand)
    if best is None:
        raise ConfigError("no accelerator of the space can price this network (PE modes and bits)")
    cand = best[1]
    chosen = tune_space.apply(config, {"array": cand.array, "dataflow": cand.dataflow, "accelerator_point": cand.point}) \
        if tune_space.accelerator is not None else config.replace(array=cand.array, dataflow=cand.dataflow)
    with torch.no_grad():
        report = build_cost_model(chosen).evaluate(shapes)
    exact = {"latency": report.latency_ms, "energy": report.energy_uj, "edp": report.edp_uj_ms}[objective]
    if not math.isclose(exact, best[0][0], rel_tol=1e-6):  # the enumeration must price as the run directory does
        logger.warning("inner choice: %s priced %.6g in the enumeration, %.6g exactly", cand.array, best[0][0], exact)
    return InnerChoice(config=chosen, report=report, area_mm2=cand.area_mm2, objective=objective, value=exact,
                       candidates=total, within_budget=len(pool), structures=len(groups), priced_structures=priced,
                       priced_layers=pricer.priced_layers - before, seconds=time.perf_counter() - started)


def write_choice(run_dir: str | Path, choice: InnerChoice, search_config: "SearchConfig") -> Path:
    """``inner-accelerator.json`` in the trial's directory: the searched and the chosen accelerator, the chosen one's report."""
    from uboost.io import write_json

    path = Path(run_dir) / INNER_FILE
    write_json(path, {"search_config": search_config.to_dict(), "config": choice.config.to_dict(),
                      "hardware": choice.report.to_dict(), **choice.attrs()["inner_accelerator"]})
    return path


def shapes_from(rows: Iterable[dict]) -> list:
    """Layer shapes from their ``to_dict`` form (a trial child sends them to the parent)."""
    from uboost.hardware.layers import LayerShape

    return [LayerShape(**row) for row in rows]


def trial_attrs(layers: Iterable[dict], config: "SearchConfig", tune_space: "TuneSpace", metric_names: Sequence[str],
                run_dir: str | Path) -> dict[str, Any]:
    """A searched trial's user attributes after its inner choice: the chosen accelerator's numbers and
    configuration, the searched one's as ``search_*``; ``inner-accelerator.json`` is written in ``run_dir``."""
    choice = choose(shapes_from(layers), tune_space, config, objective=hardware_objective(metric_names),
                    area=prices_area(metric_names))
    write_choice(run_dir, choice, config)
    attrs = choice.attrs()
    attrs.update(search_config=config.to_dict(), search_array=config.array, search_dataflow=config.dataflow)
    over = tune_space.accelerator.area_violation_mm2(choice.area_mm2) if tune_space.accelerator is not None and choice.area_mm2 is not None else None
    if over is not None:
        attrs[AREA_CONSTRAINT] = over
    logger.info("inner choice: %s %s of %d accelerators within budget (%d structures priced of %d, %.1f s)",
                choice.report.spec.array, choice.report.spec.dataflow, choice.within_budget, choice.priced_structures,
                choice.structures, choice.seconds)
    return attrs


def prime(networks: Iterable[Sequence], tune_space: "TuneSpace", config: "SearchConfig", *, area: bool = False) -> int:
    """Price every distinct layer shape of ``networks`` (lists of layer shapes) on every accelerator structure of
    the space, and on its unbounded twin (the lower bound), one call per structure, into the process's pricer:
    the :func:`choose` calls that follow only read that memo. Pricing many networks at once this way is one
    vectorized call per structure instead of one per network and structure (lenet, 78 shapes on 5,298 structures:
    ~100 s, then ~0.4 s per network). The shapes primed (0: nothing new)."""
    from uboost.hardware.layers import LayerTable
    from uboost.tuning.cost_cache import row_keys
    from uboost.tuning.inner_pricing import unbounded

    shapes: dict = {}
    for network in networks:
        for shape in network:
            shapes.setdefault(dataclasses.replace(shape, name=""), shape)
    if not shapes:
        return 0
    table = LayerTable.from_shapes(list(shapes.values()))
    keys = row_keys(table)
    pricer = pricer_for(config.cost_model)
    _, _, groups = structures(tune_space, config, area=area)
    pricer.max_rows = max(pricer.max_rows, 2 * len(keys) * (len(groups) + 1))  # every row stays (0.3 kB each)
    for group in groups:
        pricer.price(group[0].spec, table, keys)
        if pricer.bounded:
            pricer.price(unbounded(group[0].spec), table, keys)
    return len(keys)
