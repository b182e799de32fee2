"""``uboost profile`` and the ``uboost hw`` group (``hw list``: :mod:`uboost.cli.listings`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from uboost.cli.hw_scalesim import model_options, setup_scalesim, simulation_progress, tabulate
from uboost.cli._common import check_output_file, console, parse_shape, unique
from uboost.cli.listings import hw_list
from uboost import runs

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


def _area(spec, table, breakdown, why: list | None = None) -> dict | None:
    """The accelerator's area in mm² by part; None where it has none (unbounded SRAM, or a PE mode
    the area table has no figure for), the reason appended to ``why`` when given."""
    from uboost.exceptions import ConfigError

    try:
        return breakdown(spec, table)
    except ConfigError as exc:
        if why is not None:
            why.append(f"no area for {spec.array} ({table.name}): {exc}")
        return None


def profile(
    model: Annotated[str, typer.Argument(help="torchvision name (resnet18, mobilenet_v2, ...), module:factory, a run directory or arch.json")],
    array: Annotated[Optional[list[str]], typer.Option("--array", "-a", help="ROWSxCOLS; repeat to compare arrays [default: a run's own array, else 128x128]")] = None,
    dataflow: Annotated[Optional[str], typer.Option(help="ws, os or is [default: a run's own, else ws]")] = None,
    batch: Annotated[Optional[int], typer.Option(help="inference batch size [default: a run's own, else 1]")] = None,
    input: Annotated[Optional[str], typer.Option("--input", help="input shape CxHxW (default: the model's own)")] = None,
    cost_model: Annotated[Optional[str], typer.Option("--cost-model", help="a name from `uboost hw list` [default: a run's own, else systolic]")] = None,
    clock_hz: Annotated[Optional[float], typer.Option("--clock-hz", help="array clock for latency [default: a file's or run's own, else the fastest --operating-points point, else 1e9; with --operating-points, a run's clock that is its own table's fastest or beyond the new table's: the new fastest]")] = None,
    sram_kb: Annotated[Optional[int], typer.Option("--sram-kb", help="size of each SRAM buffer (ifmap, filter, ofmap) in kB [default: a run's own, else unbounded]")] = None,
    dram_bw_words: Annotated[Optional[float], typer.Option("--dram-bw-words", help="DRAM bandwidth in words (bytes) per cycle per port [default: a run's own, else unbounded]")] = None,
    dram_bw_gbps: Annotated[Optional[float], typer.Option("--dram-bw-gbps", help="DRAM bandwidth in GB/s per port (words per cycle at the clock) [default: a run's own, else unbounded]")] = None,
    energy: Annotated[Optional[str], typer.Option("--energy", help="energy table: a preset (horowitz45, eyeriss65, gemmini16) or a TOML file [default: a run's own, else horowitz45]")] = None,
    voltage: Annotated[Optional[float], typer.Option("--voltage", "--voltage-v", help="supply voltage in V (--voltage-v, as search names it) [default: the operating point's, else the table's reference]")] = None,
    operating_points: Annotated[Optional[str], typer.Option("--operating-points", help="DVFS table (rk3576-npu, rk356x-gpu or a TOML file): latency, energy and EDP per point")] = None,
    table_file: Annotated[Optional[Path], typer.Option("--table", help="CSV of cycles for --cost-model lookup")] = None,
    hardware: Annotated[Optional[Path], typer.Option("--hardware", help="accelerator file: uboost TOML or a SCALE-Sim .cfg (options given here override it)")] = None,
    tech: Annotated[Optional[str], typer.Option("--tech", help="area table: tpu28, recpipe12 or a TOML file [default: the --hardware file's, else tpu28]")] = None,
    pe: Annotated[Optional[str], typer.Option(help="processing elements: fixed | bitfusion | bit-serial [default: a run's own, else fixed]")] = None,
    bits: Annotated[Optional[str], typer.Option(help="price every layer's weights and activations at this width [default: the network's own: a run's precision.json, else 8]")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
    plot: Annotated[Optional[Path], typer.Option(help="write a per-layer utilization PNG")] = None,
    energy_plot: Annotated[Optional[Path], typer.Option("--energy-plot", help="write a PNG of per-layer energy (stacked MAC, SRAM, DRAM, leakage)")] = None,
    force: Annotated[bool, typer.Option("--force", help="replace existing --plot / --energy-plot files")] = False,
) -> None:
    """Per-layer MACs, cycles, utilization, words moved and energy of a network on one or more systolic arrays."""
    import dataclasses

    from uboost.hardware import HardwareSpec, extract_layers, parse_array, resolve
    from uboost.hardware.energy import resolve_energy
    from uboost.hardware.operating import at_point, load_operating_points
    from uboost.networks import load_network_or_run
    from uboost.tables import energy_summary, latency_text, layer_table, mhz_text, number_text

    for name, path in (("--plot", plot), ("--energy-plot", energy_plot)):  # checked before any work or file
        check_output_file(name, path, force=force, suffix=".png")
    if bits is not None:  # as search and tune read --bits (one message for 1.5, 33, 2,,8), one width here
        from uboost.exceptions import ConfigError
        from uboost.quant import parse_bits

        widths = parse_bits(bits, "--bits")
        if len(widths) != 1:
            raise ConfigError(f"--bits prices every layer at one width here, got {bits!r}; profile each width on its own")
        bits = widths[0]
    if plot is not None and energy_plot is not None and plot.resolve() == energy_plot.resolve():
        from uboost.exceptions import ConfigError

        raise ConfigError(f"--plot and --energy-plot are both {plot}: give each its own file")
    if plot is not None or energy_plot is not None:  # without matplotlib: one line now, not after the results
        from uboost.plots import _pyplot

        _pyplot()
    from uboost.hardware.area import area_breakdown_mm2, resolve_area, wide_fixed_pe_note
    from uboost.hardware.files import read_hardware_file, without_overridden

    over_file = dict(sram_kb=sram_kb, dram_bw_words=dram_bw_words, dram_bw_gbps=dram_bw_gbps,
                     operating_points=operating_points, clock_hz=clock_hz)
    flags = [name for name, value in (("--array", array), ("--dataflow", dataflow), ("--batch", batch), ("--clock-hz", clock_hz),
                                      ("--sram-kb", sram_kb), ("--dram-bw-words", dram_bw_words), ("--dram-bw-gbps", dram_bw_gbps),
                                      ("--energy", energy), ("--voltage", voltage), ("--operating-points", operating_points),
                                      ("--pe", pe), ("--tech", tech)) if value is not None and value != []]
    described = without_overridden(read_hardware_file(hardware), over_file) if hardware is not None else {}
    file_area = described.pop("area", None)
    area_table = resolve_area(tech if tech is not None else file_area)
    area_named = tech is not None or file_area is not None  # asked for an area (by option, file or run): say why none
    table = resolve_energy(energy) if energy is not None else None
    points = load_operating_points(operating_points) if operating_points is not None else None
    _ = [parse_array(a) for a in array or []]  # every --array is checked before the network is loaded
    loaded = load_network_or_run(model)
    shape = parse_shape(input) if input else loaded.input_shape
    if shape is None:
        from uboost.exceptions import ConfigError

        raise ConfigError(f"{model} has no known input shape: pass --input CxHxW")
    run = loaded.search_config  # a run is priced on its own accelerator and cost model unless told otherwise
    if tech is None and hardware is None and run is not None:
        area_named = (run.hardware or {}).get("area") is not None
        area_table = run.area_table()  # and on its own area table (a co-searched run's --tech); a --hardware file
        # describes the whole accelerator, its area table (or the default) included, as frontier and export read it
    run_clock = None  # a run's own clock, kept under another --operating-points table where that table runs it
    if described:  # the file describes the whole accelerator: it replaces the run's
        base = HardwareSpec(**described)
    elif run is not None:  # the run's accelerator, less what the options replace beyond their names (as a file's)
        own = run.hardware_spec()
        fields = without_overridden({f.name: getattr(own, f.name) for f in dataclasses.fields(own)}, over_file)
        run_clock = fields.pop("clock_hz", None) if points is not None else None  # (its old table's fastest: dropped)
        base = HardwareSpec(**fields)
    else:
        base = HardwareSpec(rows=128, cols=128)
    cost_model = cost_model or (run.cost_model if run is not None else "systolic")
    if table_file is not None and cost_model != "lookup":
        from uboost.exceptions import ConfigError

        raise ConfigError(f"--table is the cycle table of --cost-model lookup; the cost model here is {cost_model!r}: "
                          "add --cost-model lookup")
    if clock_hz is None and points is not None and "clock_hz" not in described:  # a file's own clock stays, as in search
        fastest = points.points[-1].freq_hz
        clock_hz = run_clock if run_clock is not None and run_clock <= fastest * (1 + 1e-12) else fastest
    given = dict(dataflow=dataflow, batch_size=batch, clock_hz=clock_hz, sram_kb=sram_kb, dram_bw_words=dram_bw_words,
                 dram_bw_gbps=dram_bw_gbps, energy=table, voltage_v=voltage, operating_points=points, pe=pe)
    specs = [
        dataclasses.replace(base, rows=r, cols=c, **{k: v for k, v in given.items() if v is not None})
        for r, c in (parse_array(a) for a in unique(array or [base.array]))
    ]
    layers = extract_layers(loaded.module, shape)
    label = loaded.label
    if bits is not None:  # every layer at --bits, whatever the network's own (and the label says so)
        from dataclasses import replace

        layers = [replace(layer, weight_bits=bits, act_bits=bits) for layer in layers]
        label = f"{label.removesuffix(runs.SEARCHED_BITS)} at {bits} bits"
    extra = {"table": table_file} if table_file is not None else {}
    with simulation_progress(f"SCALE-Sim {model}") as progress:  # drawn only if a model simulates
        extra.update(model_options(cost_model, progress))
        models = [resolve(cost_model, spec=spec, **extra) for spec in specs]
        reports = [m.evaluate(layers) for m in models]
        notes = list(dict.fromkeys(n for m in models for n in (m.memory_note(), m.layers_note(layers)) if n))
        own_pe = run.hardware_spec().pe if described and run is not None and pe is None else base.pe
        if own_pe != base.pe:  # the file replaced the run's PEs: said, not silent
            notes.append(f"{hardware} replaces the run's whole accelerator, its {own_pe} PEs included: "
                         f"priced on {base.pe} PEs (add --pe {own_pe} to keep them)")
        sweeps = []
        if points is None and described:  # a file's DVFS table is priced per point, as the option's
            points = base.operating_points
        if points is not None:  # the operating point sets clock and voltage; --voltage does not override it
            sweeps = [[resolve(cost_model, spec=at_point(spec, p), **extra).evaluate(layers) for p in points] for spec in specs]
    for r in reports:  # say why an area is missing where one was asked for, or where only the PE mode lacks one
        if area_named or (r.spec.pe != "fixed" and None not in r.spec.buffer_kb):
            _area(r.spec, area_table, area_breakdown_mm2, notes)
    wide = wide_fixed_pe_note(max((max(layer.weight_bits, layer.act_bits) for layer in layers), default=8), area_table.name)
    if wide and any(r.spec.pe == "fixed" and _area(r.spec, area_table, area_breakdown_mm2) for r in reports):
        notes.append(wide)
    if as_json:
        from uboost.io import dumps_json

        data = {"model": label, "input_shape": list(shape),
                "reports": [{**r.to_dict(), "area_mm2": _area(r.spec, area_table, area_breakdown_mm2)} for r in reports]}
        if notes:
            data["notes"] = notes
        if points is not None:
            data["operating_points"] = [_sweep_dict(spec, sweep) for spec, sweep in zip(specs, sweeps)]
        typer.echo(dumps_json(data))
    else:
        if hardware is not None:  # what is priced: the file, less what the options replace (named)
            shown = specs[0]
            table_name = "" if shown.operating_points is None else f", DVFS table {shown.operating_points.name or 'of the file'}"
            console.print(f"hardware from {hardware}: {', '.join(s.array for s in specs)} {shown.dataflow}, {shown.memory_text}, "
                          f"{mhz_text(shown.clock_hz)} MHz, energy {shown.energy.name}{table_name}"
                          + (f" ({', '.join(flags)} from the command line)" if flags else ""))
        console.print(layer_table(label, shape, reports, detail=console.width >= 140))
        for r in reports:
            area = _area(r.spec, area_table, area_breakdown_mm2)
            area_text = "" if area is None else (f"; area {number_text(area['total'])} mm² (PEs {number_text(area['pe'], 3)}, SRAM {number_text(area['sram'], 3)}, "
                                                 f"fixed {number_text(area['fixed'], 3)}; {area_table.name})")
            console.print(
                f"[bold]{r.spec.array}[/] {r.spec.dataflow}: {r.cycles:,.0f} cycles = {latency_text(r.latency_ms)} "
                f"at {mhz_text(r.spec.clock_hz)} MHz, utilization {100 * r.utilization:.1f}%; {energy_summary(r)}{area_text}"
            )
        for spec, sweep in zip(specs, sweeps):
            console.print(_sweep_table(label, spec, sweep))
        for note in notes:
            console.print(f"[yellow]note:[/] {note}")
    if plot is not None:
        from uboost.plots import utilization_per_layer

        _write_png(plot, lambda: utilization_per_layer(
            plot,
            [l.name for l in layers],
            {f"{r.spec.array} {r.spec.dataflow}": [l.utilization for l in r.layers] for r in reports},
            title=f"{label}: utilization per layer ({cost_model})",
        ), quiet=as_json)
    if energy_plot is not None:
        from uboost.plots import energy_per_layer
        from uboost.tables import ENERGY_COLUMNS

        first = reports[0]
        _write_png(energy_plot, lambda: energy_per_layer(
            energy_plot,
            [l.name for l in layers],
            {head: [l.energy_uj[key] for l in first.layers] for key, head in ENERGY_COLUMNS},
            title=f"{label}: energy per layer, {first.spec.array} {first.spec.dataflow} ({first.spec.energy.name}, "
            f"{mhz_text(first.spec.clock_hz)} MHz, {first.spec.voltage:g} V)",
        ), quiet=as_json)


def _write_png(path: Path, write, *, quiet: bool) -> None:
    from uboost.exceptions import RunDirError

    try:
        write()
    except OSError as exc:
        raise RunDirError(f"cannot write {path}: {exc.strerror or exc}") from None
    if not quiet:
        console.print(f"wrote {path}")


def _least(sweep) -> int:
    return min(range(len(sweep)), key=lambda i: sweep[i].energy_uj)


def _sweep_dict(spec, sweep) -> dict:
    best = _least(sweep)
    return {
        "array": spec.array,
        "dataflow": spec.dataflow,
        "points": [
            {"freq_hz": r.spec.clock_hz, "voltage_v": r.spec.voltage, "cycles": r.cycles, "latency_ms": r.latency_ms,
             "energy_uj": r.energy_uj, "energy_breakdown_uj": r.energy_breakdown_uj, "edp_uj_ms": r.edp_uj_ms,
             "power_mw": r.power_mw, "least_energy": i == best}
            for i, r in enumerate(sweep)
        ],
    }


def _sweep_table(label: str, spec, sweep):
    from rich.table import Table

    from uboost.tables import mhz_text, number_text

    best = _least(sweep)
    table = Table(title=f"{label} on {spec.array} {spec.dataflow} per operating point ({spec.energy.name}, {spec.operating_points.name or 'table'})")
    for head in ("MHz", "mV", "latency ms", "energy µJ", "EDP µJ*ms", "power mW", ""):
        table.add_column(head, justify="right" if head else "left")
    for i, r in enumerate(sweep):
        table.add_row(
            mhz_text(r.spec.clock_hz), f"{r.spec.voltage * 1e3:g}", number_text(r.latency_ms), number_text(r.energy_uj),
            number_text(r.edp_uj_ms), number_text(r.power_mw), "<- least energy" if i == best else "",
            style="bold green" if i == best else None,
        )
    return table
