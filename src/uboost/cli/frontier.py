"""``uboost frontier`` and ``uboost export --target-latency-ms``: budget-exact projections of a search."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from uboost.cli._common import console, human
from uboost.exceptions import ConfigError

Opt = typer.Option


def _parse_targets(text: str) -> list[float]:
    values = []
    for part in text.split(","):
        try:
            values.append(float(part))
        except ValueError:
            raise ConfigError(f"--targets must be comma-separated milliseconds like 0.01,0.02, got {text!r}") from None
    return values


def export_to_budget(run: Path, target_latency_ms: float, out: Optional[Path], force: bool, floor: float = 0.9,
                     objective: str = "preference") -> None:
    """``uboost export RUN --target-latency-ms X --out DIR``."""
    from uboost.frontier import export_projection, load_projector
    from uboost.strategy.projection import check_budget, check_floor

    target = check_budget(target_latency_ms, "--target-latency-ms")
    floor = check_floor(floor, "--budget-floor")
    if out is None:
        raise ConfigError("--target-latency-ms writes a run directory: give it with --out DIR")
    source = load_projector(run, objective)
    projection = source.projector.project(target, floor=floor)
    row = export_projection(source, projection, out, target_ms=target, force=force)
    console.print(
        f"wrote {out}: {row['latency_ms']:.6g} ms ({row['cycles']:,.0f} cycles, {row['latency_ms'] / target:.1%} of the budget), "
        f"utilization {100 * row['utilization']:.1f}%, {row['distinct_choices']} choices differ from the search's argmax"
    )
    if "predicted_accuracy" in row:
        console.print(f"predicted accuracy {100 * row['predicted_accuracy']:.1f} ± {100 * row['predicted_accuracy_uncertainty']:.1f}%")
    console.print(f"next: [bold]uboost retrain {out}[/]")


def frontier(
    run: Annotated[Path, typer.Argument(help="a finished search run directory")],
    points: Annotated[int, Opt("--points", help="budgets evenly spaced from the cheapest to the unconstrained network")] = 5,
    targets: Annotated[Optional[str], Opt("--targets", help="explicit budgets in ms, comma-separated (instead of --points)")] = None,
    out: Annotated[Optional[Path], Opt("--out", help="where the point run directories go [default: RUN/frontier]")] = None,
    retrain_epochs: Annotated[int, Opt("--retrain-epochs", help="retrain every point for this many epochs (0: no retraining)")] = 0,
    max_samples: Annotated[Optional[int], Opt("--max-samples", help="retrain on at most this many images")] = None,
    budget_floor: Annotated[float, Opt("--budget-floor", help="each point uses at least this share of its budget where a network can (0: plain upper bounds)")] = 0.9,
    force: Annotated[bool, Opt("--force", help="replace an earlier frontier's point directories")] = False,
    objective: Annotated[str, Opt("--objective", help="each point maximizes the search's preference or the predicted-accuracy of `uboost predict RUN`")] = "preference",
) -> None:
    """Project one search onto many latency budgets: an accuracy-latency frontier from one search."""
    from rich.table import Table

    from uboost.frontier import frontier as run_frontier
    from uboost.frontier import frontier_targets, load_projector
    from uboost.strategy.projection import check_floor

    if retrain_epochs < 0:
        raise ConfigError(f"--retrain-epochs must be >= 0, got {retrain_epochs}")
    if max_samples is not None and max_samples < 1:
        raise ConfigError(f"--max-samples must be positive, got {max_samples}")
    floor = check_floor(budget_floor, "--budget-floor")
    wanted = _parse_targets(targets) if targets else None
    source = load_projector(run, objective)
    budgets = frontier_targets(source, points=points, targets=wanted)
    out = out or Path(run) / "frontier"
    rows = run_frontier(source, budgets, out, force=force, floor=floor)
    if retrain_epochs:
        from uboost.retrain import RetrainConfig, retrain

        for row in rows:
            result = retrain(row["run_dir"], RetrainConfig(epochs=retrain_epochs, max_samples=max_samples), progress=False)
            row["test_acc"] = result.summary()["test_acc"]
            _add_to_result(row["run_dir"], test_acc=row["test_acc"], retrain_epochs=retrain_epochs)
    table = Table(title=f"frontier of {run} on {source.config.array} {source.config.dataflow} ({source.config.cost_model})")
    for column in ("point", "budget µs", "latency µs", "cycles", "utilization", "MACs", "distinct choices", "log-prob"):
        table.add_column(column, justify="right")
    if source.predictor is not None:
        table.add_column("pred. acc", justify="right")
    if retrain_epochs:
        table.add_column("test acc", justify="right")
    for i, (target, row) in enumerate(zip(budgets, rows)):
        cells = [row["run_dir"].name, f"{1e3 * target:.4g}", f"{1e3 * row['latency_ms']:.4g}", f"{row['cycles']:,.0f}",
                 f"{100 * row['utilization']:.1f}%", human(row["macs"]), str(row["distinct_choices"]), f"{row['preference']:.2f}"]
        if source.predictor is not None:
            cells.append(f"{100 * row['predicted_accuracy']:.1f}%")
        if retrain_epochs:
            cells.append(f"{100 * row['test_acc']:.1f}%")
        table.add_row(*cells)
    console.print(table)
    _plot(out / "frontier.png", rows, retrain_epochs > 0, source)
    console.print(f"wrote {len(rows)} run directories and {out / 'frontier.png'}")


def _add_to_result(run_dir: Path, **values) -> None:
    from uboost import runs
    from uboost.io import write_json

    write_json(run_dir / runs.RESULT, {**runs.read_json(run_dir / runs.RESULT, "result"), **values})


def _plot(path: Path, rows: list[dict], with_accuracy: bool, source) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the plot is optional (pip install uboost[plot])
        return
    from uboost import runs
    from uboost.io import atomic_path

    runs.record(path.parent, path.name)  # uboost's own file: a later --force may replace it
    fig, ax = plt.subplots(figsize=(6, 4))
    latency_us = [1e3 * r["latency_ms"] for r in rows]
    if with_accuracy:
        ax.plot(latency_us, [100 * r["test_acc"] for r in rows], "o-")
        ax.set_ylabel("test accuracy (%)")
    else:
        ax.plot(latency_us, [r["preference"] for r in rows], "o-")
        ax.set_ylabel("search preference (sum of log-probabilities)")
    ax.set_xlabel(f"latency on {source.config.array} {source.config.dataflow} (µs, cycle-exact)")
    ax.set_title("frontier from one search")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
