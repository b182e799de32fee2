"""``uboost predict``: predicted accuracy of a network of a run's space, before any retraining."""

# No `from __future__ import annotations`: typer would eval every option's string annotation at start-up.
from pathlib import Path
from typing import Annotated, Optional

import typer

from uboost.cli._common import Flag, console, human, number_text, stop_on_sigterm

Opt = typer.Option


@stop_on_sigterm
def predict(
    run: Annotated[Path, typer.Argument(help="a finished search run directory (with its supernet checkpoint)")],
    arch: Annotated[Optional[Path], Opt("--arch", help="an architecture of the run's space: an arch.json or a run directory holding one [default: the search's argmax]")] = None,
    samples: Annotated[Optional[int], Opt("--samples", help="sub-networks measured to build the predictor [default: 120]")] = None,
    fine_tune_epochs: Annotated[Optional[int], Opt("--fine-tune-epochs", help="epochs of uniform sub-network training of the supernet's weights before measuring [default: 1]")] = None,
    seed: Annotated[Optional[int], Opt("--seed", help="seed of the sampled sub-networks, the fine-tuning and the recalibration batch [default: 0]")] = None,
    rebuild: Annotated[bool, Flag("--rebuild", help="build the predictor again even if RUN/predictor.json exists (needed to replace it with one built at other --samples, --seed or --fine-tune-epochs)")] = False,
    as_json: Annotated[bool, Flag("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Predict a network's accuracy from the run's supernet, with its exact latency on the run's array."""
    from uboost.exceptions import ConfigError
    from uboost.predict.network import predict_run

    if samples is not None and samples < 2:
        raise ConfigError(f"--samples must be an integer >= 2, got {samples}")
    if seed is not None and seed < 0:
        raise ConfigError(f"--seed must be non-negative, got {seed}")
    if fine_tune_epochs is not None and fine_tune_epochs < 0:
        raise ConfigError(f"--fine-tune-epochs must be non-negative, got {fine_tune_epochs}")
    with _progress(not as_json) as progress:
        row = predict_run(run, arch, rebuild=rebuild, samples=samples, seed=seed,
                          fine_tune_epochs=fine_tune_epochs, progress=progress)
    if as_json:
        from uboost.io import dumps_json

        typer.echo(dumps_json(row))
        return
    console.print(_table(row))
    if arch is None:
        from uboost.runs import not_the_argmax

        why = not_the_argmax(run)
        if why:
            console.print(f"[yellow]note:[/] this is the search's argmax; {why}: predict it with --arch {run}")
    made = row["predictor"]
    how = f"built now in {made['seconds']:.{0 if made['seconds'] >= 10 else 1}f} s" if made["built_now"] else f"loaded from {Path(run) / 'predictor.json'}"
    samples, epochs = made["samples"], made["fine_tune_epochs"]
    console.print(f"predictor: {samples} sub-network{'' if samples == 1 else 's'} measured with inherited weights "
                  f"(seed {made['seed']}, {epochs} uniform fine-tune epoch{'' if epochs == 1 else 's'}), "
                  f"leave-one-out error ±{100 * made['loo_rmse']:.1f} points; {how}")
    if row["unseen_values"]:
        console.print(f"[yellow]no measured sub-network had its value of {', '.join(row['unseen_values'][:4])}: "
                      "that part of the prediction is the base network's (rebuild with more --samples)[/]")


def _table(row: dict):
    from rich.table import Table

    table = Table(title=f"{row['network']} of {row['run']} on {row['array']} {row['dataflow']} ({row['cost_model']})")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("predicted accuracy (supernet, validation split)",
                  f"{100 * row['predicted_accuracy']:.1f} ± {100 * row['uncertainty']:.1f}%")
    table.add_row("latency (cycle-exact)", f"{number_text(1e3 * row['latency_ms'])} µs")
    table.add_row("cycles", f"{row['cycles']:,.0f}")
    table.add_row("utilization", f"{100 * row['utilization']:.1f}%")
    table.add_row("MACs", human(row["macs"]))
    if "energy_uj" in row:
        table.add_row("energy", f"{number_text(row['energy_uj'])} µJ")
    return table


class _progress:
    """A Rich progress bar while the predictor measures sub-networks (nothing when loaded or ``--json``)."""

    def __init__(self, shown: bool) -> None:
        self.shown, self.bar, self.task = shown, None, None

    def __enter__(self):
        return self.update

    def update(self, done: int, total: int) -> None:
        if not self.shown:
            return
        if self.bar is None:
            from rich.progress import Progress

            self.bar = Progress(console=console.get_console(), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("measuring sub-networks", total=total)
        self.bar.update(self.task, completed=done)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()
