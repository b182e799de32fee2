"""``uboost frontier`` and ``uboost export --target-latency-ms``: budget-exact projections of a search."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from uboost.cli._common import console, human, number_text
from uboost.tables import latency_text
from uboost.exceptions import ConfigError

Opt = typer.Option


def _parse_targets(text: str, metric: str = "latency") -> list[float]:
    values = []
    unit = "milliseconds like 0.01,0.02" if metric == "latency" else "microjoules like 1.5,2"
    for part in text.split(","):
        try:
            values.append(float(part))
        except ValueError:
            raise ConfigError(f"--targets must be comma-separated {unit}, got {text!r}") from None
    return values


def _check_point(operating_point: Optional[str]) -> bool:
    if operating_point not in (None, "auto"):
        raise ConfigError(f"--operating-point must be auto (or left out: the run's clock), got {operating_point!r}")
    return operating_point == "auto"


def _energy_text(row: dict, unit: str = " µJ") -> str:
    point = row.get("operating_point")
    at = f" at {point['freq_hz'] / 1e6:g} MHz, {1e3 * point['voltage_v']:g} mV" if point else ""
    return f"{number_text(row['energy_uj'])}{unit}{at}"


DEFAULT_FLOOR = 0.9
"""Share of each budget a projected network uses where one can (``--budget-floor``'s default)."""


def export_to_budget(run: Path, target_latency_ms: Optional[float], out: Optional[Path], force: bool, floor: float = DEFAULT_FLOOR,
                     target_energy_uj: Optional[float] = None, operating_point: Optional[str] = None,
                     hardware: Optional[Path] = None, objective: str = "preference") -> None:
    """``uboost export RUN --target-latency-ms X [--target-energy-uj E] [--operating-point auto] --out DIR``."""
    from uboost.frontier import export_projection, load_projector
    from uboost.strategy.projection import budgets_for, check_budget, check_floor

    target = None if target_latency_ms is None else check_budget(target_latency_ms, "--target-latency-ms")
    energy = None if target_energy_uj is None else check_budget(target_energy_uj, "--target-energy-uj", "µJ")
    floor = check_floor(floor, "--budget-floor")
    auto = _check_point(operating_point)
    if out is None:
        what = "a budget export" if target is not None or energy is not None else "an export at a chosen operating point"
        raise ConfigError(f"{what} writes a run directory: give it with --out DIR")
    source = load_projector(run, hardware, objective)
    projection = source.project(budgets_for(target, energy, floor), auto_point=auto)
    row = export_projection(source, projection, out, target_ms=target, target_uj=energy, force=force)
    share = f", {row['latency_ms'] / target:.1%} of the budget" if target else ""
    console.print(
        f"wrote {out}: {latency_text(row['latency_ms'])} ({row['cycles']:,.0f} cycles{share}), {_energy_text(row)}, "
        f"utilization {100 * row['utilization']:.1f}%, {row['distinct_choices']} choices differ from the search's argmax"
    )
    if "predicted_accuracy" in row:
        console.print(f"predicted accuracy {100 * row['predicted_accuracy']:.1f} ± {100 * row['predicted_accuracy_uncertainty']:.1f}%")
    console.print(f"next: [bold]uboost retrain {out}[/]")


def frontier(
    run: Annotated[Path, typer.Argument(help="a finished search run directory")],
    points: Annotated[Optional[int], Opt("--points", help="how many budgets, over --span [default: 5]")] = None,
    targets: Annotated[Optional[str], Opt("--targets", help="explicit budgets in ms (µJ with --metric energy), comma-separated (instead of --points)")] = None,
    span: Annotated[str, Opt("--span", help="what --points spans: search (evenly, cheapest to the search's argmax; with --objective predicted-accuracy, to the predictor's most accurate network) | space (geometrically, cheapest to the costliest network of the space: the whole trade-off)")] = "search",
    metric: Annotated[str, Opt("--metric", help="latency | energy: the budget swept")] = "latency",
    target_latency_ms: Annotated[Optional[float], Opt("--target-latency-ms", help="with --metric energy: every point also within this latency [default: none]")] = None,
    target_energy_uj: Annotated[Optional[float], Opt("--target-energy-uj", help="with --metric latency: every point also within this energy (µJ) [default: none]")] = None,
    operating_point: Annotated[Optional[str], Opt("--operating-point", help="auto: choose each point's operating point with its network [default: the run's clock]")] = None,
    out: Annotated[Optional[Path], Opt("--out", help="where the point run directories go [default: RUN/frontier]")] = None,
    retrain_epochs: Annotated[int, Opt("--retrain-epochs", help="retrain every point for this many epochs (0: no retraining)")] = 0,
    max_samples: Annotated[Optional[int], Opt("--max-samples", help="retrain on at most this many images")] = None,
    seed: Annotated[int, Opt("--seed", help="with --retrain-epochs: the retrains' seed (weight initialization and data order), as retrain's --seed")] = 0,
    budget_floor: Annotated[float, Opt("--budget-floor", help="each point uses at least this share of its budget where a network can (0: plain upper bounds)")] = DEFAULT_FLOOR,
    force: Annotated[bool, Opt("--force", help="replace an earlier frontier's point directories (and the retrains --retrain-epochs ran in them; never a retrain you ran in a point: move it away first)")] = False,
    resume: Annotated[bool, Opt("--resume", help="finish an interrupted --retrain-epochs frontier in --out: its points stay, those not yet retrained are (an interrupted retrain continues from its checkpoint)")] = False,
    hardware: Annotated[Optional[Path], Opt("--hardware", help="project on the accelerator this file describes (uboost TOML or SCALE-Sim .cfg) instead of the run's [default: the run's]")] = None,
    objective: Annotated[str, Opt("--objective", help="each point maximizes the search's preference or the predicted-accuracy of `uboost predict RUN`")] = "preference",
) -> None:
    """Project one search onto many latency budgets: an accuracy-latency frontier from one search.

    ``--metric energy`` sweeps energy budgets instead (µJ); ``--target-energy-uj`` /
    ``--target-latency-ms`` cap the other metric at every point."""
    from rich.table import Table

    from uboost.frontier import frontier as run_frontier
    from uboost.frontier import SPANS, frontier_targets, load_projector
    from uboost.strategy.projection import check_budget, check_floor

    if metric not in ("latency", "energy"):
        raise ConfigError(f"--metric must be latency or energy, got {metric!r}")
    if metric == "latency" and target_latency_ms is not None:
        raise ConfigError("--target-latency-ms caps an energy sweep (--metric energy); a latency sweep sets its own budgets")
    if metric == "energy" and target_energy_uj is not None:
        raise ConfigError("--target-energy-uj caps a latency sweep; an energy sweep (--metric energy) sets its own budgets")
    fixed_ms = None if target_latency_ms is None else check_budget(target_latency_ms, "--target-latency-ms")
    fixed_uj = None if target_energy_uj is None else check_budget(target_energy_uj, "--target-energy-uj", "µJ")
    auto = _check_point(operating_point)
    if points is not None and targets is not None:
        raise ConfigError("give the budgets once: --points (evenly spaced) or --targets (explicit), not both")
    if span not in SPANS:
        raise ConfigError(f"--span must be {' or '.join(SPANS)}, got {span!r}")
    if span != "search" and targets is not None:
        raise ConfigError("give the budgets once: --span with --points, or explicit --targets, not both")
    import shlex

    given = (("--points", points), ("--targets", targets), ("--span", None if span == "search" else span),
             ("--metric", None if metric == "latency" else metric),
             ("--target-latency-ms", target_latency_ms), ("--target-energy-uj", target_energy_uj),
             ("--operating-point", operating_point), ("--out", out), ("--retrain-epochs", retrain_epochs or None),
             ("--max-samples", max_samples), ("--seed", seed or None), ("--budget-floor", None if budget_floor == DEFAULT_FLOOR else budget_floor),
             ("--hardware", hardware), ("--objective", None if objective == "preference" else objective))
    again = " ".join(["uboost frontier", shlex.quote(str(run))] + [f"{k} {shlex.quote(str(v))}" for k, v in given if v is not None]
                     + ["--resume"])  # what finishes an interrupted retraining of the points
    points = 5 if points is None and targets is None else points

    if retrain_epochs < 0:
        raise ConfigError(f"--retrain-epochs must be >= 0, got {retrain_epochs}")
    if max_samples is not None and max_samples < 1:
        raise ConfigError(f"--max-samples must be positive, got {max_samples}")
    if max_samples is not None and not retrain_epochs:
        raise ConfigError("--max-samples limits the retraining of each point: give it with --retrain-epochs")
    if seed and not retrain_epochs:
        raise ConfigError("--seed seeds the retraining of each point: give it with --retrain-epochs")
    if seed < 0:
        raise ConfigError(f"--seed must be non-negative, got {seed}")
    floor = check_floor(budget_floor, "--budget-floor")
    wanted = _parse_targets(targets, metric) if targets is not None else None  # "" is an error, not --points
    source = load_projector(run, hardware, objective)
    budgets = frontier_targets(source, points=points, targets=wanted, metric=metric, span=span)
    asked = len(wanted) if wanted is not None else points
    if len(budgets) < asked:  # said, not silently fewer directories
        why = ("repeated budgets count once" if wanted is not None else
               "the search's argmax is already the cheapest network of its space, so every budget gives it "
               "(--span space runs the budgets up to the costliest network)" if span == "search"
               else "every network of the space costs the same")
        console.print(f"[yellow]note:[/] {len(budgets)} point{'s' if len(budgets) != 1 else ''}, not {asked}: {why}")
    out = out or Path(run) / "frontier"
    if resume and (force or not retrain_epochs):
        raise ConfigError("--resume finishes the retraining of an interrupted frontier: give it with --retrain-epochs, "
                          "without --force")
    plot = out / "frontier.png"
    from uboost import runs

    runs.refuse_foreign(out, [plot.resolve()])  # a file of the user's by that name: never replaced, --force or not
    if resume:
        rows = _made_points(out, source, budgets, metric)
    else:
        try:
            rows = run_frontier(source, budgets, out, force=force, floor=floor, metric=metric, target_ms=fixed_ms,
                                target_uj=fixed_uj, auto_point=auto)
        except KeyboardInterrupt:  # once writing began the folder is marked incomplete: the same command refuses it
            from uboost.exceptions import Interrupted

            if not any(out.glob("p[0-9]*")):  # still projecting: nothing written
                raise Interrupted("frontier interrupted before it wrote a point; run the same command again") from None
            raise Interrupted(f"frontier interrupted while writing its points in {out}; start over with the same command "
                              "and --force") from None
    if retrain_epochs:
        _retrain_points(rows, retrain_epochs, max_samples, resume, again, seed)
    table = Table(title=f"frontier of {run} on {source.config.array} {source.config.dataflow} ({source.config.cost_model})")
    budget_column = "budget µs" if metric == "latency" else "budget µJ"
    for column in ("point", budget_column, "latency µs", "energy µJ", "utilization", "MACs", "distinct choices", "log-prob"):
        table.add_column(column, justify="right")
    if source.predictor is not None:
        table.add_column("pred. acc", justify="right")
    if retrain_epochs:
        table.add_column("test acc", justify="right")
    for i, (target, row) in enumerate(zip(budgets, rows)):
        budget = number_text(1e3 * target) if metric == "latency" else number_text(target)
        cells = [row["run_dir"].name, budget, number_text(1e3 * row['latency_ms']), _energy_text(row, ""),
                 f"{100 * row['utilization']:.1f}%", human(row["macs"]), str(row["distinct_choices"]), f"{row['preference']:.2f}"]
        if source.predictor is not None:
            cells.append(f"{100 * row['predicted_accuracy']:.1f}%")
        if retrain_epochs:
            cells.append(f"{100 * row['test_acc']:.1f}%")
        table.add_row(*cells)
    console.print(table)
    why = runs.not_the_argmax(run)
    if why and span == "search" and targets is None:
        console.print(f"[yellow]note:[/] {why}; these points run from the cheapest network to the search's argmax "
                      "(0 choices differ): --targets projects to any budget (ms), --span space runs to the costliest network")
    drawn = _plot(out / "frontier.png", rows, retrain_epochs > 0, source, metric)
    console.print(f"wrote {len(rows)} run director{'y' if len(rows) == 1 else 'ies'}" + (f" and {out / 'frontier.png'}" if drawn else ""))


def _made_points(out: Path, source, budgets: list[float], metric: str) -> list[dict]:
    """The points an interrupted frontier made, as its rows; refused unless they are this command's."""
    from uboost import runs
    from uboost.exceptions import RunDirError

    runs.check_complete(out, "its points were not all written: start over with --force instead of --resume")
    rows = []
    key = "target_latency_ms" if metric == "latency" else "target_energy_uj"
    for i, budget in enumerate(budgets):
        point = out / f"p{i:02d}"
        if not (point / runs.RESULT).is_file():
            raise RunDirError(f"{point} is not a frontier point: nothing to resume in {out}; run without --resume")
        result = runs.read_json(point / runs.RESULT, "frontier point result")
        result = result if isinstance(result, dict) else {}
        made, origin = result.get(key), result.get("projected_from")
        if not isinstance(origin, str) or Path(origin).resolve() != Path(source.root).resolve() or \
                not isinstance(made, (int, float)) or abs(made - budget) > 1e-9 * max(abs(budget), 1e-30):
            raise RunDirError(f"the frontier in {out} was made from another search or for other budgets ({point.name}); "
                              "repeat its command with --resume, or start over with --force")
        rows.append({**result, "run_dir": point})
    return rows


def _retrain_points(rows: list[dict], epochs: int, max_samples, resume: bool, again: str, seed: int = 0) -> None:
    """Retrain every point at ``seed`` (with ``resume``: those without a test accuracy at ``epochs`` and ``seed``,
    an interrupted one from its checkpoint) and add ``test_acc`` to its result.json."""
    from uboost import runs
    from uboost.exceptions import Interrupted, RunDirError
    from uboost.retrain import RetrainConfig, interrupted_settings_changed, retrain

    config = RetrainConfig(epochs=epochs, max_samples=max_samples, seed=seed)
    # the points with an interrupted retrain (not one finished at other settings), each continued from its checkpoint
    continued = {row["run_dir"] for row in rows if resume and not (row["run_dir"] / runs.RETRAIN / "retrain.json").is_file()
                 and runs.latest_checkpoint(row["run_dir"] / runs.RETRAIN) is not None}
    for point in sorted(continued):  # before any point is retrained: one that cannot be continued refuses the resume
        changed = interrupted_settings_changed(point / runs.RETRAIN, config)
        if changed:
            raise RunDirError(f"{point.name}'s interrupted retrain ran at other settings ({', '.join(changed)}): "
                              f"--resume with its settings finishes the frontier; --force starts it over (nothing was changed)")
    for row in rows:
        point = row["run_dir"]
        if resume and row.get("retrain_epochs") == epochs and row.get("retrain_seed", 0) == seed and "test_acc" in row \
                and _retrained_on(point) == max_samples:
            continue  # retrained before the interruption, at these settings
        try:
            result = retrain(point, config, progress=False, resume=point in continued)
        except (Interrupted, KeyboardInterrupt):  # (a Ctrl-C before the retrain's own handler is as resumable)
            raise Interrupted(f"frontier retraining interrupted at {point.name}; finish every point with: {again}") from None
        finally:  # finished or stopped, it is the frontier's (its --force starts over, --resume continues it)
            _own_point_retrain(point)
        row["test_acc"] = result.summary()["test_acc"]
        _add_to_result(point, test_acc=row["test_acc"], retrain_epochs=epochs, retrain_seed=seed)


def _retrained_on(point: Path):
    """The ``max_samples`` a point's finished retrain trained on (None: every image), or ``"?"`` without one."""
    from uboost import runs

    info = point / runs.RETRAIN / "retrain.json"
    config = runs.read_json(info, "retrain result").get("config") if info.is_file() else None
    return config.get("max_samples") if isinstance(config, dict) else "?"


def _own_point_retrain(point: Path) -> None:
    """The retrain ``frontier --retrain-epochs`` ran in a point is part of the frontier (its owner the point's): a
    later ``frontier --force`` replaces it, and ``retrain POINT --force`` too; a retrain the user runs there afterwards
    is the user's, and ``frontier --force`` refuses to clear it."""
    from uboost import _manifest, runs
    from uboost._owners import EXPORT_RUN

    files, _, owners = _manifest.listing(point)
    retrain = runs.retrain_owner(point, point / runs.RETRAIN)
    ours = [f for f in files if owners.get(f) == retrain]
    if ours:
        _manifest.record(point, *ours, owner=EXPORT_RUN)


def _add_to_result(run_dir: Path, **values) -> None:
    from uboost import runs
    from uboost.io import write_json

    write_json(run_dir / runs.RESULT, {**runs.read_json(run_dir / runs.RESULT, "result"), **values})


def _plot(path: Path, rows: list[dict], with_accuracy: bool, source, metric: str = "latency") -> bool:
    """Draw the frontier into ``path``; False (said in one yellow line, as ``tune`` says it) without matplotlib."""
    from uboost.cli._common import not_drawn
    from uboost.plots import _pyplot

    try:
        plt = _pyplot()
    except ConfigError as exc:  # the plot is optional: the points are written
        not_drawn(path, exc)
        return False
    from uboost import runs
    from uboost.io import atomic_path

    from uboost._owners import EXPORT_RUN

    runs.record(path.parent, path.name, owner=EXPORT_RUN)  # the frontier's own file: its later --force may replace it
    fig, ax = plt.subplots(figsize=(6, 4))
    latency_us = [1e3 * r["latency_ms"] for r in rows] if metric == "latency" else [r["energy_uj"] for r in rows]
    if with_accuracy:
        ax.plot(latency_us, [100 * r["test_acc"] for r in rows], "o-")
        ax.set_ylabel("test accuracy (%)")
    else:
        ax.plot(latency_us, [r["preference"] for r in rows], "o-")
        ax.set_ylabel("search preference (sum of log-probabilities)")
    config = source.config  # the run's cost model, named: only some are cycle-exact
    ax.set_xlabel(f"latency on {config.array} {config.dataflow} (µs, {config.cost_model} cost model)" if metric == "latency"
                  else f"energy on {config.array} {config.dataflow} (µJ, {config.energy})")
    ax.set_title("frontier from one search")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return True
