"""The cost-model interface and the per-network report."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from uboost.exceptions import ConfigError
from uboost.hardware.layers import LayerShape, LayerTable, extract_layers
from uboost.hardware.smooth import smooth_ceil
from uboost.hardware.spec import HardwareSpec


@dataclass(frozen=True)
class Ceil:
    """The ceiling a formula uses for channel-dependent tile counts: exact, or smooth at ``temperature``."""

    temperature: float | None = None

    def __call__(self, numerator: torch.Tensor, divisor: int) -> torch.Tensor:
        x = numerator / divisor
        if self.temperature is None:
            return torch.ceil(x)
        # steps half a channel above each full tile: exact at integer channel counts as T grows
        return smooth_ceil(x, self.temperature, offset=0.5 / divisor)


EXACT = Ceil()


@dataclass(frozen=True)
class LayerCost:
    layer: LayerShape
    cycles: float
    macs: float
    utilization: float
    latency_ms: float
    words: dict[str, float] = field(default_factory=dict)  # uboost.hardware.access.ACCESS_KEYS -> words
    energy_uj: dict[str, float] = field(default_factory=dict)  # mac, sram, dram, leakage -> uJ
    effective_macs: float | None = None  # MACs in units of the PE's full rate (precision.py); None: macs

    @property
    def total_energy_uj(self) -> float:
        return float(sum(self.energy_uj.values()))


@dataclass(frozen=True)
class NetworkCost:
    """Per-layer and total cost of a network on one accelerator: cycles, words moved and energy."""

    model: str
    spec: HardwareSpec
    layers: tuple[LayerCost, ...]

    @property
    def cycles(self) -> float:
        return float(sum(l.cycles for l in self.layers))

    @property
    def macs(self) -> float:
        return float(sum(l.macs for l in self.layers))

    @property
    def latency_ms(self) -> float:
        return self.cycles / self.spec.clock_hz * 1e3

    @property
    def utilization(self) -> float:
        """Total effective MACs over the MACs the array could do in the total cycles (not a mean of
        ratios); effective MACs count a PE's full rate at the layer's bits (:mod:`uboost.hardware.precision`)."""
        work = float(sum(l.macs if l.effective_macs is None else l.effective_macs for l in self.layers))
        return work / (self.spec.pes * self.cycles) if self.cycles > 0 else 0.0

    @property
    def words(self) -> dict[str, float]:
        """Words moved per memory level and operand, summed over the layers."""
        keys = self.layers[0].words if self.layers else {}
        return {k: float(sum(l.words[k] for l in self.layers)) for k in keys}

    @property
    def energy_breakdown_uj(self) -> dict[str, float]:
        """Energy in uJ per part (``mac``, ``sram``, ``dram``, ``leakage``), summed over the layers."""
        keys = self.layers[0].energy_uj if self.layers else {}
        return {k: float(sum(l.energy_uj[k] for l in self.layers)) for k in keys}

    @property
    def energy_uj(self) -> float:
        return float(sum(l.total_energy_uj for l in self.layers))

    @property
    def edp_uj_ms(self) -> float:
        """Energy-delay product: energy (uJ) x latency (ms)."""
        return self.energy_uj * self.latency_ms

    @property
    def power_mw(self) -> float:
        """Average power over the inference, energy / latency (uJ / ms = mW); 0 for an empty network."""
        return self.energy_uj / self.latency_ms if self.latency_ms > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "cost_model": self.model,
            "hardware": self.spec.to_dict(),
            "total": {
                "cycles": self.cycles,
                "latency_ms": self.latency_ms,
                "macs": self.macs,
                "utilization": self.utilization,
                "layers": len(self.layers),
                "words": self.words,
                "energy_uj": self.energy_uj,
                "energy_breakdown_uj": self.energy_breakdown_uj,
                "edp_uj_ms": self.edp_uj_ms,
                "power_mw": self.power_mw,
                "voltage_v": self.spec.voltage,
            },
            "layers": [
                {
                    **l.layer.to_dict(),
                    "cycles": l.cycles,
                    "macs": l.macs,
                    "utilization": l.utilization,
                    "latency_ms": l.latency_ms,
                    "words": l.words,
                    "energy_uj": {**l.energy_uj, "total": l.total_energy_uj},
                }
                for l in self.layers
            ],
        }


_TABLE_METHODS = ("cycles", "macs", "effective_macs", "cycles_and_accesses", "accesses", "energy_breakdown_pj", "energy_pj")


def _taking_shapes(method):
    """``method(self, layers, ...)`` that also takes a sequence of :class:`LayerShape` (made a :class:`LayerTable`, as
    :meth:`CostModel.evaluate` does); a :class:`LayerTable` passes unchanged (one ``isinstance`` per call)."""
    import functools

    if getattr(method, "_takes_shapes", False):
        return method

    @functools.wraps(method)
    def priced(self, layers, *args, **kwargs):
        if not isinstance(layers, LayerTable):
            layers = _as_table(layers)
        return method(self, layers, *args, **kwargs)

    priced._takes_shapes = True
    return priced


def _shapes(layers) -> list[LayerShape] | None:
    """``layers`` as a list when it is one :class:`LayerShape` or a sequence of them, else ``None``."""
    if isinstance(layers, LayerShape):
        return [layers]
    if isinstance(layers, Sequence) and not isinstance(layers, str) and all(isinstance(s, LayerShape) for s in layers):
        return list(layers)
    return None


def _as_table(layers) -> LayerTable:
    shapes = _shapes(layers)
    if not shapes:
        raise ConfigError(f"layers must be a LayerTable or a non-empty sequence of LayerShape, got {type(layers).__name__}")
    return LayerTable.from_shapes(shapes)


class CostModel(abc.ABC):
    """Prices layers on a :class:`HardwareSpec`.

    Subclasses implement one batched method, :meth:`cycles`, over a :class:`LayerTable`
    (one tensor expression, no Python loop over layers, no host sync) and may take soft
    (expected, real-valued) channel counts. With ``temperature`` set, every channel-dependent
    ``ceil`` becomes the smooth ceiling; otherwise the model is exact.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    prices_memory: ClassVar[bool] = False  # does the model read the SRAM sizes and DRAM bandwidth? (stalls, traffic)
    pe_modes: ClassVar[tuple[str, ...] | None] = None  # PE modes the model prices (None: all of uboost.hardware.precision)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in _TABLE_METHODS:  # a model's own pricing methods take a list of LayerShape too
            method = cls.__dict__.get(name)
            if method is not None:
                setattr(cls, name, _taking_shapes(method))

    def memory_note(self) -> str | None:
        """A one-line note when the spec bounds memory but this model prices compute only (its
        cycles then ignore the SRAM sizes and the bandwidth: say so rather than look exact)."""
        if self.spec.memory_bound and not self.prices_memory:
            return (f"{self.name} prices compute only: the {self.spec.memory_text} memory limits change no cycle count "
                    "(use --cost-model systolic-mem or scalesim for stalls)")
        return None

    def layers_note(self, layers) -> str | None:
        """A one-line note on layers of ``layers`` (:class:`LayerShape` s) this model prices less
        faithfully than the rest (``None``: none)."""
        return None

    def __init__(self, spec: HardwareSpec | None = None, **spec_fields: Any):
        if spec is not None and spec_fields:
            raise ConfigError("pass either a HardwareSpec or its fields, not both")
        if spec is None:
            import dataclasses

            known = {f.name for f in dataclasses.fields(HardwareSpec)}
            unknown = sorted(set(spec_fields) - known)
            if unknown:
                raise ConfigError(f"unknown hardware field(s) {', '.join(unknown)}; expected: {', '.join(sorted(known))}")
        if spec is not None and not isinstance(spec, HardwareSpec):
            raise ConfigError(f"spec must be a HardwareSpec, got {type(spec).__name__}"
                              + (": pass its fields as keywords (**spec) or HardwareSpec(**spec)" if isinstance(spec, dict) else ""))
        self.spec = spec if spec is not None else HardwareSpec(**spec_fields)
        if self.pe_modes is not None and self.spec.pe not in self.pe_modes:
            raise ConfigError(f"cost model {self.name!r} prices only {', '.join(self.pe_modes)} PEs, got pe={self.spec.pe!r}")

    def with_spec(self, spec: HardwareSpec) -> "CostModel":
        """This model on ``spec`` (e.g. another operating point): a copy whose state taken from the spec when it was
        built (a lookup table's rows, a closed form's spec) is taken again from ``spec`` (:meth:`_respec`)."""
        import copy

        model = copy.copy(self)
        model.spec = spec
        model._respec()
        return model

    def _respec(self) -> None:
        """Recompute what ``__init__`` derived from ``self.spec`` (a model reading the spec at every call: nothing)."""

    def identity(self) -> dict[str, Any]:
        """What, besides its class and spec, decides this model's numbers (a lookup table's rows): part of the key
        under which a cache keeps them (``uboost.tuning.cost_cache``). Nothing for a model of the spec alone."""
        return {}

    def __repr__(self) -> str:
        s = self.spec
        memory = f", {s.memory_text}" if s.memory_bound else ""
        return f"{type(self).__name__}(rows={s.rows}, cols={s.cols}, dataflow={s.dataflow!r}, batch_size={s.batch_size}{memory})"

    # -- the one method a model must provide -------------------------------------------------
    @abc.abstractmethod
    def cycles(
        self,
        layers: LayerTable,
        *,
        in_channels: torch.Tensor | None = None,
        out_channels: torch.Tensor | None = None,
        temperature: float | None = None,
    ) -> torch.Tensor:
        """Cycles of every layer, a tensor of shape ``(len(layers),)``."""

    # -- derived -----------------------------------------------------------------------------
    def macs(
        self, layers: LayerTable, *, in_channels: torch.Tensor | None = None, out_channels: torch.Tensor | None = None
    ) -> torch.Tensor:
        return layers.macs(self.spec.batch_size, in_channels, out_channels)

    def effective_macs(
        self, layers: LayerTable, *, in_channels: torch.Tensor | None = None, out_channels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """MACs in units of one PE's full rate at each layer's bits: ``macs * slowdown / perf``
        (:mod:`uboost.hardware.precision`; equal to :meth:`macs` on ``fixed`` PEs). Utilization
        counts these over the array's PEs."""
        from uboost.hardware.precision import perf_and_slowdown

        perf, slowdown = perf_and_slowdown(self.spec, layers.weight_bits, layers.act_bits)
        return self.macs(layers, in_channels=in_channels, out_channels=out_channels) * slowdown / perf

    def utilization(self, cycles: torch.Tensor, macs: torch.Tensor) -> torch.Tensor:
        """Utilization of a set of layers priced together: total (effective) MACs / (PEs * total cycles)."""
        return macs.sum() / (self.spec.pes * cycles.sum()).clamp_min(1e-12)

    def latency_ms(self, cycles: torch.Tensor) -> torch.Tensor:
        return cycles * (1e3 / self.spec.clock_hz)

    def cycles_and_accesses(self, layers: LayerTable) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """:meth:`cycles` and :meth:`accesses` of ``layers``, no gradient (a model may share work between them)."""
        with torch.no_grad():
            return self.cycles(layers), self.accesses(layers)

    def accesses(
        self, layers: LayerTable, *, in_channels=None, out_channels=None, temperature: float | None = None
    ) -> dict[str, torch.Tensor]:
        """Words every layer moves per memory level (:func:`uboost.hardware.access.access_counts`)."""
        from uboost.hardware.access import access_counts  # access.py builds on this module's Ceil

        return access_counts(self.spec, layers, in_channels=in_channels, out_channels=out_channels, temperature=temperature)

    def energy_breakdown_pj(
        self,
        layers: LayerTable,
        *,
        in_channels: torch.Tensor | None = None,
        out_channels: torch.Tensor | None = None,
        temperature: float | None = None,
        w_bits: torch.Tensor | float | None = None,
        a_bits: torch.Tensor | float | None = None,
    ) -> dict[str, torch.Tensor]:
        """Energy of every layer in pJ, keyed ``mac``, ``sram``, ``dram``, ``leakage``
        (:func:`uboost.hardware.energy.energy_breakdown`; leakage over this model's cycles at ``clock_hz``).
        Bits: ``w_bits``/``a_bits``, else the layers' own ``weight_bits``/``act_bits`` (default 8)."""
        from uboost.hardware.energy import energy_breakdown

        channels = dict(in_channels=in_channels, out_channels=out_channels)
        if in_channels is None and out_channels is None and temperature is None:  # constants: priced at once
            cycles, words = self.cycles_and_accesses(layers)
        else:
            cycles, words = self.cycles(layers, **channels, temperature=temperature), \
                self.accesses(layers, **channels, temperature=temperature)
        return energy_breakdown(
            self.spec,
            words,
            self.macs(layers, **channels),
            cycles,
            w_bits=w_bits if w_bits is not None else layers.weight_bits,
            a_bits=a_bits if a_bits is not None else layers.act_bits,
        )

    def energy_pj(
        self,
        layers: LayerTable,
        *,
        in_channels: torch.Tensor | None = None,
        out_channels: torch.Tensor | None = None,
        temperature: float | None = None,
        w_bits: torch.Tensor | float | None = None,
        a_bits: torch.Tensor | float | None = None,
    ) -> torch.Tensor:
        """Total energy of every layer in pJ, a ``(len(layers),)`` tensor (the sum of :meth:`energy_breakdown_pj`)."""
        parts = self.energy_breakdown_pj(
            layers, in_channels=in_channels, out_channels=out_channels, temperature=temperature, w_bits=w_bits, a_bits=a_bits
        )
        return parts["mac"] + parts["sram"] + parts["dram"] + parts["leakage"]

    def evaluate(self, network: nn.Module | Sequence[LayerShape], input_shape: Sequence[int] | None = None) -> NetworkCost:
        """Exact per-layer report for a module (traced at ``input_shape``) or a list of layer shapes."""
        if isinstance(network, nn.Module):
            if input_shape is None:
                raise ConfigError("input_shape (C, H, W) is needed to trace a module")
            shapes = extract_layers(network, input_shape)
        elif (shapes := _shapes(network)) is None:
            hint = (f": build it first, e.g. uboost.networks.load_network({network!r}).module" if isinstance(network, str)
                    else "")
            raise ConfigError(f"evaluate takes a torch module or a sequence of LayerShape, got {type(network).__name__}{hint}")
        if not shapes:
            return NetworkCost(self.name, self.spec, ())
        from uboost.hardware.energy import energy_breakdown
        from uboost.hardware.precision import check_bits

        check_bits(self.spec, [b for s in shapes for b in (s.weight_bits, s.act_bits)])
        table = LayerTable.from_shapes(shapes)
        with torch.no_grad():
            (cycles_t, words_t), macs_t = self.cycles_and_accesses(table), self.macs(table)
            parts_t = energy_breakdown(self.spec, words_t, macs_t, cycles_t, w_bits=table.weight_bits, a_bits=table.act_bits)
            cycles, macs = cycles_t.tolist(), macs_t.tolist()
            work = self.effective_macs(table).tolist()
            words = {k: v.tolist() for k, v in words_t.items()}
            energy = {k: (v * 1e-6).tolist() for k, v in parts_t.items()}  # pJ -> uJ
        rows = tuple(
            LayerCost(
                layer=s,
                cycles=c,
                macs=m,
                utilization=work[i] / (self.spec.pes * c) if c > 0 else 0.0,
                latency_ms=c / self.spec.clock_hz * 1e3,
                words={k: v[i] for k, v in words.items()},
                energy_uj={k: v[i] for k, v in energy.items()},
                effective_macs=work[i],
            )
            for i, (s, c, m) in enumerate(zip(shapes, cycles, macs))
        )
        return NetworkCost(self.name, self.spec, rows)

    @classmethod
    def example(cls, spec: HardwareSpec) -> "CostModel":
        """An instance for generic tests (override when the model needs more than a spec)."""
        return cls(spec)


for _name in _TABLE_METHODS:  # the base class's own (subclasses get theirs in CostModel.__init_subclass__)
    if _name in CostModel.__dict__ and not getattr(CostModel.__dict__[_name], "__isabstractmethod__", False):
        setattr(CostModel, _name, _taking_shapes(CostModel.__dict__[_name]))
del _name
