"""Mixed precision: uniform 8-bit, uniform 4-bit and the mixed search over {2, 4, 8}, each searched
and retrained quantization-aware, priced on (a) bitfusion 16x16 WS and (b) fixed 16x16 WS with
16 kB SRAMs and 4 words/cycle (systolic-mem). Also the search step time with and without bits.

    nice -n 10 env OMP_NUM_THREADS=1 python benchmarks/bench_bits.py --spaces lenet --seeds 0,1
    ... --hardware fixed-mem --variants mixed-2-4-8 --no-steps     # one cell of the table
    ... --seeds 0,1,2 --no-steps --retrain-seeds 0,1,2              # each network retrained 3 times
    ... --spaces darts-cifar --variants uniform-8,mixed-2-4-8-cells8  # bits searched on the 8-bit search's cells

A search is reused when --root holds it finished with the same settings (``_reuse.py``); each
retrain is reused when its directory holds one with the same epochs and seed. With
``--retrain-seeds`` a row's ``test_acc`` is the mean over the retrains (``test_acc_runs``,
``test_acc_std``, min and max beside it). After the rows it prints, per (space, hardware, seed),
whether the mixed network is on the front of the uniform ones by that mean (``front_verdicts``),
over every row of ``bench_bits.json`` (``--variants none`` with ``--no-steps``: only that). ``--subsets K``
also gives those verdicts on every K of the rows' retrains (:func:`subset_verdicts`): how much a count rests
on which retrains count.

Prints one row per (space, hardware, variant, seed); runs go to --root, whose bench_bits.json
collects the rows of every invocation. The step time is CPU time of the process (one thread): on
a shared machine wall time mostly measures the load.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _reuse, run as a script or imported by tests

HARDWARE = {
    "bitfusion": {"pe": "bitfusion", "array": "16x16", "dataflow": "ws"},
    "fixed-mem": {"pe": "fixed", "array": "16x16", "dataflow": "ws", "cost_model": "systolic-mem", "sram_kb": 16, "dram_bw_words": 4},
}
VARIANTS = {"uniform-8": {"bits": (8,)}, "uniform-4": {"bits": (4,)}, "mixed-2-4-8": {"bits": (2, 4, 8)},
            "mixed-2-4-8-cells8": {"bits": (2, 4, 8)},
            "mixed-2-4-8-ublind": {"bits": (2, 4, 8), "utilization_on_bits": False}}  # the utilization term blind to bits
CELLS_FROM = {"mixed-2-4-8-cells8": "uniform-8"}
"""Variants that search only the bits, on the cells another variant's search of the same (space, hardware, seed)
derived (``uboost search --cell-arch RUN --bits 2,4,8``; darts-cifar only): architecture first, bits second."""


def cell_options(space: str, hardware: str, variant: str, seed: int, root: Path, run_source) -> dict:
    """``space_options`` of a ``CELLS_FROM`` variant: the source variant's cells (searched first, by ``run_source``,
    when ``root`` does not hold it), the widths left to the space's defaults; ``{}`` for the others."""
    if variant not in CELLS_FROM:
        return {}
    if space != "darts-cifar":
        raise SystemExit(f"error: variant {variant} fixes darts-cifar cells; space {space} has none")
    source = root / f"{space}-{hardware}-{CELLS_FROM[variant]}-s{seed}"
    if not (source / "arch.json").is_file():
        run_source()
    arch = json.loads((source / "arch.json").read_text())
    return {"space_options": {"cell_arch": {k: v for k, v in arch.items() if not k.startswith("width_")}}}


def run(space: str, hardware: str, variant: str, seed: int, root: Path, epochs: int, retrain_epochs: int,
        retrain_seeds: list[int] | None = None, widen: str = "all", bits_noise_weight: float = 0.0) -> dict:
    """One network: searched (reused when ``root``'s run was finished with the same settings), then
    retrained once per retrain seed (default: one retrain at the search's seed, into ``RUN/retrain``;
    with ``retrain_seeds`` into ``RUN/retrain-s<r>``). ``test_acc`` is the mean over the retrains."""
    import _reuse

    from uboost.search import SearchConfig

    noise = bits_noise_weight if len(VARIANTS[variant]["bits"]) > 1 else 0.0  # (one width: nothing to price)
    out = root / f"{space}-{hardware}-{variant}-s{seed}" if not noise else root / f"{space}-{hardware}-{variant}-noise{noise:g}-s{seed}"
    cells = cell_options(space, hardware, variant, seed, root, lambda: run(
        space, hardware, CELLS_FROM[variant], seed, root, epochs, retrain_epochs, retrain_seeds, widen))
    config = SearchConfig(space=space, dataset="digits", seed=seed, epochs=epochs, accelerator="cpu", widen=widen,
                          bits_noise_weight=noise, **HARDWARE[hardware], **VARIANTS[variant], **cells)
    reused = _reuse.same_settings(out, config)
    started = time.perf_counter()
    summary = _reuse.search(out, config)
    search_s = None if reused else time.perf_counter() - started
    seeds = [seed] if retrain_seeds is None else retrain_seeds
    trained = [retrained(out, retrain_epochs, r, out / ("retrain" if retrain_seeds is None else f"retrain-s{r}"))
               for r in seeds]
    accs = [t["test_acc"] for t in trained]
    cost = trained[0]["cost"]  # the same network at the same bits: every retrain prices the same
    precision = json.loads((out / "precision.json").read_text())
    return {
        "space": space, "hardware": hardware, "variant": variant if not noise else f"{variant}-noise{noise:g}", "seed": seed,
        "widen": widen, "bits_noise_weight": noise,
        "test_acc": statistics.fmean(accs), "test_acc_runs": accs, "retrain_seeds": seeds, **spread(accs),
        "latency_us": cost["latency_ms"] * 1e3, "utilization": cost["utilization"], "energy_uj": cost.get("energy_uj"),
        "precision": {k: v["weight_bits"] for k, v in precision.items()},
        "search_s": search_s, "search_reused": reused, "bits": sorted({v["weight_bits"] for v in precision.values()}),
        "searched_latency_us": summary["latency_ms"] * 1e3,
    }


def retrained(run: Path, epochs: int, seed: int, out: Path) -> dict:
    """``run``'s network retrained quantization-aware with ``seed`` into ``out``: its test accuracy and
    its priced total (``hardware.json``). Reused when ``out`` holds a retrain with these epochs and
    seed, written after the search's ``arch.json``."""
    from uboost.retrain import RetrainConfig, retrain

    done = out / "retrain.json"
    fresh = done.is_file() and done.stat().st_mtime >= (run / "arch.json").stat().st_mtime
    stored = json.loads(done.read_text()).get("config", {}) if fresh else {}
    if (stored.get("epochs"), stored.get("seed"), stored.get("max_samples")) != (epochs, seed, None):
        retrain(run, RetrainConfig(epochs=epochs, seed=seed, accelerator="cpu"), out=out)
    return {"test_acc": json.loads(done.read_text())["test_acc"],
            "cost": json.loads((out / "hardware.json").read_text())["total"]}


def spread(accs: list[float]) -> dict:
    """Sample standard deviation (0 for one retrain) and range of the retrains' accuracies."""
    return {"test_acc_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
            "test_acc_min": min(accs), "test_acc_max": max(accs)}


ACC_DIGITS = 6
"""Mean accuracies are compared rounded: two means of equally many correct images differ in float32's
last bits (a test accuracy is a float32 mean), which must not decide a domination."""


def front_verdicts(rows: list[dict]) -> list[dict]:
    """Per (space, hardware, seed, widening): is the mixed network on or above the front of the uniform ones,
    on (mean test accuracy, latency)? ``dominated_by``: the uniform variants that dominate it (at
    least as accurate and as fast, better in one); ``dominates``: those it dominates; ``on_front``:
    none dominates it (``None`` when the cell has no uniform row to compare with). Only rows retrained with the same retrain seeds are compared; the latest row
    of each cell counts (bench_bits.json appends)."""
    from uboost.tuning.objectives import dominates

    latest = {(r["space"], r["hardware"], r["seed"], tuple(r.get("retrain_seeds", [r["seed"]])), r.get("widen", "bits"),
               r["variant"]): r for r in rows}
    verdicts = []
    for (*cell, variant), mixed in latest.items():
        if not variant.startswith("mixed"):
            continue
        space, hardware, seed, retrain_seeds, widen = cell
        uniform = {v: r for (*c, v), r in latest.items() if c == cell and v.startswith("uniform")}
        point = lambda r: (round(r["test_acc"], ACC_DIGITS), r["latency_us"])  # noqa: E731
        verdicts.append({
            "space": space, "hardware": hardware, "seed": seed, "retrain_seeds": list(retrain_seeds), "widen": widen,
            "variant": variant,
            "dominated_by": sorted(v for v, r in uniform.items() if dominates(point(r), point(mixed), (1, -1))),
            "dominates": sorted(v for v, r in uniform.items() if dominates(point(mixed), point(r), (1, -1))),
            "compared_with": sorted(uniform),
        })
        # None where no uniform row of the cell exists: nothing was compared, no verdict
        verdicts[-1]["on_front"] = (not verdicts[-1]["dominated_by"]) if uniform else None
    return verdicts


def subset_verdicts(rows: list[dict], k: int) -> list[dict]:
    """How much a verdict rests on which retrains count: for every ``k`` of the retrain seeds each row was
    retrained with (rows retrained with the same seeds, ``test_acc_runs`` in their order), the
    :func:`front_verdicts` of the means over those ``k`` alone. One entry per subset: ``retrain_seeds``
    (the subset), ``on_front`` and ``cells`` (counts over the cells with a verdict) and ``off`` (the
    ``(space, hardware, seed, variant)`` of the cells off the front)."""
    seeds = {tuple(r.get("retrain_seeds", ())) for r in rows}
    if len(seeds) != 1 or not rows:
        raise ValueError(f"rows retrained with one set of seeds are needed, got {sorted(seeds)}")
    (all_seeds,) = seeds
    if not 1 <= k <= len(all_seeds):
        raise ValueError(f"k must be from 1 to {len(all_seeds)} (the retrains per row), got {k}")
    out = []
    for subset in itertools.combinations(range(len(all_seeds)), k):
        picked = [{**r, "test_acc": statistics.fmean(r["test_acc_runs"][i] for i in subset),
                   "retrain_seeds": [all_seeds[i] for i in subset]} for r in rows]
        judged = [v for v in front_verdicts(picked) if v["on_front"] is not None]
        out.append({"retrain_seeds": [all_seeds[i] for i in subset], "on_front": sum(v["on_front"] for v in judged),
                    "cells": len(judged),
                    "off": [(v["space"], v["hardware"], v["seed"], v["variant"]) for v in judged if not v["on_front"]]})
    return out


def step_time(space: str, seed: int, root: Path, bits, noise: float = 0.0, stat=statistics.median) -> float:
    """Median (``stat``) CPU seconds of one search step (architecture + weight step; 1 thread), timed inside
    the training loop, steps 3 onwards (the first steps trace the supernet); same data and settings. ``noise``:
    the bits' quantization-noise weight (measured every 8th step: time it with the mean, not the median)."""
    import pytorch_lightning as pl

    from uboost.search import SearchConfig, run_search

    times: list[float] = []

    class Timer(pl.Callback):  # CPU time of this process: wall time on the shared 2-core machine mostly measures the load
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            self.started = time.process_time()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            times.append(time.process_time() - self.started)

    config = SearchConfig(space=space, dataset="digits", seed=seed, epochs=1, accelerator="cpu", max_samples=1280,
                          **HARDWARE["bitfusion"], **({"bits": bits, "bits_noise_weight": noise} if bits else {}))
    run_search(config, root / f"step-{space}-{'bits' if bits else 'float'}-s{seed}", force=True, callbacks=[Timer()])
    return stat(times[2:])


def _seeds(text: str) -> list[int]:
    seeds = [int(s) for s in text.split(",") if s.strip()]
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"expected distinct non-negative integers, e.g. 0,1,2; got {text!r}")
    return seeds


def main(argv: list[str] | None = None) -> None:
    import torch

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser()
    parser.add_argument("--spaces", default="lenet")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--retrain-epochs", type=int, default=10)
    parser.add_argument("--noise-steps", action="store_true",
                        help="only the mean search step time with bits, with and without --bits-noise-weight 1")
    parser.add_argument("--bits-noise-weight", type=float, default=0.0,
                        help="the mixed searches' quantization-noise loss weight (uboost.strategy.bits_noise)")
    parser.add_argument("--root", type=Path, default=Path("runs/bench_bits"))
    parser.add_argument("--steps-only", action="store_true", help="only the search step time with and without bits")
    parser.add_argument("--hardware", default=",".join(HARDWARE), help="comma-separated: " + ", ".join(HARDWARE))
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated: " + ", ".join(VARIANTS))
    parser.add_argument("--no-steps", action="store_true", help="skip the step-time measurement")
    parser.add_argument("--retrain-seeds", type=_seeds, default=None,
                        help="comma-separated: retrain each network once per seed (RUN/retrain-s<r>) and report the mean "
                             "accuracy and its spread; default one retrain at the search's seed (RUN/retrain)")
    parser.add_argument("--widen", choices=("bits", "all"), default="all",
                        help="what every variant's export raises at no extra cost: bits, or channel counts and bits jointly "
                             "(default all: uboost's default when bits are searched)")
    parser.add_argument("--subsets", type=int, default=None, metavar="K",
                        help="also print the verdicts on every K of the latest rows' retrain seeds (how much they rest on "
                             "which retrains count)")
    args = parser.parse_args(argv)
    rows = []
    if args.noise_steps:  # twice each, without the term first: the mean step (probes every 8th step), with and without
        for space in args.spaces.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                step_time(space, seed, args.root, (2, 4, 8))  # warm-up
                t = {w: [step_time(space, seed, args.root, (2, 4, 8), w, statistics.fmean) for _ in range(2)] for w in (0.0, 1.0)}
                print(json.dumps({"space": space, "seed": seed, "mean_step_s": t, "ratio": min(t[1.0]) / min(t[0.0])}), flush=True)
        return
    for space in args.spaces.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            if not args.no_steps:
                step_time(space, seed, args.root, None)  # warm-up: the first search of a process pays the imports
                t_float = min(step_time(space, seed, args.root, None), step_time(space, seed, args.root, None))
                t_bits = min(step_time(space, seed, args.root, (2, 4, 8)), step_time(space, seed, args.root, (2, 4, 8)))
                print(json.dumps({"space": space, "seed": seed, "step_cpu_s_float": t_float, "step_cpu_s_bits": t_bits,
                                  "ratio": t_bits / t_float}), flush=True)
            for hardware in () if args.steps_only else args.hardware.split(","):
                for variant in [] if args.variants == "none" else args.variants.split(","):
                    row = run(space, hardware, variant, seed, args.root, args.epochs, args.retrain_epochs, args.retrain_seeds,
                              args.widen, args.bits_noise_weight)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    path = args.root / "bench_bits.json"
    previous = json.loads(path.read_text()) if path.is_file() else []
    if rows:  # appended: several invocations (spaces, seeds, variants) build one table
        path.write_text(json.dumps(previous + rows, indent=1))
    for verdict in front_verdicts(previous + rows):
        print(json.dumps({"front": verdict}), flush=True)
    if args.subsets is not None:  # the rows with the most retrains, the latest of each cell
        latest = {(r["space"], r["hardware"], r["seed"], r["variant"], r.get("widen", "bits"), tuple(r["retrain_seeds"])): r
                  for r in previous + rows if "test_acc_runs" in r}
        most = max((len(r["retrain_seeds"]) for r in latest.values()), default=0)
        for entry in subset_verdicts([r for r in latest.values() if len(r["retrain_seeds"]) == most], args.subsets):
            print(json.dumps({"subset": entry}), flush=True)


if __name__ == "__main__":
    main()
