"""Rich tables of cost reports, shared by the CLI and the files a run writes (``hardware.txt``).

Library code with no CLI import: ``uboost.runs`` and ``uboost.cli.profile`` both use it.
"""

from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from rich.table import Table

    from uboost.hardware import NetworkCost


def human(n: float) -> str:
    """``1234567`` -> ``1.23M``."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:.0f}" if float(n).is_integer() else f"{n:.2f}"


def latency_text(ms: float) -> str:
    """A latency in the unit that shows it: ``0.000419`` ms -> ``0.419 µs``, ``12.5`` -> ``12.5 ms``,
    ``12345`` -> ``12.35 s`` (4 digits)."""
    if abs(ms) < 1:
        return f"{number_text(ms * 1e3)} µs"
    return f"{number_text(ms / 1e3)} s" if abs(ms) >= 1000 else f"{number_text(ms)} ms"  # (NaN: "nan ms")


def edp_text(uj_ms: float) -> str:
    """An energy-delay product in the unit that shows it: ``0.001329`` uJ*ms -> ``1.329 uJ*us``, ``2.5`` -> ``2.5 uJ*ms``."""
    return f"{number_text(uj_ms * 1e3)} µJ*µs" if abs(uj_ms) < 1 else f"{number_text(uj_ms)} µJ*ms"


def layer_table(label: str, shape: tuple[int, ...], reports: list[NetworkCost], *, detail: bool = True) -> Table:
    """Per-layer MACs, cycles, utilization and energy (µJ) of one network on one or more arrays.

    With ``detail`` (the default) one report also gets the words moved (SRAM and DRAM) and the
    energy split into MAC, SRAM, DRAM and leakage; otherwise, or with several reports, the total
    energy per array.
    """
    from rich.table import Table

    first = reports[0]
    single = len(reports) == 1 and detail
    table = Table(
        title=f"{label}{' @ ' + 'x'.join(map(str, shape)) if shape else ''}, batch {first.spec.batch_size}, {first.model}, "
        f"{first.spec.dataflow}{'' if first.spec.pe == 'fixed' else f', {first.spec.pe} PEs'}, "
        f"{first.spec.energy.name} at {first.spec.voltage:g} V",
        show_footer=True,
    )
    table.add_column("layer", footer="total", style="cyan", no_wrap=True)
    table.add_column("shape", footer=f"{len(first.layers)} layers", max_width=28)
    table.add_column("MACs", justify="right", footer=human(first.macs), no_wrap=True)
    for r in reports:
        table.add_column(f"cycles\n{r.spec.array}", justify="right", footer=human(r.cycles), no_wrap=True)
        table.add_column(f"util\n{r.spec.array}", justify="right", footer=f"{100 * r.utilization:.1f}%", no_wrap=True)
        if not single:
            table.add_column(f"µJ\n{r.spec.array}", justify="right", footer=_uj(r.energy_uj), no_wrap=True)
    if single:
        words = first.words
        table.add_column("SRAM\nwords", justify="right", footer=human(_sram_words(words)), no_wrap=True)
        table.add_column("DRAM\nwords", justify="right", footer=human(_dram_words(words)), no_wrap=True)
        parts = first.energy_breakdown_uj
        for key, head in ENERGY_COLUMNS:
            table.add_column(f"{head}\nµJ", justify="right", footer=_uj(parts.get(key, 0.0)), no_wrap=True)
        table.add_column("energy\nµJ", justify="right", footer=_uj(first.energy_uj), no_wrap=True)
    for i, layer in enumerate(first.layers):
        row = [layer.layer.name, layer.layer.shape_text, human(layer.macs)]
        for r in reports:
            row += [human(r.layers[i].cycles), f"{100 * r.layers[i].utilization:.1f}%"]
            if not single:
                row.append(_uj(r.layers[i].total_energy_uj))
        if single:
            row += [human(_sram_words(layer.words)), human(_dram_words(layer.words))]
            row += [_uj(layer.energy_uj.get(key, 0.0)) for key, _ in ENERGY_COLUMNS]
            row.append(_uj(layer.total_energy_uj))
        table.add_row(*row)
    return table


ENERGY_COLUMNS = (("mac", "MAC"), ("sram", "SRAM"), ("dram", "DRAM"), ("leakage", "leak"))


def _uj(value: float) -> str:
    return number_text(value, 3) if value < 1000 else human(value)


def _sram_words(words: dict[str, float]) -> float:
    return sum(v for k, v in words.items() if "_sram_" in k)


def _dram_words(words: dict[str, float]) -> float:
    return sum(v for k, v in words.items() if "_dram_" in k)


def number_text(value: float, digits: int = 4) -> str:
    """``digits`` significant digits, never in scientific notation: 18,750 rather than 1.875e+04, 0.0000928 rather
    than 9.28e-05 (trailing zeros dropped)."""
    import math

    value = float(value)
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    if abs(value) >= 10 ** digits:
        return f"{value:,.0f}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def mhz_text(hz: float) -> str:
    """A clock in MHz, without scientific notation (``1,000,000 MHz``, not ``1e+06``)."""
    return number_text(hz / 1e6, 6)


def energy_summary(report: NetworkCost) -> str:
    """One line: energy (with its split), EDP and average power of a report."""
    parts = report.energy_breakdown_uj
    total = report.energy_uj or 1.0
    split = ", ".join(f"{head} {100 * parts.get(key, 0.0) / total:.0f}%" for key, head in ENERGY_COLUMNS)
    return (
        f"{number_text(report.energy_uj)} µJ ({split}), EDP {edp_text(report.edp_uj_ms)}, {number_text(report.power_mw)} mW "
        f"at {mhz_text(report.spec.clock_hz)} MHz, {report.spec.voltage:g} V ({report.spec.energy.name})"
    )


def write_layer_table(path: str | os.PathLike, report: NetworkCost, label: str) -> None:
    """``hardware.txt``: the per-layer cost table of a derived network, as text, written atomically
    (the same table ``uboost profile`` prints)."""
    from rich.console import Console

    from uboost.io import write_text

    table = layer_table(f"derived {label}", (), [report])
    # as wide as the table wants: a fixed 140 columns shrank darts-cifar's shape column to "sha…" / "3x8…"
    width = Console(file=io.StringIO(), width=100_000).measure(table).maximum
    buffer = io.StringIO()
    Console(file=buffer, width=max(80, width), color_system=None).print(table)
    write_text(path, buffer.getvalue())
