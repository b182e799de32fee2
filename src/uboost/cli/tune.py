"""``uboost tune``: the Optuna outer loop over lambda, T and the array (see :mod:`uboost.tuning`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from uboost.cli._common import console, err_console, human, latency_text, not_drawn, number_text
from uboost.cli._tune_parsing import parse_choices, parse_float_range, parse_int_space  # noqa: F401  (tests, plug-ins)
from uboost.cli._tune_table import ACCELERATOR_PARAMS, _accelerator_cell, _accelerator_text, _chosen_params  # noqa: F401  (tests)
from uboost.cli._tune_table import _wide_fixed_area_note
from uboost.exceptions import ConfigError, comma_items

Opt = typer.Option


def _accelerator_space(base, *, area_budget_mm2, ifmap, filters, ofmap, dram_bw, operating_point: bool, pe_modes, objectives):
    """The co-searched accelerator (None when nothing of it is searched, constrained or an objective)."""
    from uboost import tuning
    from uboost.accelerator import points_table

    clocks = None
    if operating_point:
        table = points_table(base.operating_points)
        if table is None:
            raise ConfigError("--search-operating-point needs an operating-point table: --operating-points or a --hardware file with one")
        clocks = [p.freq_hz for p in table]
    given = dict(ifmap_sram_kb=parse_choices(ifmap, "--ifmap-sram-kb-choices"), filter_sram_kb=parse_choices(filters, "--filter-sram-kb-choices"),
                 ofmap_sram_kb=parse_choices(ofmap, "--ofmap-sram-kb-choices"), dram_bw_words=parse_choices(dram_bw, "--dram-bw-choices", float),
                 clock_hz=clocks, pe_modes=None if pe_modes is None else comma_items(pe_modes, "--pe-modes", "fixed,bitfusion"),
                 area_budget_mm2=area_budget_mm2)
    if all(v is None for v in given.values()) and "area" not in objectives:
        return None
    return tuning.AcceleratorSpace(**given)


def _base_config(config: Optional[Path], flags: dict, *, default_epochs: int, hardware: Optional[Path] = None,
                 dram_bw_gbps: Optional[float] = None):
    from uboost.cli.search import _load_config, dram_bandwidth, hardware_changes
    from uboost.search import SearchConfig

    if config is not None and (Path(config).suffix.lower() == ".json" or Path(config).is_dir()):
        raise ConfigError(f"tune --config takes a TOML file of search settings ([search]); {config} is a run's config, which "
                          "fixes what tune searches (the array, lambda): copy the settings to keep into a TOML file")
    values = _load_config(config) if config else {}
    tuned = {"array": "--rows and --cols (e.g. --rows 8 --cols 8 for one array)",
             "latency_weight": "--lambda-range (e.g. --lambda-range 5:5 for one value)"}
    fixed = [key for key in tuned if key in values]
    if fixed:  # every trial replaces them: a value here would be ignored without a word
        raise ConfigError(f"{config}: {fixed[0]} is what tune searches; set it with {tuned[fixed[0]]}, not in --config")
    values.update(hardware_changes(hardware, flags))  # the accelerator trials start from (they search rows, cols...)
    space_options = dict(values.pop("space_options", {}))
    values.update({k: v for k, v in flags.items() if v is not None})
    dram_bandwidth(values, flags.get("dram_bw_words"), dram_bw_gbps)
    values.setdefault("epochs", default_epochs)
    if values.get("space", "darts-cifar") == "darts-cifar":
        space_options.setdefault("width", 8)
        space_options.setdefault("cells", 3)
    values["space_options"] = space_options
    tech = values.pop("tech", None)
    if tech is not None:  # the area table trials are priced on
        values["hardware"] = {**(values.get("hardware") or {}), "area": tech}
    return SearchConfig.from_dict(values)


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


class RunningTrials:
    """A live Rich status line per running trial (epoch, validation accuracy, expected latency);
    finished trials print above it (``_trial_line``). Nothing is drawn when output is not a terminal."""

    def __init__(self, target) -> None:
        from rich.console import Group
        from rich.live import Live

        self.spinners: dict[int, object] = {}
        self._group = Group
        self.live = Live(console=target, transient=True, refresh_per_second=4, get_renderable=self._render)

    def _render(self):
        return self._group(*(self.spinners[n] for n in sorted(self.spinners)))

    def update(self, number: int, info: dict) -> None:
        from rich.spinner import Spinner

        epochs = f"/{info['epochs']}" if info.get("epochs") else ""
        latency = info.get("latency_ms")
        text = (f"trial {number}: epoch {info.get('epoch', 0) + 1}{epochs}  val acc {_pct(info.get('val_acc'))}  "
                f"expected latency {'n/a' if latency is None else latency_text(latency)}")
        if number in self.spinners:
            self.spinners[number].update(text=text)
        else:
            self.spinners[number] = Spinner("dots", text=text)

    def finished(self, study, trial) -> None:
        self.spinners.pop(trial.number, None)

    def __enter__(self) -> "RunningTrials":
        self.live.start()
        return self

    def __exit__(self, *exc) -> None:
        self.spinners.clear()
        self.live.stop()


def _trial_line(study, trial) -> None:
    """One line per finished trial (Optuna's own log is silenced: it prints tracebacks)."""
    a = trial.user_attrs
    seconds = f"{trial.duration.total_seconds():.0f} s" if trial.duration else ""
    where = f"{a.get('array', '?')} {a.get('dataflow', '')}".strip()
    params = ", ".join(f"{v / 1e6:g} MHz" if k == "clock_hz" else f"{'lambda' if k == 'latency_weight' else 'T' if k == 'temperature' else k}={v:.3g}"
                       for k, v in _chosen_params(trial).items() if isinstance(v, float))
    state = trial.state.name
    if a.get("skipped"):
        console.print(f"[dim]trial {trial.number} skipped: {a.get('fail_reason')}[/]")
    elif state == "COMPLETE":
        extra = "".join(f", {name} {number_text(a[key])} {unit}" for key, name, unit in (("energy_uj", "energy", "µJ"), ("area_mm2", "area", "mm²"))
                        if a.get(key) is not None)
        console.print(f"trial {trial.number}: accuracy {_pct(a.get('accuracy'))}, latency {latency_text(a.get('latency_ms', float('nan')))}{extra}, "
                      f"utilization {_pct(a.get('utilization'))}  [dim]({where}, {params}) {seconds}[/]")
    elif state == "PRUNED":
        console.print(f"[yellow]trial {trial.number} pruned[/] after epoch {a.get('pruned_at_epoch', '?')}  [dim]({where}, {params}) {seconds}[/]")
    else:
        console.print(f"[red]trial {trial.number} failed:[/] {a.get('fail_reason', 'see the log')}  [dim]({where}) {seconds}[/]")


def _recover(study, out: Path) -> None:
    """Record results a lost storage left on disk; fail (and queue again) trials of dead workers."""
    from uboost import tuning

    for number in tuning.record_pending(study, out):
        console.print(f"[yellow]trial {number}:[/] recorded its result, kept on disk when the storage was unavailable")
    for number in tuning.fail_dead_trials(study, log=False):  # one line each, here
        reason = study.trials[number].user_attrs.get("fail_reason", "its worker died") if number < len(study.trials) else ""
        console.print(f"[yellow]trial {number} failed:[/] {reason}; queued again")


def _searches_left(study, asked: int) -> int:
    """How many of the ``asked`` searches this process did not finish (``run_study`` counts every finished trial but
    an area-budget skip; other workers' trials are theirs)."""
    from uboost.tuning.recovery import INTERRUPTED_REASON, worker_name

    me = worker_name()
    done = sum(1 for t in study.get_trials(deepcopy=False) if t.user_attrs.get("worker") == me and t.state.is_finished()
               and not t.user_attrs.get("skipped") and t.user_attrs.get("fail_reason") != INTERRUPTED_REASON)
    return max(asked - done, 0)


def _area_text(trial) -> str:
    area = trial.user_attrs.get("area_mm2")
    return f" on {number_text(area)} mm²" if area is not None else ""


def _report(study, out: Path, budget_ms: float | None, area_budget_mm2: float | None = None) -> None:
    """Rich table of the Pareto front and the Pareto PNG."""
    from collections import Counter

    from rich import box
    from rich.table import Table

    from uboost import tuning

    states = Counter(t.state.name for t in study.get_trials(deepcopy=False))
    counts = ", ".join(f"{n} {s.lower()}" for s, n in sorted(states.items()))
    console.print(f"study [bold]{study.study_name}[/]: {sum(states.values())} trials ({counts or 'none'})")
    front = tuning.pareto_front(study, budget_ms=budget_ms, area_budget_mm2=area_budget_mm2)
    best = tuning.best_trial(study, budget_ms=budget_ms, area_budget_mm2=area_budget_mm2)
    if not front:
        done = tuning.completed(study)
        if not done:
            console.print("no finished trial yet")
            return
        cheapest = min(done, key=lambda t: t.user_attrs["latency_ms"])
        within = f"the {budget_ms:g} ms latency budget" if budget_ms else "the study's budgets"
        console.print(f"no finished trial is within {within}: the fastest, trial {cheapest.number}, takes "
                      f"{latency_text(cheapest.user_attrs['latency_ms'])}{_area_text(cheapest)}")
        return
    searched_beta = any("utilization_weight" in t.params for t in front)
    budget = f" (latency budget {budget_ms:g} ms)" if budget_ms else ""
    metrics = tuning.front_metrics(study)
    over = " vs ".join(m.split("_")[0] for m in metrics)
    extra = [(k, h) for k, h in (("energy_uj", "energy µJ"), ("area_mm2", "area mm²")) if any(t.user_attrs.get(k) is not None for t in front)]
    accelerator = any(k in t.params for t in front for k in ACCELERATOR_PARAMS)
    table = Table(title=f"Pareto front: {over}{budget}", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for name in ("trial", "acc.", "latency", *(h for _, h in extra), "cycles", "util.", "λ", "T", "array", "flow", *(["accelerator"] if accelerator else [])):
        table.add_column(name, justify="left" if name in ("array", "flow", "accelerator") else "right", no_wrap=True)
    if searched_beta:
        table.add_column("β", justify="right", no_wrap=True)
    for t in front:
        a = t.user_attrs
        row = [
            f"{t.number}{' *' if best is not None and t.number == best.number else ''}",
            _pct(a["accuracy"]), latency_text(a["latency_ms"]), human(a["cycles"]), _pct(a["utilization"]),
            f"{t.params.get('latency_weight', float('nan')):.3g}",
            f"{t.params['temperature']:.3g}" if "temperature" in t.params else "-",
            a.get("array", "?"), a.get("dataflow", "?"),
        ]
        row[3:3] = [number_text(a[k]) if a.get(k) is not None else "-" for k, _ in extra]
        if accelerator:
            row.append(_accelerator_cell(t))
        if searched_beta:
            row.append(f"{t.params['utilization_weight']:.3g}" if "utilization_weight" in t.params else "-")
        table.add_row(*row)
    console.print(table)
    if best is not None:
        console.print(f"* best: trial {best.number} (most accurate{' within the budget' if budget_ms else ''}); "
                      f"export it with [bold]--export {best.number}[/] or [bold]--export best[/]")
    png = out / ("pareto.png" if study.study_name == tuning.DEFAULT_STUDY else f"pareto-{tuning.safe_name(study.study_name)}.png")
    try:
        tuning.pareto_plot(study, png)
        console.print(f"Pareto plot: {png}")
    except Exception as exc:  # a plot must never lose the study's result
        not_drawn(png, exc)


def _check_budgets(budget_ms: Optional[float], area_budget_mm2: Optional[float]) -> None:
    """The budgets a report or an export judges the trials by: positive and finite, as a study's own."""
    from uboost import tuning

    tuning.check_mode("pareto", budget_ms)
    tuning.AcceleratorSpace(area_budget_mm2=area_budget_mm2)


def _repair_journal(storage: Optional[str], out: Path) -> None:
    from uboost.tuning.journal import repair_journal

    path = out / "study.journal" if storage is None else Path(storage)
    if storage is not None and ("://" in storage or path.suffix not in (".journal", ".log", ".jsonl")):
        from uboost.tuning import describe_storage

        raise ConfigError(f"--repair-journal repairs journal files; {describe_storage(storage, out)} is not one")
    if not path.exists():
        console.print(f"no journal {path} yet: nothing to repair")
        return
    backup = repair_journal(path)
    if backup is None:
        console.print(f"journal {path} is intact: nothing to repair")
    else:
        console.print(f"[yellow]repaired[/] {path}: cut back to its last complete record; the damaged file is kept as {backup}")


def _local_search(study, n: int, **options) -> None:
    from uboost.tuning.local_trials import run_local_search

    console.print(f"local search: up to {n} retrains of networks one choice away from the front's")

    def line(trial) -> None:
        a = trial.user_attrs
        move = a["local_search"]
        console.print(f"  trial {trial.number}: trial {move['parent']}'s network with {move['label']} {move['from']} -> {move['to']}: "
                      f"accuracy {_pct(a.get('accuracy'))}, latency {latency_text(a['latency_ms'])} on {a.get('array')} {a.get('dataflow')}")

    with console.status("local search: pricing neighbors on the accelerators, retraining the most promising"):
        added = run_local_search(study, n, progress=line, **options)
    if len(added) < n:
        console.print(f"local search: stopped after {len(added)}: no other neighbor of the front could join it")


def tune(
    space: Annotated[Optional[str], Opt(help="search space (`uboost spaces`)")] = None,
    dataset: Annotated[Optional[str], Opt(help="digits | cifar10 | cifar100 | folder:PATH")] = None,
    data_dir: Annotated[Optional[str], Opt("--data-dir", help="where the dataset lives")] = None,
    trials: Annotated[int, Opt("--trials", help="searches to run in this process (0: only report)")] = 10,
    timeout: Annotated[Optional[float], Opt(help="stop starting trials after this many seconds")] = None,
    epochs: Annotated[Optional[int], Opt(help="search epochs per trial [default: 3]")] = None,
    batch_size: Annotated[Optional[int], Opt("--batch-size")] = None,
    image_size: Annotated[Optional[int], Opt("--image-size")] = None,
    max_samples: Annotated[Optional[int], Opt("--max-samples", help="use at most this many training images")] = None,
    cost_model: Annotated[Optional[str], Opt("--cost-model", help="a name from `uboost hw list`")] = None,
    sram_kb: Annotated[Optional[int], Opt("--sram-kb", help="size of each SRAM buffer (ifmap, filter, ofmap) in kB [default: unbounded]")] = None,
    dram_bw_words: Annotated[Optional[float], Opt("--dram-bw-words", help="DRAM bandwidth in words (bytes) per cycle per port [default: unbounded]")] = None,
    dram_bw_gbps: Annotated[Optional[float], Opt("--dram-bw-gbps", help="DRAM bandwidth in GB/s per port (words per cycle at each trial's clock), instead of --dram-bw-words [default: unbounded]")] = None,
    cost_mode: Annotated[Optional[str], Opt("--cost-mode", help="expected | smooth")] = None,
    sampling: Annotated[Optional[str], Opt(help="mixture | single-path (one sampled candidate per choice per step)")] = None,
    config: Annotated[Optional[Path], Opt("--config", help="TOML with base search settings (as for `uboost search`)")] = None,
    hardware: Annotated[Optional[Path], Opt("--hardware", help="accelerator file (uboost TOML or SCALE-Sim .cfg) the trials start from; the searched knobs override it")] = None,
    lambda_range: Annotated[str, Opt("--lambda-range", help="latency weight LOW:HIGH, log scale")] = "0.01:10",
    temperature_range: Annotated[Optional[str], Opt("--temperature-range", help="smooth-ceiling temperature LOW:HIGH, log scale; searched only with --cost-mode smooth, where it acts [default: 1:50]")] = None,
    rows: Annotated[str, Opt(help="array rows: choices 8,16,32 or a range LOW:HIGH[:STEP]")] = "8,16,32",
    cols: Annotated[str, Opt(help="array cols: choices or LOW:HIGH[:STEP]")] = "8,16,32",
    area_budget: Annotated[Optional[int], Opt("--area-budget", help="skip arrays with more PEs (rows*cols) than this; a budget in silicon area is --area-budget-mm2")] = None,
    dataflows: Annotated[Optional[str], Opt(help="also search the dataflow, e.g. ws,os")] = None,
    utilization_weight_range: Annotated[Optional[str], Opt("--utilization-weight-range", help="also search beta LOW:HIGH")] = None,
    mode: Annotated[str, Opt(help="pareto (accuracy up, latency down; NSGA-II) | budget (accuracy under --budget-ms; TPE + pruning)")] = "pareto",
    budget_ms: Annotated[Optional[float], Opt("--budget-ms", help="latency budget in ms (needed by --mode budget)")] = None,
    retrain_epochs: Annotated[int, Opt("--retrain-epochs", help="short retrain per trial; its test accuracy is the objective")] = 0,
    storage: Annotated[Optional[str], Opt(help="Optuna storage URL or a .journal/.db file [default: OUT/study.journal]")] = None,
    study_name: Annotated[str, Opt("--study-name")] = "uboost",
    out: Annotated[Path, Opt(help="tuning directory: storage, trials/, plots")] = Path("runs/tune"),
    seed: Annotated[Optional[int], Opt(help="sampler seed (default: random); give parallel workers different seeds")] = None,
    export: Annotated[Optional[str], Opt("--export", help="write trial N (or 'best') as a run directory; runs no trials")] = None,
    export_to: Annotated[Optional[Path], Opt("--export-to", help="where --export writes [default: OUT/export-N; OUT/export-STUDY-N for another --study-name]")] = None,
    force: Annotated[bool, Opt("--force", help="replace an existing --export-to directory")] = False,
    repair_journal: Annotated[bool, Opt("--repair-journal", help="first cut a torn journal back to its last complete record (a copy of the damaged file is kept)")] = False,
    objectives: Annotated[Optional[str], Opt("--objectives", help="two or three of accuracy, latency, energy, area (pareto mode) [default: accuracy,latency]")] = None,
    sampler: Annotated[str, Opt("--sampler", help="nsga2 | nsga3 (pareto mode; NSGA-III spreads three objectives)")] = "nsga2",
    area_budget_mm2: Annotated[Optional[float], Opt("--area-budget-mm2", help="silicon budget: accelerators above it are infeasible (an Optuna constraint) and never searched")] = None,
    tech: Annotated[Optional[str], Opt("--tech", help="area table: tpu28, recpipe12 or a TOML file [default: the --hardware file's, else tpu28]")] = None,
    ifmap_sram_kb_choices: Annotated[Optional[str], Opt("--ifmap-sram-kb-choices", help="co-search the ifmap SRAM: kB choices, e.g. 8,16,32")] = None,
    filter_sram_kb_choices: Annotated[Optional[str], Opt("--filter-sram-kb-choices", help="co-search the filter SRAM (kB choices)")] = None,
    ofmap_sram_kb_choices: Annotated[Optional[str], Opt("--ofmap-sram-kb-choices", help="co-search the ofmap SRAM (kB choices)")] = None,
    dram_bw_choices: Annotated[Optional[str], Opt("--dram-bw-choices", help="co-search the DRAM bandwidth: words per cycle choices, e.g. 4,8,16")] = None,
    operating_points: Annotated[Optional[str], Opt("--operating-points", help="DVFS table: a preset (rk3576-npu | rk356x-gpu) or a TOML file")] = None,
    search_operating_point: Annotated[bool, Opt("--search-operating-point", help="co-search the operating point among the DVFS table's points")] = False,
    pe_modes: Annotated[Optional[str], Opt("--pe-modes", help="co-search the PE mode: some of fixed,bitfusion,bit-serial")] = None,
    inner_accelerator: Annotated[Optional[str], Opt("--inner-accelerator", help="exhaustive | off: after each trial's search, price its network on every accelerator of the space within --area-budget-mm2 and report the best (least EDP, or the latency/energy objective) [default: exhaustive with --area-budget-mm2 unless area is one of --objectives, else off]")] = None,
    bits: Annotated[Optional[str], Opt("--bits", help="also search a bitwidth per layer (weights and activations together), e.g. 4,8: each trial retrains quantization-aware at its chosen bits and is priced at them [default: the --config file's, else float, priced at 8 bits]")] = None,
    warm_start: Annotated[Optional[Path], Opt("--warm-start", help="first run the finished trials of the study in this directory again (their latency weight and accelerator, as this space names them): with the inner accelerator choice, the networks you have on their best accelerators; they count in --trials")] = None,
    search_seeds: Annotated[int, Opt("--search-seeds", help="N > 1: each trial also draws its search seed (seed + 0..N-1; an Optuna parameter, search_seed), so nearby points can derive other networks")] = 1,
    inner_rounds: Annotated[Optional[int], Opt("--inner-rounds", help="1 | 2: with the inner accelerator choice, 2 searches each trial's network again on the accelerator it chose and chooses again (network -> accelerator -> network); the trial keeps one pair [default: 1]")] = None,
    local_search: Annotated[int, Opt("--local-search", help="after the searches, up to N retrains of networks one choice away from the front's, priced first and added as trials (pareto mode, needs --retrain-epochs; with --trials 0, on the study as it is)")] = 0,
    local_search_screen: Annotated[str, Opt("--local-search-screen", help="best: screen each neighbor on its best accelerator (exact) | parent: on its parent's (an upper bound, one evaluation: for large spaces)")] = "best",
) -> None:
    """Tune lambda, T and the array with Optuna: each trial is one fresh U-Boost search.

    Re-running with the same --out/--storage and --study-name continues the study; several processes on one storage run in parallel.
    Search settings left out (--space, --dataset, --cost-model, --sampling...) are --config's, else `uboost search`'s defaults.
    """
    import optuna

    from uboost import tuning
    from uboost.tuning.storage import check_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failures are reported one line each below
    store = tuning.describe_storage(storage, out)
    if not study_name.strip():
        raise ConfigError("--study-name must not be empty")
    if export_to is not None and export is None:
        raise ConfigError("--export-to names where --export N writes its run directory: give it with --export")
    if export is not None or (trials == 0 and not local_search):
        runs_only = {"--hardware": hardware, "--tech": tech, "--space": space, "--dataset": dataset, "--epochs": epochs,
                     "--cost-model": cost_model, "--sram-kb": sram_kb, "--dram-bw-words": dram_bw_words, "--dram-bw-gbps": dram_bw_gbps, "--config": config,
                     "--operating-points": operating_points, "--bits": bits, "--warm-start": warm_start,
                     "--pe-modes": pe_modes, "--inner-accelerator": inner_accelerator, "--timeout": timeout}
        given = [name for name, value in runs_only.items() if value is not None]
        if given:  # a report or an export shows what the study's trials ran: these would change nothing
            what = f"--export {export}" if export is not None else "--trials 0 (a report)"
            raise ConfigError(f"{given[0]} sets what trials run; {what} runs none (a report or an export of trial N "
                              f"takes --budget-ms and --area-budget-mm2 only): drop {given[0]}")
        _check_budgets(budget_ms, area_budget_mm2)
        if repair_journal:  # after every check: a refused command leaves the journal as it was
            _repair_journal(storage, out)
        study = tuning.load_study(out, storage=storage, study_name=study_name)
        if objectives is not None:
            from uboost.tuning.objectives import objectives_of

            own = objectives_of(study.metric_names) or ("accuracy",)
            if tuning.check_objectives(objectives) != own:
                raise ConfigError(f"study {study.study_name!r} was searched over {', '.join(own)}; a report or export "
                                  "shows its own objectives: drop --objectives (or start another study)")
        budget = budget_ms if budget_ms is not None else study.user_attrs.get("uboost_budget_ms")
        if export is not None:
            trial = tuning.find_trial(study, export, budget_ms=budget, area_budget_mm2=area_budget_mm2)
            from uboost.tuning.export import check_within_budgets

            check_within_budgets(study, trial, budget_ms, area_budget_mm2)  # trial N too, as `best` is chosen within them
            target = tuning.export_trial(study, trial.number, export_to, out_root=out, force=force)
            console.print(f"wrote run directory {target} (trial {trial.number}: accuracy {_pct(trial.user_attrs.get('accuracy'))}, "
                          f"latency {latency_text(trial.user_attrs.get('latency_ms', float('nan')))} on {trial.user_attrs.get('array')})")
            from uboost.runs import RETRAIN

            retrained = Path(target) / RETRAIN
            if (retrained / "retrain.json").is_file():  # the trial's own retrain came with it
                console.print(f"it holds the trial's retrain ({retrained}); to train it longer: "
                              f"[bold]uboost retrain {target} --epochs N --force[/]  |  uboost profile {target}")
            else:
                console.print(f"next: [bold]uboost retrain {target}[/]  |  uboost profile {target}")
            return
        _recover(study, out)
        _report(study, out, budget, area_budget_mm2)
        return

    if trials < 0:
        raise ConfigError(f"--trials must be a non-negative integer, got {trials}")
    tuning.check_mode(mode, budget_ms, timeout=timeout, retrain_epochs=retrain_epochs, objectives=objectives)
    names = tuning.check_objectives(objectives) if mode == "pareto" else ("accuracy",)
    if sampler not in tuning.SAMPLERS:
        raise ConfigError(f"unknown sampler {sampler!r}; expected one of: {', '.join(tuning.SAMPLERS)}")  # before the study is created in the storage
    if mode != "pareto" and sampler != "nsga2":
        raise ConfigError(f"--sampler {sampler} picks the Pareto sampler; --mode {mode} samples with TPE (leave --sampler out)")
    check_storage(storage, out)  # a typo in --storage fails now, not after the config check
    flags = dict(space=space, dataset=dataset, data_dir=data_dir, epochs=epochs, batch_size=batch_size, image_size=image_size,
                 max_samples=max_samples, cost_model=cost_model, cost_mode=cost_mode, sampling=sampling,
                 sram_kb=sram_kb, dram_bw_words=dram_bw_words, operating_points=operating_points, tech=tech)
    if bits is not None:  # as `uboost search --bits`
        from uboost.cli.search import _precision_flags

        flags.update(_precision_flags(bits, None, None, None, None))
    base = _base_config(config, flags, default_epochs=3, hardware=hardware, dram_bw_gbps=dram_bw_gbps)
    if temperature_range is not None and base.cost_mode != "smooth":
        raise ConfigError(f"--temperature-range has no effect with --cost-mode {base.cost_mode} (T shapes only the smooth cost); "
                          f"drop it or pass --cost-mode smooth")
    tune_space = tuning.TuneSpace(
        latency_weight=parse_float_range(lambda_range, "--lambda-range"),
        temperature=parse_float_range(temperature_range or "1:50", "--temperature-range"),
        rows=parse_int_space(rows, "--rows"),
        cols=parse_int_space(cols, "--cols"),
        area_budget=area_budget,
        dataflows=None if dataflows is None else comma_items(dataflows, "--dataflows", "ws,os"),
        utilization_weight=None if utilization_weight_range is None else parse_float_range(utilization_weight_range, "--utilization-weight-range"),
        search_seeds=search_seeds,
    )
    if dram_bw_choices is not None and (dram_bw_words is not None or dram_bw_gbps is not None):
        given = "--dram-bw-words" if dram_bw_words is not None else "--dram-bw-gbps"
        raise ConfigError(f"--dram-bw-choices searches the DRAM bandwidth (words per cycle), so {given} would be ignored: "
                          "give one of them")
    accelerator = _accelerator_space(base, area_budget_mm2=area_budget_mm2, ifmap=ifmap_sram_kb_choices, filters=filter_sram_kb_choices,
                                     ofmap=ofmap_sram_kb_choices, dram_bw=dram_bw_choices, operating_point=search_operating_point,
                                     pe_modes=pe_modes, objectives=names)
    if accelerator is not None:
        import dataclasses

        tune_space = dataclasses.replace(tune_space, accelerator=accelerator)
    tune_space = tune_space.for_cost_mode(base.cost_mode)
    tune_space.check_accelerator(base, area="area" in names)  # a budget below the smallest accelerator: refused before writing
    from uboost.tuning.objective import check_inner_options

    check_inner_options(inner_accelerator, inner_rounds, tune_space, base, "area" in names)  # e.g. an enumeration too large per trial
    from uboost.tuning.local_search import check_local_search

    check_local_search(local_search, mode=mode, retrain_epochs=retrain_epochs, screen=local_search_screen)
    tuning.check_config(base)  # a bad space option fails here, once, before the storage is touched
    from uboost.accelerators import check_accelerator

    check_accelerator(base.accelerator, base.devices)
    if warm_start is not None:  # a missing or empty source study: refused before the storage is touched
        from uboost.tuning.warm_start import check_source

        check_source(warm_start)
    if repair_journal:  # after every check: a refused command leaves the journal as it was
        _repair_journal(storage, out)
    if trials == 0 and local_search:  # "on the study as it is": its settings, never overwritten by this command's defaults
        existing = tuning.load_study(out, storage=storage, study_name=study_name)
        why = tuning.settings_difference(existing, base, tune_space)
        for key, value in (("retrain_epochs", retrain_epochs), ("budget_ms", budget_ms)):  # how its trials were judged
            stored = existing.user_attrs.get(f"uboost_{key}")
            if why is None and stored is not None and stored != value:
                why = f"{key} {stored!r} (this command: {value!r})"
        if why is not None:
            raise ConfigError(f"--trials 0 --local-search runs on the study as it was searched, and its {why}; "
                              f"repeat the study's settings")
    study = None
    try:
        study = tuning.create_study(out, mode=mode, storage=storage, study_name=study_name, seed=seed,
                                    objectives=objectives if mode == "pareto" else None, sampler=sampler,
                                    check=tune_space.check_compatible)  # a study it cannot continue: refused first
        console.print(
            f"[bold]uboost tune[/] {mode}: {trials} search{'' if trials == 1 else 'es'} of {base.space} on {base.dataset} ({base.epochs} epochs each), "
            f"study [bold]{study_name}[/] in {store}"
        )
        note = _wide_fixed_area_note(base, tune_space, area_budget_mm2 is not None or "area" in names)
        if note:
            console.print(f"[yellow]note:[/] {note}")
        earlier = len(study.get_trials(deepcopy=False))
        if earlier:
            console.print(f"continuing: {earlier} trials already in the study")
        _recover(study, out)
        if trials:
            for number in tuning.requeue_interrupted(study):  # before the warm start: its retry is that source trial's run
                console.print(f"[yellow]trial {number}[/] was interrupted (Ctrl-C or SIGTERM): queued again with its parameters")
        if warm_start is not None:
            from uboost.tuning.warm_start import enqueue_from

            enqueued, left = enqueue_from(study, warm_start, tune_space, base_seed=base.seed)
            console.print(f"warm start: {enqueued} trials of {warm_start} enqueued" + (f", {len(left)} left out (not in this space)" if left else ""))
        with RunningTrials(console.get_console()) as running:
            tuning.run_study(
                base=base, tune_space=tune_space, out_root=out, n_trials=trials, timeout=timeout, mode=mode, budget_ms=budget_ms,
                retrain_epochs=retrain_epochs, study=study, callbacks=[running.finished, _trial_line], progress=running.update,
                objectives=objectives if mode == "pareto" else None, sampler=sampler, inner_accelerator=inner_accelerator,
                inner_rounds=inner_rounds,
            )
        if local_search:
            _local_search(study, local_search, base=base, tune_space=tune_space, out_root=out, retrain_epochs=retrain_epochs,
                          objectives=objectives, inner_accelerator=inner_accelerator, budget_ms=budget_ms, screen=local_search_screen)
    except KeyboardInterrupt:
        left = _searches_left(study, trials) if study is not None else trials
        err_console.print(f"[yellow]interrupted:[/] finished trials are kept in {store}; {left} of the {trials} searches "
                          f"asked are left: the same command with --trials {left} runs them (the interrupted one first)")
        if study is not None:
            _report(study, out, budget_ms)
        raise typer.Exit(130)
    try:
        _report(study, out, budget_ms)
    except KeyboardInterrupt:  # every search is done: running the command again would add as many more
        where = f"--out {out}" + ("" if storage is None else f" --storage {storage}") + \
            ("" if study_name == "uboost" else f" --study-name {study_name}")
        err_console.print(f"[yellow]interrupted[/] while reporting: the {trials} searches asked are done and kept in "
                          f"{store}; uboost tune {where} --trials 0 reports them again (table and plots)")
        raise typer.Exit(130) from None
