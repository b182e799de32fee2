"""``uboost search``, ``uboost export`` and ``uboost retrain``."""

# No `from __future__ import annotations`: typer would eval every option's string annotation at start-up.
import tomllib
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from uboost.cli._common import Flag, console, human, registry_table
from uboost.exceptions import ConfigError

Opt = typer.Option


def D(name: str, space: str | None = None) -> str:
    """``[default: X]`` for --help from :class:`~uboost.search.SearchConfig` (or a space's own
    options). Options default to None so a ``--config`` TOML can fill what the command line
    leaves out; the help still says what applies when neither sets it."""
    import dataclasses

    from uboost.search import SearchConfig
    from uboost.search_spaces.registry import default_options

    if space is not None:
        value = default_options(space)[name]
    else:
        value = {f.name: f.default for f in dataclasses.fields(SearchConfig)}[name]
    return f"[default: {value:g}]" if isinstance(value, float) else f"[default: {value}]"


def _load_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    values = data.get("search", data)
    if not isinstance(values, dict):
        raise ConfigError(f"search in {path} must be a table of settings ([search]), got {type(values).__name__}")
    if not isinstance(values.get("space_options", {}), dict):
        raise ConfigError(f"space_options in {path} must be a table (e.g. space_options = {{ width = 8 }}), "
                          f"got {type(values['space_options']).__name__}")
    return values


def search(
    space: Annotated[Optional[str], Opt(help=f"search space (`uboost spaces`) {D('space')}")] = None,
    dataset: Annotated[Optional[str], Opt(help=f"digits | cifar10 | cifar100 | folder:PATH {D('dataset')}")] = None,
    data_dir: Annotated[Optional[str], Opt("--data-dir", help="where the dataset lives [default: ~/.cache/uboost/data]")] = None,
    download: Annotated[bool, Flag("--download", help="allow downloading the dataset (off: nothing is downloaded)")] = False,
    array: Annotated[Optional[str], Opt(help=f"systolic array ROWSxCOLS {D('array')}")] = None,
    dataflow: Annotated[Optional[str], Opt(help=f"ws | os | is {D('dataflow')}")] = None,
    sram_kb: Annotated[Optional[int], Opt("--sram-kb", help="size of each SRAM buffer (ifmap, filter, ofmap) in kB [default: unbounded]")] = None,
    dram_bw_words: Annotated[Optional[float], Opt("--dram-bw-words", help="DRAM bandwidth in words (bytes) per cycle per port [default: unbounded]")] = None,
    cost_model: Annotated[Optional[str], Opt("--cost-model", help=f"a name from `uboost hw list` {D('cost_model')}")] = None,
    latency_weight: Annotated[Optional[float], Opt("--latency-weight", help=f"lambda: weight of the latency term {D('latency_weight')}")] = None,
    utilization_weight: Annotated[Optional[float], Opt("--utilization-weight", help=f"beta: weight of the utilization term {D('utilization_weight')}")] = None,
    target_latency_ms: Annotated[Optional[float], Opt("--target-latency-ms", help="latency budget of the derived network (ms); the export is projected onto it exactly [default: none]")] = None,
    budget_lr: Annotated[Optional[float], Opt("--budget-lr", help=f"dual-ascent step of the budget multiplier {D('budget_lr')}")] = None,
    budget_floor: Annotated[Optional[float], Opt("--budget-floor", help=f"with a target: steer to and export a network using at least this share of it (0: plain upper bound) {D('budget_floor')}")] = None,
    arch_lr: Annotated[Optional[float], Opt("--arch-lr", help=f"Adam learning rate of the architecture parameters {D('arch_lr')}")] = None,
    temperature: Annotated[Optional[float], Opt(help=f"smooth-ceiling temperature T {D('temperature')}")] = None,
    cost_mode: Annotated[Optional[str], Opt("--cost-mode", help=f"expected | smooth {D('cost_mode')}")] = None,
    sampling: Annotated[Optional[str], Opt(help=f"mixture (all candidates run) | single-path (one sampled per choice) {D('sampling')}")] = None,
    epochs: Annotated[Optional[int], Opt(help=f"search epochs {D('epochs')}")] = None,
    batch_size: Annotated[Optional[int], Opt("--batch-size", help=f"training batch size {D('batch_size')}")] = None,
    width: Annotated[Optional[int], Opt(help=f"darts-cifar: channels of the first stage {D('width', 'darts-cifar')}")] = None,
    cells: Annotated[Optional[int], Opt(help=f"darts-cifar: number of cells {D('cells', 'darts-cifar')}")] = None,
    channels: Annotated[Optional[str], Opt(help="darts-cifar channel search START:STOP:STEP [default: fixed widths]")] = None,
    cell_arch: Annotated[Optional[Path], Opt("--cell-arch", help="stage two: fix cells to this run/arch.json, search channels [default: search cells]")] = None,
    image_size: Annotated[Optional[int], Opt("--image-size", help="resize images to this side [default: the dataset's own: digits 8, CIFAR 32]")] = None,
    max_samples: Annotated[Optional[int], Opt("--max-samples", help="use at most this many training images [default: all]")] = None,
    seed: Annotated[Optional[int], Opt(help=f"random seed (data split, weights, sampling) {D('seed')}")] = None,
    config: Annotated[Optional[Path], Opt("--config", help="TOML file with search settings (a [search] table; flags override it) [default: none]")] = None,
    out: Annotated[Optional[Path], Opt(help="run directory [default: runs/SPACE-DATASET-sSEED]")] = None,
    resume: Annotated[bool, Flag("--resume", help="continue an interrupted run in --out")] = False,
    force: Annotated[bool, Flag("--force", help="start over in a non-empty --out (removes only what uboost wrote there)")] = False,
    accelerator: Annotated[Optional[str], Opt(help=f"auto | cpu | gpu | mps (auto: a GPU where there is one) {D('accelerator')}")] = None,
    devices: Annotated[Optional[int], Opt(help=f"number of devices {D('devices')}")] = None,
    logger: Annotated[Optional[str], Opt("--logger", help="also log to tensorboard | wandb | mlflow (installed separately); metrics.csv is always written [default: csv]")] = None,
) -> None:
    """Search an architecture with the U-Boost loss and write a run directory."""
    from uboost.search import SearchConfig, SearchInterrupted, run_search
    from uboost.search_spaces import parse_channels

    values = _load_toml(config) if config else {}
    space_options = dict(values.pop("space_options", {}))
    flags = dict(
        space=space, dataset=dataset, data_dir=data_dir, array=array, dataflow=dataflow, cost_model=cost_model,
        sram_kb=sram_kb, dram_bw_words=dram_bw_words,
        latency_weight=latency_weight, utilization_weight=utilization_weight, target_latency_ms=target_latency_ms,
        budget_lr=budget_lr, budget_floor=budget_floor, arch_lr=arch_lr,
        temperature=temperature, cost_mode=cost_mode, sampling=sampling, epochs=epochs, batch_size=batch_size, image_size=image_size,
        max_samples=max_samples, seed=seed, accelerator=accelerator, devices=devices,
    )
    values.update({k: v for k, v in flags.items() if v is not None})
    if download:
        values["download"] = True
    for key, value in (("width", width), ("cells", cells)):
        if value is not None:
            space_options[key] = value
    if channels is not None:
        space_options["channels"] = list(parse_channels(channels))
    if cell_arch is not None:
        from uboost.runs import load_run

        space_options["cell_arch"] = {k: v for k, v in load_run(cell_arch).arch.items() if not k.startswith("width_")}
    given = {**values, "space_options": dict(space_options)}  # what the user set, before defaults
    values["space_options"] = space_options  # over the space's own defaults (SearchConfig merges them)
    cfg = SearchConfig.from_dict(values)
    run_dir = out or Path("runs") / f"{cfg.space}-{cfg.dataset.replace(':', '_').replace('/', '_')}-s{cfg.seed}"
    if resume:
        _refuse_changed_settings(run_dir, given)
    if not resume:
        console.print(
            f"[bold]uboost search[/] {cfg.space} on {cfg.dataset}, {cfg.array} {cfg.dataflow} ({cfg.cost_model}, "
            f"{cfg.cost_mode}, {cfg.sampling}), lambda={cfg.latency_weight:g} beta={cfg.utilization_weight:g} -> {run_dir}"
        )
    from uboost.loggers import create as create_logger
    from uboost.runs import run_lock, write_layer_table

    extra_logger = create_logger(logger, run_dir)  # an unknown or missing logger fails before anything is written
    with run_lock(run_dir):  # held until hardware.txt is written too
        try:
            result = run_search(cfg, run_dir, resume=resume, force=force, progress=True, logger=extra_logger)
        except KeyboardInterrupt:
            raise SearchInterrupted(f"search interrupted; continue with: uboost search --out {run_dir} --resume") from None
        write_layer_table(result.run_dir / "hardware.txt", result.hardware, cfg.space)
    table = Table(title=f"search result: {result.run_dir}", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    s = result.summary()
    table.add_row("validation accuracy", "n/a" if s["val_acc"] is None else f"{100 * s['val_acc']:.1f}%")
    table.add_row(f"latency on {cfg.array} {cfg.dataflow}", f"{s['latency_ms']:.4f} ms ({human(s['cycles'])} cycles)")
    table.add_row("utilization", f"{100 * s['utilization']:.1f}%")
    table.add_row("MACs", human(s["macs"]))
    table.add_row("latency_ref (uniform supernet)", "n/a" if s["latency_ref_ms"] is None else f"{s['latency_ref_ms']:.4f} ms")
    table.add_row("search time", f"{s['search_seconds']:.0f} s")
    console.print(table)
    console.print(f"per-layer table: {result.run_dir / 'hardware.txt'}")
    console.print(f"next: [bold]uboost retrain {result.run_dir}[/]  |  uboost profile {result.run_dir}")


def _refuse_changed_settings(run_dir: Path, given: dict) -> None:
    """``--resume`` continues a run with its stored config: a setting that differs is an error, not ignored."""
    from uboost import runs

    if not (Path(run_dir) / runs.CONFIG).is_file():
        return  # run_search says there is nothing to resume
    stored = runs.read_json(Path(run_dir) / runs.CONFIG, "run config")
    options = dict(given.pop("space_options", {}))
    changed = [f"{k} {stored.get(k)!r} -> {v!r}" for k, v in given.items() if stored.get(k) != v]
    stored_options = stored.get("space_options") or {}
    changed += [f"{k} {stored_options.get(k)!r} -> {v!r}" for k, v in options.items() if stored_options.get(k) != v]
    if changed:
        raise ConfigError(f"--resume continues {run_dir} with its stored settings, but these differ: {', '.join(changed)}; "
                          "drop them, or start over with --force")



def export(
    run: Annotated[Path, typer.Argument(help="run directory or arch.json")],
    format: Annotated[str, Opt("--format", help="json | onnx | torchscript")] = "json",
    out: Annotated[Optional[Path], Opt(help="output file [default: RUN/export.json, RUN/model.onnx, RUN/model.torchscript.pt]")] = None,
    force: Annotated[bool, Flag("--force", help="overwrite an existing --out file")] = False,
    target_latency_ms: Annotated[Optional[float], Opt("--target-latency-ms", help="write the architecture the search prefers most within this budget (cycle-exact, solved exactly) as a run directory at --out [default: none]")] = None,
    budget_floor: Annotated[float, Opt("--budget-floor", help="with --target-latency-ms: the network must use at least this share of the budget where one can (0: plain upper bound)")] = 0.9,
) -> None:
    """Export the searched architecture (JSON) or the derived network (ONNX / TorchScript)."""
    import contextlib

    if target_latency_ms is not None:
        from uboost.cli.frontier import export_to_budget

        if format != "json":
            raise ConfigError("--target-latency-ms writes a run directory; export it to ONNX/TorchScript afterwards")
        return export_to_budget(run, target_latency_ms, out, force, budget_floor)

    from uboost import runs
    from uboost.exceptions import RunDirError

    if format not in ("json", "onnx", "torchscript"):
        raise ConfigError(f"unknown format {format!r}; expected one of: json, onnx, torchscript")
    artifacts = runs.load_run(run)
    default = {"json": "export.json", "onnx": "model.onnx", "torchscript": "model.torchscript.pt"}[format]
    target = out or artifacts.root / default
    if target.is_dir():
        raise RunDirError(f"--out {target} is a directory; give a file name, e.g. {target / default}")
    inside = target.resolve().is_relative_to(artifacts.root.resolve())
    if target.exists() and not force and not (inside and runs.may_overwrite(artifacts.root, target)):
        raise RunDirError(f"{target} already exists; pass --force to overwrite it")
    with runs.run_lock(artifacts.root) if inside else contextlib.nullcontext():
        if inside:
            runs.record(artifacts.root, target.resolve())
        note = _export_to(run, artifacts, format, target)
    console.print(f"wrote {target}{note}")


def _export_to(run: Path, artifacts, format: str, target: Path) -> str:
    import torch

    from uboost import runs
    from uboost.exceptions import RunDirError
    from uboost.io import atomic_path, write_json

    if format == "json":
        _writing(target, lambda: write_json(target, artifacts.arch))
        return ""
    from uboost.networks import load_frozen_network

    loaded = load_frozen_network(run)
    network = loaded.module.eval()
    weights = artifacts.root / runs.RETRAIN / "model.pt"
    if weights.is_file():
        state = runs.safe_load(weights, "retrained weights")
        try:
            network.load_state_dict(state)
        except Exception as exc:
            raise RunDirError(f"{weights} does not fit the architecture of {artifacts.root} ({type(exc).__name__}); "
                              "it is from another search: run uboost retrain again") from None
    example = torch.zeros(1, *loaded.input_shape)
    suffix = {"onnx": ".onnx", "torchscript": ".pt"}[format]

    def write() -> None:
        with atomic_path(target, suffix=suffix) as tmp:
            if format == "torchscript":
                torch.jit.save(torch.jit.trace(network, example), str(tmp))
            else:
                try:
                    torch.onnx.export(network, (example,), str(tmp), dynamo=False, input_names=["input"], output_names=["logits"],
                                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})  # any batch size
                except ImportError as exc:
                    raise ConfigError(f"ONNX export needs the onnx package (pip install onnx): {exc}") from None

    _writing(target, write)
    return " (retrained weights)" if weights.is_file() else " (untrained weights: run uboost retrain first)"


def _writing(target: Path, write) -> None:
    """Run ``write``; an unwritable target becomes one line."""
    from uboost.exceptions import RunDirError

    try:
        write()
    except OSError as exc:
        raise RunDirError(f"cannot write {target}: {exc.strerror or exc}") from None


def retrain(
    run: Annotated[Path, typer.Argument(help="run directory or arch.json")],
    dataset: Annotated[Optional[str], Opt(help="digits | cifar10 | cifar100 | folder:PATH [default: the search's dataset]")] = None,
    data_dir: Annotated[Optional[str], Opt("--data-dir", help="where the dataset lives [default: the search's, else ~/.cache/uboost/data]")] = None,
    download: Annotated[bool, Flag("--download", help="allow downloading the dataset (off: nothing is downloaded)")] = False,
    epochs: Annotated[int, Opt(help="training epochs")] = 10,
    batch_size: Annotated[int, Opt("--batch-size", help="training batch size")] = 64,
    lr: Annotated[float, Opt("--lr", help="SGD learning rate (peak of the schedule)")] = 0.05,
    schedule: Annotated[str, Opt(help="cosine | onecycle")] = "cosine",
    array: Annotated[Optional[str], Opt(help="price the result on this array ROWSxCOLS [default: the search's]")] = None,
    dataflow: Annotated[Optional[str], Opt(help="ws | os | is [default: the search's]")] = None,
    space: Annotated[Optional[str], Opt(help="for a bare arch.json: the space it came from [default: the run's]")] = None,
    seed: Annotated[int, Opt(help="random seed")] = 0,
    max_samples: Annotated[Optional[int], Opt("--max-samples", help="use at most this many training images [default: all]")] = None,
    out: Annotated[Optional[Path], Opt(help="output directory [default: RUN/retrain]")] = None,
    accelerator: Annotated[str, Opt(help="auto | cpu | gpu | mps (auto: a GPU where there is one)")] = "auto",
    devices: Annotated[int, Opt(help="number of devices")] = 1,
    resume: Annotated[bool, Flag("--resume", help="continue an interrupted retrain from its last checkpoint")] = False,
    logger: Annotated[Optional[str], Opt("--logger", help="also log to tensorboard | wandb | mlflow (installed separately); metrics.csv is always written [default: csv]")] = None,
) -> None:
    """Train a searched architecture from scratch and report accuracy, cycles, latency, utilization."""
    from uboost.retrain import RetrainConfig, retrain as run_retrain
    from uboost.runs import load_run
    from uboost.search import SearchConfig, build_cost_model

    cfg = RetrainConfig(
        dataset=dataset, data_dir=data_dir, download=download, epochs=epochs, batch_size=batch_size,
        learning_rate=lr, schedule=schedule, seed=seed, accelerator=accelerator, devices=devices, max_samples=max_samples,
    )
    artifacts = load_run(run)
    search_cfg = SearchConfig.from_dict(artifacts.config) if artifacts.config else None
    if search_cfg is None and space is not None:
        search_cfg = SearchConfig(space=space)  # the space's own default options
    if search_cfg is not None and (array or dataflow):
        search_cfg = search_cfg.replace(**{k: v for k, v in (("array", array), ("dataflow", dataflow)) if v})
    cost_model = build_cost_model(search_cfg) if search_cfg is not None else None
    from uboost.loggers import check_kind, create as create_logger

    check_kind(logger)
    target = out if out is not None else artifacts.root / "retrain"
    result = run_retrain(run, cfg, out=out, search_config=search_cfg, progress=True, cost_model=cost_model, resume=resume,
                         logger=create_logger(logger, target))
    s = result.summary()
    table = Table(title=f"retrained: {result.out}", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("test accuracy", f"{100 * s['test_acc']:.1f}%")
    table.add_row(f"cycles on {s['array']} {s['dataflow']}", f"{s['cycles']:,.0f}")
    table.add_row("latency", f"{s['latency_ms']:.4f} ms")
    table.add_row("utilization", f"{100 * s['utilization']:.1f}%")
    table.add_row("MACs", human(s["macs"]))
    console.print(table)
    console.print(f"saved {result.out / 'model.pt'} (state_dict; torch.load(..., weights_only=True))")


def spaces() -> None:
    """List the registered search spaces."""
    from uboost.catalog import spaces as list_spaces

    console.print(registry_table("search spaces", list_spaces()))
