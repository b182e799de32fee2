"""Lambda-sweep accuracy-latency fronts per cost model, and their hypervolume (not a test).

For every (space, array) pair, seed and cost model, the search runs once per lambda
(``latency_weight``) with today's ``SearchConfig`` defaults otherwise; every derived network is
retrained from scratch with the same settings (``--retrain-epochs``, retrain seed 0; with
``--retrain-seeds K`` the mean of K retrains, seeds 0..K-1, see ``fronts_seeds.py``) and priced
**cycle-exact** (``systolic`` on the run's array; on a memory-bounded pair SCALE-Sim's USER mode with the pair's
buffers and DRAM bandwidth, the ``scalesim`` model) whatever the search optimized. One more entry,
``frontier``, is ours alone: the budget-exact projections of one search (``uboost frontier``,
``--frontier-points`` budgets from the cheapest to the search's own network) of the
``systolic`` run at the default lambda (``systolic-mem`` on a memory-bounded pair), each retrained and priced the
same way; ``frontier-wide``
projects the same search onto budgets from the cheapest network up to the pair's reference latency (as ``uboost
frontier --span space``, whose top is the costliest network itself rather than the rounded reference).

Cost models (``--models``):

==================  ==========================================================================
``systolic``        U-Boost, cycle-exact expectation, utilization weight 1 (today's defaults)
``systolic-smooth`` the same model through the smooth ceiling (``cost_mode="smooth"``, T =
                    ``SearchConfig.temperature``, 10)
``systolic-paper``  the published formula (no fill/drain), utilization weight 1, expectation
``flops``           MACs / PEs, no utilization term
``roofline``        max(compute at full PE use, memory time), no utilization term
``systolic-mem``    finite SRAM and DRAM bandwidth; only on a memory-bounded pair (``lenet-16x16-16kB``)
==================  ==========================================================================

Study entries (only when named in ``--models``): ``systolic-warmup3`` (3 of the 6 epochs train the
weights alone first), ``systolic-beta0.1`` and ``systolic-beta0.001`` (utilization weight 0.1 or
0.001 instead of 1), ``systolic-ulambda`` (the utilization term weighed by lambda too,
``utilization_scale="lambda"``: lambda * (L / L_ref + beta * (1 - U))) and ``systolic-ulambda-warmup3``
(that and the warm-up); ``systolic-widen`` exports each network with its channel counts raised as far as
that costs the exported network nothing more (``widen="all"``); ``systolic-tau1-0.5`` and ``systolic-tau3-0.1``
anneal the Gumbel temperature from 1 to 0.5 or from 3 to 0.1 instead of 1 to 0.1 (``gumbel_tau``). At lambda = 0 the ``ulambda`` entries search the task alone, but as their own
search (the warm-up entry's differs from ``task-only``).

At lambda = 0 the models without a utilization term search the task alone: that search is run
once per (pair, seed), as ``task-only``, and belongs to each of those fronts.

Every point is saved as ``OUT/<pair>/<model>/lambda<l>/seed<k>/point.json`` as soon as it is done
(search and retrain files beside it) and reused when its stored settings equal today's (the search
config with every default, the retrain settings; see ``_reuse.py``); a point whose settings
changed runs again in place. So the script resumes after a kill and later sessions extend it:

    python benchmarks/bench_fronts.py --spaces lenet-16x16 --seeds 0
    python benchmarks/bench_fronts.py --spaces darts-cifar-16x16 --seeds 0,1,2 --models systolic,flops
    python benchmarks/bench_fronts.py --report-only      # tables and plot from the finished points
    python benchmarks/bench_fronts.py --spaces lenet-16x16 --retrain-seeds 3   # 3 retrains per network: retrains only
    python benchmarks/bench_fronts.py --quick            # dry run: lenet, 1 epoch, 256 images

The summary (``points.csv``, ``summary.json``, ``summary.md``, ``fronts.png``) goes to
``--summary`` (default ``benchmarks/fronts/``, small files meant to be committed); the run
directories stay under the gitignored ``benchmarks/runs/``; ``points.csv`` carries each point's derived network
(``arch``, JSON; points made before 2026-12-05 have none), so a later study (a local search, an oracle) can start
from the committed summary alone. Hypervolume and the matched-accuracy
speed-up are computed by ``fronts_report.py``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _reuse  # noqa: E402
import fronts_seeds  # noqa: E402

PAIRS = {  # digits at 16x16 pixels, as the other benchmarks; the array is what the pair names
    "lenet-16x16": dict(space="lenet", array="16x16"),
    "darts-cifar-16x16": dict(space="darts-cifar", array="16x16"),
    "darts-cifar-32x32": dict(space="darts-cifar", array="32x32"),
    # bounded memory (issue 21's fixed-PE accelerator): 16 kB per SRAM, 4 DRAM words per cycle per port. Over lenet's
    # 300 networks systolic-mem's stalls multiply the compute-only latency by 1.0-5.9x (median 2.6x)
    "lenet-16x16-16kB": dict(space="lenet", array="16x16", sram_kb=16, dram_bw_words=4.0),
}
IMAGE_SIZE = 16
LAMBDAS = {  # one grid per space, shared by every model: 0 = the accurate end, the last = near the cheapest
    # networks; lambda's unit is each model's own supernet latency. flops and roofline (no utilization
    # term) collapse to a near-cheapest lenet network at every lambda >= 0.001 (seed 0: Adam on the
    # alphas follows the sign of a consistent gradient, not its size), so the grid reaches down to 1e-4.
    "lenet": (0.0, 0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0),
    # darts-cifar: 0.3 and 3 since 2026-12-06. The older grid's top, 1, left FLOPs' sweep short of its cheap end
    # (16x16 seed 0: 31 µs at lambda 1, 7.6 µs at 97.4 % at lambda 3) and a 10x hole between 0.1 and 1 in every
    # front; summaries made on the older grid count as partial under this one (they are history).
    "darts-cifar": (0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0),
}
MODELS = {  # changes over SearchConfig's defaults; run in this order (the headline pair first)
    "systolic": {},
    "flops": dict(cost_model="flops", utilization_weight=0.0),
    "roofline": dict(cost_model="roofline", utilization_weight=0.0),
    "systolic-paper": dict(cost_model="systolic-paper"),
    "systolic-smooth": dict(cost_mode="smooth"),
    "systolic-mem": dict(cost_model="systolic-mem"),
}
# Issue 26 item 3: today's exact search with one setting changed, run only when named in --models (not headline
# entries; see RESULTS "Why exact pricing loses on lenet").
STUDY_MODELS = {
    "systolic-warmup3": dict(warmup_epochs=3),  # half of the 6 epochs train the weights alone first
    "systolic-beta0.1": dict(utilization_weight=0.1),
    "systolic-beta0.001": dict(utilization_weight=0.001),  # the utilization term nearly off
    # the utilization term weighed by lambda too: lambda * (L / L_ref + beta * (1 - U)); lambda = 0 is the task alone
    "systolic-ulambda": dict(utilization_scale="lambda"),
    "systolic-ulambda-warmup3": dict(utilization_scale="lambda", warmup_epochs=3),
    # the exported network's channel counts raised as far as they cost nothing more (uboost.strategy.widening)
    "systolic-widen": dict(widen="all"),
    # the Gumbel schedule (default 1 -> 0.1): ending warmer (the priced distribution stays softer), or starting hotter
    "systolic-tau1-0.5": dict(gumbel_tau=(1.0, 0.5)),
    "systolic-tau3-0.1": dict(gumbel_tau=(3.0, 0.1)),
    # every candidate runs (DARTS' mixture) instead of one sampled path: the task loss reaches a choice followed by
    # batch norm (single-path's straight-through weight only scales the sampled output, which batch norm undoes)
    "systolic-mixture": dict(sampling="mixture"),
    # single path with the score-function (REINFORCE) estimate of the task gradient beside the straight-through one:
    # it compares candidates by the losses their drawn paths reach, also before a batch norm, at single path's cost
    "systolic-score": dict(score_weight=1.0),
    "systolic-score0.3": dict(score_weight=0.3),  # the estimate's weight against the straight-through one's
    "systolic-score3": dict(score_weight=3.0),
    "systolic-paper-score0.3": dict(cost_model="systolic-paper", score_weight=0.3),  # the baselines at weight 0.3
    "systolic-smooth-score0.3": dict(cost_mode="smooth", score_weight=0.3),
    "flops-score0.3": dict(cost_model="flops", utilization_weight=0.0, score_weight=0.3),
    "roofline-score0.3": dict(cost_model="roofline", utilization_weight=0.0, score_weight=0.3),
    # the candidate default with the utilization term weighed by lambda too (lambda = 0: the task alone)
    "systolic-ulambda-score0.3": dict(utilization_scale="lambda", score_weight=0.3),
    "systolic-paper-score": dict(cost_model="systolic-paper", score_weight=1.0),  # the same estimator for the baselines
    "systolic-smooth-score": dict(cost_mode="smooth", score_weight=1.0),
    "flops-score": dict(cost_model="flops", utilization_weight=0.0, score_weight=1.0),
    # the score function only on the choices whose straight-through task gradient is measured to vanish (lenet: conv1
    # width and kernel, conv2 kernel; darts-cifar: none, so its searches are today's default)
    "systolic-score-blind": dict(score_weight=1.0, score_on="blind"),
    # memory-bounded pairs: systolic-mem's utilization counts its stalls, so (1 - U) is large for every network and, at
    # the default scale, decides the search at every lambda; weighed by lambda, lambda = 0 searches the task alone
    "systolic-mem-ulambda": dict(cost_model="systolic-mem", utilization_scale="lambda"),
    "systolic-mem-mixture": dict(cost_model="systolic-mem", sampling="mixture"),  # the task gradient reaches lenet's convs
    "systolic-mem-ulambda-mixture": dict(cost_model="systolic-mem", utilization_scale="lambda", sampling="mixture"),
    "systolic-mem-score": dict(cost_model="systolic-mem", score_weight=1.0),  # the task gradient at single path's cost
    "systolic-mem-ulambda-score": dict(cost_model="systolic-mem", utilization_scale="lambda", score_weight=1.0),
    "systolic-mem-score-blind": dict(cost_model="systolic-mem", score_weight=1.0, score_on="blind"),
    "systolic-mem-score0.3": dict(cost_model="systolic-mem", score_weight=0.3),
}
MODELS.update(STUDY_MODELS)
MEMORY_MODELS = tuple(m for m, changes in MODELS.items() if changes.get("cost_model") == "systolic-mem")  # bounded pairs only
TASK_ONLY = "task-only"
FRONTIER = "frontier"  # uboost frontier's own budgets: cheapest network .. the search's argmax
FRONTIER_WIDE = "frontier-wide"  # the same search projected onto budgets up to the pair's reference latency
FRONTIERS = (FRONTIER, FRONTIER_WIDE)
# (test error %, latency µs) of each pair's hypervolume, fixed before the sweep. Latency: the costliest
# network of the space on the array, rounded up (lenet: 15.59 µs over all 300 networks; darts-cifar: every
# edge sep_conv_5x5, 212.05 µs on 16x16 and 153.27 µs on 32x32), so every network counts on that axis.
# Error: about 10x a task-only search's (lenet ~2 %, darts-cifar ~1 % on digits); chance level is 90 %.
REFERENCE = {
    "lenet-16x16": (20.0, 16.0),
    "darts-cifar-16x16": (10.0, 213.0),
    "darts-cifar-32x32": (10.0, 154.0),
    # bounded: latency is SCALE-Sim USER mode's (``price``). Over all 300 lenet networks it spans 0.82 µs (stall-free)
    # to 61.45 µs (both convs 5x5 x 32, fc1 128; compute-only 15.59 µs), 2.2x the compute-only latency at the median
    # and up to 6.1x; systolic-mem is 16.5 % off it on average (80.79 µs for the costliest)
    "lenet-16x16-16kB": (20.0, 62.0),
}
POINT = "point.json"
FRONTIER_INFO = ("pair", "entry", "model", "lambda", "seed", "point", "target_us")  # a frontier point's own fields


def memory_bound(pair: str) -> bool:
    """Whether the pair's accelerator has finite buffers and DRAM bandwidth (then ``systolic-mem`` is an entry and
    every network is priced by SCALE-Sim's USER mode)."""
    return PAIRS[pair].get("sram_kb") is not None


def models_for(pair: str, models: list[str]) -> list[str]:
    """The entries that run on ``pair``: the memory models only where memory is bounded (elsewhere they equal
    ``systolic``)."""
    return [m for m in models if memory_bound(pair) or m not in MEMORY_MODELS]


def frontier_model(pair: str) -> str:
    """The search the frontier entries project: U-Boost exact, memory-aware where memory is bounded."""
    return "systolic-mem" if memory_bound(pair) else "systolic"


def shares_task_only(changes: dict) -> bool:
    """Whether a model's lambda = 0 is the shared task-only search: it has no utilization term and keeps today's
    estimator (a model with the score function searches its own lambda = 0)."""
    return changes.get("utilization_weight", 1.0) == 0 and not changes.get("score_weight")


def search_config(pair: str, model: str, lam: float, seed: int, *, epochs: int | None = None,
                  max_samples: int | None = None):
    """The search of one point: today's defaults, the pair's space and array, the model's changes.
    Returns ``(config, entry)``; ``entry`` is ``task-only`` when the search ignores the hardware."""
    from uboost.search import SearchConfig

    base = dict(PAIRS[pair], image_size=IMAGE_SIZE, seed=seed, max_samples=max_samples)
    if epochs is not None:
        base["epochs"] = epochs
    changes = {**MODELS[model], "latency_weight": lam}
    if lam == 0 and shares_task_only(changes):
        return SearchConfig(**base, latency_weight=0.0, utilization_weight=0.0), TASK_ONLY
    return SearchConfig(**base, **changes), model


def point_dir(root: Path, pair: str, entry: str, lam: float | None, seed: int) -> Path:
    if entry == TASK_ONLY:
        return root / pair / TASK_ONLY / f"seed{seed}"
    return root / pair / entry / f"lambda{lam:g}" / f"seed{seed}"


def settings(config, retrain: dict, **extra) -> dict:
    """What a finished point must match to be reused (JSON-normalized: tuples become lists)."""
    return json.loads(json.dumps({"search_config": config.to_dict(), "retrain": retrain, **extra}))


def stored_point(out: Path, wanted: dict, *, any_seeds: bool = False) -> dict | None:
    """The finished point in ``out`` if its settings equal ``wanted`` (``any_seeds``: whatever its
    number of retrain seeds, i.e. its search stands), else None."""
    path = out / POINT
    if not path.is_file():
        return None
    stored = json.loads(path.read_text())
    settings = stored.get("settings") or {}
    if isinstance(settings.get("search_config"), dict):  # fields added since the point ran count at their default
        settings = {**settings, "search_config": _reuse.as_today(settings["search_config"])}
    if any_seeds:
        settings, wanted = fronts_seeds.without_seeds(settings), fronts_seeds.without_seeds(wanted)
    return stored if settings == wanted else None


def price(run: Path, config) -> dict:
    """The run's ``arch.json`` priced cycle-exact on the config's array: ``systolic`` (SCALE-Sim's compute cycles),
    or, when the config's memory is bounded, SCALE-Sim itself in USER mode (``scalesim``: stalls included; each layer
    shape simulated once, disk-cached), with the compute-only (``compute_latency_us``) and ``systolic-mem``
    (``mem_latency_us``) prices beside it."""
    from uboost import hardware, runs
    from uboost.search import build_space

    space, shape, _ = build_space(config)
    network = runs.freeze_arch(space, json.loads((run / runs.ARCH).read_text()))
    spec = config.hardware_spec()
    report = hardware.create("systolic", spec=spec).evaluate(network, shape)
    priced = {"latency_us": 1e3 * report.latency_ms, "cycles": report.cycles, "utilization": report.utilization,
              "macs": report.macs}
    if spec.memory_bound:
        truth = hardware.create("scalesim", spec=spec, workers=1).evaluate(network, shape)
        priced.update(latency_us=1e3 * truth.latency_ms, cycles=truth.cycles, compute_latency_us=priced["latency_us"],
                      mem_latency_us=1e3 * hardware.create("systolic-mem", spec=spec).evaluate(network, shape).latency_ms)
    return priced


def finish_point(out: Path, config, retrain: dict, wanted: dict, info: dict, cache: Path | None = None) -> dict:
    """Retrain (reused when fresh, or taken from ``cache`` when another run retrained the same
    network with the same settings: ``retrain_from`` names it; with ``retrain["seeds"]`` K > 1 the
    mean of K retrains, ``fronts_seeds``), price and write ``point.json`` last."""
    from uboost.io import write_json

    started = time.perf_counter()
    accuracy, tail = fronts_seeds.evaluate(out, retrain, cache)
    point = {**info, **accuracy, **price(out, config), "retrain_wall_s": time.perf_counter() - started,
             "run_dir": str(out), "settings": wanted, **tail, "environment": _reuse.environment(),
             "arch": json.loads((out / "arch.json").read_text())}  # the network itself: points.csv outlives run_dir
    write_json(out / POINT, point)
    return point


def run_point(out: Path, config, retrain: dict, info: dict, cache: Path | None = None) -> tuple[dict, bool]:
    """One searched point: ``(point, ran)``; reused when ``point.json`` holds today's settings,
    else searched (the search itself reused by ``_reuse.search`` when its config matches) and
    retrained. A point finished with another number of retrain seeds keeps its search (and the
    search's wall time): only the retrains run."""
    wanted = settings(config, retrain)
    done = stored_point(out, wanted)
    if done is not None:
        return done, False
    before = stored_point(out, wanted, any_seeds=True) if _reuse.same_settings(out, config) else None
    started = time.perf_counter()
    summary = _reuse.search(out, config)
    info = {**info, "search_latency_us": 1e3 * summary["latency_ms"], "val_acc": summary.get("val_acc"),
            "search_wall_s": before["search_wall_s"] if before else time.perf_counter() - started}
    return finish_point(out, config, retrain, wanted, info, cache), True


def run_frontier(root: Path, pair: str, seed: int, source: Path, config, retrain: dict, points: int,
                 entry: str = FRONTIER, cache: Path | None = None) -> list[dict]:
    """``uboost frontier`` on ``source`` (``points`` budgets, floor 0.9), every point retrained and
    priced; reused while the source's alphas are older than the stored points (with another number
    of retrain seeds: the projections stand, only the retrains run). ``frontier``: the
    command's own budgets, evenly spaced from the cheapest network to the search's argmax;
    ``frontier-wide``: geometrically spaced from the cheapest to the pair's reference latency
    (``uboost frontier --targets``), so one search spans the latencies the lambda sweep spans."""
    from uboost.frontier import frontier, frontier_targets, geometric_budgets, load_projector

    out_root = root / pair / entry / f"seed{seed}"
    wanted = settings(config, retrain, frontier_points=points, source=str(source), **({} if entry == FRONTIER else {"span": entry}))
    alphas_mtime = (source / "alphas.json").stat().st_mtime
    dirs = [out_root / f"p{i:02d}" for i in range(points)]

    def fresh(stored):
        return all(s is not None and (d / "arch.json").stat().st_mtime >= alphas_mtime for s, d in zip(stored, dirs))

    stored = [stored_point(d, wanted) for d in dirs]
    if fresh(stored):
        return stored
    stored = [stored_point(d, wanted, any_seeds=True) for d in dirs]
    if fresh(stored):
        return [finish_point(d, config, retrain, wanted, {k: s[k] for k in FRONTIER_INFO}, cache) for s, d in zip(stored, dirs)]
    projector = load_projector(source)
    if entry == FRONTIER:
        targets = frontier_targets(projector, points=points)
    else:
        low, high = projector.projector.cheapest().latency_ms, 1e-3 * REFERENCE[pair][1]
        targets = frontier_targets(projector, targets=geometric_budgets(low, high, points))
    rows = frontier(projector, targets, out_root, force=True, floor=0.9)
    done = []
    for i, row in enumerate(rows):
        info = dict(zip(FRONTIER_INFO, (pair, entry, frontier_model(pair), config.latency_weight, seed, i, 1e3 * targets[i])))
        done.append(finish_point(Path(row["run_dir"]), config, retrain, wanted, info, cache))
    return done


def _seeds(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--spaces", default=",".join(PAIRS), help=f"(space, array) pairs, comma list from: {', '.join(PAIRS)}")
    p.add_argument("--seeds", default="0,1,2", help="comma list of seeds")
    p.add_argument("--models", default=",".join(m for m in MODELS if m not in STUDY_MODELS),
                   help=f"from: {', '.join(MODELS)} ({', '.join(MEMORY_MODELS)}: memory-bounded pairs only)")
    p.add_argument("--lambdas", default=None, help="comma list (default per space: " +
                   "; ".join(f"{k} {','.join(f'{v:g}' for v in vs)}" for k, vs in LAMBDAS.items()) + ")")
    p.add_argument("--epochs", type=int, default=None, help="search epochs (default: SearchConfig's)")
    p.add_argument("--retrain-epochs", type=int, default=10, help="retrain epochs of every network (uboost retrain's default)")
    p.add_argument("--max-samples", type=int, default=None, help="cap the training set (search and retrain)")
    p.add_argument("--retrain-seeds", type=int, default=1, help="K: each point's accuracy is the mean of K retrains "
                   "(seeds 0..K-1, shared through the retrain cache); points done with another K are re-evaluated, "
                   "their searches reused. K > 1 summarizes to SUMMARY/k<K> by default")
    p.add_argument("--frontier-points", type=int, default=5, help="budgets of the frontier entries (0: none)")
    p.add_argument("--frontiers", default=",".join(FRONTIERS), help=f"comma list from: {', '.join(FRONTIERS)} ('' for none)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/runs/fronts"), help="run directories (resumable)")
    p.add_argument("--summary", type=Path, default=None, help="where the tables and the plot go (default benchmarks/fronts)")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--report-only", action="store_true", help="run nothing: summarize the finished points")
    p.add_argument("--report-seeds", default=None, help="comma list: summarize only these search seeds' points "
                   "(default: every finished seed under --out)")
    p.add_argument("--quick", action="store_true", help="dry run: lenet, seed 0, 1 epoch, 256 images, 1 retrain epoch")
    args = p.parse_args(argv)
    summary_given, args.summary = args.summary is not None, args.summary or Path("benchmarks/fronts")
    if args.quick:
        args.spaces, args.seeds, args.epochs, args.retrain_epochs, args.max_samples = "lenet-16x16", "0", 1, 1, 256
        args.lambdas = args.lambdas or "0,1"
        args.frontier_points = min(args.frontier_points, 3)
        if args.out == Path("benchmarks/runs/fronts"):
            args.out, args.summary = Path("benchmarks/runs/fronts-quick"), Path("benchmarks/runs/fronts-quick/summary")
    args.spaces = [s.strip() for s in args.spaces.split(",") if s.strip()]
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    for name, values, known in (("--spaces", args.spaces, PAIRS), ("--models", args.models, MODELS)):
        unknown = [v for v in values if v not in known]
        if unknown:
            p.error(f"unknown {name} {unknown}; choose from {', '.join(known)}")
    args.seeds = _seeds(args.seeds)
    args.report_seeds = None if args.report_seeds is None else _seeds(args.report_seeds)
    if args.retrain_seeds < 1:
        p.error(f"--retrain-seeds must be >= 1, got {args.retrain_seeds}")
    args.frontiers = [f.strip() for f in args.frontiers.split(",") if f.strip()]
    if any(f not in FRONTIERS for f in args.frontiers) or (args.frontiers and args.frontier_points < 2):
        p.error(f"--frontiers takes {', '.join(FRONTIERS)}, with --frontier-points >= 2")
    if args.retrain_seeds > 1 and not summary_given:
        args.summary = args.summary / f"k{args.retrain_seeds}"  # the single-retrain summary stays as it is
    return args


def lambdas_for(pair: str, text: str | None) -> list[float]:
    if text:
        return [float(v) for v in text.split(",") if v.strip()]
    return list(LAMBDAS[PAIRS[pair]["space"]])


def _quiet(threads: int) -> None:
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    import torch

    torch.set_num_threads(threads)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import fronts_report

    k = args.retrain_seeds
    grids = {pair: lambdas_for(pair, args.lambdas) for pair in args.spaces}
    if args.report_only:
        fronts_report.write_summary(args.out, args.summary, retrain_seeds=k, seeds=args.report_seeds, grids=grids)
        return 0
    if any(memory_bound(pair) for pair in args.spaces):  # its networks are priced by SCALE-Sim: say so before any search
        from uboost.exceptions import UBoostError
        from uboost.hardware.scalesim_runner import find_python

        try:
            find_python()
        except UBoostError as e:
            sys.exit(f"bench_fronts: {', '.join(p for p in args.spaces if memory_bound(p))}: {e}")
    _quiet(args.threads)
    retrain = fronts_seeds.retrain_settings(args.retrain_epochs, args.max_samples, k)
    opts = dict(epochs=args.epochs, max_samples=args.max_samples)
    cache = args.out / _reuse.RETRAIN_CACHE  # a network already retrained under the root is not retrained again
    started = time.perf_counter()
    print(f"# retrain cache {cache}: {_reuse.index_retrains(args.out, cache)} networks "
          f"[{time.perf_counter() - started:.0f} s]", flush=True)
    print(f"# bench_fronts {' '.join(sys.argv[1:])}: pairs {args.spaces}, seeds {args.seeds}, models {args.models}, "
          f"load {os.getloadavg()[0]:.1f}", flush=True)
    for pair in args.spaces:
        skipped = [m for m in args.models if m not in models_for(pair, args.models)]
        if skipped:
            print(f"note: {', '.join(skipped)} skipped on {pair}: its memory is unbounded, where they equal systolic "
                  f"(bounded pairs: {', '.join(p for p in PAIRS if memory_bound(p))})", flush=True)
        for seed in args.seeds:
            for model in models_for(pair, args.models):
                for lam in lambdas_for(pair, args.lambdas):
                    config, entry = search_config(pair, model, lam, seed, **opts)
                    out = point_dir(args.out, pair, entry, lam, seed)
                    info = {"pair": pair, "entry": entry, "model": model if entry != TASK_ONLY else TASK_ONLY,
                            "lambda": lam, "seed": seed}
                    started = time.perf_counter()
                    point, ran = run_point(out, config, retrain, info, cache)
                    shared = " (retrain shared)" if ran and point.get("retrain_from") else ""
                    print(f"{pair} seed {seed} {model:<15} lambda {lam:<5g} {'ran' if ran else 'reused'}{shared}: "
                          f"acc {100 * point['test_acc']:.1f}%{f' (mean of {k})' if k > 1 else ''} latency {point['latency_us']:.2f} µs "
                          f"(own model {point['search_latency_us']:.2f}) [{time.perf_counter() - started:.0f} s, "
                          f"load {os.getloadavg()[0]:.1f}]", flush=True)
                fronts_report.write_summary(args.out, args.summary, plot=False, retrain_seeds=k, seeds=args.report_seeds, grids=grids)
            source_model = frontier_model(pair)
            if args.frontiers and args.frontier_points and source_model in args.models:
                config, _ = search_config(pair, source_model, 1.0, seed, **opts)  # the default lambda
                source = point_dir(args.out, pair, source_model, 1.0, seed)
                run_point(source, config, retrain, {"pair": pair, "entry": source_model, "model": source_model, "lambda": 1.0,
                                                    "seed": seed}, cache)
                for entry in args.frontiers:
                    for point in run_frontier(args.out, pair, seed, source, config, retrain, args.frontier_points, entry, cache):
                        print(f"{pair} seed {seed} {entry} p{point['point']:02d}: acc {100 * point['test_acc']:.1f}% "
                              f"latency {point['latency_us']:.2f} µs (budget {point['target_us']:.2f})", flush=True)
            fronts_report.write_summary(args.out, args.summary, retrain_seeds=k, seeds=args.report_seeds, grids=grids)
    return 0


if __name__ == "__main__":
    sys.exit(main())
