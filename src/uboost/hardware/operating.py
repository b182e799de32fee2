"""Operating points: the (frequency, voltage) pairs a chip's DVFS table allows.

A table is :class:`OperatingPoints`, sorted by frequency, voltages not falling as the frequency
rises. Running at a frequency ``f`` needs the voltage of the slowest point at or above ``f``
(:meth:`OperatingPoints.voltage_at`), as a DVFS governor picks it. Presets (:data:`PRESETS`) hold
published tables; :func:`load_operating_points` reads a preset name or a TOML file::

    points = [[600e6, 0.725], [700e6, 0.775]]      # [freq_hz, voltage_v] pairs, or
    [[point]]                                        # an array of tables
    freq_hz = 600e6
    voltage_v = 0.725

Pure Python (no torch): the CLI validates a table before it imports anything heavy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from uboost.exceptions import ConfigError, unknown_name

if TYPE_CHECKING:
    from uboost.hardware.spec import HardwareSpec


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


MIN_FREQ_HZ = 1e3  # below, a clock is surely MHz or GHz written as Hz
VOLTAGE_RANGE_V = (0.1, 5.0)  # open interval: outside it a supply is surely mV written as V (or no CMOS supply)


def voltage_out_of_range(voltage_v: float) -> bool:
    return not VOLTAGE_RANGE_V[0] < voltage_v < VOLTAGE_RANGE_V[1]


@dataclass(frozen=True, kw_only=True)
class OperatingPoint:
    """One DVFS point: the array clock in Hz and the supply voltage in V."""

    freq_hz: float
    voltage_v: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "freq_hz", _positive("freq_hz", self.freq_hz))
        object.__setattr__(self, "voltage_v", _positive("voltage_v", self.voltage_v))
        if self.freq_hz < MIN_FREQ_HZ or voltage_out_of_range(self.voltage_v):
            raise ConfigError(f"operating point {self.freq_hz:g} Hz @ {self.voltage_v:g} V is out of range (clock at least "
                              f"{MIN_FREQ_HZ:g} Hz, voltage {VOLTAGE_RANGE_V[0]:g} to {VOLTAGE_RANGE_V[1]:g} V): "
                              "points are [freq_hz, voltage_v]; did you give MHz/mV?")

    @property
    def label(self) -> str:
        return f"{self.freq_hz / 1e6:g} MHz @ {self.voltage_v * 1e3:g} mV"


@dataclass(frozen=True, kw_only=True)
class OperatingPoints:
    """A DVFS table: points sorted by strictly rising frequency, voltage never falling."""

    points: tuple[OperatingPoint, ...]
    name: str = ""

    def __post_init__(self) -> None:
        points = tuple(self.points)
        if not points:
            raise ConfigError("an operating-point table needs at least one (freq_hz, voltage_v) point")
        if not all(isinstance(p, OperatingPoint) for p in points):
            raise ConfigError("operating points must be OperatingPoint objects (use operating_points_from_pairs)")
        for a, b in zip(points, points[1:]):
            if b.freq_hz <= a.freq_hz:
                raise ConfigError(
                    f"operating points must be sorted by rising frequency without repeats: {a.label} is followed by {b.label}"
                )
            if b.voltage_v < a.voltage_v:
                raise ConfigError(f"voltage must not fall as frequency rises: {a.label} is followed by {b.label}")
        object.__setattr__(self, "points", points)

    def __iter__(self):
        return iter(self.points)

    def __len__(self) -> int:
        return len(self.points)

    def voltage_at(self, freq_hz: float) -> float:
        """Voltage of the slowest point that runs at ``freq_hz`` or faster; above the table, an error."""
        for p in self.points:
            if p.freq_hz >= freq_hz * (1 - 1e-12):
                return p.voltage_v
        raise ConfigError(
            f"clock {freq_hz / 1e6:g} MHz is above the fastest operating point ({self.points[-1].label})"
            + (f" of {self.name}" if self.name else "")
        )

    def to_list(self) -> list[list[float]]:
        return [[p.freq_hz, p.voltage_v] for p in self.points]


def operating_points_from_pairs(pairs: Any, *, name: str = "") -> OperatingPoints:
    """``[(freq_hz, voltage_v), ...]`` (or dicts with those keys) as a validated table."""
    if isinstance(pairs, (str, bytes)) or not hasattr(pairs, "__iter__"):
        raise ConfigError(f"operating points must be a list of [freq_hz, voltage_v] pairs, got {pairs!r}")
    points = []
    for item in pairs:
        if isinstance(item, dict):
            keys = set(item)
            if keys != {"freq_hz", "voltage_v"}:
                missing, unknown = {"freq_hz", "voltage_v"} - keys, keys - {"freq_hz", "voltage_v"}
                raise ConfigError(
                    "an operating point needs exactly the keys freq_hz and voltage_v"
                    + (f"; missing: {', '.join(sorted(missing))}" if missing else "")
                    + (f"; unknown: {', '.join(sorted(unknown))}" if unknown else "")
                )
            points.append(OperatingPoint(freq_hz=item["freq_hz"], voltage_v=item["voltage_v"]))
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            points.append(OperatingPoint(freq_hz=item[0], voltage_v=item[1]))
        else:
            raise ConfigError(f"an operating point must be a [freq_hz, voltage_v] pair, got {item!r}")
    return OperatingPoints(points=tuple(points), name=name)


def _mhz_mv(name: str, pairs: list[tuple[float, float]]) -> OperatingPoints:
    return operating_points_from_pairs([(mhz * 1e6, mv / 1000) for mhz, mv in pairs], name=name)


PRESETS: dict[str, OperatingPoints] = {
    # Rockchip RK3576 NPU OPP table (device tree), as quoted in the project's REFERENCES section 5:
    # 600 MHz @ 725 mV ... 900 MHz @ 850 mV.
    "rk3576-npu": _mhz_mv("rk3576-npu", [(600, 725), (700, 775), (800, 800), (900, 850)]),
    # Rockchip RK356x GPU OPP table (device tree), REFERENCES section 5: a voltage floor of 825 mV
    # from 200 to 600 MHz, then 900 mV at 700 MHz and 1000 mV at 800 MHz.
    "rk356x-gpu": _mhz_mv(
        "rk356x-gpu", [(200, 825), (300, 825), (400, 825), (500, 825), (600, 825), (700, 900), (800, 1000)]
    ),
}
"""Published DVFS tables by name."""


def load_operating_points(source: str | Path | OperatingPoints) -> OperatingPoints:
    """A preset name, a TOML file (``points = [[f, V], ...]`` or ``[[point]]`` tables), a list of
    ``[freq_hz, voltage_v]`` pairs or a table."""
    if isinstance(source, OperatingPoints):
        return source
    if isinstance(source, (list, tuple)):  # [[freq_hz, voltage_v], ...], as a TOML file's points
        return operating_points_from_pairs(source)
    text = str(source)
    if text in PRESETS:
        return PRESETS[text]
    path = Path(text)
    if path.suffix.lower() != ".toml" and not path.exists():
        raise unknown_name("operating-point preset", text, PRESETS)
    data = read_toml(path, what="operating-point table")
    keys = set(data)
    if len(keys) != 1 or not keys <= {"points", "point"}:
        raise ConfigError(
            f"{path}: an operating-point file holds one key, 'points' (a list of [freq_hz, voltage_v] pairs) "
            f"or '[[point]]' tables; got {', '.join(sorted(keys)) or 'nothing'}"
        )
    try:
        return operating_points_from_pairs(data[keys.pop()], name=path.stem)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def read_toml(path: Path, *, what: str) -> dict:
    """Parse a TOML file; a missing or malformed file is a :class:`ConfigError` naming ``what``."""
    import tomllib

    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc}") from None


def at_point(spec: "HardwareSpec", point: OperatingPoint) -> "HardwareSpec":
    """``spec`` run at ``point``: its clock and voltage replaced (everything else kept)."""
    return replace(spec, clock_hz=point.freq_hz, voltage_v=point.voltage_v)
