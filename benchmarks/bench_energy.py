"""Energy benchmarks (not a test). ``--part a``: does an energy-aware search find networks that cost
less energy than a latency-only one, at the same accuracy -- and where do the joules go?

Part (a): per space and seed the same search runs twice on one accelerator (default 16x16
weight-stationary, 16 kB per SRAM buffer, 4 DRAM words per cycle, ``systolic-mem`` cycles, the
``horowitz45`` energy table at 1 GHz), identical but for the hardware term:

* ``latency``: ``lambda = 1`` on latency / latency_ref, no energy term (uboost's default);
* ``energy``: ``gamma = 1`` on energy / energy_ref, no latency term (``--energy-weight 1
  --latency-weight 0``; ``--gammas`` adds other weights, named ``energy-gG``);
* ``energy@F``: no latency term, an energy budget of ``F`` times the energy of the same seed's
  latency-only network (``--target-energy-uj``, window floor 0.9): the energy-aware network at a
  chosen share of the latency-only one's energy, to read accuracy at equal and lower energy;

then every derived network are retrained from scratch and priced exactly (energy split into MAC,
SRAM, DRAM and leakage). Runs go to ``benchmarks/runs/energy/`` and are reused when they finished
with the same settings (``_reuse.py``).

    nice -n 10 python benchmarks/bench_energy.py --part a                  # lenet and darts-cifar, 3 seeds
    nice -n 10 python benchmarks/bench_energy.py --part a --quick          # 1 seed, 1 epoch: a dry run
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

def objectives(gammas: list[float], fractions: list[float]) -> list[tuple[str, dict]]:
    """(name, search settings): latency-only first (the energy budgets are shares of its network's energy)."""
    found = [("latency", dict(latency_weight=1.0, energy_weight=0.0))]
    found += [("energy" if g == 1.0 else f"energy-g{g:g}", dict(latency_weight=0.0, energy_weight=g)) for g in gammas]
    return found + [(f"energy@{f:g}", {"fraction": f}) for f in fractions]
PARTS = ("mac", "sram", "dram", "leakage")


def priced(run: Path) -> dict:
    """Latency (µs) and energy (µJ, total and per part) of the run's derived network, as written."""
    import json

    hardware = json.loads((run / "hardware.json").read_text())["total"]
    return {"latency_us": 1e3 * hardware["latency_ms"], "energy_uj": hardware["energy_uj"], **hardware["energy_breakdown_uj"]}


def part_a(args) -> int:
    from uboost.search import SearchConfig
    from uboost.strategy.projection import InfeasibleBudget

    rows = []
    for space in args.spaces:
        options = {"width": 8, "cells": 3} if space == "darts-cifar" else {}
        base = SearchConfig(space=space, space_options=options, dataset="digits", array=args.array, dataflow="ws",
                            cost_model="systolic-mem", sram_kb=args.sram_kb, dram_bw_words=args.dram_bw_words,
                            energy=args.energy, epochs=args.epochs, max_samples=args.max_samples)
        for seed in args.seeds:
            reference = None
            for name, weights in objectives(args.gammas, args.fractions):
                run = args.out / f"{space}-{base.array}{base.dataflow}-{args.sram_kb}kB-bw{args.dram_bw_words}" / f"seed{seed}" / name
                if "fraction" in weights:  # a share of the latency-only network's energy (searched first)
                    weights = dict(latency_weight=0.0, target_energy_uj=weights["fraction"] * reference)
                try:
                    summary = search(run, base.replace(seed=seed, **weights))
                except InfeasibleBudget as exc:  # the latency-only network was already the least-energy one
                    print(f"{space} seed {seed} {name}: infeasible ({exc})", flush=True)
                    continue
                row = {"space": space, "seed": seed, "objective": name, "search_s": summary.get("search_seconds"),
                       "acc": retrain_acc(run, args.retrain_epochs), **priced(run)}
                rows.append(row)
                if name == "latency":
                    reference = row["energy_uj"]
                print(f"{space} seed {seed} {name:7s}: acc {100 * row['acc']:.1f}%  {row['energy_uj']:.4g} uJ "
                      f"(mac {row['mac']:.3g}, sram {row['sram']:.3g}, dram {row['dram']:.3g}, leak {row['leakage']:.2g})  "
                      f"{row['latency_us']:.3g} us  search {row['search_s']:.0f}s", flush=True)
    print(f"\n{base.array} ws, {args.sram_kb} kB SRAM, {args.dram_bw_words} words/cycle, systolic-mem, {args.energy}; "
          f"{args.epochs} search epochs, retrain {args.retrain_epochs}\n")
    print("| space | seed | objective | retrained acc % | energy µJ | MAC | SRAM | DRAM | leakage | latency µs | search s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['space']} | {r['seed']} | {r['objective']} | {100 * r['acc']:.1f} | {r['energy_uj']:.4g} | {r['mac']:.3g} | "
              f"{r['sram']:.3g} | {r['dram']:.3g} | {r['leakage']:.2g} | {r['latency_us']:.3g} | {r['search_s']:.0f} |")
    print()
    for space in args.spaces:
        for name, _ in objectives(args.gammas, args.fractions):
            sel = [r for r in rows if r["space"] == space and r["objective"] == name]
            if not sel:
                continue
            mean = {k: statistics.mean(r[k] for r in sel) for k in ("acc", "energy_uj", "latency_us", *PARTS)}
            sd = statistics.stdev(r["acc"] for r in sel) if len(sel) > 1 else 0.0
            print(f"mean {space} {name}: acc {100 * mean['acc']:.1f} ± {100 * sd:.1f}%, {mean['energy_uj']:.4g} uJ "
                  f"(mac {mean['mac']:.3g}, sram {mean['sram']:.3g}, dram {mean['dram']:.3g}, leakage {mean['leakage']:.2g}), "
                  f"{mean['latency_us']:.3g} us")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["a"], default="a")
    parser.add_argument("--spaces", nargs="+", default=["lenet", "darts-cifar"])
    parser.add_argument("--array", default="16x16")
    parser.add_argument("--sram-kb", type=int, default=16)
    parser.add_argument("--dram-bw-words", type=float, default=4)
    parser.add_argument("--energy", default="horowitz45")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--gammas", type=float, nargs="*", default=[1.0], help="energy weights of the energy-only searches")
    parser.add_argument("--fractions", type=float, nargs="*", default=[1.0, 0.7],
                        help="energy budgets as shares of the latency-only network's energy")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--max-samples", type=int, default=None)
    parser.add_argument("--retrain-epochs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/runs/energy"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.epochs, args.retrain_epochs, args.max_samples = [0], 1, 1, 128
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    import torch

    torch.set_num_threads(1)
    return part_a(args)


if __name__ == "__main__":
    sys.exit(main())
