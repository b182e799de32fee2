"""The accelerator a run is priced on, as a run directory keeps it.

A search's ``config.json`` must be enough to price its networks again later (``retrain``,
``export``, ``frontier``, ``profile RUN``), on the same accelerator, even after the files that
described it have moved. So :class:`~uboost.search.SearchConfig` stores its accelerator
*resolved*: the energy table and the DVFS table by preset name, or else as their full contents
(never as a path), and everything an accelerator file (``--hardware FILE``, see
:mod:`uboost.hardware.files`) says beyond the config's own fields in ``hardware`` (per-buffer SRAM
sizes, operand bits, GB/s bandwidth, the area table...).

:func:`config_changes` turns an accelerator file into SearchConfig fields; command-line options
are applied over them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from uboost.exceptions import ConfigError

# HardwareSpec fields a SearchConfig holds under its own names
OWN = {"rows": "array", "cols": "array", "dataflow": "dataflow", "batch_size": "inference_batch", "clock_hz": "clock_hz",
       "sram_kb": "sram_kb", "dram_bw_words": "dram_bw_words", "energy": "energy", "voltage_v": "voltage_v",
       "operating_points": "operating_points", "pe": "pe"}
NOT_SPEC = ("area",)


def stored_energy(value: Any) -> str | dict:
    """A preset name stays a name; a TOML file or a table becomes the table's fields."""
    from uboost.hardware.energy import PRESETS, EnergyTable, energy_table_from_dict, resolve_energy

    if isinstance(value, str) and value in PRESETS:
        return value
    if isinstance(value, dict):
        return energy_table_from_dict(value).to_dict()
    if isinstance(value, (str, Path, EnergyTable)):
        return resolve_energy(value).to_dict()
    raise ConfigError(f"energy must be a preset name, a TOML file or a table, got {value!r}")


def energy_table(value: str | dict):
    from uboost.hardware.energy import energy_table_from_dict, resolve_energy

    return energy_table_from_dict(value) if isinstance(value, dict) else resolve_energy(value)


def stored_points(value: Any) -> str | dict | None:
    """A preset name stays a name; a TOML file or a table becomes ``{"name", "points": [[f, V], ...]}``."""
    if value is None:
        return None
    from uboost.hardware.operating import PRESETS

    if isinstance(value, str) and value in PRESETS:
        return value
    table = points_table(value)
    return {"name": table.name, "points": table.to_list()}


def points_table(value: Any):
    """The :class:`~uboost.hardware.operating.OperatingPoints` of a stored (or given) value; None stays None."""
    if value is None:
        return None
    from uboost.hardware.operating import load_operating_points, operating_points_from_pairs

    if isinstance(value, dict):
        if not set(value) <= {"name", "points"} or "points" not in value:
            raise ConfigError(f"operating points must be {{name, points: [[freq_hz, voltage_v], ...]}}, got keys {sorted(value)}")
        return operating_points_from_pairs(value["points"], name=str(value.get("name", "")))
    if isinstance(value, (list, tuple)):
        return operating_points_from_pairs(value)
    return load_operating_points(value)


def spec_extras(hardware: dict | None) -> dict[str, Any]:
    """HardwareSpec fields from a config's ``hardware`` (the area table left out)."""
    return {k: v for k, v in (hardware or {}).items() if k not in NOT_SPEC}


def check_extras(hardware: Any) -> dict | None:
    """A config's ``hardware``: only what the config does not hold itself, JSON-ready (the area table as its fields)."""
    if hardware is None:
        return None
    import dataclasses

    from uboost.hardware.spec import HardwareSpec

    if not isinstance(hardware, dict):
        raise ConfigError(f"hardware must be a table of accelerator fields, got {type(hardware).__name__}")
    allowed = {f.name for f in dataclasses.fields(HardwareSpec)} - set(OWN) | set(NOT_SPEC)
    unknown = sorted(set(hardware) - allowed)
    if unknown:
        raise ConfigError(f"hardware: unknown or misplaced key(s) {', '.join(unknown)}; here: {', '.join(sorted(allowed))}"
                          " (the others are search settings: array, dataflow, sram_kb, ...)")
    out = {k: v for k, v in hardware.items() if v is not None}
    if "area" in out:
        from uboost.hardware.area import resolve_area

        out["area"] = resolve_area(out["area"]).to_dict()
    return out or None


def config_changes(fields: dict[str, Any]) -> dict[str, Any]:
    """SearchConfig fields for the accelerator described by ``fields`` (from
    :func:`uboost.hardware.files.read_hardware_file`): array, dataflow, ... and ``hardware`` for the rest.
    The file describes the whole accelerator: what it leaves out takes the accelerator defaults
    (unbounded memory, the default energy table, no DVFS table), not what a run had before."""
    import dataclasses

    from uboost.hardware.spec import HardwareSpec

    defaults = {f.name: f.default for f in dataclasses.fields(HardwareSpec)}
    changes: dict[str, Any] = {OWN[k]: defaults[k] for k in OWN if k not in ("rows", "cols")}
    changes.update(clock_hz=None, hardware=None)  # the clock: the file's, else its DVFS table's fastest, else 1 GHz
    extras: dict[str, Any] = {}
    for key, value in fields.items():
        if key in ("rows", "cols"):
            continue
        if key == "energy":
            changes["energy"] = stored_energy(value)
        elif key == "operating_points":
            changes["operating_points"] = stored_points(value)
        elif key == "area":  # resolved, as a stored config holds it (a preset name and its table compare equal)
            from uboost.hardware.area import resolve_area

            extras["area"] = resolve_area(value).to_dict()
        elif key in OWN:
            changes[OWN[key]] = value
        else:
            extras[key] = value
    changes["array"] = f"{fields.get('rows', defaults['rows'])}x{fields.get('cols', defaults['cols'])}"
    if extras:
        changes["hardware"] = extras
    return changes
