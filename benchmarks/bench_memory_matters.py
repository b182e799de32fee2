"""Does memory-awareness change what the search picks? (not a test)

On a small-SRAM accelerator (default: 32x32 WS, 16 kB per SRAM buffer, 4 DRAM words per cycle)
the same space is searched twice per seed, identical but for the cost model:

* ``systolic``: compute cycles only (today's default; blind to SRAM and DRAM),
* ``scalesim``: SCALE-Sim 3.0 in USER mode on that memory system, every supernet row simulated
  (``expected`` cost mode: the search optimizes SCALE-Sim's own numbers),

then both derived networks are priced by SCALE-Sim USER mode (the ground truth here) and by
compute-only ``systolic``, retrained briefly, and their architectures compared label by label.

    python benchmarks/bench_memory_matters.py                 # lenet on digits at 16x16, 3 seeds
    python benchmarks/bench_memory_matters.py --image-size 32 # the same at 32x32 (the headline in RESULTS.md)
    python benchmarks/bench_memory_matters.py --quick         # 1 seed, 1 epoch: a dry run

Runs go to ``benchmarks/runs/memory/`` and are reused when they finished with the same settings
(``_reuse.py``). The first
run simulates every supernet row once (a few minutes, 2 worker processes); later runs read the
SCALE-Sim cache.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import warnings
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


from _reuse import retrain_acc, search  # noqa: E402  (benchmarks/ is on the path when a script of it runs)


def price(run: Path, model) -> float:
    """Latency (us) of the run's derived network under ``model``."""
    from uboost.networks import load_network_or_run

    loaded = load_network_or_run(str(run))
    return 1e3 * model.evaluate(loaded.module, loaded.input_shape).latency_ms


def arch_of(run: Path) -> dict:
    from uboost.runs import load_run

    return dict(load_run(run).arch)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="lenet")
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--array", default="32x32")
    parser.add_argument("--dataflow", default="ws")
    parser.add_argument("--sram-kb", type=int, default=16)
    parser.add_argument("--dram-bw-words", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--retrain-epochs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/runs/memory"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.epochs, args.retrain_epochs = 1, 1, 1
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)

    from uboost.hardware import create
    from uboost.search import SearchConfig

    options = {"width": 8, "cells": 3} if args.space == "darts-cifar" else {}
    base = SearchConfig(space=args.space, space_options=options, image_size=args.image_size, array=args.array,
                        dataflow=args.dataflow, sram_kb=args.sram_kb, dram_bw_words=args.dram_bw_words, epochs=args.epochs)
    spec = base.hardware_spec()
    truth = create("scalesim", spec=spec)  # USER mode: the memory system's ground truth
    compute_only = create("systolic", spec=spec)
    tag = f"{args.space}-{args.image_size}px-{spec.array}{spec.dataflow}-{args.sram_kb}kB-bw{args.dram_bw_words}"
    rows = []
    for seed in range(args.seeds):
        result = {}
        for model in ("systolic", "scalesim"):
            run = args.out / tag / f"seed{seed}" / model
            summary = search(run, base.replace(seed=seed, cost_model=model))
            result[model] = {
                "run": run,
                "search_s": summary.get("search_seconds"),
                "scalesim_us": price(run, truth),
                "systolic_us": price(run, compute_only),
                "acc": retrain_acc(run, args.retrain_epochs),
                "arch": arch_of(run),
            }
        a, b = result["systolic"]["arch"], result["scalesim"]["arch"]
        changed = {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}
        rows.append((seed, result, changed))
        s, m = result["systolic"], result["scalesim"]
        print(f"seed {seed}: systolic-searched {s['scalesim_us']:.2f} us (SCALE-Sim USER) / {s['systolic_us']:.2f} us compute-only, acc {100 * s['acc']:.1f}%  |  "
              f"scalesim-searched {m['scalesim_us']:.2f} us / {m['systolic_us']:.2f} us, acc {100 * m['acc']:.1f}%  |  "
              f"changed: {changed or 'nothing'}  | search {s['search_s']:.0f}s vs {m['search_s']:.0f}s", flush=True)

    print(f"\n{args.space} on {spec.array} {spec.dataflow}, {spec.memory_text}, {args.epochs} search epochs, retrain {args.retrain_epochs}\n")
    print("| seed | searched with | SCALE-Sim USER latency (us) | compute-only latency (us) | retrained acc % | search s | labels that differ |")
    print("|---|---|---|---|---|---|---|")
    for seed, result, changed in rows:
        for model in ("systolic", "scalesim"):
            r = result[model]
            diff = "; ".join(f"{k}: {v[0]} -> {v[1]}" for k, v in changed.items()) if model == "scalesim" else ""
            print(f"| {seed} | {model} | {r['scalesim_us']:.2f} | {r['systolic_us']:.2f} | {100 * r['acc']:.1f} | {r['search_s']:.0f} | {diff} |")
    for model in ("systolic", "scalesim"):
        lat = [r[model]["scalesim_us"] for _, r, _ in rows]
        acc = [r[model]["acc"] for _, r, _ in rows]
        print(f"mean, searched with {model}: SCALE-Sim USER {statistics.mean(lat):.2f} us, acc {100 * statistics.mean(acc):.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
