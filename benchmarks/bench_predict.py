"""How good is the supernet's accuracy predictor? (not a test)

For every space (lenet, darts-cifar; digits at the dataset's own 8x8, the README defaults) and seed:
one default search (``uboost search --space S --seed N``), then

* ``--part loo``: the predictor's error against the number of measured sub-networks K: for each K,
  the leave-one-out RMSE of the fit and the RMSE / Kendall tau on 40 held-out random sub-networks,
  none of them one the fit measures at any K (their inherited-weight accuracy: what the table is
  fitted to). Picks the default K.
* ``--part retrain``: the default predictor (``uboost predict``), then the networks of a 4-point
  frontier (budgets at 1/4 .. 4/4 of the way from the cheapest to the most expensive network of
  the space, budget floor 0.9) projected with each objective (``preference``, ``predicted-accuracy``) and random
  networks of the space, up to ``--networks`` distinct ones, each retrained from scratch with the
  default retrain settings (``uboost retrain``). Reports Kendall tau and MAE between predicted (the
  table's sum, unclipped) and retrained test accuracy, against the search's log-probability and
  FLOPs (MACs) as rankers, and the two frontiers' retrained accuracy at equal budgets.

    python benchmarks/bench_predict.py --part loo                        # the predictor's fine-tuning (1 epoch)
    python benchmarks/bench_predict.py --part loo --fine-tune-epochs 0   # the search's weights as they are
    python benchmarks/bench_predict.py --part retrain --spaces lenet,darts-cifar --seeds 0,1

Runs go to ``benchmarks/runs/predict/`` and are reused when finished with the same settings; the
rows to ``loo-SPACES-ftE.json`` (one file per fine-tuning) and ``retrain-SPACES.json`` there.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import _reuse  # noqa: E402  (benchmarks/ is on the path when a script of it runs)
from _reuse import retrain_acc  # noqa: E402

K_GRID = (10, 20, 40, 60, 90, 120, 160)
HOLDOUT = 40


def kendall(a, b) -> float:
    from scipy.stats import kendalltau

    return float(kendalltau(a, b).statistic)


def search(root: Path, space: str, seed: int) -> Path:
    from uboost.search import SearchConfig

    out = root / f"{space}-s{seed}"
    _reuse.search(out, SearchConfig(space=space, seed=seed))
    return out


def heldout_networks(choices, nodes, fitted: list[dict], count: int, seed: int = 12345) -> list[dict]:
    """``count`` distinct uniform random networks, none of them one the fit measures at any K (lenet's
    space has 300 networks: drawn without this, up to 20 of the 40 were in the K = 160 fit)."""
    import numpy as np

    from uboost.predict.sampling import random_network, space_size

    taken = {tuple(sorted(n.items())) for n in fitted}
    if space_size(choices, nodes) - len(taken) < count:
        raise SystemExit(f"the space has fewer than {count} networks outside the fitted ones: no held-out set")
    rng, held = np.random.default_rng(seed), {}
    while len(held) < count:
        network = random_network(choices, nodes, rng)
        key = tuple(sorted(network.items()))
        if key not in taken and key not in held:
            held[key] = network
    return list(held.values())


def part_loo(run: Path, fine_tune_epochs: int) -> list[dict]:
    """Error of the fitted table against K, on one trained supernet (fine-tuned as the default predictor is)."""
    import numpy as np

    from uboost.predict.sampling import sample_networks
    from uboost.predict.supernet import load_trained_supernet
    from uboost.predict.table import fit_additive
    from uboost.strategy.architecture import argmax_indices

    net = load_trained_supernet(run)
    net.fine_tune_uniform(fine_tune_epochs)
    by_id = argmax_indices(net.choices, net.nodes)
    center = {c.label: by_id[id(c.alpha)] for c in net.choices}
    names = {c.label: [str(v) for v in c.values] for c in net.choices}
    cache: dict[tuple, float] = {}
    seconds = []

    def measure(network):
        key = tuple(sorted(network.items()))
        if key not in cache:
            started = time.process_time()
            cache[key] = net.accuracy(network)
            seconds.append(time.process_time() - started)
        return cache[key]

    fitted = {k: sample_networks(net.choices, net.nodes, center, k, seed=0) for k in K_GRID}
    holdout = heldout_networks(net.choices, net.nodes, [n for networks in fitted.values() for n in networks], HOLDOUT)
    truth = [measure(n) for n in holdout]
    rows = []
    for networks in fitted.values():
        table = fit_additive(names, center, networks, [measure(n) for n in networks])
        predicted = [table.predict(n) for n in holdout]
        rows.append({"run": run.name, "fine_tune_epochs": fine_tune_epochs, "K": len(networks), "loo_rmse": table.loo_rmse, "ridge": table.ridge,
                     "holdout_rmse": float(np.sqrt(np.mean((np.array(predicted) - np.array(truth)) ** 2))),
                     "holdout_tau": kendall(predicted, truth), "cpu_s_per_net": statistics.mean(seconds),
                     "terms": sum(len(v) - 1 for v in names.values())})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def predicted(predictor, indices: dict) -> float:
    """What the retrain part scores: the table's sum as it is (``Prediction.raw``), not the [0, 1]-clipped
    ``accuracy`` uboost predict reports -- clipping ties the networks the table puts above 100 %."""
    return predictor.predict(indices).raw


def _network_dir(run: Path, out: Path, arch: dict) -> Path:
    """A run directory holding ``arch`` that ``uboost retrain`` accepts (rewritten only when it changed)."""
    from uboost import runs
    from uboost.io import write_json

    if (out / "arch.json").is_file() and json.loads((out / "arch.json").read_text()) == arch:
        return out
    runs.prepare_run_dir(out, force=True)
    write_json(out / runs.CONFIG, json.loads((run / runs.CONFIG).read_text()))
    write_json(out / runs.ARCH, arch)
    return out


def part_retrain(run: Path, networks: int, points: int = 4) -> dict:
    from uboost.frontier import load_projector
    from uboost.predict import build_predictor
    from uboost.predict.network import network_indices
    from uboost.predict.sampling import random_network
    from uboost.retrain import RetrainConfig
    from uboost.runs import freeze_arch
    from uboost.search import build_space
    from uboost.strategy.architecture import indices_to_arch, preferences

    started = time.perf_counter()
    no_fine_tune = build_predictor(run, fine_tune_epochs=0, save=False)  # the ablation: the search's weights as they are
    started = time.perf_counter()
    predictor = build_predictor(run)  # the defaults, saved as uboost predict saves them
    build_s = time.perf_counter() - started
    sources = {name: load_projector(run, name) for name in ("preference", "predicted-accuracy")}
    # the default searches often end at (or near) the cheapest network: span the whole space instead,
    # from the cheapest to the most expensive network, and leave the trivial cheapest budget out
    low = sources["preference"].projector.cheapest().latency_ms
    high = sources["preference"].projector.highest_under(1e6).latency_ms
    budgets = [low + (high - low) * (i + 1) / points for i in range(points)]
    frontiers = {}
    for name, source in sources.items():  # each point at least as costly as the previous (as uboost frontier)
        projections, previous = [], 0.0
        for target in budgets:
            projection = source.projector.project(target, floor=0.9, min_cycles=previous)
            previous = projection.cycles
            projections.append(projection.arch)
        frontiers[name] = projections
    program = sources["preference"].projector.program
    choices, nodes = program.choices, program.nodes
    prefs = preferences(choices, nodes)
    archs: list[dict] = []
    for arch in [a for name in frontiers for a in frontiers[name]]:
        if arch not in archs:
            archs.append(arch)
    import numpy as np

    rng = np.random.default_rng(777)
    while len(archs) < networks:
        network = random_network(choices, nodes, rng)
        by_id = {id(c.alpha): network[c.label] for c in choices}
        arch = indices_to_arch(choices, nodes, by_id, prefs)
        if arch not in archs:
            archs.append(arch)
    config = sources["preference"].config
    space, input_shape, _ = build_space(config)
    rows = []
    for i, arch in enumerate(archs):
        out = _network_dir(run, run / "bench-predict" / f"n{i:02d}", arch)
        indices = network_indices(choices, nodes, arch)
        report = sources["preference"].cost_model.evaluate(freeze_arch(space, arch), input_shape)
        log_prob = sum(float(prefs[id(c.alpha)][indices[c.label]]) for c in choices)
        acc = retrain_acc(out, RetrainConfig().epochs)
        rows.append({"network": i, "predicted": predicted(predictor, indices), "log_prob": log_prob,
                     "predicted_no_fine_tune": predicted(no_fine_tune, indices), "macs": report.macs,
                     "latency_us": 1e3 * report.latency_ms, "retrained": acc,
                     "frontier": [name for name in frontiers if arch in frontiers[name]]})
        print(json.dumps({"run": run.name, **rows[-1]}), flush=True)
    retrained = [r["retrained"] for r in rows]
    summary = {
        "run": run.name, "networks": len(rows), "K": predictor.table.samples, "loo_rmse": predictor.table.loo_rmse,
        "build_s": build_s,
        "tau_predicted": kendall([r["predicted"] for r in rows], retrained),
        "tau_no_fine_tune": kendall([r["predicted_no_fine_tune"] for r in rows], retrained),
        "loo_rmse_no_fine_tune": no_fine_tune.table.loo_rmse,
        "tau_log_prob": kendall([r["log_prob"] for r in rows], retrained),
        "tau_macs": kendall([r["macs"] for r in rows], retrained),
        "mae_predicted": statistics.mean(abs(r["predicted"] - r["retrained"]) for r in rows),
        "budgets_us": [1e3 * b for b in budgets],
        "frontier_acc": {name: [next(r["retrained"] for r, a in zip(rows, archs) if a == arch) for arch in frontiers[name]]
                         for name in frontiers},
        "frontier_pred": {name: [next(r["predicted"] for r, a in zip(rows, archs) if a == arch) for arch in frontiers[name]]
                          for name in frontiers},
        "rows": rows,
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}), flush=True)
    return summary


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("loo", "retrain"), required=True)
    parser.add_argument("--spaces", default="lenet,darts-cifar")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--fine-tune-epochs", type=int, default=None, help="--part loo: [default: the predictor's]")
    parser.add_argument("--networks", type=int, default=14, help="distinct networks retrained per run (>= 12)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "runs" / "predict")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING)
    import torch

    torch.set_num_threads(1)
    random.seed(0)
    from uboost.io import write_json
    from uboost.predict.predictor import DEFAULT_FINE_TUNE_EPOCHS

    epochs = DEFAULT_FINE_TUNE_EPOCHS if args.fine_tune_epochs is None else args.fine_tune_epochs
    results = []
    for space in args.spaces.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            run = search(args.out, space, seed)
            results += part_loo(run, epochs) if args.part == "loo" else [part_retrain(run, args.networks)]
    name = f"{args.part}-{args.spaces.replace(',', '+')}" + (f"-ft{epochs}" if args.part == "loo" else "")  # one file per fine-tuning
    write_json(args.out / f"{name}.json", results)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
