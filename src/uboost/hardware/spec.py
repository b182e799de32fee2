"""The accelerator a network is priced on."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from typing import Any

from uboost.exceptions import ConfigError

DATAFLOWS = ("ws", "os", "is")
"""Weight-, output- and input-stationary systolic dataflows."""

SRAM_FIELDS = ("sram_kb", "ifmap_sram_kb", "filter_sram_kb", "ofmap_sram_kb")


MAX_ARRAY_SIDE = 65536
"""Largest array side (rows or cols) a spec accepts; real arrays are 8 to 256."""


@dataclass(frozen=True, kw_only=True)
class HardwareSpec:
    """A systolic array of ``rows`` x ``cols`` processing elements and its memory system.

    ``rows`` holds the reduction dimension (im2col K) in weight-stationary mode and ``cols``
    the filters, as in SCALE-Sim. ``batch_size`` is the inference batch being priced,
    ``bits`` a default operand width for direct energy-table calls (the cost models price each layer at its own
    ``weight_bits`` and ``act_bits``, which come with its shape), ``mem_bw_gbps`` the off-chip
    bandwidth in GB/s (used by the roofline model when the spec has no DRAM bandwidth below).

    **On-chip memory**, in SCALE-Sim's terms (one word = one byte): ``sram_kb`` is the size of
    *each* of the three double-buffered SRAMs (ifmap, filter, ofmap) in kB; ``ifmap_sram_kb``,
    ``filter_sram_kb`` and ``ofmap_sram_kb`` override one buffer. ``dram_bw_words`` is the DRAM
    bandwidth in words per cycle per port. ``None`` means unbounded, and a spec is
    :attr:`memory_bound` only when it has a bandwidth and at least one sized buffer; otherwise
    reads never stall and every model prices compute only (SCALE-Sim's ``CALC`` mode: today's
    numbers, unchanged). ``dram_bw_gbps`` gives the bandwidth in GB/s instead (not both): it is
    ``dram_bw_gbps * 1e9 / clock_hz`` words (bytes) per cycle (:attr:`dram_words_per_cycle`), so a
    faster clock gets fewer words per cycle and stalls more. (Not divided by ``bits``: the memory
    models already count a ``b``-bit operand as ``b / 8`` words.)

    **Energy and operating point** (:mod:`uboost.hardware.energy`, :mod:`uboost.hardware.operating`):
    ``energy`` is an energy-table preset name, a TOML file or an ``EnergyTable`` (stored as the
    table); ``operating_points`` an optional DVFS table (preset name, TOML file or
    ``OperatingPoints``); ``voltage_v`` the supply. Unset, the voltage is the table point's that
    runs ``clock_hz`` (:meth:`OperatingPoints.voltage_at`), or without a table the energy table's
    ``v_ref``. Cycles and latency do not depend on them.

    **Precision** (:mod:`uboost.hardware.precision`): ``pe`` is the processing element's mode,
    ``fixed`` (bit-parallel, compute independent of the layers' bits), ``bitfusion`` (fusible
    2-bit bricks: narrow layers do several MACs per PE per cycle) or ``bit-serial`` (cycles scale
    with the activation bits, ``serial_bits`` of them per cycle). The layers' own weight and
    activation bits come with their shapes (default 8).
    """

    rows: int = 128
    cols: int = 128
    dataflow: str = "ws"
    clock_hz: float = 1.0e9
    batch_size: int = 1
    bits: int = 8
    mem_bw_gbps: float = 100.0
    sram_kb: int | None = None
    ifmap_sram_kb: int | None = None
    filter_sram_kb: int | None = None
    ofmap_sram_kb: int | None = None
    dram_bw_words: float | None = None
    dram_bw_gbps: float | None = None
    voltage_v: float | None = None
    energy: Any = "horowitz45"
    operating_points: Any = None
    pe: str = "fixed"
    serial_bits: int = 1

    def __post_init__(self) -> None:
        for field in ("rows", "cols", "batch_size", "bits"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{field} must be a positive integer, got {value!r}")
        for field in ("rows", "cols"):  # beyond, PE counts overflow the cost tensors (float32, int64 products)
            if getattr(self, field) > MAX_ARRAY_SIDE:
                raise ConfigError(f"array {field} must be at most {MAX_ARRAY_SIDE} processing elements, got {getattr(self, field)}")
        if self.dataflow not in DATAFLOWS:
            raise ConfigError(f"unknown dataflow {self.dataflow!r}; expected one of: {', '.join(DATAFLOWS)}")
        for field in ("clock_hz", "mem_bw_gbps"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{field} must be a positive finite number, got {value!r}")
        for field in SRAM_FIELDS:
            value = getattr(self, field)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"{field} must be a positive whole number of kB (or unset for unbounded), got {value!r}")
        for field, unit in (("dram_bw_words", "words per cycle"), ("dram_bw_gbps", "GB/s"), ("voltage_v", "volts")):
            value = getattr(self, field)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0
            ):
                raise ConfigError(f"{field} must be a positive finite number of {unit} (or unset), got {value!r}")
        from uboost.hardware.energy import resolve_energy
        from uboost.hardware.operating import VOLTAGE_RANGE_V, load_operating_points, voltage_out_of_range

        if self.voltage_v is not None and voltage_out_of_range(self.voltage_v):
            raise ConfigError(f"voltage_v must be between {VOLTAGE_RANGE_V[0]:g} and {VOLTAGE_RANGE_V[1]:g} volts, "
                              f"got {self.voltage_v!r}; did you give mV?")
        if self.dram_bw_words is not None and self.dram_bw_gbps is not None:
            raise ConfigError("give the DRAM bandwidth once: dram_bw_words (per cycle) or dram_bw_gbps, not both")
        object.__setattr__(self, "energy", resolve_energy(self.energy))
        if self.operating_points is not None:
            object.__setattr__(self, "operating_points", load_operating_points(self.operating_points))
            if self.voltage_v is None:  # the clock must be in the table's range
                fastest = self.operating_points.points[-1].freq_hz
                if self.clock_hz > fastest * (1 + 1e-12):
                    raise ConfigError(f"clock {self.clock_hz / 1e6:g} MHz is above the fastest operating point "
                                      f"({self.operating_points.points[-1].label}) of {self.operating_points.name or 'the table'}; "
                                      f"give clock_hz (at most {fastest:g}) with a DVFS table")
        from uboost.hardware.precision import pe_mode  # precision: the PE mode and its bits per cycle

        pe_mode(self.pe)
        if isinstance(self.serial_bits, bool) or not isinstance(self.serial_bits, int) or not 1 <= self.serial_bits <= 32:
            raise ConfigError(f"serial_bits must be a whole number of bits per cycle from 1 to 32, got {self.serial_bits!r}")

    @property
    def energy_table(self):
        """The :class:`~uboost.hardware.energy.EnergyTable` energy is priced with."""
        return self.energy

    @property
    def voltage(self) -> float:
        """Supply voltage: ``voltage_v``, else the operating point's at ``clock_hz``, else the table's ``v_ref``."""
        if self.voltage_v is not None:
            return float(self.voltage_v)
        if self.operating_points is not None:
            return self.operating_points.voltage_at(self.clock_hz)
        return self.energy.v_ref

    @property
    def dram_words_per_cycle(self) -> float | None:
        """DRAM bandwidth per port in words per array cycle (``None``: unbounded)."""
        if self.dram_bw_gbps is not None:
            return self.dram_bw_gbps * 1e9 / self.clock_hz
        return None if self.dram_bw_words is None else float(self.dram_bw_words)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (the energy table as its fields, the DVFS table as [f, V] pairs) plus the voltage and the
        DRAM words per cycle it resolves to (from ``dram_bw_gbps`` at the clock, where the bandwidth is in GB/s)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["energy"] = self.energy.to_dict()
        out["operating_points"] = None if self.operating_points is None else self.operating_points.to_list()
        out["voltage"] = self.voltage
        out["dram_words_per_cycle"] = self.dram_words_per_cycle
        return out

    @property
    def buffer_kb(self) -> tuple[int | None, int | None, int | None]:
        """Sizes of the (ifmap, filter, ofmap) SRAMs in kB; ``None`` = unbounded."""
        return tuple(  # type: ignore[return-value]
            getattr(self, f"{b}_sram_kb") if getattr(self, f"{b}_sram_kb") is not None else self.sram_kb
            for b in ("ifmap", "filter", "ofmap")
        )

    @property
    def memory_bound(self) -> bool:
        """True when DRAM bandwidth and at least one SRAM size are finite (reads can stall)."""
        return self.dram_words_per_cycle is not None and any(kb is not None for kb in self.buffer_kb)

    @property
    def memory_text(self) -> str:
        """``"64 kB SRAM, 10 words/cycle"`` for tables and logs; ``"unbounded memory"`` when neither is
        set, and the one that is when the other is not (no stalls then, but SRAM sizes still price
        energy and area)."""
        sizes = {kb for kb in self.buffer_kb}
        sram = f"{sizes.pop()} kB" if len(sizes) == 1 else "/".join("-" if kb is None else str(kb) for kb in self.buffer_kb) + " kB"
        if not self.memory_bound:
            if any(kb is not None for kb in self.buffer_kb):
                return f"{sram} SRAM, unbounded DRAM bandwidth (no stalls)"
            if self.dram_words_per_cycle is not None:
                bandwidth = f"{self.dram_bw_gbps:g} GB/s" if self.dram_bw_gbps is not None else f"{self.dram_bw_words:g} words/cycle"
                return f"unbounded SRAM, {bandwidth} (no stalls)"
            return "unbounded memory"
        if self.dram_bw_gbps is not None:
            return f"{sram} SRAM, {self.dram_bw_gbps:g} GB/s"
        return f"{sram} SRAM, {self.dram_bw_words:g} words/cycle"

    @property
    def pes(self) -> int:
        """Number of processing elements (rows * cols)."""
        return self.rows * self.cols

    @property
    def array(self) -> str:
        return f"{self.rows}x{self.cols}"


_ARRAY = re.compile(r"^\s*(\d+)\s*[xX*]\s*(\d+)\s*$")


def parse_array(text: str) -> tuple[int, int]:
    """Parse ``"128x64"`` (rows x cols) into ``(128, 64)``; bad text raises :class:`ConfigError`."""
    match = _ARRAY.match(str(text))
    if not match:
        raise ConfigError(f"array must look like ROWSxCOLS (e.g. 128x128), got {text!r}")
    rows, cols = int(match.group(1)), int(match.group(2))
    if rows < 1 or cols < 1:
        raise ConfigError(f"array dimensions must be positive, got {text!r}")
    return rows, cols
