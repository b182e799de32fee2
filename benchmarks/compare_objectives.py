"""Does the U-Boost loss find faster networks? Search objectives side by side (not a test).

Every variant searches the same space on the same data with the same budget and seeds; only
the hardware term of the architecture loss changes:

==================  ==============================================================================
variant             architecture loss (``lambda`` and ``beta`` are the same for every variant)
==================  ==============================================================================
``none``            task only (``lambda = beta = 0``): plain differentiable NAS
``flops``           task + lambda * FLOPs-latency / ref (MACs / PEs, "every PE busy"), no util term
``latency-paper``   task + lambda * latency / ref with the published formula (``systolic-paper``),
                    exact expectation, no utilization term
``uboost-paper``    the paper's loss: ``systolic-paper`` latency + beta * (1 - utilization),
                    smooth ceiling at ``--temperature`` (``cost_mode="smooth"``)
``uboost-exact``    U-Boost with the cycle-exact model (``systolic``, fill/drain included),
                    exact expectation (``cost_mode="expected"``)
``uboost-budget``   ``uboost-exact`` with a latency budget: ``--budget-fraction`` x the cycle-exact
                    latency that ``none`` found for the same seed (optional; needs ``none``)
``single-epochs``   ``uboost-exact`` with single-path sampling (``sampling="single-path"``), the same
                    search epochs (optional)
``single-time``     the same with ``--single-path-epochs`` search epochs, chosen so that its search
                    wall time matches ``uboost-exact``'s (optional; compare the wall-time column)
``single-budget``   ``uboost-budget`` with single-path sampling and ``--single-path-epochs``: the two
                    modes compared at the same latency budget and search time (optional)
``single-warmup``   ``single-time`` whose extra epochs (beyond ``--epochs``) come first and train
                    the weights only (uniform single paths): the architecture takes as many steps
                    as in ``uboost-exact`` (optional)
==================  ==============================================================================

Each run: search -> retrain the derived network from scratch (``--retrain-epochs``) -> test
accuracy, and the derived network priced with the **cycle-exact** ``systolic`` model on the
target array whatever the search optimized, plus the search's wall and CPU time. The table
(mean +- std over seeds) is printed and written to ``OUT/results.md``; ``OUT/pareto.png`` plots
accuracy against cycle-exact latency. Every (variant, seed) has its own run directory
``OUT/<variant>/seed<k>/`` (search files, ``retrain/``, ``result.json``): runs whose
``result.json`` exists with the same settings are skipped, so an interrupted benchmark resumes.

Run (offline, digits, 2 CPU cores)::

    python benchmarks/compare_objectives.py --quick      # tiny end-to-end dry run, 1 seed
    python benchmarks/compare_objectives.py              # 3 seeds, 5 variants (see RESULTS.md)

A CIFAR-10 configuration for a GPU is in ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import statistics
import sys
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

VARIANTS = ("none", "flops", "latency-paper", "uboost-paper", "uboost-exact", "uboost-budget", "single-epochs", "single-time",
            "single-warmup", "single-budget")
BUDGETED = ("uboost-budget", "single-budget")  # their target comes from 'none' of the same seed
DEFAULT_VARIANTS = ("none", "flops", "latency-paper", "uboost-paper", "uboost-exact")
LABELS = {
    "none": "(1) no hardware term",
    "flops": "(2) FLOPs latency",
    "latency-paper": "(3) latency, paper formula",
    "uboost-paper": "(4) U-Boost, paper (smooth)",
    "uboost-exact": "(5) U-Boost, cycle-exact",
    "uboost-budget": "(6) U-Boost exact + budget",
    "single-epochs": "(7) (5) single-path, same epochs",
    "single-time": "(8) (5) single-path, same wall time",
    "single-warmup": "(9) (8) with weights-only warm-up",
    "single-budget": "(10) (6) single-path, same wall time",
}
DENSE = ("conv_1x1", "conv_3x3", "conv_5x5")
SEPARABLE = ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
FREE = ("max_pool_3x3", "avg_pool_3x3", "skip_connect")
RESULT = "result.json"


@dataclass(frozen=True)
class Settings:
    """What every variant shares (the benchmark's knobs)."""

    dataset: str
    data_dir: str | None
    download: bool
    image_size: int | None
    width: int
    cells: int
    ops: str
    array: str
    dataflow: str
    epochs: int
    retrain_epochs: int
    batch_size: int
    max_samples: int | None
    latency_weight: float
    utilization_weight: float
    temperature: float
    budget_fraction: float
    accelerator: str
    single_path_epochs: int

    def search_config(self, variant: str, seed: int, target_latency_ms: float | None = None):
        from uboost.search import SearchConfig

        base = SearchConfig(
            space="darts-cifar",
            space_options={"width": self.width, "cells": self.cells, "ops": self.ops},
            dataset=self.dataset,
            data_dir=self.data_dir,
            download=self.download,
            image_size=self.image_size,
            max_samples=self.max_samples,
            array=self.array,
            dataflow=self.dataflow,
            epochs=self.epochs,
            batch_size=self.batch_size,
            seed=seed,
            accelerator=self.accelerator,
            latency_weight=self.latency_weight,
            utilization_weight=self.utilization_weight,
            temperature=self.temperature,
            cost_model="systolic",
            cost_mode="expected",
            sampling="mixture",  # the variants (1)-(6) are mixtures; (7)-(10) say single-path
        )
        if variant == "none":
            return base.replace(latency_weight=0.0, utilization_weight=0.0)
        if variant == "flops":
            return base.replace(cost_model="flops", utilization_weight=0.0)
        if variant == "latency-paper":
            return base.replace(cost_model="systolic-paper", utilization_weight=0.0)
        if variant == "uboost-paper":
            return base.replace(cost_model="systolic-paper", cost_mode="smooth")
        if variant == "uboost-exact":
            return base
        if variant in BUDGETED:  # (5) or (8) with a budget
            if target_latency_ms is None:
                raise ValueError(f"{variant} needs the latency of 'none' for the same seed")
            unbudgeted = "single-time" if variant == "single-budget" else "uboost-exact"
            return self.search_config(unbudgeted, seed).replace(target_latency_ms=target_latency_ms)
        if variant == "single-epochs":
            return base.replace(sampling="single-path")
        if variant == "single-time":
            return base.replace(sampling="single-path", epochs=self.single_path_epochs)
        if variant == "single-warmup":  # (8) whose extra epochs train weights only: as many architecture steps as (5)
            return self.search_config("single-time", seed).replace(warmup_epochs=max(0, self.single_path_epochs - self.epochs))
        raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")

    def retrain_config(self, seed: int):
        from uboost.retrain import RetrainConfig

        return RetrainConfig(
            epochs=self.retrain_epochs, batch_size=self.batch_size, seed=seed, accelerator=self.accelerator,
            download=self.download, max_samples=self.max_samples,
        )


# -- one run ---------------------------------------------------------------------------------
def _quiet(threads: int) -> None:
    warnings.filterwarnings("ignore")
    for name in ("nni", "lightning.pytorch", "pytorch_lightning", "lightning_fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import torch

    torch.set_num_threads(threads)


def _op_counts(arch: dict) -> dict[str, int]:
    ops = Counter(v for k, v in arch.items() if "/op_" in k)
    return {
        "dense": sum(ops[o] for o in DENSE),
        "separable": sum(ops[o] for o in SEPARABLE),
        "free": sum(ops[o] for o in FREE),
        "ops": dict(sorted(ops.items())),
    }


def _expected(request: dict) -> dict:
    """What a stored result must match to be reused."""
    return {"search_config": request["search_config"], "retrain_config": request["retrain_config"]}


def run_one(request: dict) -> dict:
    """Search, retrain and price one (variant, seed); writes ``result.json`` last (atomically)."""
    _quiet(request["threads"])
    from uboost import hardware
    from uboost.io import write_json
    from uboost.retrain import RetrainConfig, retrain
    from uboost.search import SearchConfig, run_search

    run_dir = Path(request["run_dir"])
    if run_dir.exists():  # an unfinished earlier attempt: start it over cleanly
        shutil.rmtree(run_dir)
    config = SearchConfig.from_dict(request["search_config"])
    cpu0, wall0 = time.process_time(), time.perf_counter()
    found = run_search(config, run_dir, force=True)
    search_cpu, search_wall = time.process_time() - cpu0, time.perf_counter() - wall0
    exact = hardware.create("systolic", spec=config.hardware_spec())
    cpu0 = time.process_time()
    trained = retrain(run_dir, RetrainConfig(**request["retrain_config"]), out=run_dir / "retrain", cost_model=exact)
    retrain_cpu = time.process_time() - cpu0
    report = trained.report
    result = {
        "variant": request["variant"],
        "seed": config.seed,
        "test_acc": trained.test_acc,
        "search_val_acc": found.val_acc,
        "latency_ms": report.latency_ms,  # cycle-exact, target array
        "cycles": report.cycles,
        "utilization": report.utilization,
        "macs": report.macs,
        "search_model_latency_ms": found.hardware.latency_ms,  # what the search's own model says
        "latency_ref_ms": found.latency_ref_ms,
        "target_latency_ms": config.target_latency_ms,
        "search_seconds": found.seconds,
        "search_wall_seconds": search_wall,
        "search_cpu_seconds": search_cpu,
        "retrain_seconds": trained.seconds,
        "retrain_cpu_seconds": retrain_cpu,
        "arch": found.arch,
        **_op_counts(found.arch),
        **_expected(request),
    }
    write_json(run_dir / RESULT, result)
    return result


def _load(run_dir: Path, request: dict) -> dict | None:
    path = run_dir / RESULT
    if not path.is_file():
        return None
    stored = json.loads(path.read_text())
    if {k: stored.get(k) for k in ("search_config", "retrain_config")} != _expected(request):
        raise SystemExit(
            f"{path} was produced with other settings; use another --out (or delete {run_dir}) to rerun it"
        )
    return stored


# -- the table -------------------------------------------------------------------------------
def _stats(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def _pm(values: list[float], fmt: str = "{:.2f}") -> str:
    mean, std = _stats(values)
    if math.isnan(mean):
        return "n/a"
    return f"{fmt.format(mean)} ± {fmt.format(std)}"


def table(results: dict[str, list[dict]], variants: list[str]) -> str:
    baseline = {r["seed"]: r["latency_ms"] for r in results.get("none", [])}
    flops = {r["seed"]: r["latency_ms"] for r in results.get("flops", [])}
    head = (
        "| variant | seeds | test acc (%) | latency (µs, cycle-exact) | speed-up vs (1) | speed-up vs (2) "
        "| utilization (%) | MMACs | dense / sep / pool+skip ops | search wall (s) | search CPU (s) |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for v in variants:
        rs = results.get(v, [])
        if not rs:
            rows.append(f"| {LABELS[v]} | 0 | not run | | | | | | | | |")
            continue
        speed = [baseline[r["seed"]] / r["latency_ms"] for r in rs if r["seed"] in baseline]
        vs_flops = [flops[r["seed"]] / r["latency_ms"] for r in rs if r["seed"] in flops]
        ops = " / ".join(f"{statistics.fmean(r[k] for r in rs):.1f}" for k in ("dense", "separable", "free"))
        rows.append(
            f"| {LABELS[v]} | {len(rs)} | {_pm([100 * r['test_acc'] for r in rs], '{:.1f}')} "
            f"| {_pm([1e3 * r['latency_ms'] for r in rs], '{:.1f}')} "
            f"| {_pm(speed) if speed else 'n/a'} | {_pm(vs_flops) if vs_flops else 'n/a'} "
            f"| {_pm([100 * r['utilization'] for r in rs], '{:.1f}')} "
            f"| {_pm([r['macs'] / 1e6 for r in rs])} | {ops} "
            f"| {_pm([r['search_wall_seconds'] for r in rs], '{:.0f}')} "
            f"| {_pm([r['search_cpu_seconds'] for r in rs], '{:.0f}')} |"
        )
    return head + "\n".join(rows) + "\n"


def op_table(settings: Settings) -> str:
    """Cycle-exact / paper / FLOPs latency of networks whose every cell edge is one op: the costs
    the objectives trade (a static reference, no training)."""
    _quiet(1)
    from uboost import hardware, runs
    from uboost.search import build_space

    config = settings.search_config("uboost-exact", 0)
    space, shape, _ = build_space(config)
    labels = space.simplify()
    ops = list(space.options["ops"])
    models = {m: hardware.create(m, spec=config.hardware_spec()) for m in ("systolic", "systolic-paper", "flops")}
    lines = [
        "| every edge = | cycle-exact µs (util %) | paper formula µs (util %) | FLOPs µs | MMACs |",
        "|---|---|---|---|---|",
    ]
    for op in ops:
        arch = {k: (op if "/op_" in k else [0]) for k in labels}
        fresh, _, _ = build_space(config)
        net = runs.freeze_arch(fresh, arch)
        rep = {m: cm.evaluate(net, shape) for m, cm in models.items()}
        lines.append(
            f"| {op} | {1e3 * rep['systolic'].latency_ms:.1f} ({100 * rep['systolic'].utilization:.0f}) "
            f"| {1e3 * rep['systolic-paper'].latency_ms:.1f} ({100 * rep['systolic-paper'].utilization:.0f}) "
            f"| {1e3 * rep['flops'].latency_ms:.2f} | {rep['systolic'].macs / 1e6:.2f} |"
        )
    return "\n".join(lines) + "\n"


def pareto(path: Path, results: dict[str, list[dict]], variants: list[str], title: str) -> None:
    from uboost import plots

    points = {LABELS[v]: [(1e3 * r["latency_ms"], 100 * r["test_acc"]) for r in results.get(v, [])] for v in variants}
    plots.scatter(path, points, xlabel="latency (µs, cycle-exact)", ylabel="test accuracy (%)", title=title)


# -- main ------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("benchmarks/runs/compare"), help="benchmark directory (resumable)")
    p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help=f"comma list from: {', '.join(VARIANTS)}")
    p.add_argument("--seeds", default="3", help="a count (3 -> seeds 0,1,2) or a comma list (0,4,7)")
    p.add_argument("--epochs", type=int, default=4, help="search epochs")
    p.add_argument("--retrain-epochs", type=int, default=10)
    p.add_argument("--array", default="16x16", help="target systolic array ROWSxCOLS")
    p.add_argument("--dataflow", default="ws", choices=("ws", "os", "is"))
    p.add_argument("--latency-weight", type=float, default=1.0, help="lambda, shared by all hardware-aware variants")
    p.add_argument("--utilization-weight", type=float, default=1.0, help="beta of the U-Boost variants")
    p.add_argument("--temperature", type=float, default=10.0, help="smooth-ceiling T of uboost-paper")
    p.add_argument("--budget-fraction", type=float, default=0.5, help="uboost-budget target / latency of 'none'")
    p.add_argument("--single-path-epochs", type=int, default=None,
                   help="search epochs of single-time (default: 4 x --epochs, ~ the mixture's wall time)")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--download", action="store_true")
    p.add_argument("--image-size", type=int, default=16)
    p.add_argument("--width", type=int, default=8, help="darts-cifar stem width (stages: w, 2w, 4w)")
    p.add_argument("--cells", type=int, default=3)
    p.add_argument("--ops", default="uboost", help="darts-cifar op set")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-samples", type=int, default=None, help="cap the training set (search and retrain)")
    p.add_argument("--accelerator", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (separate processes)")
    p.add_argument("--quick", action="store_true", help="tiny end-to-end dry run: 1 seed, 1 epoch, 320 samples")
    p.add_argument("--report-only", action="store_true", help="run nothing: tabulate the finished runs in --out")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs, args.retrain_epochs = "1", 1, 1
        args.max_samples = args.max_samples or 320
        if args.out == Path("benchmarks/runs/compare"):
            args.out = Path("benchmarks/runs/compare-quick")
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        p.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    if any(v in BUDGETED for v in args.variants) and "none" not in args.variants:
        p.error("uboost-budget and single-budget set their budget from 'none': include 'none' in --variants")
    args.seeds = list(range(int(args.seeds))) if "," not in args.seeds and args.seeds.isdigit() else [int(s) for s in args.seeds.split(",")]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings(
        dataset=args.dataset, data_dir=args.data_dir, download=args.download, image_size=args.image_size,
        width=args.width, cells=args.cells, ops=args.ops, array=args.array, dataflow=args.dataflow,
        epochs=args.epochs, retrain_epochs=args.retrain_epochs, batch_size=args.batch_size,
        max_samples=args.max_samples, latency_weight=args.latency_weight, utilization_weight=args.utilization_weight,
        temperature=args.temperature, budget_fraction=args.budget_fraction, accelerator=args.accelerator,
        single_path_epochs=args.single_path_epochs or 4 * args.epochs,
    )
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# compare_objectives: {' '.join(sys.argv[1:]) or '(defaults)'}")
    print(f"load average {load:.2f}; variants {args.variants}; seeds {args.seeds}; out {out}")
    print(f"space darts-cifar width={args.width} cells={args.cells} ops={args.ops}, {args.dataset} {args.image_size}px; "
          f"array {args.array} {args.dataflow}; lambda={args.latency_weight} beta={args.utilization_weight} T={args.temperature}\n")
    ops_md = op_table(settings)
    print("Single-op networks on the target array (what the objectives trade):\n" + ops_md, flush=True)

    def request(variant: str, seed: int, target: float | None = None) -> dict:
        return {
            "variant": variant,
            "run_dir": str(out / variant / f"seed{seed}"),
            "search_config": settings.search_config(variant, seed, target).to_dict(),
            "retrain_config": settings.retrain_config(seed).__dict__,
            "threads": args.threads,
        }

    results: dict[str, list[dict]] = {v: [] for v in args.variants}

    def record(res: dict) -> None:
        results[res["variant"]].append(res)
        print(
            f"  {res['variant']:<14} seed {res['seed']}: test acc {100 * res['test_acc']:.1f}%  "
            f"latency {1e3 * res['latency_ms']:.1f} µs  util {100 * res['utilization']:.1f}%  "
            f"ops dense/sep/free {res['dense']}/{res['separable']}/{res['free']}  "
            f"search {res['search_wall_seconds']:.0f} s wall, {res['search_cpu_seconds']:.0f} s CPU",
            flush=True,
        )

    # wave 1: everything but the budget variant (seed-major, so a partial run covers all variants)
    wave1 = [request(v, s) for s in args.seeds for v in args.variants if v not in BUDGETED]
    _run_all(wave1, args.jobs, record, args.report_only)
    # wave 2: the budget variants, their target set from 'none' of the same seed
    budgeted = [v for v in args.variants if v in BUDGETED]
    if budgeted:
        none = {r["seed"]: r["latency_ms"] for r in results["none"]}
        wave2 = [request(v, s, args.budget_fraction * none[s]) for s in args.seeds if s in none for v in budgeted]
        _run_all(wave2, args.jobs, record, args.report_only)

    for v in results:
        results[v].sort(key=lambda r: r["seed"])
    finished = sorted({r["seed"] for rs in results.values() for r in rs})
    title = f"{args.dataset} {args.image_size}px, {args.array} {args.dataflow}, seeds {finished}, {args.epochs} search epochs"
    text = (
        f"Command: `python benchmarks/compare_objectives.py {' '.join(sys.argv[1:])}`\n\n"
        f"{title}; lambda={args.latency_weight}, beta={args.utilization_weight}, T={args.temperature}; "
        f"retrain {args.retrain_epochs} epochs; mean ± std over seeds; latency and utilization of the derived network, "
        f"cycle-exact on the target array.\n\n" + table(results, args.variants)
        + "\nSingle-op networks (static reference):\n\n" + ops_md
    )
    from uboost.io import write_json, write_text

    write_text(out / "results.md", text)
    write_json(out / "results.json", results)
    pareto(out / "pareto.png", results, args.variants, title)
    print("\n" + table(results, args.variants))
    print(f"wrote {out / 'results.md'} and {out / 'pareto.png'} ({time.perf_counter() - started:.0f} s)")
    return 0


def _run_all(requests: list[dict], jobs: int, record, report_only: bool = False) -> None:
    todo = []
    for req in requests:
        done = _load(Path(req["run_dir"]), req)
        if done is not None:
            print(f"  (done) {req['run_dir']}")
            record(done)
        else:
            todo.append(req)
    if report_only:
        for req in todo:
            print(f"  (not run) {req['run_dir']}")
        return
    if jobs <= 1:
        for req in todo:
            print(f"  running {req['run_dir']} ...", flush=True)
            record(run_one(req))
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # one fresh process per run: NNI keeps process-global state
    with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn"), max_tasks_per_child=1) as pool:
        futures = [pool.submit(run_one, req) for req in todo]
        for fut in as_completed(futures):
            record(fut.result())


if __name__ == "__main__":
    sys.exit(main())
