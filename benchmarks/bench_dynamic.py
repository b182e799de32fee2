"""Static vs dynamic (early exits x DVFS) on the same array and operating-point table (not a test).

For every space and seed: a short search, a retrain (the static network), then ``uboost exits``'
pipeline: heads trained on the frozen backbone (CE + distillation), thresholds and operating
points searched on a validation split of the training data. Four variants share the heads and
the validation scores:

* static: no exit, the fastest operating point (the retrained network as ``uboost retrain`` prices it);
* truncated: one head with threshold 0, the fastest point: the backbone cut at an exit, a shorter static
  network (shows how much of a saving needs no decision at all);
* DVFS alone: no exit, any operating point;
* exits alone: exits and thresholds, the fastest operating point;
* joint: exits, thresholds and operating point.

Each variant's chosen point is the least expected-energy point of its Pareto front whose
*validation* accuracy is within ``--max-loss`` points of the static network's validation
accuracy; its test accuracy and measured exit shares are then reported (the test set never
chooses anything).

    python benchmarks/bench_dynamic.py --quick            # lenet, 1 seed, 1 retrain epoch
    python benchmarks/bench_dynamic.py                    # lenet + darts-cifar, 3 seeds
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
warnings.filterwarnings("ignore")


def run_one(space: str, seed: int, root: Path, retrain_epochs: int, head_width: int, max_loss: float, head_pool: int = 2,
            positions: tuple[str, ...] | None = None, training: str = "distill") -> dict:
    import torch

    from uboost.dynamic.pipeline import ExitsConfig, calibrate, load_data, measure, prepare, scores
    from uboost.dynamic.pricing import ExitCosts
    from uboost.dynamic.search import pareto, search_policies
    from uboost.retrain import RetrainConfig, retrain
    from uboost.search import SearchConfig, run_search

    torch.set_num_threads(1)
    run = root / f"{space}-s{seed}"
    if not (run / "retrain" / "model.pt").is_file():
        options = {"cells": 3, "width": 8} if space == "darts-cifar" else {}
        run_search(SearchConfig(space=space, space_options=options, dataset="digits", epochs=2, max_samples=512, batch_size=32,
                                seed=seed, accelerator="cpu"), run, force=True)
        retrain(run, RetrainConfig(epochs=retrain_epochs, seed=seed, accelerator="cpu"))
    config = ExitsConfig(head_width=head_width, head_pool=head_pool, positions=positions, training=training, seed=seed)
    prepared = prepare(run, config, out=run / "exits")
    fit, validation, test = load_data(prepared)
    retrained = {name: _accuracy(prepared.module, data) for name, data in (("val", validation), ("test", test))}
    cal = calibrate(prepared, fit, validation, study_dir=run / "exits")  # joint training moves prepared.module
    conf, correct = scores(cal.network, validation, 64)
    test_correct = scores(cal.network, test, 64)[1]
    costs = cal.costs
    top = len(costs.freq_hz) - 1
    fastest = ExitCosts(costs.positions, *(a[top:top + 1] for a in (costs.freq_hz, costs.voltage_v, costs.segment_cycles,
                                                                    costs.segment_energy_uj, costs.head_cycles, costs.head_energy_uj)))
    variants = {  # (costs, exits that may be kept, threshold grid)
        "static": (fastest, [], config.grid),
        "truncated": (fastest, None, (0.0,)),  # threshold 0: every input leaves at the first kept head (a shorter static network)
        "DVFS alone": (costs, [], config.grid),
        "exits alone": (fastest, None, config.grid),
        "joint": (costs, None, config.grid),
    }
    static_val = retrained["val"]  # the retrained network's, also when the heads were trained jointly with the backbone
    rows = {}
    for name, (c, exits, grid) in variants.items():
        front = pareto(search_policies(conf, correct, c, grid=grid, exits=exits))
        fit_points = [p for p in front if p["accuracy"] >= static_val - max_loss / 100 - 1e-12]
        best = (min(fit_points, key=lambda p: (p["expected_energy_uj"], -p["accuracy"])) if fit_points
                else max(front, key=lambda p: (p["accuracy"], -p["expected_energy_uj"])))  # none within the loss: the most accurate
        accuracy, shares = measure(cal.network, test, best["thresholds"], 64)
        kept = [t is not None for t in best["thresholds"]]
        latency, energy = c.expected(shares, kept, best["point"])
        worst, _ = c.worst(kept, best["point"])
        rows[name] = {"test_acc": accuracy, "shares": shares, "expected_latency_ms": latency, "expected_energy_uj": energy,
                      "worst_latency_ms": worst, "freq_mhz": c.freq_hz[best["point"]] / 1e6, "thresholds": best["thresholds"],
                      "front": [(p["accuracy"], p["expected_energy_uj"], p["expected_latency_ms"]) for p in front]}
    rows["static"]["test_acc"] = retrained["test"]
    return {"space": space, "seed": seed, "positions": list(costs.positions), "rows": rows, "head_width": head_width,
            "head_pool": head_pool, "training": training,
            "exit_val_acc": correct.mean(0).tolist(), "exit_test_acc": test_correct.mean(0).tolist(),
            "segment_energy_uj": costs.segment_energy_uj[top].tolist(), "head_energy_uj": costs.head_energy_uj[top].tolist()}


def _accuracy(module, dataset) -> float:
    import torch
    from torch.utils.data import DataLoader

    module.eval()
    right = total = 0
    with torch.no_grad():
        for x, y in DataLoader(dataset, batch_size=64):
            right, total = right + int((module(x).argmax(1) == y).sum()), total + len(y)
    return right / max(1, total)


def report(results: list[dict]) -> str:
    lines = []
    for space in dict.fromkeys(r["space"] for r in results):
        runs = [r for r in results if r["space"] == space]
        first = runs[0]
        lines.append(f"\n{space} on digits 8x8, {len(runs)} seed(s), exits at {', '.join(first['positions'])}, "
                     f"head width {first.get('head_width')}, head pool {first.get('head_pool', 1)}, {first.get('training', 'distill')}")
        for r in runs:
            if "exit_test_acc" in r:
                joint, static = r["rows"]["joint"], r["rows"]["static"]
                lines.append(f"- seed {r['seed']}: segment energy uJ {[round(e, 4) for e in r['segment_energy_uj']]}, heads "
                             f"{[round(e, 4) for e in r['head_energy_uj']]}; accuracy per exit (val) "
                             f"{[round(100 * a, 1) for a in r['exit_val_acc']]}, (test) {[round(100 * a, 1) for a in r['exit_test_acc']]}; "
                             f"joint {1 - joint['expected_energy_uj'] / static['expected_energy_uj']:.0%} less energy at "
                             f"{100 * (joint['test_acc'] - static['test_acc']):+.2f} points, thresholds {joint['thresholds']}")
        lines.append("| variant | test acc % | E[energy] uJ | vs static | E[latency] us | worst us | MHz | exit shares % |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for name in runs[0]["rows"]:
            def mean(key, scale=1.0):
                values = [scale * r["rows"][name][key] for r in runs]
                return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)

            acc, acc_sd = mean("test_acc", 100)
            e, e_sd = mean("expected_energy_uj")
            saving = statistics.mean(1 - r["rows"][name]["expected_energy_uj"] / r["rows"]["static"]["expected_energy_uj"] for r in runs)
            lat, _ = mean("expected_latency_ms", 1e3)
            worst, _ = mean("worst_latency_ms", 1e3)
            shares = [statistics.mean(r["rows"][name]["shares"][k] * 100 for r in runs) for k in range(len(runs[0]["rows"][name]["shares"]))]
            mhz = "/".join(f"{r['rows'][name]['freq_mhz']:g}" for r in runs)
            lines.append(f"| {name} | {acc:.1f} ± {acc_sd:.1f} | {e:.4g} ± {e_sd:.2g} | {-100 * saving:+.0f} % | {lat:.4g} | {worst:.4g} | "
                         f"{mhz} | {' / '.join(f'{s:.0f}' for s in shares)} |")
        lines.extend(fronts_table(runs))
    return "\n".join(lines)


LOSSES = (0.0, 0.5, 1.0, 2.0, 5.0)


def fronts_table(runs: list[dict]) -> list[str]:
    """The fronts of DVFS alone, exits alone and joint, on validation data: the least expected energy
    (as a saving against the static network) at each accuracy loss, mean over seeds."""
    lines = ["", "Fronts (validation accuracy vs expected energy): energy saved against the static network at a "
             "validation accuracy loss of at most ... points, mean over seeds (front sizes in brackets)",
             "| front | " + " | ".join(f"<= {d:g}" for d in LOSSES) + " |", "|---|" + "---|" * len(LOSSES)]
    for name in ("DVFS alone", "exits alone", "joint"):
        cells = []
        for d in LOSSES:
            saved = []
            for r in runs:
                static_acc, static_e = r["rows"]["static"]["front"][0][0], r["rows"]["static"]["expected_energy_uj"]
                fit = [e for acc, e, _ in r["rows"][name]["front"] if acc >= static_acc - d / 100 - 1e-12]
                saved.append(1 - min(fit) / static_e if fit else float("nan"))
            cells.append(f"{100 * statistics.mean(saved):.0f} %")
        sizes = "/".join(str(len(r["rows"][name]["front"])) for r in runs)
        lines.append(f"| {name} ({sizes}) | " + " | ".join(cells) + " |")
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", default="lenet,darts-cifar")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--retrain-epochs", type=int, default=20)
    parser.add_argument("--max-loss", type=float, default=0.5, help="accuracy points a variant may lose on validation")
    parser.add_argument("--head-width", type=int, default=0, help="exit head conv width (0: pool + linear)")
    parser.add_argument("--head-pool", type=int, default=2, help="grid side a head pools to (1: global pooling)")
    parser.add_argument("--positions", default=None, help="exit positions, comma-separated [default: the pipeline's]")
    parser.add_argument("--training", default="distill", help="distill | joint")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--report-only", type=Path, default=None, help="print the report of a results JSON written earlier")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "runs" / "dynamic")
    args = parser.parse_args(argv)
    if args.report_only is not None:
        print(report(json.loads(args.report_only.read_text())))
        return
    spaces = ["lenet"] if args.quick else args.spaces.split(",")
    seeds = 1 if args.quick else args.seeds
    epochs = 1 if args.quick else args.retrain_epochs
    results = []
    for space in spaces:
        for seed in range(seeds):
            positions = tuple(args.positions.split(",")) if args.positions else None
            results.append(run_one(space, seed, args.out, epochs, args.head_width, args.max_loss, args.head_pool, positions, args.training))
            print(f"done {space} seed {seed}", file=sys.stderr, flush=True)
            name = f"results-w{args.head_width}-p{args.head_pool}-{args.training}{'-' + args.positions if args.positions else ''}.json"
            (args.out / name).write_text(json.dumps(results, indent=1))
    print(report(results))


if __name__ == "__main__":
    main()
