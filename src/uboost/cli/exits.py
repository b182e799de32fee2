"""``uboost exits``: early exits and DVFS for a retrained run (library: :mod:`uboost.dynamic`)."""

# No `from __future__ import annotations`: typer would eval every option's string annotation at start-up.
from pathlib import Path
from typing import Annotated, Optional

import typer

from uboost.cli._common import Flag, console, number_text, stop_on_sigterm
from uboost.exceptions import ConfigError, comma_items

Opt = typer.Option


def _floats(text: str, what: str) -> tuple[float, ...]:
    items = comma_items(text, what, "0.8,0.9")
    try:
        return tuple(float(p) for p in items)
    except ValueError:
        raise ConfigError(f"{what} must be comma-separated numbers like 0.8,0.9, got {text!r}") from None


@stop_on_sigterm
def exits(
    run: Annotated[Path, typer.Argument(help="a searched and retrained run directory (RUN/retrain/model.pt)")],
    positions: Annotated[Optional[str], Opt("--positions", help="exit positions: module names or indices, comma-separated (see --list) [default: after each cell/stage]")] = None,
    list_positions: Annotated[bool, Flag("--list", help="print the possible exit positions and exit")] = False,
    training: Annotated[str, Opt("--training", help="distill (frozen backbone, CE + distillation, HADAS) | joint (SDN)")] = "distill",
    epochs: Annotated[int, Opt(help="epochs of head training")] = 30,
    head_width: Annotated[int, Opt("--head-width", help="channels of each head's 3x3 convolution (0: pool + linear only; on the small CPU networks a conv head costs about as much as the backbone before it, RESULTS.md)")] = 0,
    head_pool: Annotated[int, Opt("--head-pool", help="each head average-pools its feature map to this grid side before the linear layer (1: global pooling, HADAS; 2: a 2x2 grid, which a narrow early feature map needs, RESULTS.md)")] = 2,
    thresholds: Annotated[Optional[str], Opt("--thresholds", help="candidate confidence thresholds in [0, 1], comma-separated [default: 0.5..0.999]")] = None,
    energy: Annotated[Optional[str], Opt("--energy", help="energy table: a preset (horowitz45, eyeriss65, gemmini16) or a TOML file [default: the run's own]")] = None,
    operating_points: Annotated[Optional[str], Opt("--operating-points", help="DVFS table searched: rk3576-npu, rk356x-gpu or a TOML file [default: the run's own, else rk3576-npu]")] = None,
    max_worst_latency_ms: Annotated[Optional[float], Opt("--max-worst-latency-ms", help="bound on the worst-case latency (full path + every kept head)")] = None,
    method: Annotated[str, Opt("--method", help="auto | exact (enumerate) | optuna (NSGA-II, journal in OUT, resumable)")] = "auto",
    trials: Annotated[int, Opt("--trials", help="optuna trials (this call)")] = 200,
    validation: Annotated[float, Opt("--validation", help="share of the training data held out to set thresholds")] = 0.2,
    max_samples: Annotated[Optional[int], Opt("--max-samples", help="use at most this many training images (never more than the retrain used) [default: the retrain's]")] = None,
    seed: Annotated[int, Opt(help="random seed (heads, validation split, search)")] = 0,
    onnx: Annotated[bool, Flag("--onnx", help="also write OUT/dynamic.onnx (every exit's logits as outputs; as `uboost export OUT --format onnx`, which also exports one point as per-segment graphs)")] = False,
    out: Annotated[Optional[Path], Opt(help="output directory [default: RUN/exits]")] = None,
    force: Annotated[bool, Flag("--force", help="replace exits trained in --out with other settings")] = False,
) -> None:
    """Attach early exits to a retrained run and search exits, thresholds and the operating point."""
    from uboost.dynamic.pipeline import ExitsConfig, prepare, run_exits

    config = ExitsConfig(
        positions=None if positions is None else tuple(comma_items(positions, "--positions", "0,2")),
        training=training, epochs=epochs, head_width=head_width, head_pool=head_pool, energy=energy, operating_points=operating_points,
        grid=_floats(thresholds, "--thresholds") if thresholds is not None else ExitsConfig().grid,
        max_worst_latency_ms=max_worst_latency_ms, method=method, trials=trials, validation=validation,
        max_samples=max_samples, seed=seed,
    )
    if list_positions:
        from uboost.dynamic.pipeline import list_positions as listing

        _print_positions(run, listing(run))
        return
    prepared = prepare(run, config, out=out)
    with console.status(f"training {len(prepared.positions)} exit heads ({training}), searching policies on validation data"):
        summary = run_exits(run, config, prepared=prepared, onnx=onnx, force=force)
    console.print(_table(summary))
    static = max(summary["static_test"], key=lambda r: r["freq_hz"])
    console.print(f"static network at {static['freq_hz'] / 1e6:g} MHz: test accuracy {100 * static['accuracy']:.1f}%, "
                  f"{number_text(1e3 * static['expected_latency_ms'])} µs, {number_text(static['expected_energy_uj'])} µJ per input")
    console.print(f"wrote {prepared.out}/exits.json, heads.pt and {len(summary['pareto'])} polic{'y' if len(summary['pareto']) == 1 else 'ies'} in {prepared.out}/points"
                  + (", pareto.png" if "plot" in summary else "") + (", dynamic.onnx" if "onnx" in summary else ""))


def _print_positions(run, positions) -> None:
    from rich.table import Table

    table = Table(title=f"exit positions of {run}")
    for column in ("index", "module", "kind", "feature C x H x W", "costed layers after", "default"):
        table.add_column(column)
    for i, (p, default) in enumerate(positions):
        table.add_row(str(i), p.name, p.kind, "x".join(map(str, p.feature_shape)), str(p.costed_after), "yes" if default else "")
    console.print(table)


def _val_test(point: dict, key: str, scale: float) -> str:
    """``"0.6519 / 0.6484"``: a point's expectation on validation data (what ``switch`` budgets on) and on test data."""
    value = point.get(key)
    val = "-" if value is None else number_text(scale * value)
    test = point.get(f"test_{key}")
    return val if test is None else f"{val} / {number_text(scale * test)}"


def _table(summary: dict):
    from rich.table import Table

    names = [p["name"] for p in summary["positions"]]
    table = Table(title=f"Pareto points: {len(summary['pareto'])} of {summary['candidates']} candidates "
                        f"(accuracy up, expected energy and latency down; thresholds set on validation data, "
                        f"and `uboost switch` budgets on the validation expectations)")
    for column in ("point", "thresholds (" + ", ".join(names) + ")", "MHz", "mV", "val acc", "test acc", "test exit shares",
                   "E[energy] µJ val / test", "E[latency] µs val / test", "worst µs"):
        table.add_column(column, justify="right")
    for i, p in enumerate(summary["pareto"]):
        table.add_row(
            f"p{i:02d}", ", ".join("-" if t is None else f"{t:g}" for t in p["thresholds"]), f"{p['freq_hz'] / 1e6:g}",
            f"{p['voltage_v'] * 1e3:g}", f"{100 * p['accuracy']:.1f}%", f"{100 * p['test_accuracy']:.1f}%",
            " ".join(f"{100 * s:.0f}" for s in p["test_shares"]), _val_test(p, "expected_energy_uj", 1.0),
            _val_test(p, "expected_latency_ms", 1e3), number_text(1e3 * p['worst_latency_ms']),
        )
    return table
