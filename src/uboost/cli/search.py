"""``uboost search`` (``export``: :mod:`uboost.cli.export`, ``retrain``: :mod:`uboost.cli.retrain`).

Each command is its own module: ``uboost retrain --help`` does not evaluate search's defaults."""

# No `from __future__ import annotations`: typer would eval every option's string annotation at start-up.
import contextlib
import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from uboost.cli._common import Flag, console, human, latency_text, note_unreadable_checkpoints, number_text
from uboost.exceptions import ConfigError, RunDirError

Opt = typer.Option


def _on_off_auto(value: str, option: str) -> bool | None:
    """``auto`` -> None (the config's own rule), ``on``/``off`` -> True/False."""
    choices = {"auto": None, "on": True, "off": False}
    if value not in choices:
        raise ConfigError(f"{option} must be auto, on or off, got {value!r}")
    return choices[value]


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


def _load_config(path: Path) -> dict:
    """``--config FILE``: a TOML file (a ``[search]`` table, or its keys at the top), or a run's ``config.json``
    (every setting of that run: ``--config runs/a/config.json`` repeats it, flags still override)."""
    import tomllib

    if Path(path).is_dir() and (Path(path) / "config.json").is_file():  # a run directory: its config.json
        path = Path(path) / "config.json"
    if Path(path).suffix.lower() == ".json":
        return _load_json_config(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except UnicodeDecodeError as exc:  # TOML is UTF-8 by definition
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path} as TOML (or a run's config.json, named .json): {exc}") from None
    if "search" in data:
        stray = sorted(k for k in data if k != "search")
        if stray:  # keys above [search] belong to no table: they would be silently ignored
            raise ConfigError(f"{path}: {', '.join(map(repr, stray))} outside the [search] table; move "
                              f"{'it' if len(stray) == 1 else 'them'} into [search] (below its header)")
    values = data.get("search", data)
    if not isinstance(values, dict):
        raise ConfigError(f"search in {path} must be a table of settings ([search]), got {type(values).__name__}")
    if not isinstance(values.get("space_options", {}), dict):
        raise ConfigError(f"space_options in {path} must be a table (e.g. space_options = {{ width = 8 }}), "
                          f"got {type(values['space_options']).__name__}")
    return values


def _load_json_config(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"cannot read config file {path} as JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("space_options", {}), dict):
        raise ConfigError(f"{path} must hold a JSON object of search settings, as a run's config.json does")
    return data


def hardware_changes(path: Optional[Path], flags: Optional[dict] = None) -> dict:
    """SearchConfig fields from ``--hardware FILE`` (none without one); options given on the command line
    (``flags``, by SearchConfig name) go over them, and replace what they stand for in the file too
    (``--sram-kb`` its per-buffer sizes, ...: :func:`uboost.hardware.files.without_overridden`)."""
    if path is None:
        return {}
    from uboost.accelerator import config_changes
    from uboost.hardware.files import read_hardware_file, without_overridden

    return config_changes(without_overridden(read_hardware_file(path), flags or {}))


def dram_bandwidth(values: dict, words: Optional[float], gbps: Optional[float]) -> None:
    """``--dram-bw-words`` / ``--dram-bw-gbps`` over the bandwidth a ``--config`` or a ``--hardware`` file gave, in
    ``values`` (SearchConfig fields): the option given replaces the file's in either unit. GB/s is kept in the config's
    ``hardware`` (as an accelerator file's is), words per cycle under its own name."""
    if words is not None and gbps is not None:
        raise ConfigError("give the DRAM bandwidth once: --dram-bw-words (per cycle) or --dram-bw-gbps, not both")
    if words is None and gbps is None:
        return
    hardware = dict(values.get("hardware") or {})
    if words is not None:
        hardware.pop("dram_bw_gbps", None)
    else:
        values.pop("dram_bw_words", None)
        hardware["dram_bw_gbps"] = gbps
    if hardware or values.get("hardware") is not None:
        values["hardware"] = hardware or None


def search(
    space: Annotated[Optional[str], Opt(help=f"search space (`uboost spaces`) {D('space')}")] = None,
    dataset: Annotated[Optional[str], Opt(help=f"digits | cifar10 | cifar100 | folder:PATH {D('dataset')}")] = None,
    data_dir: Annotated[Optional[str], Opt("--data-dir", help="where the dataset lives [default: ~/.cache/uboost/data]")] = None,
    download: Annotated[bool, Flag("--download", help="allow downloading the dataset (off: nothing is downloaded)")] = False,
    array: Annotated[Optional[str], Opt(help=f"systolic array ROWSxCOLS {D('array')}")] = None,
    dataflow: Annotated[Optional[str], Opt(help=f"ws | os | is {D('dataflow')}")] = None,
    sram_kb: Annotated[Optional[int], Opt("--sram-kb", help="size of each SRAM buffer (ifmap, filter, ofmap) in kB [default: unbounded]")] = None,
    dram_bw_words: Annotated[Optional[float], Opt("--dram-bw-words", help="DRAM bandwidth in words (bytes) per cycle per port [default: unbounded]")] = None,
    dram_bw_gbps: Annotated[Optional[float], Opt("--dram-bw-gbps", help="DRAM bandwidth in GB/s per port (words per cycle at the clock), instead of --dram-bw-words [default: unbounded]")] = None,
    cost_model: Annotated[Optional[str], Opt("--cost-model", help=f"a name from `uboost hw list` {D('cost_model')}")] = None,
    latency_weight: Annotated[Optional[float], Opt("--latency-weight", help=f"lambda: weight of the latency term {D('latency_weight')}")] = None,
    utilization_weight: Annotated[Optional[float], Opt("--utilization-weight", help=f"beta: weight of the utilization term {D('utilization_weight')}")] = None,
    utilization_scale: Annotated[Optional[str], Opt("--utilization-scale", help=f"fixed: beta * (1 - U) | lambda: lambda * beta * (1 - U), so lambda = 0 is the task alone (no effect with --target-latency-ms) {D('utilization_scale')}")] = None,
    target_latency_ms: Annotated[Optional[float], Opt("--target-latency-ms", help="latency budget of the derived network (ms); the export is projected onto it exactly [default: none]")] = None,
    energy_weight: Annotated[Optional[float], Opt("--energy-weight", help=f"gamma: weight of the energy term, in units of the uniform supernet's energy {D('energy_weight')}")] = None,
    target_energy_uj: Annotated[Optional[float], Opt("--target-energy-uj", help="energy budget of the derived network (µJ per inference), with --target-latency-ms too: both hold [default: none]")] = None,
    energy: Annotated[Optional[str], Opt("--energy", help=f"energy table: a preset (horowitz45 | eyeriss65 | gemmini16) or a TOML file {D('energy')}")] = None,
    voltage_v: Annotated[Optional[float], Opt("--voltage-v", "--voltage", help="supply voltage in V (also --voltage, as profile names it) [default: the operating-point table's at the clock, else the energy table's reference]")] = None,
    hardware: Annotated[Optional[Path], Opt("--hardware", help="accelerator file: uboost TOML or a SCALE-Sim .cfg (array, dataflow, buffers, bandwidth, energy, operating points); options given here override it [default: none]")] = None,
    operating_points: Annotated[Optional[str], Opt("--operating-points", help="DVFS table: a preset (rk3576-npu | rk356x-gpu) or a TOML file [default: none]")] = None,
    clock_hz: Annotated[Optional[float], Opt("--clock-hz", help="array clock [default: 1e9, or the fastest --operating-points point]")] = None,
    operating_point: Annotated[Optional[str], Opt("--operating-point", help="auto: pick the operating point together with the network (needs --operating-points) [default: the spec's clock]")] = None,
    budget_lr: Annotated[Optional[float], Opt("--budget-lr", help=f"dual-ascent step of the budget multiplier {D('budget_lr')}")] = None,
    budget_floor: Annotated[Optional[float], Opt("--budget-floor", help=f"with a target: steer to and export a network using at least this share of it (0: plain upper bound) {D('budget_floor')}")] = None,
    budget_commit: Annotated[Optional[float], Opt("--budget-commit", help=f"with a target: the last share of the search pulls the alphas to the budget's exact projection (0: off) {D('budget_commit')}")] = None,
    arch_lr: Annotated[Optional[float], Opt("--arch-lr", help=f"Adam learning rate of the architecture parameters {D('arch_lr')}")] = None,
    temperature: Annotated[Optional[float], Opt(help=f"smooth-ceiling temperature T {D('temperature')}")] = None,
    cost_mode: Annotated[Optional[str], Opt("--cost-mode", help=f"expected | smooth {D('cost_mode')}")] = None,
    sampling: Annotated[Optional[str], Opt(help=f"mixture (all candidates run) | single-path (one sampled per choice) {D('sampling')}")] = None,
    score_weight: Annotated[Optional[float], Opt("--score-weight", help=f"single-path: weight of the score-function (REINFORCE) estimate of the task gradient beside the straight-through one; it reaches choices before a batch norm (0: straight-through only) {D('score_weight')}")] = None,
    score_on: Annotated[Optional[str], Opt("--score-on", help=f"with --score-weight: all sampled choices, or blind (only those whose straight-through task gradient is measured to vanish, e.g. before a batch norm) {D('score_on')}")] = None,
    no_sharpen: Annotated[bool, Flag("--no-sharpen", help="price softmax(alpha) as NNI's DARTS, not the distribution sharpened with the Gumbel temperature (a search that commits)")] = False,
    gumbel_tau: Annotated[Optional[str], Opt("--gumbel-tau", help="START,END of the Gumbel-softmax temperature, annealed linearly over the architecture steps [default: 1,0.1]")] = None,
    epochs: Annotated[Optional[int], Opt(help=f"search epochs {D('epochs')}")] = None,
    warmup_epochs: Annotated[Optional[int], Opt("--warmup-epochs", help=f"of those, weights-only epochs first (the architecture learns after them) {D('warmup_epochs')}")] = None,
    batch_size: Annotated[Optional[int], Opt("--batch-size", help=f"training batch size {D('batch_size')}")] = None,
    width: Annotated[Optional[int], Opt(help=f"darts-cifar: channels of the first stage {D('width', 'darts-cifar')}")] = None,
    cells: Annotated[Optional[int], Opt(help=f"darts-cifar: number of cells {D('cells', 'darts-cifar')}")] = None,
    channels: Annotated[Optional[str], Opt(help="darts-cifar channel search START:STOP:STEP [default: fixed widths]")] = None,
    cell_arch: Annotated[Optional[Path], Opt("--cell-arch", help="stage two: fix cells to this run/arch.json, search channels [default: search cells]")] = None,
    image_size: Annotated[Optional[int], Opt("--image-size", help="resize images to this side [default: the dataset's own: digits 8, CIFAR 32]")] = None,
    max_samples: Annotated[Optional[int], Opt("--max-samples", help="use at most this many training images (and a quarter as many validation images, at least one batch) [default: all]")] = None,
    seed: Annotated[Optional[int], Opt(help=f"random seed (data split, weights, sampling) {D('seed')}")] = None,
    config: Annotated[Optional[Path], Opt("--config", help="TOML file with search settings (a [search] table), or a run's config.json (its every setting); flags override it [default: none]")] = None,
    out: Annotated[Optional[Path], Opt(help="run directory [default: runs/SPACE-DATASET-sSEED]")] = None,
    resume: Annotated[bool, Flag("--resume", help="continue an interrupted run in --out")] = False,
    force: Annotated[bool, Flag("--force", help="start over in a non-empty --out (removes only what uboost wrote there)")] = False,
    accelerator: Annotated[Optional[str], Opt(help=f"auto | cpu | gpu | mps (auto: a GPU where there is one) {D('accelerator')}")] = None,
    devices: Annotated[Optional[int], Opt(help=f"devices per node, one process each (DDP when more than one) {D('devices')}")] = None,
    num_nodes: Annotated[Optional[int], Opt("--num-nodes", help=f"nodes (under torchrun, SLURM or MASTER_ADDR/NODE_RANK) {D('num_nodes')}")] = None,
    strategy: Annotated[Optional[str], Opt(help=f"auto | ddp (auto: DDP on more than one device) {D('strategy')}")] = None,
    precision: Annotated[Optional[str], Opt(help=f"32-true | bf16-mixed | 16-mixed (GPU) {D('precision')}")] = None,
    logger: Annotated[Optional[str], Opt("--logger", help="also log to tensorboard | wandb | mlflow (installed separately); metrics.csv is always written [default: csv]")] = None,
    bits: Annotated[Optional[str], Opt(help="search a bitwidth per layer for weights and activations together, e.g. 2,4,8 [default: float, no quantization]")] = None,
    weight_bits: Annotated[Optional[str], Opt("--weight-bits", help="search weight bitwidths per layer, independently of --act-bits, e.g. 2,4,8 [default: 8 with --act-bits, else float]")] = None,
    act_bits: Annotated[Optional[str], Opt("--act-bits", help="search activation bitwidths per layer, e.g. 4,8 [default: 8 with --weight-bits, else float]")] = None,
    pin_bits: Annotated[Optional[list[str]], Opt("--pin-bits", help="PATTERN=BITS: fix the layers whose names match to one width, e.g. 'stem*=8'; repeatable [default: none]")] = None,
    bits_noise_weight: Annotated[Optional[float], Opt("--bits-noise-weight", help=f"weight of the loss each searched width's quantization noise adds (a second-order estimate) in the architecture loss; 0: bits priced by the hardware alone {D('bits_noise_weight')}")] = None,
    utilization_on_bits: Annotated[Optional[str], Opt("--utilization-on-bits", help="auto | on | off: whether the utilization term moves the searched bits (on bitfusion/bit-serial PEs it favours wide bits: a narrow layer runs faster at lower utilization) [default: auto: on fixed PEs only]")] = None,
    pe: Annotated[Optional[str], Opt(help=f"processing elements: fixed | bitfusion | bit-serial {D('pe')}")] = None,
    widen: Annotated[Optional[str], Opt(help="at export, raise what costs nothing more: bits (each layer's bitwidth) | all (channel counts and bits jointly) [default: all when bits are searched, else bits]")] = None,
) -> None:
    """Search an architecture with the U-Boost loss and write a run directory."""
    from uboost.search import SearchConfig, SearchInterrupted, run_search
    from uboost.search_spaces import parse_channels

    values = _load_config(config) if config else {}
    space_options = dict(values.pop("space_options", {}))
    flags = dict(
        space=space, dataset=dataset, data_dir=data_dir, array=array, dataflow=dataflow, cost_model=cost_model,
        sram_kb=sram_kb, dram_bw_words=dram_bw_words,
        latency_weight=latency_weight, utilization_weight=utilization_weight, utilization_scale=utilization_scale,
        target_latency_ms=target_latency_ms,
        energy_weight=energy_weight, target_energy_uj=target_energy_uj, energy=energy, voltage_v=voltage_v,
        operating_points=operating_points, operating_point=operating_point, clock_hz=clock_hz,
        budget_lr=budget_lr, budget_floor=budget_floor, budget_commit=budget_commit, arch_lr=arch_lr,
        temperature=temperature, cost_mode=cost_mode, sampling=sampling, score_weight=score_weight, score_on=score_on, epochs=epochs, warmup_epochs=warmup_epochs, batch_size=batch_size, image_size=image_size,
        max_samples=max_samples, seed=seed, accelerator=accelerator, devices=devices,
        num_nodes=num_nodes, strategy=strategy, precision=precision, widen=widen, bits_noise_weight=bits_noise_weight,
    )
    hardware_fields = hardware_changes(hardware, flags)
    space_options.update(hardware_fields.pop("space_options", {}))
    values.update(hardware_fields)
    values.update({k: v for k, v in flags.items() if v is not None})
    dram_bandwidth(values, dram_bw_words, dram_bw_gbps)
    if utilization_on_bits is not None:  # auto (None) given here overrides a --config file's true/false
        values["utilization_on_bits"] = _on_off_auto(utilization_on_bits, "--utilization-on-bits")
    values.update(_precision_flags(bits, weight_bits, act_bits, pin_bits, pe))
    if gumbel_tau is not None:
        from uboost.search_config import parse_gumbel_tau

        values["gumbel_tau"] = parse_gumbel_tau(gumbel_tau)
    if download:
        values["download"] = True
    if no_sharpen:
        values["sharpen"] = False
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
    if not resume:  # a resume takes the run's stored settings (a flag that differs from them is refused below)
        _refuse_idle_flags(cfg, temperature=temperature, budget_lr=budget_lr, budget_floor=budget_floor,
                           budget_commit=budget_commit, utilization_on_bits=utilization_on_bits)
    run_dir = out or Path("runs") / f"{cfg.space}-{cfg.dataset.replace(':', '_').replace('/', '_')}-s{cfg.seed}"
    from uboost.distributed import LAUNCH_FIELDS, check_launch, is_rank_zero

    check_launch(accelerator=cfg.accelerator, devices=cfg.devices, num_nodes=cfg.num_nodes, precision=cfg.precision,
                 strategy=cfg.strategy)
    if resume:
        _refuse_changed_settings(run_dir, {k: v for k, v in given.items() if k not in LAUNCH_FIELDS}, cfg.to_dict())
    rank_zero = is_rank_zero(cfg)  # the other ranks of a DDP run print nothing and never touch the run directory
    from uboost.search_config import refuse_tableless_lookup

    refuse_tableless_lookup(cfg)  # before the header, as the dataset's name and the space's options
    from uboost.data import check_available
    from uboost.hardware.registry import COST_MODELS
    from uboost.search_spaces.registry import check_options

    check_available(cfg.dataset, data_dir=cfg.data_dir, download=cfg.download)  # the name, and the files where they are looked for
    check_options(cfg.space, cfg.space_options)
    COST_MODELS.get(cfg.cost_model)  # an unknown name
    if rank_zero:  # an --out that holds a finished search (without --force), or nothing to resume
        from uboost.runs import SEARCH, check_run_dir, is_tune_study

        study = next((p for p in Path(run_dir).absolute().parents if is_tune_study(p)), None)
        if study is not None and not resume:  # a trial's run directory is the study's: its journal describes it
            raise RunDirError(f"output {run_dir} lies in the tune study {study}, whose trials are its own; choose another "
                              "output (uboost tune --export N writes a trial's network elsewhere)")
        check_run_dir(run_dir, resume=resume, force=force, owner=SEARCH)
    if not resume and rank_zero:
        console.print(
            f"[bold]uboost search[/] {cfg.space} on {cfg.dataset}, {cfg.array} {cfg.dataflow} ({cfg.cost_model}, "
            f"{cfg.cost_mode}, {cfg.sampling}), {_weights_text(cfg)} -> {run_dir}"
        )
    from uboost.loggers import create as create_logger
    from uboost.runs import run_lock

    extra_logger = create_logger(logger, run_dir)  # an unknown or missing logger fails before anything is written
    from uboost.search import build_cost_model

    if rank_zero and not resume:  # notes on what the pricing ignores, said once when a run starts
        model = build_cost_model(cfg)
        for note in filter(None, (model.memory_note(), cfg.bits_note(model))):
            console.print(f"[yellow]note:[/] {note}")
    if resume and rank_zero:
        note_unreadable_checkpoints(run_dir)
    with run_lock(run_dir) if rank_zero else contextlib.nullcontext():
        try:
            result = run_search(cfg, run_dir, resume=resume, force=force, progress=True, logger=extra_logger)
        except KeyboardInterrupt:
            raise SearchInterrupted(f"search interrupted; {_after_interrupt(run_dir)}") from None
        if not rank_zero:
            return
    if resume:  # the run's own settings, not this command's defaults (a resume takes them from config.json)
        from uboost.runs import CONFIG, read_json
        from uboost.search import SearchConfig

        cfg = SearchConfig.from_dict(read_json(result.run_dir / CONFIG, "run config"))
    from rich.table import Table

    table = Table(title=f"search result: {result.run_dir}", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    s = result.summary()
    table.add_row("validation accuracy (supernet)", "n/a" if s["val_acc"] is None else f"{100 * s['val_acc']:.1f}%")
    table.add_row(f"latency on {cfg.array} {cfg.dataflow}", f"{latency_text(s['latency_ms'])} ({human(s['cycles'])} cycles)")
    table.add_row("utilization", f"{100 * s['utilization']:.1f}%")
    table.add_row("MACs", human(s["macs"]))
    parts = ", ".join(f"{k} {number_text(v, 3)}" for k, v in s["energy_breakdown_uj"].items())
    energy_name = cfg.energy.get("name", "own table") if isinstance(cfg.energy, dict) else cfg.energy  # a table: its name
    table.add_row(f"energy ({energy_name})", f"{number_text(s['energy_uj'])} µJ ({parts})")
    if "operating_point" in s:
        table.add_row("operating point (auto)", f"{s['operating_point']['freq_hz'] / 1e6:g} MHz @ {1e3 * s['operating_point']['voltage_v']:g} mV")
    if s.get("widened_values"):  # what the export raised at no extra cost (uboost.strategy.widening)
        raised = ", ".join(f"{k} {a}→{b}" for k, (a, b) in s["widened_values"].items())
        table.add_row(f"changed at export (--widen {cfg.widen})", f"{raised}: no more latency")
    table.add_row("latency_ref (uniform supernet)", "n/a" if s["latency_ref_ms"] is None else latency_text(s["latency_ref_ms"]))
    table.add_row("search time", f"{s['search_seconds']:.0f} s")
    console.print(table)
    console.print(f"per-layer table: {result.run_dir / 'hardware.txt'}")
    console.print(f"next: [bold]uboost retrain {result.run_dir}[/]  |  uboost profile {result.run_dir}")


def _after_interrupt(run_dir: Path) -> str:
    """What the user can do after a Ctrl-C, by what the search had written by then."""
    from uboost import runs

    if runs.latest_checkpoint(Path(run_dir)) is not None or (Path(run_dir) / runs.CONFIG).is_file():
        return runs.unfinished_hint(run_dir).removeprefix("the search did not finish; ")
    return "nothing was written yet: run the same command again"
def _precision_flags(bits, weight_bits, act_bits, pin_bits, pe) -> dict:
    """``--bits 2,4,8`` etc. as SearchConfig values (lists, as config.json stores them)."""
    from uboost.quant import parse_bits

    values = {name: list(parse_bits(text, f"--{name.replace('_', '-')}"))
              for name, text in (("bits", bits), ("weight_bits", weight_bits), ("act_bits", act_bits)) if text is not None}
    if pin_bits:
        pins = {}
        for item in pin_bits:
            pattern, sep, width = item.rpartition("=")
            if not sep or not pattern:
                raise ConfigError(f"--pin-bits must look like PATTERN=BITS (e.g. 'stem*=8'), got {item!r}")
            pins[pattern] = parse_bits(width, "--pin-bits")[0]
        values["pin_bits"] = pins
    if pe is not None:
        values["pe"] = pe
    return values


def _weights_text(cfg) -> str:
    """The header's hardware weights: a budget replaces lambda (latency) or gamma (energy), which it makes unused."""
    parts = [f"latency budget {cfg.target_latency_ms:g} ms" if cfg.target_latency_ms is not None
             else f"lambda={cfg.latency_weight:g}", f"beta={cfg.utilization_weight:g}"]
    if cfg.target_energy_uj is not None:
        parts.append(f"energy budget {cfg.target_energy_uj:g} µJ")
    elif cfg.energy_weight:
        parts.append(f"gamma={cfg.energy_weight:g}")
    return " ".join(parts)


def _refuse_idle_flags(cfg, **given) -> None:
    """A flag given on the command line that the resolved settings never read is an error, not ignored (a QA pass
    found each of these saved in config.json with the search unchanged)."""
    if given["temperature"] is not None and cfg.cost_mode != "smooth":
        raise ConfigError("--temperature sets the smooth ceiling's T: give it with --cost-mode smooth "
                          f"(cost mode {cfg.cost_mode!r} prices every candidate cycle-exact)")
    shaping = [f"--{k.replace('_', '-')}" for k in ("budget_lr", "budget_floor", "budget_commit") if given[k] is not None]
    if shaping and cfg.target_latency_ms is None and cfg.target_energy_uj is None:
        raise ConfigError(f"{' and '.join(shaping)} shape{'s' if len(shaping) == 1 else ''} a budget: give "
                          f"{'it' if len(shaping) == 1 else 'them'} with --target-latency-ms or --target-energy-uj")
    if given["utilization_on_bits"] is not None and cfg.bits_options() is None:
        raise ConfigError("--utilization-on-bits says whether the utilization term moves searched bits: give it with "
                          "--bits, --weight-bits or --act-bits")


def _refuse_changed_settings(run_dir: Path, given: dict, resolved: dict | None = None) -> None:
    """``--resume`` continues a run with its stored config: a setting that differs is an error, not ignored.
    ``resolved``: the config the flags make (``SearchConfig.to_dict()``), compared where it has the setting: a
    ``--hardware`` file leaves the clock to be resolved (None -> its DVFS table's, else 1 GHz), as it was stored."""
    from uboost import runs

    if not (Path(run_dir) / runs.CONFIG).is_file():
        return  # run_search says there is nothing to resume
    stored = runs.read_json(Path(run_dir) / runs.CONFIG, "run config")
    if not isinstance(stored, dict):
        raise ConfigError(f"{Path(run_dir) / runs.CONFIG} must hold a JSON object of settings, got {type(stored).__name__}")
    options = dict(given.pop("space_options", {}))
    given = json.loads(json.dumps(given, default=str))  # as stored: tuples (--bits, --gumbel-tau) as lists, paths as text
    resolved = json.loads(json.dumps(resolved or {}, default=str))
    given = {k: resolved.get(k, v) if v is None else v for k, v in given.items()}
    changed = [f"{k} {stored.get(k)!r} -> {v!r}" for k, v in given.items() if stored.get(k) != v]
    stored_options = stored.get("space_options") or {}
    changed += [f"{k} {stored_options.get(k)!r} -> {v!r}" for k, v in options.items() if stored_options.get(k) != v]
    if changed:
        raise ConfigError(f"--resume continues {run_dir} with its stored settings, but these differ: {', '.join(changed)}; "
                          "drop them, or start over with --force")
