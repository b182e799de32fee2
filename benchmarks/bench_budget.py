"""Does a latency budget land where the user aims? (not a test)

For every space and seed: one unconstrained (task-only) search, then for every target fraction f of its
derived (cycle-exact) latency X0:

* (a) the in-search budget: a search with ``target_latency_ms = f * X0`` (dual ascent on the
  derived network, window [floor, 1] x target); its argmax network before the final projection;
* (b0) the projection of the unconstrained search onto ``f * X0`` as a plain upper bound and (b) the
  same with the budget floor (``--floor``, default 0.9: the network must use >= 90 % of the budget
  where one can); both are ``uboost export --target-latency-ms`` (an exact integer program over the
  search's alphas);
* (c) what the budgeted search exports: its argmax projected onto the budget.

Each network is retrained from scratch (``--retrain-epochs``) and priced cycle-exact. The table
reports derived latency / target and accuracy, mean and range over seeds, and the share of runs
inside [0.90, 1.00] x target. A lambda sweep (no budget) shows how coarse a fixed lambda is.

    python benchmarks/bench_budget.py --quick                  # dry run: lenet, 1 seed, 1 epoch
    python benchmarks/bench_budget.py                          # lenet + darts-cifar, 3 seeds

Runs go to ``benchmarks/runs/budget/`` and are reused when they finished with the same settings
(``_reuse.py``), so an interrupted benchmark resumes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import warnings
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import _reuse  # noqa: E402  (benchmarks/ is on the path when a script of it runs)
from _reuse import retrain_acc  # noqa: E402

SPACES = {
    "lenet": dict(space="lenet", space_options={}, array="16x16", image_size=16),
    "darts-cifar": dict(space="darts-cifar", space_options={"width": 8, "cells": 3}, array="16x16", image_size=16),
}


def search(root: Path, name: str, config) -> dict:
    return _reuse.search(root / name, config)


def project(run: Path, target: float, out: Path, floor: float) -> dict:
    """Projected again every time (milliseconds); the directory is rewritten (and retrained again)
    only when the network changed, e.g. because the search ran again."""
    from uboost.frontier import export_projection, load_projector

    source = load_projector(run)
    projection = source.projector.project(target, floor=floor)
    if (out / "result.json").is_file() and json.loads((out / "arch.json").read_text()) == projection.arch:
        return json.loads((out / "result.json").read_text())
    return export_projection(source, projection, out, target_ms=target, force=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", default="lenet,darts-cifar")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--fractions", default="0.3,0.5,0.7")
    parser.add_argument("--epochs", type=int, default=6, help="search epochs (6: uboost search's default)")
    parser.add_argument("--retrain-epochs", type=int, default=5)
    parser.add_argument("--max-samples", type=int, default=None)
    parser.add_argument("--floor", type=float, default=0.9, help="budget floor of (a)-(c); (b0) = projection with floor 0")
    parser.add_argument("--sweep-arch-lrs", default="0.03", help="arch learning rates of the lambda sweep (0.003 = before the defaults changed)")
    parser.add_argument("--lambdas", default="0,0.1,0.3,1,3,10", help="lambda sweep without a budget ('' skips it)")
    parser.add_argument("--score-weight", type=float, default=None, help="single path's score-function weight (default: SearchConfig's)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/runs/budget"))
    parser.add_argument("--quick", action="store_true", help="lenet, 1 seed, 1 epoch, 256 samples: a dry run")
    args = parser.parse_args()
    if args.quick:
        args.spaces, args.seeds, args.epochs, args.retrain_epochs, args.max_samples, args.lambdas = "lenet", 1, 1, 1, 256, "0,1"
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    from uboost.search import SearchConfig

    fractions = [float(f) for f in args.fractions.split(",") if f]  # '' skips the budget part
    lines = []
    for space in args.spaces.split(","):
        overrides = {} if args.score_weight is None else {"score_weight": args.score_weight}
        base = SearchConfig(**SPACES[space], epochs=args.epochs, max_samples=args.max_samples, **overrides)
        rows = {key: [] for key in ("reach", "a", "b0", "b", "c")}
        tag = f"-floor{args.floor:g}" if args.floor else ""  # floor 0 runs keep the names of the first benchmark
        for seed in range(args.seeds if fractions else 0):
            root = args.out / space / f"seed{seed}"
            free = search(root, "free", base.replace(seed=seed, latency_weight=0.0, utilization_weight=0.0))  # task only
            x0 = free["latency_ms"]
            from uboost.frontier import load_projector

            free_projector = load_projector(root / "free").projector
            cheapest = free_projector.cheapest().latency_ms
            for f in fractions:
                target = f * x0
                if target < cheapest:
                    print(f"{space} seed{seed} f={f}: target {1e3 * target:.2f}us is below the cheapest network ({1e3 * cheapest:.2f}us): skipped")
                    continue
                budgeted = search(root, f"budget{f}{tag}", base.replace(seed=seed, target_latency_ms=target, budget_floor=args.floor))
                proj_plain = project(root / "free", target, root / f"proj-free{f}", 0.0)
                acc_b0 = retrain_acc(root / f"proj-free{f}", args.retrain_epochs, args.max_samples)
                proj_free = project(root / "free", target, root / f"proj-free{f}{tag}", args.floor)
                acc_b = retrain_acc(root / f"proj-free{f}{tag}", args.retrain_epochs, args.max_samples)
                acc_c = retrain_acc(root / f"budget{f}{tag}", args.retrain_epochs, args.max_samples)
                argmax_ratio = budgeted["argmax_latency_ms"] / target
                reachable = free_projector.highest_under(target).latency_ms / target  # best any architecture can do
                rows["reach"].append((f, reachable, None))
                rows["a"].append((f, argmax_ratio, None))
                rows["b0"].append((f, proj_plain["latency_ms"] / target, acc_b0))
                rows["b"].append((f, proj_free["latency_ms"] / target, acc_b))
                rows["c"].append((f, budgeted["latency_ms"] / target, acc_c))
                print(f"{space} seed{seed} f={f}: X0={1e3 * x0:.2f}us target={1e3 * target:.2f}us reachable {reachable:.2f}x "
                      f"(a) argmax {argmax_ratio:.2f}x  (b0) proj-free floor 0 {proj_plain['latency_ms'] / target:.2f}x acc {acc_b0:.3f}  "
                      f"(b) proj-free {proj_free['latency_ms'] / target:.2f}x acc {acc_b:.3f}  "
                      f"(c) budgeted {budgeted['latency_ms'] / target:.2f}x acc {acc_c:.3f}  "
                      f"gap E/argmax {abs(budgeted['expected_latency_ms'] / budgeted['argmax_latency_ms'] - 1):.2f}", flush=True)
        for key, label in (("reach", "highest latency any architecture reaches under the target"), ("a", "(a) in-search budget, argmax"), ("b0", "(b0) projection of the free search, floor 0"), ("b", f"(b) projection of the free search, floor {args.floor:g}"), ("c", "(c) budgeted search, exported")):
            for f in fractions:
                sel = [r for r in rows[key] if r[0] == f]
                if not sel:
                    lines.append(f"| {space} | {label} | {f} | infeasible (below the cheapest network) | - | - |")
                    continue
                ratios = [r[1] for r in sel]
                accs = [r[2] for r in sel if r[2] is not None]
                per_seed = ", ".join(f"{r[1]:.2f}" + (f" / {100 * r[2]:.1f}%" if r[2] is not None else "") for r in sel)
                print(f"{space} {label} f={f}: per seed {per_seed}")
                inside = sum(0.90 <= r <= 1.0 + 1e-9 for r in ratios)
                acc = f"{100 * statistics.mean(accs):.1f}" if accs else "-"
                lines.append(f"| {space} | {label} | {f} | {statistics.mean(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}) | {inside}/{len(ratios)} | {acc} |")
        for arch_lr in (float(v) for v in (args.sweep_arch_lrs.split(",") if args.lambdas else [])):
            suffix = "" if arch_lr == 0.03 else f"-alr{arch_lr:g}"  # 0.03: the default, the first benchmark's names
            for lam in (float(v) for v in args.lambdas.split(",")):
                sweep = [search(args.out / space / f"seed{s}", f"lambda{lam}{suffix}", base.replace(seed=s, latency_weight=lam, arch_lr=arch_lr))
                         for s in range(args.seeds)]
                lat = [1e3 * r["latency_ms"] for r in sweep]
                gap = [abs(r["expected_latency_ms"] / r["argmax_latency_ms"] - 1) for r in sweep]
                print(f"{space} arch_lr={arch_lr:g} lambda={lam:g}: derived us {', '.join(f'{v:.2f}' for v in lat)}; "
                      f"gap {', '.join(f'{g:.2f}' for g in gap)}", flush=True)
                lines.append(f"| {space} | lambda sweep, arch_lr {arch_lr:g} | lambda={lam:g} | {statistics.mean(lat):.2f} us ({min(lat):.2f}-{max(lat):.2f}) "
                             f"| gap E/argmax {statistics.mean(gap):.2f} | {100 * statistics.mean(r['val_acc'] or 0 for r in sweep):.1f} (val) |")
    print("\n| space | variant | target fraction | derived / target: mean (min-max) | in [0.90, 1.00] | retrained acc % |")
    print("|---|---|---|---|---|---|")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
