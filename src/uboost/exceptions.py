"""One exception tree for uboost.

Every error a user can cause derives from :class:`UBoostError`; the CLI turns it into a
one-line red message and exit code 1. Messages say what was expected, what was given and,
where there is a fixed set, the valid choices.
"""

from __future__ import annotations

from collections.abc import Iterable


class UBoostError(Exception):
    """Base class of every user-facing uboost error."""


class ConfigError(UBoostError, ValueError):
    """A configuration value is invalid (bad array size, dataflow, option...)."""


class RegistryError(ConfigError, KeyError):
    """A name is not registered (cost model, search space, dataset)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class HardwareError(UBoostError):
    """A cost model cannot price a layer (e.g. outside a lookup table)."""


class DataError(UBoostError):
    """A dataset is missing, unreadable or of the wrong format."""


class ArchitectureError(UBoostError):
    """An exported architecture does not match the search space."""


class SearchError(UBoostError):
    """A search diverged (NaN loss) or cannot continue."""


class RunDirError(UBoostError):
    """A run directory is missing, incomplete, corrupt or would be overwritten."""


class Interrupted(UBoostError):
    """Ctrl-C, with work left resumable; the CLI exits 130 (128 + SIGINT) after its one line."""

    exit_code = 130


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> RegistryError:
    """The standard 'unknown X' error listing the valid choices."""
    valid = ", ".join(sorted(choices)) or "(none registered)"
    return RegistryError(f"unknown {kind} {name!r}; expected one of: {valid}")


def comma_items(text: str, what: str, example: str = "2,4,8") -> list[str]:
    """``"2, 4,8"`` -> ``["2", "4", "8"]``; a blank text -> ``[]`` (each caller says what it needs). An empty
    entry (``"2,,8"``, ``"4,8,"``, ``",4"``) is a ConfigError: a value left out, not one fewer choice."""
    text = str(text)
    if not text.strip():
        return []
    items = [p.strip() for p in text.split(",")]
    if "" in items:
        raise ConfigError(f"{what} has an empty entry in {text!r}; separate the values by single commas (e.g. {example})")
    return items
