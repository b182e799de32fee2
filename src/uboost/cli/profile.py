"""``uboost profile`` and the ``uboost hw`` group (``hw list``: :mod:`uboost.cli.listings`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from uboost.cli.hw_scalesim import model_options, setup_scalesim, simulation_progress, tabulate
from uboost.cli._common import console, parse_shape, unique
from uboost.cli.listings import hw_list

hw_app = typer.Typer(help="Inspect the registered hardware cost models.", invoke_without_command=True, rich_markup_mode=None)


@hw_app.callback()
def _hw_root(ctx: typer.Context) -> None:
    """Inspect the registered hardware cost models."""
    if ctx.invoked_subcommand is None:  # bare `uboost hw`: the help, and success (as bare `uboost`)
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


hw_app.command("tabulate")(tabulate)
hw_app.command("setup-scalesim")(setup_scalesim)
hw_app.command("list")(hw_list)


def profile(
    model: Annotated[str, typer.Argument(help="torchvision name (resnet18, mobilenet_v2, ...), module:factory, a run directory or arch.json")],
    array: Annotated[Optional[list[str]], typer.Option("--array", "-a", help="ROWSxCOLS; repeat to compare arrays")] = None,
    dataflow: Annotated[str, typer.Option(help="ws, os or is")] = "ws",
    batch: Annotated[int, typer.Option(help="inference batch size")] = 1,
    input: Annotated[Optional[str], typer.Option("--input", help="input shape CxHxW (default: the model's own)")] = None,
    cost_model: Annotated[str, typer.Option("--cost-model", help="a name from `uboost hw list`")] = "systolic",
    clock_hz: Annotated[float, typer.Option("--clock-hz", help="array clock for latency")] = 1e9,
    sram_kb: Annotated[Optional[int], typer.Option("--sram-kb", help="size of each SRAM buffer (ifmap, filter, ofmap) in kB [default: unbounded]")] = None,
    dram_bw_words: Annotated[Optional[float], typer.Option("--dram-bw-words", help="DRAM bandwidth in words (bytes) per cycle per port [default: unbounded]")] = None,
    table_file: Annotated[Optional[Path], typer.Option("--table", help="CSV of cycles for --cost-model lookup")] = None,
    pe: Annotated[str, typer.Option(help="processing elements: fixed | bitfusion | bit-serial")] = "fixed",
    bits: Annotated[Optional[int], typer.Option(help="price every layer's weights and activations at this width [default: the network's own: a run's precision.json, else 8]")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
    plot: Annotated[Optional[Path], typer.Option(help="write a per-layer utilization PNG")] = None,
) -> None:
    """Per-layer MACs, cycles and utilization of a network on one or more systolic arrays."""
    from uboost.hardware import HardwareSpec, extract_layers, parse_array, resolve
    from uboost.networks import load_network_or_run
    from uboost.tables import layer_table

    loaded = load_network_or_run(model)
    shape = parse_shape(input) if input else loaded.input_shape
    if shape is None:
        from uboost.exceptions import ConfigError

        raise ConfigError(f"{model} has no known input shape: pass --input CxHxW")
    specs = [
        HardwareSpec(rows=r, cols=c, dataflow=dataflow, batch_size=batch, clock_hz=clock_hz, sram_kb=sram_kb, dram_bw_words=dram_bw_words, pe=pe)
        for r, c in (parse_array(a) for a in unique(array or ["128x128"]))
    ]
    if bits is not None:
        from uboost.quant import check_bits

        check_bits(bits, "--bits")
    layers = extract_layers(loaded.module, shape)
    if bits is not None:  # every layer at --bits, whatever the network's own
        from dataclasses import replace

        layers = [replace(layer, weight_bits=bits, act_bits=bits) for layer in layers]
    extra = {"table": table_file} if table_file is not None else {}
    with simulation_progress(f"SCALE-Sim {model}") as progress:  # drawn only if a model simulates
        extra.update(model_options(cost_model, progress))
        reports = [resolve(cost_model, spec=spec, **extra).evaluate(layers) for spec in specs]
    if as_json:
        typer.echo(json.dumps({"model": loaded.label, "input_shape": list(shape), "reports": [r.to_dict() for r in reports]}, indent=2))
    else:
        console.print(layer_table(loaded.label, shape, reports))
        for r in reports:
            console.print(
                f"[bold]{r.spec.array}[/] {r.spec.dataflow}: {r.cycles:,.0f} cycles = {r.latency_ms:.4f} ms "
                f"at {r.spec.clock_hz / 1e6:g} MHz, utilization {100 * r.utilization:.1f}%"
            )
    if plot is not None:
        from uboost.exceptions import RunDirError
        from uboost.plots import utilization_per_layer

        if plot.is_dir():
            raise RunDirError(f"--plot {plot} is a directory; give a file name, e.g. {plot / 'utilization.png'}")
        try:
            utilization_per_layer(
                plot,
                [l.name for l in layers],
                {f"{r.spec.array} {r.spec.dataflow}": [l.utilization for l in r.layers] for r in reports},
                title=f"{loaded.label}: utilization per layer ({cost_model})",
            )
        except OSError as exc:
            raise RunDirError(f"cannot write {plot}: {exc.strerror or exc}") from None
        if not as_json:
            console.print(f"wrote {plot}")
