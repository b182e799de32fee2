"""Tables with named presets (energy, area): one way to build one from a mapping (TOML, config.json)."""

from __future__ import annotations

from dataclasses import MISSING, fields, replace
from typing import Any

from uboost.exceptions import ConfigError, unknown_name


def table_from_dict(cls, presets: dict, data: dict[str, Any], *, source: str, kind: str):
    """A ``cls`` table from a mapping: every field without a default, or ``base = "<preset>"`` and the
    fields to change (a table-valued field, such as the area's ``pe_factor``, extends the preset's)."""
    names = [f.name for f in fields(cls)]
    data = dict(data)
    unknown = sorted(set(data) - set(names) - {"base"})
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}; expected: base, {', '.join(names)}")
    base = data.pop("base", None)
    if base is not None:
        if not isinstance(base, str):  # a list or table is unhashable: "in presets" would be a TypeError
            raise ConfigError(f"{source}: base must be a preset name ({', '.join(presets)}), got {base!r}")
        if base not in presets:
            raise unknown_name(f"{kind} preset", str(base), presets)
        start = presets[base]
        for key, value in data.items():
            if isinstance(value, dict) and isinstance(getattr(start, key), dict):
                data[key] = {**getattr(start, key), **value}
        data.setdefault("name", f"{base}+{source}")
        return replace(start, **data)
    missing = [f.name for f in fields(cls) if f.name not in data and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        raise ConfigError(f"{source}: missing key(s) {', '.join(missing)} (or give base = \"<preset>\" to start from one)")
    data.setdefault("name", source)
    try:
        return cls(**data)
    except TypeError as exc:
        raise ConfigError(f"{source}: {exc}") from None
