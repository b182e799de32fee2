"""Every network of a small space on its best accelerator: is a co-search miss the search's or the space's? (not a test)

``bench_cosearch.py`` judges a co-search by the pairs its trials found. Where it misses the goal (>= ``--gain``
better EDP than the reference, the most accurate baseline network on the 16x16 default, at accuracy within the
tolerance), two explanations differ: the search did not find a pair the space has, or the space has none. On a
space small enough to enumerate (``lenet``: 300 networks) this script answers which, for one finished cell:

1. every network of the space is priced on the accelerator of least EDP of the co-search space within the
   budget (``uboost tune``'s inner accelerator choice: cost model only, the same as pricing every one);
   Every network is priced: none can be skipped for being larger than one already too dear, because with finite
   buffers a larger network can run faster (lenet on 16x16 OS with 16/4/2 kB, conv1 16 -> 24 channels: conv2 14,601
   -> 4,477 cycles in ``systolic-mem``, 13,511 -> 4,995 in SCALE-Sim itself);
2. the networks at least ``--gain`` below the reference's EDP are the only ones that could meet the goal; each is
   retrained with the trials' own retrain settings, first with ``--screen`` seeds (a network more than
   ``--margin`` points under the tolerance line there is dropped), then with every seed of ``--choose``;
3. the benchmark's rule chooses on the ``--choose`` seeds (the reference's accuracies from the cell's K-retrain
   summary: the same seeds, the same retrain settings) -- the pair of least EDP within the tolerance -- and the
   verdict is read on the ``--judge`` seeds, which chose nothing.

    PYTHONPATH=src python benchmarks/cosearch_oracle.py --summary benchmarks/cosearch/inner-lenet-16kB-s0-k20 \\
        --out benchmarks/runs/cosearch16-s0 --report benchmarks/cosearch/oracle-lenet-16kB-s0

Prices and retrains are kept under ``--out``/``oracle/`` (each network's run directory) and the study's
``retrain-cache`` (shared with ``bench_cosearch.py``), so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_cosearch, _reuse, ... as a script or from tests

from _accuracies import at_least  # noqa: E402 - accuracies compared on their exact values

MAX_NETWORKS = 5000


def seeds_of(text: str) -> list[int]:
    """``"0-9"`` or ``"0,2,5"`` -> seeds."""
    out: list[int] = []
    for part in str(text).split(","):
        lo, _, hi = part.strip().partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def networks(config) -> list[dict]:
    """Every architecture of ``config``'s space (its categorical choices), or an error above MAX_NETWORKS."""
    from uboost.exceptions import ConfigError
    from uboost.search import build_space

    space, _, _ = build_space(config)
    choices = space.simplify()
    labels = sorted(choices)
    values = [list(choices[label].values) for label in labels]
    count = math.prod(len(v) for v in values)
    if count > MAX_NETWORKS:
        raise ConfigError(f"the space has {count} networks; this enumeration stops at {MAX_NETWORKS}")
    return [dict(zip(labels, combo)) for combo in itertools.product(*values)]


def network_dir(root: Path, arch: dict, config: dict) -> Path:
    """A run directory holding only ``config.json`` and ``arch.json`` (what retrain and pricing read)."""
    from uboost.io import write_json

    key = "-".join(f"{k}{v}" for k, v in sorted(arch.items()))
    run = root / key
    if not (run / "arch.json").is_file():
        run.mkdir(parents=True, exist_ok=True)
        write_json(run / "config.json", config)
        write_json(run / "arch.json", arch)
    return run


def layers_of(run: Path) -> list:
    """The layer shapes of ``run``'s frozen network."""
    from uboost.hardware.layers import extract_layers
    from uboost.networks import load_frozen_network

    network = load_frozen_network(run)
    return extract_layers(network.module, network.input_shape)


def best_pair(run: Path, space, layers: list) -> dict:
    """``run``'s network (``layers``) on its best accelerator of the co-search ``space`` (kept in ``best.json``)."""
    from _cosearch_bits import best_on_space

    from uboost.io import write_json

    best = best_on_space(layers, space, json.loads((run / "config.json").read_text()))
    write_json(run / "best.json", best)
    return best


def warm_up(layers: list[list], config: dict, space) -> None:
    """Price every distinct layer shape of the networks ``layers`` on every accelerator structure of ``space`` (and
    its unbounded twin, the bound's) into the pricer's memo (``inner_accelerator.prime``): the choices that follow
    only read it."""
    from uboost.search import SearchConfig
    from uboost.tuning import inner_accelerator

    started = time.perf_counter()
    primed = inner_accelerator.prime(layers, space, SearchConfig.from_dict(config))  # as best_pair prices: the same pool
    print(f"warm-up: {primed} layer shapes in {time.perf_counter() - started:.0f} s", flush=True)


def baseline_dir(root: Path, name: str, sram_kb: int, settings: dict) -> Path:
    """The study the cell's reference came from: ``baseline-lsN`` when the cell gave the baseline a local search."""
    n = settings.get("baseline_local_search") or 0
    return root / f"{name}-{sram_kb}kB" / (f"baseline-ls{n}" if n else "baseline")


def choose(reference: list[float], rows: list[dict], seeds: list[int], tolerance: float) -> dict | None:
    """The row of least EDP whose mean accuracy over ``seeds`` is within ``tolerance`` of the reference's."""
    line = statistics.fmean(reference[s] for s in seeds) - tolerance
    within = [r for r in rows if at_least(statistics.fmean(r["accuracy_seeds"][s] for s in seeds), line)]
    return min(within, key=lambda r: r["edp_uj_ms"], default=None)


def run(args) -> dict:
    import _cosearch_retrains
    import _reuse
    import bench_cosearch

    from uboost import tuning
    from uboost.search import SearchConfig

    cell = json.loads((Path(args.summary) / "summary.json").read_text())
    settings, result = cell["settings"], cell["results"][0]
    name, sram_kb = result["space"], int(result["baseline_sram_kb"])
    base = bench_cosearch.base_config(name, sram_kb=sram_kb, dram_bw=settings["dram_bw"], epochs=settings["epochs"],
                                      max_samples=settings["max_samples"], seed=settings["seed"])
    budget = tuning.area_of(base)
    space = bench_cosearch.cosearch_space(base, budget, settings["lambdas"])
    root = Path(args.out)
    study = tuning.load_study(baseline_dir(root, name, sram_kb, settings))
    ref = result["reference"]
    ref_trial = study.trials[ref["trial"]]
    ref_run = Path(ref_trial.user_attrs["run_dir"])
    ref_seeds = ref["accuracy_seeds"]
    choose_seeds, judge_seeds = seeds_of(args.choose), seeds_of(args.judge)
    if max(choose_seeds + judge_seeds) >= len(ref_seeds):
        raise SystemExit(f"the summary holds {len(ref_seeds)} retrains of the reference: --choose/--judge go beyond them")
    config = json.loads((ref_run / "config.json").read_text())
    epochs, max_samples, retrain_settings = _cosearch_retrains.trial_settings(ref_run)
    cache = root / "retrain-cache"

    started = time.perf_counter()
    archs = networks(SearchConfig.from_dict(config))
    line = ref["edp_uj_ms"] / args.gain
    runs = [network_dir(root / "oracle", arch, config) for arch in archs]
    layers = {run: layers_of(run) for run in runs if not (run / "best.json").is_file()}  # each built once
    if layers:
        warm_up(list(layers.values()), config, space)
    priced = []
    for arch, run in zip(archs, runs):  # every one: a larger network can cost less (see the module's docstring)
        done = run / "best.json"
        priced.append({"arch": arch, **(best_pair(run, space, layers[run]) if run in layers else json.loads(done.read_text()))})
        if len(priced) % 25 == 0:
            print(f"priced {len(priced)} of {len(archs)} networks ({time.perf_counter() - started:.0f} s)", flush=True)
    price_s = time.perf_counter() - started
    candidates = sorted((p for p in priced if p["edp_uj_ms"] <= line), key=lambda p: p["edp_uj_ms"])
    print(f"{len(candidates)} of {len(priced)} networks at least {args.gain:g}x below the reference's EDP", flush=True)

    def accuracies(row: dict, seeds: list[int]) -> None:
        run_dir = network_dir(root / "oracle", row["arch"], config)
        accs = row.setdefault("accuracy_seeds", {})
        for s in seeds:
            if s not in accs:
                accs[s] = _reuse.shared_retrain_acc(run_dir, epochs, max_samples, cache, s, retrain_settings)[0]

    started = time.perf_counter()
    screen = choose_seeds[:args.screen]
    ref_line = statistics.fmean(ref_seeds[s] for s in screen) - settings["tolerance"]
    survivors = []
    for row in candidates:
        accuracies(row, screen)
        row["screen_mean"] = statistics.fmean(row["accuracy_seeds"][s] for s in screen)
        if at_least(row["screen_mean"], ref_line - args.margin / 100):
            accuracies(row, choose_seeds)
            survivors.append(row)
    pick = choose(ref_seeds, survivors, choose_seeds, settings["tolerance"])
    if pick is not None:
        accuracies(pick, judge_seeds)
    retrain_s = time.perf_counter() - started

    def mean(accs, seeds):
        return statistics.fmean(accs[s] for s in seeds)

    out = {"summary": str(args.summary), "space": name, "sram_kb": sram_kb, "budget_mm2": budget, "gain": args.gain,
           "tolerance": settings["tolerance"], "networks": len(archs), "accelerators_within_budget":
           priced[0]["accelerators_within_budget"] if priced else 0, "candidates": len(candidates),
           "survivors": len(survivors), "screen_seeds": screen, "margin_points": args.margin,
           "choose_seeds": choose_seeds, "judge_seeds": judge_seeds, "price_s": price_s, "retrain_s": retrain_s,
           "reference": {"trial": ref["trial"], "arch": json.loads((ref_run / "arch.json").read_text()),
                         "edp_uj_ms": ref["edp_uj_ms"], "chosen_mean": mean(ref_seeds, choose_seeds),
                         "judged_mean": mean(ref_seeds, judge_seeds),
                         "best_accelerator": result.get("best_accelerator_for_reference")},
           "least_edp_network": min(priced, key=lambda p: p["edp_uj_ms"]) if priced else None,
           "rows": [{**{k: v for k, v in r.items() if k != "accuracy_seeds"},
                     "accuracy_seeds": {str(s): a for s, a in sorted(r.get("accuracy_seeds", {}).items())}}
                    for r in candidates]}
    if pick is not None:
        out["pick"] = {"arch": pick["arch"], "accelerator": pick["accelerator"], "edp_uj_ms": pick["edp_uj_ms"],
                       "gain": ref["edp_uj_ms"] / pick["edp_uj_ms"], "chosen_mean": mean(pick["accuracy_seeds"], choose_seeds),
                       "judged_mean": mean(pick["accuracy_seeds"], judge_seeds)}
        out["pick"]["judged_delta_points"] = 100 * (out["pick"]["judged_mean"] - out["reference"]["judged_mean"])
        judged_line = out["reference"]["judged_mean"] - settings["tolerance"]
        out["verdict"] = "met" if at_least(out["pick"]["judged_mean"], judged_line) else "missed"
    else:
        out["verdict"] = "no pair of the space"
    return out


def markdown(r: dict) -> str:
    ref = r["reference"]
    lines = [f"**{r['space']} {r['sram_kb']} kB ({r['budget_mm2']:.4f} mm²)**: {r['networks']} networks x "
             f"{r['accelerators_within_budget']} accelerators within budget; {r['candidates']} networks at least "
             f"{r['gain']:g}x below the reference's EDP ({ref['edp_uj_ms'] * 1e3:.3f} µJ·µs on the 16x16 default), "
             f"{r['survivors']} left after {len(r['screen_seeds'])} screening retrains (margin {r['margin_points']:g} points); "
             f"priced in {r['price_s']:.0f} s, retrained in {r['retrain_s']:.0f} s.", "",
             "| network | accelerator | EDP µJ·µs | gain | mean accuracy, choice seeds | judged seeds |",
             "|---|---|---|---|---|---|",
             f"| reference (trial {ref['trial']}) {_arch(ref['arch'])} | 16x16 ws default | {ref['edp_uj_ms'] * 1e3:.3f} | 1.00x | "
             f"{100 * ref['chosen_mean']:.2f} % | {100 * ref['judged_mean']:.2f} % |"]
    choose = [str(s) for s in r["choose_seeds"]]
    for row in r["rows"]:
        accs = row["accuracy_seeds"]
        chosen = f"{100 * statistics.fmean(accs[s] for s in choose):.2f} %" if all(s in accs for s in choose) else \
            f"(screen {100 * row['screen_mean']:.2f} %)"
        judged = [str(s) for s in r["judge_seeds"]]
        judge = f"{100 * statistics.fmean(accs[s] for s in judged):.2f} %" if all(s in accs for s in judged) else ""
        lines.append(f"| {_arch(row['arch'])} | {row['accelerator']} | {row['edp_uj_ms'] * 1e3:.3f} | "
                     f"{ref['edp_uj_ms'] / row['edp_uj_ms']:.2f}x | {chosen} | {judge} |")
    lines.append("")
    if "pick" in r:
        p = r["pick"]
        lines.append(f"Pick (least EDP within {100 * r['tolerance']:g} points on the choice seeds): {_arch(p['arch'])} on "
                     f"{p['accelerator']}, **{p['gain']:.2f}x**; judged on seeds {r['judge_seeds'][0]}-{r['judge_seeds'][-1]}: "
                     f"{p['judged_delta_points']:+.2f} points: **{r['verdict']}**.")
    else:
        lines.append("**No network of the space** at least that cheap is within the tolerance of the reference on the choice seeds.")
    return "\n".join(lines) + "\n"


def _arch(arch: dict) -> str:
    return "(" + ", ".join(f"{k}={v}" for k, v in sorted(arch.items())) + ")"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary", required=True, help="a bench_cosearch.py K-retrain summary folder (one cell)")
    parser.add_argument("--out", required=True, help="the cell's --out (study root with its retrain-cache)")
    parser.add_argument("--report", default=None, help="folder for oracle.json and oracle.md")
    parser.add_argument("--gain", type=float, default=1.5)
    parser.add_argument("--choose", default="0-9")
    parser.add_argument("--judge", default="10-19")
    parser.add_argument("--screen", type=int, default=2, help="seeds every candidate is retrained with first")
    parser.add_argument("--margin", type=float, default=2.0, help="points under the tolerance line a screened network may be")
    args = parser.parse_args(argv)
    from uboost._quiet import quiet_nni

    quiet_nni()
    result = run(args)
    text = markdown(result)
    print(text)
    if args.report:
        from uboost.io import write_json

        Path(args.report).mkdir(parents=True, exist_ok=True)
        write_json(Path(args.report) / "oracle.json", result)
        (Path(args.report) / "oracle.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
