"""The accelerator a network is priced on."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from uboost.exceptions import ConfigError

DATAFLOWS = ("ws", "os", "is")
"""Weight-, output- and input-stationary systolic dataflows."""


@dataclass(frozen=True, kw_only=True)
class HardwareSpec:
    """A systolic array of ``rows`` x ``cols`` processing elements and its memory system.

    ``rows`` holds the reduction dimension (im2col K) in weight-stationary mode and ``cols``
    the filters, as in SCALE-Sim. ``batch_size`` is the inference batch being priced,
    ``bits`` the operand width (used for memory traffic), ``mem_bw_gbps`` the off-chip
    bandwidth in GB/s (used by the roofline model).
    """

    rows: int = 128
    cols: int = 128
    dataflow: str = "ws"
    clock_hz: float = 1.0e9
    batch_size: int = 1
    bits: int = 8
    mem_bw_gbps: float = 100.0

    def __post_init__(self) -> None:
        for field in ("rows", "cols", "batch_size", "bits"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{field} must be a positive integer, got {value!r}")
        if self.dataflow not in DATAFLOWS:
            raise ConfigError(f"unknown dataflow {self.dataflow!r}; expected one of: {', '.join(DATAFLOWS)}")
        for field in ("clock_hz", "mem_bw_gbps"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{field} must be a positive finite number, got {value!r}")

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
