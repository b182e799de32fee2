"""Does the architecture optimizer decide that exact pricing's lenet sweep is hardware-decided? (issue 26 item 3; a study)

Exact pricing's lenet sweep returns the hardware term's own optimum at almost every lambda (RESULTS, "Why exact
pricing loses on lenet"), and ``bench_fronts.LAMBDAS`` notes why we think so: Adam on the alphas follows the sign of
a consistent gradient, not its size, so a small but steady hardware gradient outweighs the task's noisy one whatever
lambda is. This study swaps the alphas' optimizer for SGD with momentum 0.9 (weight decay 1e-3 as today), whose steps
scale with the gradient, and runs the lenet-16x16 sweep of ``bench_fronts.py`` (same grid, config, retrain settings
and cycle-exact pricing) with it, beside today's Adam in the same process and code:

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/study_arch_optimizer.py --optimizer sgd --lr 10 --seeds 0,1,2 \\
        --root /work/runs/opt --report benchmarks/fronts/arch-optimizer
    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/study_arch_optimizer.py --optimizer adam --model systolic-paper ...

``--optimizer adam`` is today's search (``FlatAdam``, lr 0.1 from ``SearchConfig.arch_lr``; ``--lr`` is ignored).
Retrains are shared between runs through ``ROOT/retrain-cache`` (the same network and settings retrain once).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

OPTIMIZERS = ("adam", "sgd")
PAIR = "lenet-16x16"


@contextlib.contextmanager
def arch_optimizer(name: str, lr: float):
    """Inside the block, searches update their alphas with ``name`` (``adam``: today's, unchanged)."""
    from uboost.strategy.lightning import UBoostLightningModule

    if name == "adam":
        yield
        return
    import torch

    old = UBoostLightningModule.configure_architecture_optimizers

    def sgd(self):
        return torch.optim.SGD(self.arch_parameters(), lr=lr, momentum=0.9, weight_decay=1.0e-3)

    UBoostLightningModule.configure_architecture_optimizers = sgd
    try:
        yield
    finally:
        UBoostLightningModule.configure_architecture_optimizers = old


def sweep(root: Path, optimizer: str, lr: float, seed: int, model: str = "systolic") -> list[dict]:
    """One lambda sweep of ``bench_fronts.py``'s lenet grid: a point per lambda (accuracy %, latency µs, arch)."""
    import bench_fronts
    import fronts_seeds

    import _reuse

    points = []
    for lam in bench_fronts.LAMBDAS["lenet"]:
        config, _ = bench_fronts.search_config(PAIR, model, lam, seed)
        out = root / f"{model}-{optimizer}-{lr:g}" / f"seed{seed}" / f"lambda{lam:g}"
        with warnings.catch_warnings(), arch_optimizer(optimizer, lr):
            warnings.simplefilter("ignore")
            _reuse.search(out, config)
            accuracy, _ = fronts_seeds.evaluate(out, fronts_seeds.retrain_settings(10, None), root / "retrain-cache")
        priced = bench_fronts.price(out, config)
        points.append({"lambda": lam, "accuracy_pct": 100 * accuracy["test_acc"], "latency_us": priced["latency_us"],
                       "arch": json.loads((out / "arch.json").read_text())})
        print(f"{optimizer} {lr:g} seed {seed} lambda {lam:g}: {points[-1]['accuracy_pct']:.1f} % "
              f"{points[-1]['latency_us']:.2f} µs", flush=True)
    return points


def hypervolume(points: list[dict]) -> float:
    import bench_fronts
    import hypervolume as hv

    return hv.normalized_hypervolume([(100 - p["accuracy_pct"], p["latency_us"]) for p in points],
                                     bench_fronts.REFERENCE[PAIR])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd")
    parser.add_argument("--lr", type=float, default=10.0, help="SGD's learning rate (adam: SearchConfig.arch_lr)")
    parser.add_argument("--model", default="systolic", help="bench_fronts.py's entry (systolic-paper, systolic-smooth: "
                        "the baselines, with --optimizer adam)")
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
    parser.add_argument("--root", type=Path, default=Path("benchmarks/runs/arch-optimizer"))
    parser.add_argument("--report", type=Path, default=None, help="folder for <optimizer>-<lr>.json")
    args = parser.parse_args(argv)
    if args.optimizer == "adam":
        from uboost.search_config import SearchConfig

        args.lr = SearchConfig().arch_lr  # today's search: its own learning rate
    result = {}
    for seed in args.seeds:
        points = sweep(args.root, args.optimizer, args.lr, seed, args.model)
        result[seed] = {"hypervolume": hypervolume(points), "distinct": len({json.dumps(p["arch"], sort_keys=True) for p in points}),
                        "points": points}
        print(f"{args.model} {args.optimizer} {args.lr:g} seed {seed}: hypervolume {result[seed]['hypervolume']:.3f}, "
              f"{result[seed]['distinct']} distinct networks", flush=True)
    if args.report:
        from uboost.io import write_json

        args.report.mkdir(parents=True, exist_ok=True)
        lr = "" if args.optimizer == "adam" else f"-{args.lr:g}"
        write_json(args.report / f"{args.model}-{args.optimizer}{lr}.json",
                   {"pair": PAIR, "model": args.model, "optimizer": args.optimizer, "lr": args.lr, "seeds": result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
