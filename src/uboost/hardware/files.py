"""Accelerator description files: uboost's TOML and SCALE-Sim's ``.cfg``, read into a HardwareSpec.

**uboost TOML** (``[hardware]``; keys are :class:`~uboost.hardware.HardwareSpec` fields)::

    [hardware]
    rows = 32
    cols = 32
    dataflow = "os"
    sram_kb = 64
    dram_bw_words = 10
    energy = "horowitz45"                 # a preset, or a table: [hardware.energy] base = "..." ...
    operating_points = "rk3576-npu"       # a preset, or [[f_hz, volts], ...]
    area = "tpu28"                        # (not a spec field) the area table: a preset or [hardware.area]

A table given as a file (``energy = "mine.toml"``) is found next to the hardware file.

:func:`hardware_toml` writes the same format back (a round trip gives an equal spec, but for ``bits``:
operand widths are the network's, per layer, so the file leaves them out and reads back 8).

**SCALE-Sim** ``.cfg`` as SCALE-Sim 1, 2 and 3 write it: ``[architecture_presets]`` ArrayHeight
(rows), ArrayWidth (cols), Ifmap/Filter/OfmapSramSzkB (or SCALE-Sim 1's ...SramSz, also kB),
Dataflow, Bandwidth (words per cycle, used when ``[run_presets] InterfaceBandwidth`` is USER; in
CALC mode SCALE-Sim assumes whatever bandwidth avoids stalls, so the spec's memory is unbounded).
In USER mode SCALE-Sim 3 takes the ifmap and filter DRAM bandwidth from ``[layout]``
IfmapSRAMBankBandwidth and FilterSRAMBankBandwidth and only the ofmap's from Bandwidth (SCALE-Sim 1
and 2, with no ``[layout]`` section, use Bandwidth for all three): uboost prices one DRAM bandwidth,
so a ``[layout]`` whose two differ from Bandwidth is refused. Keys SCALE-Sim reads that do not
change what uboost prices (offsets, request buffers, SRAM bank counts and ports, custom layouts,
the run name, Ramulator traces) are accepted and ignored; an unknown key or section, a per-layer
bandwidth list or sparsity support is refused in one line.
"""

from __future__ import annotations

import configparser
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from uboost.exceptions import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from uboost.hardware.spec import HardwareSpec

# SCALE-Sim's keys (configparser lowercases them), by section
_LAYOUT = ("ifmapcustomlayout", "filtercustomlayout", "ifmapsrambankbandwidth", "ifmapsrambanknum", "ifmapsrambankport",
           "filtersrambankbandwidth", "filtersrambanknum", "filtersrambankport")
SCALESIM_KEYS: dict[str, tuple[str, ...]] = {
    "general": ("run_name",),
    "architecture_presets": ("arrayheight", "arraywidth", "ifmapsramszkb", "filtersramszkb", "ofmapsramszkb",
                             "ifmapsramsz", "filtersramsz", "ofmapsramsz", "ifmapoffset", "filteroffset", "ofmapoffset",
                             "dataflow", "bandwidth", "readrequestbuffer", "writerequestbuffer", "memorybanks",
                             "onchipmemorybanks", "onchipmemorybankports", *_LAYOUT),
    "layout": _LAYOUT,
    "sparsity": ("sparsitysupport", "sparserep", "optimizedmapping", "blocksize", "randomnumbergeneratorseed",
                 "nonzeroelems"),
    # the row and bank sizes are for SCALE-Sim's Accelergy add-on (rundir-accelergy: action counts), in its configs
    "run_presets": ("interfacebandwidth", "useramulatortrace", "sram_row_size", "sram_bank_size", "dram_row_size",
                    "dram_bank_size"),
    "network_presets": ("topologycsvloc", "layoutcsvloc"),
}


def _int(path: Path, key: str, text: str) -> int:
    try:
        value = float(text.strip().strip('"'))
    except ValueError:
        raise ConfigError(f"{path}: {key} must be a number, got {text!r}") from None
    if not value.is_integer() or value < 1:
        raise ConfigError(f"{path}: {key} must be a positive whole number, got {text!r}")
    return int(value)


def read_scalesim_cfg(path: str | Path) -> dict[str, Any]:
    """HardwareSpec fields from a SCALE-Sim config file (see the module docstring)."""
    path = Path(path)
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except FileNotFoundError:
        raise ConfigError(f"hardware file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        raise ConfigError(f"cannot read SCALE-Sim config {path}: {str(exc).splitlines()[0]}") from None
    spelled = _spellings(path)

    def said(section: str, key: str) -> str:  # a key as the file spells it (configparser lowercases it)
        return spelled.get((section, key), key)

    for section in parser.sections():
        if section not in SCALESIM_KEYS:
            raise ConfigError(f"{path}: unknown section [{section}]; SCALE-Sim configs have "
                              + ", ".join(f"[{s}]" for s in SCALESIM_KEYS))
        unknown = sorted(set(parser[section]) - set(SCALESIM_KEYS[section]))
        if unknown:
            raise ConfigError(f"{path}: unknown key(s) {', '.join(said(section, k) for k in unknown)} in [{section}]")
    if not parser.has_section("architecture_presets"):
        raise ConfigError(f"{path}: no [architecture_presets] section: not a SCALE-Sim config")
    arch = parser["architecture_presets"]
    for key in ("arrayheight", "arraywidth"):
        if key not in arch:
            raise ConfigError(f"{path}: [architecture_presets] needs ArrayHeight and ArrayWidth")
    fields: dict[str, Any] = {"rows": _int(path, said("architecture_presets", "arrayheight"), arch["arrayheight"]),
                              "cols": _int(path, said("architecture_presets", "arraywidth"), arch["arraywidth"])}
    if "dataflow" in arch:
        fields["dataflow"] = arch["dataflow"].strip().strip('"').lower()
    sizes = {}
    for buffer in ("ifmap", "filter", "ofmap"):
        for key in (f"{buffer}sramszkb", f"{buffer}sramsz"):  # SCALE-Sim 1 wrote ...SramSz, also in kB
            if key in arch:
                sizes[buffer] = _int(path, said("architecture_presets", key), arch[key])
                break
    if len(sizes) == 3 and len(set(sizes.values())) == 1:
        fields["sram_kb"] = sizes["ifmap"]  # three equal buffers: what --sram-kb gives
    else:
        fields.update({f"{buffer}_sram_kb": kb for buffer, kb in sizes.items()})
    mode = parser.get("run_presets", "interfacebandwidth", fallback="CALC").strip().upper()
    if mode not in ("CALC", "USER"):
        raise ConfigError(f"{path}: {said('run_presets', 'interfacebandwidth')} must be CALC or USER, got {mode!r}")
    if mode == "USER":
        text = arch.get("bandwidth", "").strip()
        if not text:
            raise ConfigError(f"{path}: InterfaceBandwidth is USER but [architecture_presets] has no Bandwidth")
        if "," in text:
            raise ConfigError(f"{path}: a per-layer {said('architecture_presets', 'bandwidth')} list ({text}) is not supported; "
                              "give one value")
        try:
            fields["dram_bw_words"] = float(text)
        except ValueError:
            raise ConfigError(f"{path}: {said('architecture_presets', 'bandwidth')} must be a number of words per cycle, "
                              f"got {text!r}") from None
        if not 0 < fields["dram_bw_words"] < float("inf"):  # before the bank check, which would blame the banks for it
            raise ConfigError(f"{path}: {said('architecture_presets', 'bandwidth')} must be a positive number of words per cycle, "
                              f"got {text}")
        _check_port_bandwidths(path, parser, fields["dram_bw_words"], said)
    if parser.get("sparsity", "sparsitysupport", fallback="false").strip().lower() == "true":
        raise ConfigError(f"{path}: {said('sparsity', 'sparsitysupport')} is not modelled by uboost; set it to false or use --cost-model scalesim")
    return fields


def _spellings(path: Path) -> dict[tuple[str, str], str]:
    """``(section, lowercased key)`` -> the key as the file spells it, for messages in the file's words."""
    raw = configparser.ConfigParser(interpolation=None, strict=False)
    raw.optionxform = str  # type: ignore[assignment, method-assign]  (keep the case)
    with open(path, encoding="utf-8") as f:
        raw.read_file(f)
    return {(section, key.lower()): key for section in raw.sections() for key in raw[section]}


def _check_port_bandwidths(path: Path, parser: configparser.ConfigParser, bandwidth: float, said) -> None:
    """Refuse a SCALE-Sim 3 ``[layout]`` whose ifmap or filter DRAM bandwidth (USER mode reads them from
    the bank bandwidths) is not ``Bandwidth``: uboost's memory models have one DRAM bandwidth."""
    if not parser.has_section("layout"):  # SCALE-Sim 1 and 2: Bandwidth feeds all three ports
        return
    for key in ("ifmapsrambankbandwidth", "filtersrambankbandwidth"):
        text = parser["layout"].get(key)
        if text is None:
            continue
        name = said("layout", key)
        try:
            value = float(text.strip().strip('"'))
        except ValueError:
            raise ConfigError(f"{path}: {name} must be a number of words per cycle, got {text!r}") from None
        if value != bandwidth:
            raise ConfigError(f"{path}: [layout] {name} = {text.strip()} differs from {said('architecture_presets', 'bandwidth')} = {bandwidth:g}: SCALE-Sim 3 "
                              "takes it as that port's DRAM bandwidth and uboost models one DRAM bandwidth; make them equal")


_NOT_SPEC = ("area",)  # keys of [hardware] that describe the accelerator but are not HardwareSpec fields


def _files_beside(path: Path, fields: dict[str, Any]) -> None:
    """Make the table files ``fields`` name (``energy = "mine.toml"``, ...) relative to the hardware file's
    folder, not the working directory: the same file prices the same from anywhere. Preset names stay."""
    from uboost.hardware.area import PRESETS as AREA
    from uboost.hardware.energy import PRESETS as ENERGY
    from uboost.hardware.operating import PRESETS as POINTS

    for key, presets in (("energy", ENERGY), ("area", AREA), ("operating_points", POINTS)):
        text = fields.get(key)
        if not isinstance(text, str) or text in presets:
            continue
        beside = path.parent / text  # an absolute text stays itself
        if text.lower().endswith(".toml") or beside.exists():  # what the resolvers take for a file
            fields[key] = str(beside.absolute())


def read_hardware_toml(path: str | Path) -> dict[str, Any]:
    """HardwareSpec fields (plus ``area``) from uboost's TOML (a ``[hardware]`` table or top-level keys)."""
    from uboost.hardware.operating import read_toml
    from uboost.hardware.spec import HardwareSpec

    path = Path(path)
    data = read_toml(path, what="hardware file")
    inside = "hardware" in data
    if inside:
        stray = sorted(k for k in data if k != "hardware")
        if stray:
            raise ConfigError(f"{path}: {', '.join(map(repr, stray))} outside the [hardware] table")
        data = data["hardware"]
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: [hardware] must be a table")
    known = [f.name for f in dataclasses.fields(HardwareSpec)]
    unknown = sorted(set(data) - set(known) - set(_NOT_SPEC))
    tables = [k for k in unknown if isinstance(data[k], dict)]  # [hw] is a table, not a key: say which table is missing
    if tables and inside:
        raise ConfigError(f"{path}: [hardware.{tables[0]}] is not a known table; [hardware] takes the tables energy, "
                          f"operating_points and area")
    if tables:
        raise ConfigError(f"{path}: no [hardware] table; [{tables[0]}] is not a known table: describe the accelerator "
                          f"in [hardware] (or as top-level keys): {', '.join(known + list(_NOT_SPEC))}")
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}; expected: {', '.join(known + list(_NOT_SPEC))}")
    if not data:
        raise ConfigError(f"{path}: describes no accelerator (an empty [hardware] table); give at least rows and cols")
    if ("rows" in data) != ("cols" in data):  # the other took HardwareSpec's default (128) silently
        given, missing = ("rows", "cols") if "rows" in data else ("cols", "rows")
        raise ConfigError(f"{path}: gives {given} = {data[given]!r} but no {missing}: give both (the array is rows x cols)")
    if "bits" in data and data["bits"] != 8:  # the cycle, memory and energy models read each layer's own widths
        raise ConfigError(f"{path}: bits = {data['bits']!r} would price nothing: operand widths are the network's, per "
                          "layer (profile --bits, search --bits, or a run's precision.json); leave bits out")
    fields = dict(data)
    _files_beside(path, fields)
    if isinstance(fields.get("dataflow"), str):  # as a SCALE-Sim .cfg: WS, ws and Ws are one dataflow
        fields["dataflow"] = fields["dataflow"].lower()
    if isinstance(fields.get("energy"), dict):
        from uboost.hardware.energy import energy_table_from_dict

        fields["energy"] = energy_table_from_dict(fields["energy"], source=f"{path.stem} energy")
    points = fields.get("operating_points")
    if isinstance(points, (list, dict)):  # [[f, V], ...] or a table {name = ..., points = [[f, V], ...]}
        from uboost.hardware.operating import operating_points_from_pairs

        if isinstance(points, dict) and not set(points) <= {"name", "points"}:
            raise ConfigError(f"{path}: [hardware.operating_points] takes name and points, got {', '.join(sorted(points))}")
        pairs, name = (points.get("points", []), points.get("name", path.stem)) if isinstance(points, dict) else (points, path.stem)
        try:
            fields["operating_points"] = operating_points_from_pairs(pairs, name=name)
        except ConfigError as exc:  # name the file and the table, not only the value
            raise ConfigError(f"{path}: [hardware.operating_points]: {exc}") from None
    if isinstance(fields.get("area"), dict):
        from uboost.hardware.area import area_table_from_dict

        fields["area"] = area_table_from_dict(fields["area"], source=f"{path.stem} area")
    return fields


def read_hardware_file(path: str | Path) -> dict[str, Any]:
    """HardwareSpec fields (and ``area``) from a uboost TOML or a SCALE-Sim ``.cfg``, checked by
    building the spec: a bad value fails here, in one line, before anything runs."""
    from uboost.hardware.spec import HardwareSpec

    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"hardware file {path} is a directory")
    suffix = path.suffix.lower()
    if suffix == ".toml":
        fields = read_hardware_toml(path)
    elif suffix in (".cfg", ".ini"):
        fields = read_scalesim_cfg(path)
    else:
        raise ConfigError(f"hardware file {path}: expected a uboost .toml or a SCALE-Sim .cfg")
    if fields.get("operating_points") is not None and "clock_hz" not in fields:
        from uboost.hardware.operating import load_operating_points

        fields["clock_hz"] = load_operating_points(fields["operating_points"]).points[-1].freq_hz  # the fastest point
    try:
        HardwareSpec(**{k: v for k, v in fields.items() if k not in _NOT_SPEC})
    except ConfigError as exc:
        raise ConfigError(f"hardware file {path}: {exc}") from None
    return fields


SRAM_PARTS = ("ifmap_sram_kb", "filter_sram_kb", "ofmap_sram_kb")


def without_overridden(fields: dict[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """A hardware file's fields less those the options ``given`` (by HardwareSpec name; None: not
    given) replace beyond their own names: ``sram_kb`` the file's per-buffer sizes, one DRAM
    bandwidth option the other unit, and a DVFS table the file's table and the clock it gave."""
    sram_kb, dram_bw_words, dram_bw_gbps, operating_points, clock_hz = (
        given.get(k) for k in ("sram_kb", "dram_bw_words", "dram_bw_gbps", "operating_points", "clock_hz"))
    out = dict(fields)
    if sram_kb is not None:
        for key in SRAM_PARTS:
            out.pop(key, None)
    if dram_bw_words is not None:
        out.pop("dram_bw_gbps", None)
    if dram_bw_gbps is not None:
        out.pop("dram_bw_words", None)
    if operating_points is not None and clock_hz is None and out.get("operating_points") is not None:
        from uboost.hardware.operating import load_operating_points

        if out.get("clock_hz") == load_operating_points(out["operating_points"]).points[-1].freq_hz:
            out.pop("clock_hz")  # the new table's fastest point, as without a file
    if operating_points is not None:
        out.pop("operating_points", None)  # replaced
    return out


def load_hardware(path: str | Path, **overrides: Any) -> "HardwareSpec":
    """The spec a hardware file describes, with ``overrides`` (command-line options) on top."""
    from uboost.hardware.spec import HardwareSpec

    given = {k: v for k, v in overrides.items() if v is not None}
    fields = {k: v for k, v in without_overridden(read_hardware_file(path), given).items() if k not in _NOT_SPEC}
    return HardwareSpec(**{**fields, **given})


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ConfigError(f"cannot write {value!r} to TOML")


def hardware_toml(spec, area=None) -> str:
    """``spec`` (and an area table: an :class:`~uboost.hardware.area.AreaTable`, a preset name such as ``"tpu28"``, a
    TOML file or a dict) as uboost's TOML: :func:`read_hardware_file` reads it back equal (with the default ``bits``:
    see the module docstring)."""
    if area is not None:
        from uboost.hardware.area import resolve_area

        area = resolve_area(area)
    lines, tables = ["[hardware]"], []
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        if value is None or f.name == "bits":  # the network's precision, not the accelerator's: the reader refuses it
            continue
        if f.name == "energy":
            tables.append(("hardware.energy", value.to_dict()))
        elif f.name == "operating_points":
            tables.append(("hardware.operating_points", {"name": value.name, "points": value.to_list()}))
        else:
            lines.append(f"{f.name} = {_toml_value(value)}")
    if area is not None:
        data = area.to_dict()
        factors = data.pop("pe_factor")
        tables += [("hardware.area", data), ("hardware.area.pe_factor", factors)]
    for name, data in tables:
        lines += ["", f"[{name}]"] + [f"{k} = {_toml_value(v)}" for k, v in data.items()]
    return "\n".join(lines) + "\n"
