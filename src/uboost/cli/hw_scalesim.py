"""``uboost hw tabulate`` and ``uboost hw setup-scalesim``; the Rich progress bar of SCALE-Sim runs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

from uboost.cli._common import console, err_console

Opt = typer.Option


@contextlib.contextmanager
def simulation_progress(description: str = "SCALE-Sim") -> Iterator[Callable[[int, int], None]]:
    """A ``progress(done, total)`` callback drawing a Rich bar on stderr (created on the first simulation)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TimeRemainingColumn(), console=err_console.get_console(), transient=False)  # stderr: --json stays JSON
    task: list[int] = []

    def update(done: int, total: int) -> None:
        if not task:
            bar.start()
            task.append(bar.add_task(description, total=total))
        bar.update(task[0], completed=done, total=total)

    try:
        yield update
    finally:
        if task:
            bar.stop()


def model_options(cost_model: str, progress: Callable[[int, int], None] | None, workers: int | None = None) -> dict:
    """Extra constructor arguments for cost models that simulate (``scalesim``)."""
    if cost_model != "scalesim":
        return {}
    extra: dict = {"progress": progress}
    if workers is not None:
        extra["workers"] = workers
    return extra


def tabulate(
    space: Annotated[str, typer.Argument(help="search space (`uboost spaces`)")],
    array: Annotated[str, Opt(help="systolic array ROWSxCOLS")] = "32x32",
    dataflow: Annotated[str, Opt(help="ws | os | is")] = "ws",
    dataset: Annotated[str, Opt(help="sets the input size and classes: digits | cifar10 | cifar100 | folder:PATH")] = "digits",
    image_size: Annotated[Optional[int], Opt("--image-size")] = None,
    width: Annotated[Optional[int], Opt(help="darts-cifar: initial channels [default: 8]")] = None,
    cells: Annotated[Optional[int], Opt(help="darts-cifar: number of cells [default: 3]")] = None,
    inference_batch: Annotated[int, Opt("--inference-batch", help="batch priced")] = 1,
    sram_kb: Annotated[Optional[int], Opt("--sram-kb", help="size of each SRAM buffer in kB [default: unbounded]")] = None,
    dram_bw_words: Annotated[Optional[float], Opt("--dram-bw-words", help="DRAM words per cycle per port [default: unbounded]")] = None,
    cost_model: Annotated[str, Opt("--cost-model", help="a name from `uboost hw list`")] = "scalesim",
    workers: Annotated[int, Opt(help="SCALE-Sim worker processes")] = 2,
    out: Annotated[Optional[Path], Opt(help="also write the rows as a CSV (the `lookup` model's format)")] = None,
    force: Annotated[bool, Opt("--force", help="replace an existing --out file")] = False,
) -> None:
    """Price every layer shape of a space's supernet (fills the SCALE-Sim cache before a search)."""
    import csv
    import time

    from uboost.cli._common import check_output_file
    from uboost.hardware import create
    from uboost.search import SearchConfig
    from uboost.tabulate import tabulate_space

    check_output_file("--out", out, force=force)  # before any simulation
    if workers < 1:
        from uboost.exceptions import ConfigError

        raise ConfigError(f"--workers must be a positive integer, got {workers}")
    if cost_model == "lookup":  # it reads the table tabulate writes (its error named a --table tabulate lacks)
        from uboost.exceptions import ConfigError

        raise ConfigError("tabulate prices each layer to write a lookup table; --cost-model lookup only reads one: "
                          "choose a model that prices (scalesim, systolic, ...; `uboost hw list`)")

    options = {} if space != "darts-cifar" else {"width": 8, "cells": 3}
    options.update({k: v for k, v in (("width", width), ("cells", cells)) if v is not None})
    config = SearchConfig(space=space, space_options=options, dataset=dataset, image_size=image_size, array=array,
                          dataflow=dataflow, inference_batch=inference_batch, sram_kb=sram_kb, dram_bw_words=dram_bw_words,
                          cost_model=cost_model)
    spec = config.hardware_spec()
    t0 = time.time()
    with simulation_progress(f"{space} on {spec.array} {spec.dataflow}") as progress:
        model = create(cost_model, spec=spec, **model_options(cost_model, progress, workers))
        result = tabulate_space(config, model)
    batched = spec.batch_size > 1  # where a per_sample row (an attention's keys and values) costs another number
    unique = {(s.kind, s.shape_text, s.per_sample and batched) for s in result.shapes}
    stats = getattr(model, "stats", None)
    sim = f", {stats.simulated} simulated, {stats.cached} from the cache" if stats is not None else ""
    console.print(
        f"[bold]{space}[/] on {spec.array} {spec.dataflow}, {spec.memory_text} ({cost_model}): {len(result.shapes)} supernet rows, "
        f"{len(unique)} unique shapes{sim}, {time.time() - t0:.1f} s"
    )
    if out is not None:
        from uboost.exceptions import RunDirError
        from uboost.hardware import LayerTable
        from uboost.hardware.lookup import grid_gaps
        from uboost.io import atomic_write

        priced: dict = {}  # one row per unique shape (its first layer), as the lookup model keys them
        for shape, cycles in zip(result.shapes, result.cycles):
            priced.setdefault((shape.kind, shape.shape_text, shape.per_sample and batched), (shape, cycles))
        # so `lookup` reads the file: a full grid per key
        gaps = grid_gaps([shape for shape, _ in priced.values()], spec.batch_size)
        gap_cycles = []
        if gaps:
            with simulation_progress(f"{len(gaps)} shapes to complete the grid") as progress:
                if cost_model == "scalesim":
                    model.progress = progress
                gap_cycles = model.cycles(LayerTable.from_shapes(gaps)).tolist()

        def rows(f) -> None:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["layer", "kind", "batch", "in_channels", "out_channels", "groups", "kernel_h", "kernel_w", "stride",
                        "in_h", "in_w", "out_h", "out_w", "rows", "cols", "dataflow", "sram_kb", "dram_bw_words", "per_sample",
                        "cycles"])
            # the memory system the cycles were priced with (empty: unbounded), which `lookup` matches against its spec
            memory = ([spec.sram_kb, repr(float(spec.dram_words_per_cycle))]  # repr: read back as the same float
                      if model.prices_memory and spec.memory_bound else ["", ""])
            for s, c in [*priced.values(), *zip(gaps, gap_cycles)]:
                w.writerow([s.name, s.kind, spec.batch_size, s.in_channels, s.out_channels, s.groups, s.kernel_h, s.kernel_w,
                            s.stride, s.in_h, s.in_w, s.out_h, s.out_w, spec.rows, spec.cols, spec.dataflow, *memory,
                            s.per_sample, f"{float(c):.10g}"])  # systolic-mem's cycles are fractional: not cut to a whole number

        try:
            atomic_write(out, rows)
        except OSError as exc:
            raise RunDirError(f"cannot write {out}: {exc.strerror or exc}") from None
        console.print(f"wrote {out}" + (f" ({len(gaps)} rows beyond the supernet's complete the channel grids "
                                         "the `lookup` model reads)" if gaps else ""))


def setup_scalesim(
    venv: Annotated[Optional[Path], typer.Argument(help="where to create it: a new or empty folder, or an existing virtualenv [default: ~/.cache/uboost/scalesim-venv]")] = None,
) -> None:
    """Create a virtualenv with SCALE-Sim 3.0.0 and numpy<2.3 for the `scalesim` cost model."""
    import shlex
    import subprocess

    from uboost.exceptions import HardwareError
    from uboost.hardware.scalesim_runner import PYTHON_ENV, default_venv, setup_environment

    try:
        python = Path(setup_environment(venv)).absolute()  # pasted in another folder, a relative path breaks
    except (OSError, subprocess.CalledProcessError) as exc:
        raise HardwareError(f"could not set up SCALE-Sim in {venv or default_venv()}: {exc}") from None
    console.print(f"SCALE-Sim is ready: {python}", soft_wrap=True)
    if venv is not None:  # a folder uboost does not look in: say how to point it there, as a line to paste
        console.print(f"export {PYTHON_ENV}={shlex.quote(str(python))}", soft_wrap=True, markup=False, highlight=False)
