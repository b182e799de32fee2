"""Pricing one network on many accelerators fast, for the inner accelerator choice (:mod:`.inner_accelerator`).

Cycles and words moved are priced once per accelerator *structure* (everything but the clock and
the voltage, for the models of :data:`CLOCK_FREE_MODELS`) and memoized per layer shape, up to
:data:`MEMO_ROWS` rows per process, least recently used structures dropped first (:class:`InnerPricer`); energy at each operating point is a closed form over
them (:func:`uboost.hardware.energy.energy_breakdown`). :meth:`NetworkPricing.lower_bound` prices
the same accelerator with unbounded buffers: a lower bound that lets the choice skip most
structures (:data:`BOUNDED_MODELS`).
"""

from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from uboost.hardware.base import CostModel
    from uboost.hardware.energy import NetworkEnergy
    from uboost.hardware.spec import HardwareSpec

CLOCK_FREE_MODELS = frozenset({"systolic", "systolic-paper", "systolic-mem", "flops", "lookup", "scalesim"})
"""Cost models whose cycles and words moved do not read the clock (``roofline`` does: priced per clock)."""
BOUNDED_MODELS = frozenset({"systolic", "systolic-paper", "systolic-mem", "flops"})
"""Cost models for which unbounded memory gives a lower bound: finite buffers only add cycles (stalls,
with non-negative fitted weights in ``systolic-mem``) and DRAM re-fetches, and leave the SRAM counts
and DRAM writes as they are (the others price memory not at all). Checked on every accelerator of the
lenet and darts-cifar benchmark spaces (bound / exact at most 0.86) and by the tests."""
MEMO_ROWS = 200_000
"""Layer rows an :class:`InnerPricer` keeps (~0.3 kB each): enough for every structure of the benchmark
spaces (~5,300) times the distinct layer shapes of a study's networks, and a bound for a process that
runs many studies."""
_ENERGY_FIELDS = ("energy", "operating_points")  # cycles and words never read them (HardwareSpec)
_CLOCK_FIELDS = ("clock_hz", "voltage_v")
_BUFFER_FIELDS = ("sram_kb", "ifmap_sram_kb", "filter_sram_kb", "ofmap_sram_kb")  # what unbounded() clears

@dataclass(frozen=True, kw_only=True)
class Candidate:
    """One accelerator of the space: its searched values (``array``, ``dataflow``, accelerator point), spec and area."""

    array: str
    dataflow: str
    point: dict
    spec: "HardwareSpec"
    area_mm2: float | None


class InnerPricer:
    """Cycles and words moved of layer tables on many accelerators, memoized per (accelerator
    structure, layer shape): at most ``max_rows`` rows, the least recently priced structures dropped
    first (see the module docstring)."""

    def __init__(self, cost_model: str, *, max_rows: int = MEMO_ROWS):
        self.cost_model = cost_model
        self.clock_free = cost_model in CLOCK_FREE_MODELS
        self.bounded = cost_model in BOUNDED_MODELS
        self.max_rows = max_rows
        self._memo: OrderedDict[tuple, tuple[tuple[str, ...], dict[str, tuple]]] = OrderedDict()  # structure -> (word names, rows)
        self._rows = 0
        self.priced_layers = 0
        self._pool: tuple | None = None  # (space and hardware, candidates): see pool()

    def pool(self, key, build):
        """``build()`` -- the candidates of a space and their structure groups -- kept for the next call with
        the same ``key`` (the space and what the trial's hardware leaves unsearched: the trials of a study
        differ in their network settings and sampled accelerator only), so the enumeration of ~20,000
        specs runs once per study, not once per network."""
        if self._pool is None or self._pool[0] != key:
            self._pool = (key, build())
        return self._pool[1]

    @property
    def memo_rows(self) -> int:
        """Layer rows held now (never above ``max_rows`` once a pricing returns)."""
        return self._rows

    def structure_key(self, spec: "HardwareSpec") -> tuple:
        skip = _ENERGY_FIELDS + (_CLOCK_FIELDS if self.clock_free else ())
        fields = tuple((f.name, getattr(spec, f.name)) for f in dataclasses.fields(spec) if f.name not in skip)
        return fields + (("dram_words_per_cycle", spec.dram_words_per_cycle),)

    def model(self, spec: "HardwareSpec") -> "CostModel":
        from uboost.hardware import create

        return create(self.cost_model, spec=spec)

    def price(self, spec: "HardwareSpec", table, keys: list[str]):
        """``(cycles, words)`` of every layer of ``table`` (``keys``: its row keys) on ``spec``, as tensors."""
        import torch

        from uboost.tuning.cost_cache import subset_table

        structure = self.structure_key(spec)
        names, rows = self._memo.pop(structure, ((), {}))
        missing = list({k: i for i, k in reversed(list(enumerate(keys))) if k not in rows}.values())  # one row per new shape
        if missing:
            sub = subset_table(table, missing)
            model = self.model(spec)
            cycles, accesses = model.cycles_and_accesses(sub)
            cycles = cycles.tolist()
            names = names or tuple(accesses)
            words = [accesses[n].tolist() for n in names]
            for j, i in enumerate(missing):
                rows[keys[i]] = (cycles[j], *(w[j] for w in words))
            self.priced_layers += len(missing)
            self._rows += len(missing)
        self._memo[structure] = (names, rows)  # most recently used last
        while self._rows > self.max_rows and len(self._memo) > 1:
            _, (_, dropped) = self._memo.popitem(last=False)
            self._rows -= len(dropped)
        values = torch.tensor([rows[k] for k in keys], dtype=torch.float64)
        return values[:, 0], {n: values[:, 1 + j] for j, n in enumerate(names)}


_PRICERS: dict[str, InnerPricer] = {}


def pricer_for(cost_model: str) -> InnerPricer:
    """The process's pricer for ``cost_model`` (its bounded memo is shared by every trial run here)."""
    return _PRICERS.setdefault(cost_model, InnerPricer(cost_model))


def objective_of(spec: "HardwareSpec", cycles, words, macs, table, objective: str) -> float:
    from uboost.hardware.energy import energy_breakdown

    latency_ms = float(cycles.sum()) * 1e3 / spec.clock_hz
    if objective == "latency":
        return latency_ms
    parts = energy_breakdown(spec, words, macs, cycles, w_bits=table.weight_bits, a_bits=table.act_bits)
    energy_uj = float(sum(p.sum() for p in parts.values())) * 1e-6
    return energy_uj if objective == "energy" else latency_ms * energy_uj


def unbounded(spec: "HardwareSpec") -> "HardwareSpec":
    return dataclasses.replace(spec, **dict.fromkeys(_BUFFER_FIELDS))


class NetworkPricing:
    """One network's layer table, its row keys and MACs, priced by ``pricer`` for one objective."""

    def __init__(self, shapes: Sequence, pricer: InnerPricer, objective: str):
        from uboost.hardware.layers import LayerTable
        from uboost.tuning.cost_cache import row_keys

        self.table = LayerTable.from_shapes(list(shapes))
        self.keys = row_keys(self.table)
        self.pricer, self.objective = pricer, objective
        self._macs: dict[int, Any] = {}
        self._bounds: dict[tuple, "NetworkEnergy"] = {}

    def _summed(self, spec: "HardwareSpec", cycles, words) -> "NetworkEnergy":
        from uboost.hardware.energy import NetworkEnergy

        return NetworkEnergy.summed(spec, cycles, words, self.macs(spec), w_bits=self.table.weight_bits,
                                    a_bits=self.table.act_bits)

    def macs(self, spec: "HardwareSpec"):
        if spec.batch_size not in self._macs:  # as CostModel.macs
            self._macs[spec.batch_size] = self.table.macs(spec.batch_size, None, None)
        return self._macs[spec.batch_size]

    def exact(self, group: list[Candidate]) -> list[float]:
        """The objective of every candidate of ``group`` (one accelerator structure, several clocks)."""
        values, priced, sums = [], None, {}
        for cand in group:
            if not self.pricer.clock_free:  # cycles read the clock (roofline): priced per candidate
                priced = self.pricer.price(cand.spec, self.table, self.keys)
                values.append(objective_of(cand.spec, *priced, self.macs(cand.spec), self.table, self.objective))
                continue
            key = id(cand.spec.energy)  # the group shares cycles and words; the sums' MAC energy reads the table
            if key not in sums:
                priced = priced or self.pricer.price(cand.spec, self.table, self.keys)
                sums[key] = self._summed(cand.spec, *priced)
            values.append(_objective(sums[key], cand.spec, self.objective))
        return values

    def lower_bound(self, cand: Candidate) -> float:
        """A lower bound of :meth:`exact`: the same accelerator with unbounded buffers, whose cycles are
        compute only (finite buffers only add stalls) and whose DRAM reads bring each word once
        (finite buffers only add re-fetches); the SRAM counts and DRAM writes do not depend on the
        buffers, and energy is priced at the real buffer sizes (see :data:`BOUNDED_MODELS`).

        The unbounded accelerator is priced once per (array, dataflow, ...) and its layers summed once
        (:class:`~uboost.hardware.energy.NetworkEnergy`); each candidate then costs a closed form of its buffer sizes and operating
        point -- :func:`~uboost.hardware.energy.energy_breakdown` summed over the layers, in another
        order, so the bound is lowered by a relative 1e-9 to stay below the exact value."""
        return self.group_bound([cand])

    def group_bound(self, group: list[Candidate]) -> float:
        """The least :meth:`lower_bound` of ``group`` (one accelerator structure: its candidates differ in the
        operating point only)."""
        structure = tuple(item for item in self.pricer.structure_key(group[0].spec) if item[0] not in _BUFFER_FIELDS)
        best = math.inf
        for cand in group:
            key = (structure, id(cand.spec.energy))  # the MAC energy of the sums reads the energy table
            sums = self._bounds.get(key)
            if sums is None:
                cycles, words = self.pricer.price(unbounded(cand.spec), self.table, self.keys)
                sums = self._bounds[key] = self._summed(cand.spec, cycles, words)
            best = min(best, _objective(sums, cand.spec, self.objective))
        return best * (1 - 1e-9)


def _objective(sums: "NetworkEnergy", spec: "HardwareSpec", objective: str) -> float:
    """:func:`objective_of` from a network's summed layers (cycles and words of ``spec``'s structure)."""
    latency_ms = sums.cycles * 1e3 / spec.clock_hz
    if objective == "latency":
        return latency_ms
    energy_uj = sums.energy_uj(spec)
    return energy_uj if objective == "energy" else latency_ms * energy_uj
