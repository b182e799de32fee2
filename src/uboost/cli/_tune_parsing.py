"""The text forms of `uboost tune`'s search-space options: ranges, choices and sizes."""

from __future__ import annotations

from typing import Optional

from uboost.exceptions import ConfigError, comma_items


def parse_float_range(text: str, what: str) -> tuple[float, float]:
    """``"0.01:10"`` -> ``(0.01, 10.0)``; ``"5"`` fixes the value."""
    parts = str(text).split(":")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ConfigError(f"{what} must look like LOW:HIGH (e.g. 0.01:10), got {text!r}") from None
    if len(values) == 1:
        values *= 2
    if len(values) != 2:
        raise ConfigError(f"{what} must look like LOW:HIGH (e.g. 0.01:10), got {text!r}")
    return values[0], values[1]


def parse_int_space(text: str, what: str) -> tuple[int, ...] | range:
    """``"8,16,32"`` -> choices; ``"8:64"`` / ``"8:64:8"`` -> an inclusive range (with a step)."""
    text = str(text).strip()
    try:
        if ":" in text:
            parts = [int(p) for p in text.split(":")]
            if len(parts) not in (2, 3):
                raise ValueError
            low, high, step = parts[0], parts[1], parts[2] if len(parts) == 3 else 1
            if low < 1 or high < low or step < 1:
                raise ConfigError(f"{what} range needs 1 <= LOW <= HIGH and STEP >= 1, got {text!r}")
            return range(low, high + 1, step)
        return tuple(int(p) for p in comma_items(text, what, "8,16,32"))
    except ConfigError:  # (a ValueError too) already says what is wrong
        raise
    except ValueError:
        raise ConfigError(f"{what} must be choices like 8,16,32 or a range LOW:HIGH[:STEP], got {text!r}") from None


def parse_choices(text: Optional[str], what: str, kind=int) -> Optional[tuple]:
    """``"8,16,32"`` -> ``(8, 16, 32)`` (positive ``kind`` values); ``None`` stays ``None``."""
    if text is None:
        return None
    items = comma_items(text, what, "8,16,32")
    try:
        values = tuple(kind(p) for p in items)
    except ValueError:
        raise ConfigError(f"{what} must be choices like 8,16,32, got {text!r}") from None
    if not values or any(not v > 0 for v in values):
        raise ConfigError(f"{what} must be positive sizes like 8,16,32, got {text!r}")
    return values
