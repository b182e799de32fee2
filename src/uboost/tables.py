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


def layer_table(label: str, shape: tuple[int, ...], reports: list[NetworkCost]) -> Table:
    """Per-layer MACs, cycles and utilization of one network on one or more arrays."""
    from rich.table import Table

    first = reports[0]
    table = Table(
        title=f"{label}{' @ ' + 'x'.join(map(str, shape)) if shape else ''}, batch {first.spec.batch_size}, {first.model}, {first.spec.dataflow}",
        show_footer=True,
    )
    table.add_column("layer", footer="total", style="cyan", no_wrap=True)
    table.add_column("shape", footer=f"{len(first.layers)} layers", max_width=28)
    table.add_column("MACs", justify="right", footer=human(first.macs), no_wrap=True)
    for r in reports:
        table.add_column(f"cycles\n{r.spec.array}", justify="right", footer=human(r.cycles), no_wrap=True)
        table.add_column(f"util\n{r.spec.array}", justify="right", footer=f"{100 * r.utilization:.1f}%", no_wrap=True)
    for i, layer in enumerate(first.layers):
        row = [layer.layer.name, layer.layer.shape_text, human(layer.macs)]
        for r in reports:
            row += [human(r.layers[i].cycles), f"{100 * r.layers[i].utilization:.1f}%"]
        table.add_row(*row)
    return table


def write_layer_table(path: str | os.PathLike, report: NetworkCost, label: str) -> None:
    """``hardware.txt``: the per-layer cost table of a derived network, as text, written atomically
    (the same table ``uboost profile`` prints)."""
    from rich.console import Console

    from uboost.io import write_text

    buffer = io.StringIO()
    Console(file=buffer, width=140, color_system=None).print(layer_table(f"derived {label}", (), [report]))
    write_text(path, buffer.getvalue())
