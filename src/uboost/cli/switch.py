"""``uboost switch``: the most accurate network of a frontier (or exits Pareto set) within a budget."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from uboost.cli._common import console
from uboost.tables import latency_text

Opt = typer.Option


def switch(
    frontier: Annotated[Path, typer.Argument(help="a `uboost frontier` directory (p00, p01, ...) or a `uboost exits` directory")],
    latency_ms: Annotated[Optional[float], Opt("--latency-ms", help="latency budget in ms")] = None,
    energy_uj: Annotated[Optional[float], Opt("--energy-uj", help="energy budget in µJ per input")] = None,
) -> None:
    """Pick the most accurate network of a frontier within a latency (and energy) budget."""
    from uboost.dynamic.switcher import Switcher, _budget

    _budget("latency", latency_ms), _budget("energy", energy_uj)  # checked before reading anything
    switcher = Switcher.from_directory(frontier)
    point = switcher.select(latency_ms=latency_ms, energy_uj=energy_uj)
    energy = f", {point.energy_uj:.6g} µJ" if point.energy_uj is not None else ""
    score = f"{100 * point.accuracy:.1f}%" if switcher.accuracy_name.endswith("accuracy") else f"{point.accuracy:.4g}"  # % as elsewhere
    console.print(f"{point.name}: {switcher.accuracy_name} {score}, {latency_text(point.latency_ms)}{energy}  ({point.source})")
