"""Energy per action (pJ) and the energy of a layer built from its access counts.

**API.** An :class:`EnergyTable` (frozen, keyword-only) holds pJ per action at a reference voltage
``v_ref``: a MAC at the operand bits (:meth:`EnergyTable.mac_pj`, multiplier ``~ b_w * b_a`` plus
an accumulator adder ``~ acc_bits``; tensors of per-layer bits work), SRAM reads and writes per
bit growing with the buffer size (:meth:`EnergyTable.sram_read_pj_per_bit`), DRAM per bit, a
PE-to-PE move per bit, and leakage power per PE and per kB of SRAM. :data:`PRESETS` holds the
published tables by name (``horowitz45``, ``eyeriss65``, ``gemmini16``); :func:`resolve_energy`
turns a preset name, a TOML file or a table into a table, and :func:`load_energy_toml` reads a
user's own file (every field, or ``base = "<preset>"`` plus the fields to change; missing,
unknown, negative or NaN values are a :class:`ConfigError`). A :class:`HardwareSpec` carries one
(``energy=``, default ``horowitz45``) with ``voltage_v`` and ``clock_hz``; every cost model then
answers ``model.energy_pj(layers, in_channels=..., out_channels=..., temperature=...)`` (a
``(n_layers,)`` tensor) and ``model.energy_breakdown_pj(...)`` (a dict of such tensors keyed
``mac``, ``sram``, ``dram``, ``leakage``), computed by :func:`energy_breakdown` from the words of
:func:`uboost.hardware.access.access_counts`, the MACs and the model's own cycles. They are
tensor expressions in the soft channel counts, differentiable in the ``expected`` and ``smooth``
cost modes as the cycles are.

**What is counted.** ``mac``: every MAC, plus the two words each MAC forwards to a neighbour PE
(WS: the activation and the partial sum; OS: the activation and the weight; IS: the weight and
the partial sum), at the PE-to-PE cost. ``sram``: the array's reads and writes of the ifmap,
filter and ofmap buffers, plus the writes that fill them from DRAM and the reads that drain the
ofmap to DRAM, each at its buffer's size (an unbounded buffer is priced at ``sram_ref_kb``).
``dram``: the DRAM words of :mod:`uboost.hardware.access` at ``dram_pj_per_bit``. Activations
and outputs move at ``a_bits``, weights at ``w_bits``, partial sums inside the array at
``acc_bits``. On-chip dynamic energy scales with ``(V / v_ref) ** 2``; DRAM has its own supply and
does not. ``leakage``: leakage power, linear in ``V / v_ref`` (a fixed leakage current), times the
layer's time, ``cycles / clock_hz``.

Pure Python: no torch import (tensors pass through the arithmetic), so the CLI validates tables
before loading anything heavy.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from uboost.exceptions import ConfigError, unknown_name

ENERGY_KEYS = ("mac", "sram", "dram", "leakage")
"""Keys of :func:`energy_breakdown` (and ``CostModel.energy_breakdown_pj``)."""

PJ_PER_UW_SECOND = 1e6  # 1 uW for 1 s is 1 uJ = 1e6 pJ


@dataclass(frozen=True, kw_only=True)
class EnergyTable:
    """pJ per action at the reference voltage ``v_ref`` (V); leakage in uW."""

    name: str = "custom"
    v_ref: float
    mult_pj_per_bit2: float  # multiplier: pJ per (weight bits x activation bits)
    add_pj_per_bit: float  # accumulator adder: pJ per bit of the accumulator
    acc_bits: int = 32  # accumulator (partial-sum) width
    sram_read_pj_per_bit: float  # at sram_ref_kb
    sram_write_pj_per_bit: float  # at sram_ref_kb
    sram_ref_kb: float
    sram_size_exponent: float = 0.5  # pJ/bit grows as (kb / sram_ref_kb) ** exponent
    dram_pj_per_bit: float
    pe_move_pj_per_bit: float
    leakage_uw_per_pe: float
    leakage_uw_per_kb: float

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise ConfigError(f"energy table name must be a string, got {self.name!r}")
        for f in fields(self):
            if f.name == "name":
                continue
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"energy table {self.name!r}: {f.name} must be a finite number >= 0, got {value!r}")
        for field in ("v_ref", "sram_ref_kb", "acc_bits"):
            if getattr(self, field) <= 0:
                raise ConfigError(f"energy table {self.name!r}: {field} must be positive, got {getattr(self, field)!r}")
        if not isinstance(self.acc_bits, int):
            raise ConfigError(f"energy table {self.name!r}: acc_bits must be a whole number of bits, got {self.acc_bits!r}")

    # -- per action ----------------------------------------------------------------------------
    def mac_pj(self, w_bits, a_bits):
        """One multiply-accumulate of ``w_bits`` x ``a_bits`` operands (numbers or per-layer tensors)."""
        return self.mult_pj_per_bit2 * w_bits * a_bits + self.add_pj_per_bit * self.acc_bits

    def _size_factor(self, kb: float | None) -> float:
        return 1.0 if kb is None else (kb / self.sram_ref_kb) ** self.sram_size_exponent

    def sram_read_pj_per_bit_at(self, kb: float | None) -> float:
        """Read energy per bit of an SRAM of ``kb`` kB (``None``: the reference size)."""
        return self.sram_read_pj_per_bit * self._size_factor(kb)

    def sram_write_pj_per_bit_at(self, kb: float | None) -> float:
        """Write energy per bit of an SRAM of ``kb`` kB (``None``: the reference size)."""
        return self.sram_write_pj_per_bit * self._size_factor(kb)

    def leakage_uw(self, pes: int, sram_kb: float) -> float:
        """Leakage power at ``v_ref`` of ``pes`` processing elements and ``sram_kb`` kB of SRAM."""
        return self.leakage_uw_per_pe * pes + self.leakage_uw_per_kb * sram_kb

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- presets -----------------------------------------------------------------------------------
def _horowitz45() -> EnergyTable:
    """45 nm at 0.9 V: M. Horowitz, "Computing's energy problem", ISSCC 2014 (REFERENCES section 4).

    8-bit int multiply 0.2 pJ -> 0.2 / 64 pJ per bit^2 (32-bit: 3.1 / 1024, the same to 3 %);
    32-bit int add 0.1 pJ -> 0.1 / 32 pJ per accumulator bit. 64-bit SRAM read: 8 kB 10 pJ, 32 kB
    20 pJ, 1 MB 100 pJ -> 10 / 64 pJ per bit at 8 kB, growing as sqrt(size) (8 -> 32 kB exactly;
    predicts 1.77 pJ/bit at 1 MB against 1.56). DRAM: 1.3-2.6 nJ per 64 bits -> 1.3 nJ / 64 (the low
    end). Writes are priced as reads (the paper gives reads only). PE-to-PE move: not in the paper;
    twice an 8-bit MAC per 8-bit word, the Eyeriss ratio (Sze et al. 2017). Leakage: not in the
    paper; ASSUMED 1 uW per PE and 10 uW per kB of SRAM (override in a TOML file).
    """
    return EnergyTable(
        name="horowitz45",
        v_ref=0.9,
        mult_pj_per_bit2=0.2 / 64,  # Horowitz 2014: 8-bit int mult 0.2 pJ
        add_pj_per_bit=0.1 / 32,  # Horowitz 2014: 32-bit int add 0.1 pJ
        acc_bits=32,
        sram_read_pj_per_bit=10.0 / 64,  # Horowitz 2014: 8 kB SRAM, 64-bit read 10 pJ
        sram_write_pj_per_bit=10.0 / 64,  # not given: as a read
        sram_ref_kb=8.0,
        sram_size_exponent=0.5,  # Horowitz 2014: 8 kB 10 pJ -> 32 kB 20 pJ
        dram_pj_per_bit=1300.0 / 64,  # Horowitz 2014: DRAM 1.3-2.6 nJ per 64 bits (low end)
        pe_move_pj_per_bit=2 * (0.2 + 0.1) / 8,  # Eyeriss ratio: PE-to-PE = 2x MAC, per 8-bit word
        leakage_uw_per_pe=1.0,  # ASSUMED
        leakage_uw_per_kb=10.0,  # ASSUMED
    )


def _eyeriss65() -> EnergyTable:
    """65 nm, 1.0 V, 16-bit words: the normalized costs of Sze, Chen, Yang and Emer, "Efficient
    Processing of Deep Neural Networks", Proc. IEEE 2017 (Eyeriss, REFERENCES section 4):
    register file 1x, PE-to-PE 2x, global buffer (100-500 kB) 6x, DRAM 200x one MAC.

    The absolute scale is ASSUMED: one 16-bit MAC = 1 pJ (Horowitz's 45 nm 16-bit multiply plus
    add is about 0.8 pJ; 65 nm at 1.0 V costs more), split 94 % multiplier / 6 % adder as in
    Horowitz's numbers, 16-bit accumulator. Global buffer 6 pJ per 16-bit word at Eyeriss's 108 kB,
    growing as sqrt(size); DRAM 200 pJ per 16-bit word; PE-to-PE 2 pJ per 16-bit word. The
    register-file accesses inside a PE are part of the MAC here. Leakage ASSUMED: 2 uW per PE,
    10 uW per kB.
    """
    mac16 = 1.0  # ASSUMED absolute scale: 1 pJ per 16-bit MAC at 65 nm, 1.0 V
    return EnergyTable(
        name="eyeriss65",
        v_ref=1.0,  # Eyeriss core supply (Chen et al., JSSC 2017)
        mult_pj_per_bit2=0.94 * mac16 / (16 * 16),
        add_pj_per_bit=0.06 * mac16 / 16,
        acc_bits=16,
        sram_read_pj_per_bit=6 * mac16 / 16,  # Sze 2017: global buffer = 6x MAC
        sram_write_pj_per_bit=6 * mac16 / 16,
        sram_ref_kb=108.0,  # Eyeriss global buffer
        sram_size_exponent=0.5,
        dram_pj_per_bit=200 * mac16 / 16,  # Sze 2017: DRAM = 200x MAC
        pe_move_pj_per_bit=2 * mac16 / 16,  # Sze 2017: PE-to-PE = 2x MAC
        leakage_uw_per_pe=2.0,  # ASSUMED
        leakage_uw_per_kb=10.0,  # ASSUMED
    )


def _gemmini16() -> EnergyTable:
    """A Gemmini-like 16x16 weight-stationary array, 8-bit operands (Timeloop/Accelergy-derived
    pJ per operand, REFERENCES section 4): MAC 0.28, scratchpad 3.47, accumulator 4.01, DRAM 64.

    The MAC is split 2/3 multiplier, 1/3 32-bit adder (Horowitz's 8-bit mult : 32-bit add ratio).
    Scratchpad reads 3.47 / 8 pJ per bit at Gemmini's default 256 kB scratchpad; ofmap writes go to
    the accumulator SRAM, 4.01 / 8 pJ per bit (priced at the same reference size). DRAM 64 / 8 =
    8 pJ per bit (Accelergy's LPDDR4 figure). PE-to-PE: twice the MAC per 8-bit word (Eyeriss
    ratio). Reference voltage and leakage ASSUMED: 0.8 V, 0.5 uW per PE, 5 uW per kB.
    """
    return EnergyTable(
        name="gemmini16",
        v_ref=0.8,  # ASSUMED nominal supply
        mult_pj_per_bit2=(2 / 3) * 0.28 / 64,  # MAC 0.28 pJ per 8-bit operand pair
        add_pj_per_bit=(1 / 3) * 0.28 / 32,
        acc_bits=32,
        sram_read_pj_per_bit=3.47 / 8,  # scratchpad 3.47 pJ per 8-bit operand
        sram_write_pj_per_bit=4.01 / 8,  # accumulator 4.01 pJ per 8-bit operand
        sram_ref_kb=256.0,  # Gemmini's default scratchpad
        sram_size_exponent=0.5,
        dram_pj_per_bit=64.0 / 8,  # DRAM 64 pJ per 8-bit operand
        pe_move_pj_per_bit=2 * 0.28 / 8,  # Eyeriss ratio: PE-to-PE = 2x MAC
        leakage_uw_per_pe=0.5,  # ASSUMED
        leakage_uw_per_kb=5.0,  # ASSUMED
    )


PRESETS: dict[str, EnergyTable] = {t.name: t for t in (_horowitz45(), _eyeriss65(), _gemmini16())}
"""Published energy tables by name (their sources in the docstrings of the ``_<name>`` builders)."""
DEFAULT_ENERGY = "horowitz45"

def energy_table_from_dict(data: dict[str, Any], *, source: str = "energy table") -> EnergyTable:
    """A table from a mapping: every required field, or ``base = "<preset>"`` and the fields to change."""
    from uboost.hardware._presets import table_from_dict

    return table_from_dict(EnergyTable, PRESETS, data, source=source, kind="energy")


def load_energy_toml(path: str | Path) -> EnergyTable:
    """Read a user's energy table from TOML (top-level keys, or an ``[energy]`` table)."""
    from uboost.hardware.operating import read_toml

    path = Path(path)
    data = read_toml(path, what="energy table")
    if set(data) == {"energy"} and isinstance(data["energy"], dict):
        data = data["energy"]
    return energy_table_from_dict(data, source=path.stem)


def resolve_energy(energy: "str | Path | EnergyTable | None") -> EnergyTable:
    """A preset name, a ``.toml`` file or a table becomes a table; None is the default preset (as ``--tech``'s area)."""
    if energy is None:
        return PRESETS[DEFAULT_ENERGY]
    if isinstance(energy, EnergyTable):
        return energy
    text = str(energy)
    if text in PRESETS:
        return PRESETS[text]
    if text.lower().endswith(".toml") or Path(text).is_file():
        return load_energy_toml(text)
    raise unknown_name("energy preset", text, PRESETS)


# -- a layer's energy ----------------------------------------------------------------------------
_MOVED_BITS = {"ws": ("a", "acc"), "os": ("a", "w"), "is": ("w", "acc")}  # words each MAC forwards


def energy_breakdown(
    spec, accesses: dict, macs, cycles, *, w_bits=None, a_bits=None
) -> dict[str, Any]:
    """Energy in pJ of every layer, split as :data:`ENERGY_KEYS`.

    ``accesses``: :func:`uboost.hardware.access.access_counts`; ``macs`` and ``cycles``: the
    layers' MACs and cycles (tensors); ``w_bits``/``a_bits``: per-layer bits (default ``spec.bits``).
    """
    w, a, per_mac = _mac_pj(spec, w_bits, a_bits)
    return _priced(spec, accesses, w, a, macs, per_mac, cycles)


def _mac_pj(spec, w_bits, a_bits):
    """``(weight bits, activation bits, pJ per MAC at v_ref)``: the multiply-accumulate and the operands it forwards."""
    table = spec.energy_table
    w = spec.bits if w_bits is None else w_bits
    a = spec.bits if a_bits is None else a_bits
    bits = {"w": w, "a": a, "acc": table.acc_bits}
    moved = sum(bits[b] for b in _MOVED_BITS[spec.dataflow])
    return w, a, table.mac_pj(w, a) + table.pe_move_pj_per_bit * moved


def _priced(spec, x: dict, w, a, macs, per_mac, cycles) -> dict[str, Any]:
    """The energies of ``x``'s access counts (times ``w``/``a`` bits), ``macs`` MACs of ``per_mac`` pJ and ``cycles``
    of leakage at ``spec``'s buffer sizes, voltage and clock (per layer, or summed: :class:`NetworkEnergy`)."""
    table = spec.energy_table
    ratio = spec.voltage / table.v_ref
    dynamic = ratio * ratio
    mac = dynamic * macs * per_mac
    ifmap_kb, filter_kb, ofmap_kb = spec.buffer_kb
    read, write = table.sram_read_pj_per_bit_at, table.sram_write_pj_per_bit_at
    sram = dynamic * (
        a * (x["ifmap_sram_reads"] * read(ifmap_kb) + x["ifmap_dram_reads"] * write(ifmap_kb))
        + w * (x["filter_sram_reads"] * read(filter_kb) + x["filter_dram_reads"] * write(filter_kb))
        + a * (x["ofmap_sram_writes"] * write(ofmap_kb) + x["ofmap_dram_writes"] * read(ofmap_kb))
    )
    dram = table.dram_pj_per_bit * (a * (x["ifmap_dram_reads"] + x["ofmap_dram_writes"]) + w * x["filter_dram_reads"])
    sram_kb = sum(table.sram_ref_kb if kb is None else kb for kb in spec.buffer_kb)
    leakage_uw = ratio * table.leakage_uw(spec.pes, sram_kb)
    leakage = leakage_uw * PJ_PER_UW_SECOND * cycles / spec.clock_hz
    return {"mac": mac, "sram": sram, "dram": dram, "leakage": leakage}


@dataclass(frozen=True)
class NetworkEnergy:
    """:func:`energy_breakdown` summed over a network's layers on one accelerator *structure*, for pricing it at many
    buffer sizes and operating points (the inner accelerator choice): total cycles, the MAC energy at ``v_ref`` and
    the bit-weighted access counts, priced by the same :func:`_priced` as one layer with 1-bit operands (the bits
    are in the sums). Equal to the sum of :func:`energy_breakdown` to a relative ~1e-15 (another order; tested)."""

    cycles: float
    mac_pj: float
    bit_accesses: dict[str, float]  # sum over layers of bits x count, per access kind

    @classmethod
    def summed(cls, spec, cycles, accesses: dict, macs, *, w_bits=None, a_bits=None) -> "NetworkEnergy":
        w, a, per_mac = _mac_pj(spec, w_bits, a_bits)
        weighted = {"ifmap_sram_reads": a, "ifmap_dram_reads": a, "filter_sram_reads": w, "filter_dram_reads": w,
                    "ofmap_sram_writes": a, "ofmap_dram_writes": a}
        return cls(cycles=float(cycles.sum()), mac_pj=float((macs * per_mac).sum()),
                   bit_accesses={name: float((b * accesses[name]).sum()) for name, b in weighted.items()})

    def energy_uj(self, spec) -> float:
        """The network's energy on ``spec`` (its buffer sizes, clock and voltage; the structure it was summed on)."""
        parts = _priced(spec, self.bit_accesses, 1, 1, 1.0, self.mac_pj, self.cycles)
        return sum(parts.values()) * 1e-6
