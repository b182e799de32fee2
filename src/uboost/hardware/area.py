"""Silicon area of an accelerator: PEs, SRAM and a fixed part, from published layouts.

``area_mm2 = pes x pe_mm2 x pe_factor[pe mode] + SRAM kB x sram_mm2_per_kb + fixed_mm2``.

An accelerator designer asks "the best network and accelerator within X mm²": this is the X.
The model is linear on purpose (an Optuna constraint and an exact budget need nothing more), and
each preset states where its constants come from. Buffers of unbounded size (SCALE-Sim's CALC
mode, no ``sram_kb``) have no area: :func:`area_mm2` refuses to price them, since "unbounded" is
not a design point.

Presets (``--tech``):

``recpipe12``
    12 nm logic synthesis published with RecPipe (Gupta et al., MICRO 2021; artifact
    ``RPAccel_characterization/synthesis.py``): a 32x32 systolic array is 506,891 um^2
    (-> 495 um^2 per PE, its registers and wiring included) and a 32 kB high-speed single-port SRAM
    (16,384 words x 16 bits) 29,142 um^2 (-> 0.000911 mm² per kB). No fixed part is reported.
``tpu28``
    Google TPU v1 (Jouppi et al., ISCA 2017), 28 nm, a die of at most 331 mm²: the 256x256 matrix
    unit is 24 % of it (-> 79.4 mm² / 65,536 MACs = 0.00121 mm² per PE), the 24 MiB unified
    buffer 29 % (-> 96.0 mm² / 24,576 kB = 0.00391 mm² per kB), control 2 % (-> 6.6 mm², the
    fixed part).

PE precision modes (:mod:`uboost.hardware.precision`) scale the PE area by ``pe_factor``. No
preset carries a published factor for BitFusion or bit-serial PEs, so pricing those needs a table
that gives one (TOML ``[area.pe_factor]``); the default is 1 only for the fixed 8-bit PE.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from uboost.exceptions import ConfigError, unknown_name


@dataclass(frozen=True, kw_only=True)
class AreaTable:
    """mm² per PE (a fixed 8-bit PE), per kB of SRAM, and a fixed part, in one technology."""

    name: str = "custom"
    tech_nm: float
    pe_mm2: float
    sram_mm2_per_kb: float
    fixed_mm2: float = 0.0
    pe_factor: dict = field(default_factory=lambda: {"fixed": 1.0})  # PE area relative to a fixed 8-bit PE, per PE mode

    def __post_init__(self) -> None:
        for name in ("tech_nm", "pe_mm2", "sram_mm2_per_kb", "fixed_mm2"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"area table {self.name!r}: {name} must be a finite number >= 0, got {value!r}")
        if self.pe_mm2 <= 0 or self.tech_nm <= 0:
            raise ConfigError(f"area table {self.name!r}: pe_mm2 and tech_nm must be positive")
        if not isinstance(self.pe_factor, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0 for v in self.pe_factor.values()
        ):
            raise ConfigError(f"area table {self.name!r}: pe_factor must map PE modes to positive numbers, got {self.pe_factor!r}")
        from uboost.hardware.precision import PE_MODES

        unknown = sorted(set(self.pe_factor) - set(PE_MODES))
        if unknown:
            raise ConfigError(f"area table {self.name!r}: pe_factor has no PE mode {', '.join(map(repr, unknown))}; "
                              f"expected: {', '.join(PE_MODES)}")
        # the fixed 8-bit PE is the unit of pe_mm2: a table giving only other modes' factors keeps it
        object.__setattr__(self, "pe_factor", {"fixed": 1.0, **self.pe_factor})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PRESETS: dict[str, AreaTable] = {
    "recpipe12": AreaTable(name="recpipe12", tech_nm=12, pe_mm2=0.506891 / 1024, sram_mm2_per_kb=0.029142 / 32),
    "tpu28": AreaTable(name="tpu28", tech_nm=28, pe_mm2=0.24 * 331 / 65536, sram_mm2_per_kb=0.29 * 331 / 24576,
                       fixed_mm2=0.02 * 331),
}
DEFAULT_AREA = "tpu28"


def area_table_from_dict(data: dict[str, Any], *, source: str = "area table") -> AreaTable:
    """A table from a mapping: every field, or ``base = "<preset>"`` and the fields to change."""
    from uboost.hardware._presets import table_from_dict

    return table_from_dict(AreaTable, PRESETS, data, source=source, kind="area")


def resolve_area(area: "str | Path | AreaTable | dict | None") -> AreaTable:
    """A preset name (``--tech``), a TOML file (top-level keys or an ``[area]`` table), a mapping or a table."""
    if area is None:
        return PRESETS[DEFAULT_AREA]
    if isinstance(area, AreaTable):
        return area
    if isinstance(area, dict):
        return area_table_from_dict(area)
    text = str(area)
    if text in PRESETS:
        return PRESETS[text]
    if text.lower().endswith(".toml") or Path(text).is_file():
        from uboost.hardware.operating import read_toml

        data = read_toml(Path(text), what="area table")
        if set(data) == {"area"} and isinstance(data["area"], dict):
            data = data["area"]
        return area_table_from_dict(data, source=Path(text).stem)
    raise unknown_name("area preset (--tech)", text, PRESETS)


def area_breakdown_mm2(spec, table: "AreaTable | str | None" = None) -> dict[str, float]:
    """``{"pe", "sram", "fixed", "total"}`` in mm² of the accelerator ``spec`` describes."""
    table = resolve_area(table)
    sizes = spec.buffer_kb
    if any(kb is None for kb in sizes):
        raise ConfigError("area needs sized buffers: give --sram-kb (or each buffer's size); unbounded SRAM has no area")
    mode = getattr(spec, "pe", "fixed")
    if mode not in table.pe_factor:
        raise ConfigError(f"area table {table.name!r} has no PE area for {mode!r} PEs (known: {', '.join(table.pe_factor)}); "
                          f"give pe_factor.{mode} in an area TOML (relative to a fixed 8-bit PE)")
    pe = spec.pes * table.pe_mm2 * table.pe_factor[mode]
    sram = sum(sizes) * table.sram_mm2_per_kb
    return {"pe": pe, "sram": sram, "fixed": table.fixed_mm2, "total": pe + sram + table.fixed_mm2}


def wide_fixed_pe_note(widest_bits: float, table_name: str) -> str | None:
    """What an area of ``fixed`` PEs does not count when layers take more than 8 bits (the tables price 8-bit PEs),
    else None: the note ``profile`` and ``tune`` print."""
    if widest_bits <= 8:
        return None
    return (f"the area prices fixed 8-bit PEs (the {table_name} table's unit), and layers here take up to "
            f"{widest_bits:g} bits: PEs that wide are larger than the area (and any area budget) says")


def area_mm2(spec, table: "AreaTable | str | None" = None) -> float:
    """Total silicon area of ``spec`` in mm² (see :func:`area_breakdown_mm2`)."""
    return area_breakdown_mm2(spec, table)["total"]
