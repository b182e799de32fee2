"""A local search after each sweep: does it close the gap to lenet's attainable front, and who gains? (issue 26; not a test)

``fronts_oracle.py`` found every lenet sweep 4.6-16 % below the attainable front's hypervolume, the gap in
mid-latency networks with 3x3 kernels no sweep derives, and noted a step that moves one choice at a time along the
front as untried. ``uboost tune --local-search`` is that step for co-search studies
(:mod:`uboost.tuning.local_search`); this script runs the same rule on each sweep's front, per (entry, search
seed), without Optuna:

1. **records**: the distinct networks of the entry's points at that seed (matched to the space's networks by their
   cycle and MAC counts, as ``fronts_oracle.py`` does), each at the mean of K retrains;
2. up to N times: the best-ranked promising neighbor (``local_search.promising``: one choice changed, priced
   cycle-exact on the pair's array -- the latency the fronts are judged on --, cheaper than every record at least
   as accurate as its parent, ranked by that margin x the MACs it keeps, twins of retrained neighbors last) is
   retrained K times and becomes a record;
3. the hypervolume of the entry's points plus the local networks, from the pair's fixed reference point.

Every accuracy, the sweeps' networks' included, is the mean of the K retrains of ``fronts_oracle.py``'s retrain
cache (seeds 0..K-1, the sweeps' settings; a missing retrain runs and is cached): one source for all, so an
entry's N = 0 column is its published hypervolume re-read from the oracle's retrains (they agree with the sweeps'
to about one test image). Each N costs N retrains x K seeds on top of the sweep (a lenet retrain is 1-3 s).

    PYTHONPATH=src python benchmarks/fronts_local.py --pair lenet-16x16 --points benchmarks/fronts/lenet-k5-s10/points.csv \\
        --seeds 0-9 --local 0,3,6,11,22 --oracle benchmarks/fronts/lenet-oracle/oracle.json --out benchmarks/fronts/lenet-local
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent


def space_table(pair: str, root: Path) -> tuple[list[dict], dict]:
    """Every network of the pair's space priced cycle-exact, and the space's choices: ``(rows, choices)``; a row holds
    ``arch``, ``run_dir``, ``latency_us``, ``cycles``, ``macs``."""
    import bench_fronts
    import cosearch_oracle

    from uboost.tuning.local_trials import space_choices

    config, _ = bench_fronts.search_config(pair, "systolic", 0.1, 0)
    rows = []
    for arch in cosearch_oracle.networks(config):
        run = cosearch_oracle.network_dir(root / "networks", arch, config.to_dict())
        rows.append({"arch": arch, "run_dir": run, **bench_fronts.price(run, config)})
    return rows, space_choices(config)


def counts(row: dict) -> tuple[int, int]:
    return round(float(row["cycles"])), round(float(row["macs"]))


def sweep_networks(points_csv: Path, pair: str, by_counts: dict, seeds: list[int],
                   task_only_joins: frozenset[str] | set[str] = frozenset()) -> dict[tuple[str, int], list[str]]:
    """Per (entry, seed): the keys of the distinct networks its points derived (matched by cycle and MAC counts). The
    ``task-only`` search is the lambda = 0 point of the entries in ``task_only_joins`` (those without a utilization
    term, as ``fronts_report.fronts`` counts it) and no entry of its own."""
    from bench_fronts import TASK_ONLY

    from uboost.tuning.local_search import key

    out: dict[tuple[str, int], list[str]] = defaultdict(list)
    with open(points_csv, newline="") as fh:
        for p in csv.DictReader(fh):
            if p["pair"] != pair or int(p["seed"]) not in seeds:
                continue
            matches = by_counts.get(counts(p), [])
            if len(matches) != 1:
                raise ValueError(f"{p['entry']} seed {p['seed']}: {len(matches)} networks of the space have the point's "
                                 f"cycle and MAC counts {counts(p)}: match them some other way")
            name = key(matches[0]["arch"])
            if name not in out[(p["entry"], int(p["seed"]))]:
                out[(p["entry"], int(p["seed"]))].append(name)
    for (entry, seed), names in [(k, v) for k, v in out.items() if k[0] == TASK_ONLY]:
        for other in task_only_joins:
            if (other, seed) in out:
                out[(other, seed)] += [n for n in names if n not in out[(other, seed)]]
    return {k: v for k, v in out.items() if k[0] != TASK_ONLY}


def local_search(start: list[dict], n: int, choices: dict, table: dict, accuracy) -> list[dict]:
    """Up to ``n`` networks added to ``start`` (rows of the space table) by the local-search rule, in order;
    ``accuracy(row)`` is a network's mean retrained accuracy (0..1)."""
    from uboost.tuning import local_search as ls

    recs = [ls.Record(arch=r["arch"], accuracy=accuracy(r), cost=r["latency_us"], trial=SimpleNamespace(number=i),
                      macs=r["macs"]) for i, r in enumerate(start)]
    tried: set = set()
    added = []

    def price(arch, parent):
        row = table[ls.key(arch)]
        return row["latency_us"], row["macs"]

    for _ in range(n):
        found = ls.promising(recs, choices, price, tried=tried)
        if not found:
            break
        best = found[0]
        row = table[ls.key(best.arch)]
        recs.append(ls.Record(arch=best.arch, accuracy=accuracy(row), cost=best.cost,
                              trial=SimpleNamespace(number=len(recs)), macs=best.macs))
        tried.add(ls.twin(best.cost, best.macs))
        added.append({**row, "parent": ls.key(best.parent.arch), "move": f"{best.label} {best.old} -> {best.new}"})
    return added


def run(args) -> dict:
    import _reuse
    import bench_fronts
    import hypervolume as hv

    from uboost.tuning.local_search import key

    root = Path(args.root)
    cache = root / _reuse.RETRAIN_CACHE
    rows, choices = space_table(args.pair, root)
    table = {key(r["arch"]): r for r in rows}
    by_counts: dict = defaultdict(list)
    for r in rows:
        by_counts[counts(r)].append(r)
    seeds = list(args.seeds)
    joins = {m for m, changes in bench_fronts.MODELS.items() if changes.get("utilization_weight", 1.0) == 0}
    sweeps = sweep_networks(Path(args.points), args.pair, by_counts, seeds, joins)
    entries = sorted({e for e, _ in sweeps} if not args.entries else args.entries)
    reference = bench_fronts.REFERENCE[args.pair]
    retrained: dict[str, float] = {}
    started = time.perf_counter()

    def accuracy(row) -> float:
        name = key(row["arch"])
        if name not in retrained:
            retrained[name], _ = _reuse.mean_retrain_acc(Path(row["run_dir"]), args.retrain_epochs, None, cache, args.retrain_seeds)
        return retrained[name]

    def volume(networks: list[dict]) -> float:
        return hv.normalized_hypervolume([(100 * (1 - accuracy(r)), r["latency_us"]) for r in networks], reference)

    budgets = sorted(set(args.local))
    results = {}
    for entry in entries:
        per_seed = {}
        for seed in seeds:
            names = sweeps.get((entry, seed))
            if not names:
                continue
            start = [table[name] for name in names]
            added = local_search(start, max(budgets), choices, table, accuracy)
            per_seed[seed] = {"networks": len(start), "hypervolume": {n: volume(start + added[:n]) for n in budgets},
                              "start": [{"latency_us": r["latency_us"], "accuracy": accuracy(r)} for r in start],
                              "added": [{"move": a["move"], "latency_us": a["latency_us"], "accuracy": accuracy(a)}
                                        for a in added]}
        results[entry] = per_seed
        print(f"{entry}: {len(per_seed)} seeds, {len(retrained)} networks retrained so far, "
              f"{time.perf_counter() - started:.0f} s", flush=True)
    attainable = None
    if args.oracle:
        attainable = json.loads(Path(args.oracle).read_text())["true_hypervolume"]
    return {"pair": args.pair, "seeds": seeds, "local": budgets, "retrain_seeds": args.retrain_seeds,
            "retrain_epochs": args.retrain_epochs, "reference": list(reference), "networks_retrained": len(retrained),
            "wall_s": time.perf_counter() - started, "attainable_hypervolume": attainable, "entries": results}


def summary_rows(r: dict) -> list[dict]:
    """Per entry and N: mean and std over seeds of the hypervolume, and the mean gain over N = 0."""
    out = []
    for entry, per_seed in r["entries"].items():
        for n in r["local"]:
            values = [s["hypervolume"][n] for s in per_seed.values()]
            base = [s["hypervolume"][r["local"][0]] for s in per_seed.values()]
            out.append({"entry": entry, "n": n, "seeds": len(values), "mean": statistics.fmean(values),
                        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                        "gain": statistics.fmean(v - b for v, b in zip(values, base))})
    return out


def speedups(r: dict, n: int, rival: str = "flops") -> dict[str, tuple[float | None, int, int]]:
    """Per entry: the matched-accuracy speed-up over ``rival`` at ``n`` local networks for both (``fronts_report``'s
    rule: for each front point, the rival's fastest network of the same seed within ``MATCH_POINTS`` of its accuracy,
    over its latency), as ``(geometric mean over every seed's front points, matched, unmatched)``."""
    import math

    from fronts_report import matched_speedups

    def points(seed: dict) -> list[dict]:
        return [{"error_pct": 100 * (1 - p["accuracy"]), "latency_us": p["latency_us"], "test_acc": p["accuracy"]}
                for p in seed["start"] + seed["added"][:n]]

    out = {}
    rivals = r["entries"].get(rival, {})
    for entry, per_seed in r["entries"].items():
        if entry == rival:
            continue
        ratios, unmatched = [], 0
        for seed, data in per_seed.items():
            if seed in rivals:
                got, missed = matched_speedups(points(data), points(rivals[seed]))
                ratios += got
                unmatched += missed
        mean = math.exp(sum(math.log(x) for x in ratios) / len(ratios)) if ratios else None
        out[entry] = (mean, len(ratios), unmatched)
    return out


def paired(r: dict, base: str = "systolic") -> list[dict]:
    """Per other entry and N: ``base`` minus it over the search seeds both have (mean, std, seeds ahead, paired t, p;
    ``scipy.stats.ttest_rel``, two-sided)."""
    from scipy import stats

    out = []
    mine = r["entries"].get(base, {})
    for entry, per_seed in r["entries"].items():
        seeds = sorted(set(per_seed) & set(mine), key=int)
        if entry == base or len(seeds) < 3:
            continue
        for n in r["local"]:
            a = [mine[s]["hypervolume"][n] for s in seeds]
            b = [per_seed[s]["hypervolume"][n] for s in seeds]
            diff = [x - y for x, y in zip(a, b)]
            # a constant difference (zero or not) has no spread to test: scipy would give t = inf, p = 0
            test = stats.ttest_rel(a, b) if statistics.stdev(diff) > 0 else None
            out.append({"entry": entry, "n": n, "seeds": len(seeds), "mean": statistics.fmean(diff),
                        "std": statistics.stdev(diff), "ahead": sum(d > 0 for d in diff),
                        "t": None if test is None else float(test.statistic), "p": None if test is None else float(test.pvalue)})
    return out


def markdown(r: dict) -> str:
    rows = summary_rows(r)
    ns = r["local"]
    lines = [f"# Local search after each sweep, {r['pair']} ({len(r['seeds'])} search seeds, K = {r['retrain_seeds']} "
             f"retrains per network)", "",
             f"Hypervolume from ({r['reference'][0]:g} %, {r['reference'][1]:g} µs), mean ± std over search seeds, after N "
             "local-search retrains (N = 0: the sweep's own points, every accuracy re-read from the oracle's retrains)."
             + (f" Attainable front: {r['attainable_hypervolume']:.3f}." if r.get("attainable_hypervolume") else ""), "",
             "| entry | " + " | ".join(f"N = {n}" for n in ns) + f" | gain at N = {ns[-1]} | networks added (mean; fewer: none promising) |",
             "|---|" + "---|" * (len(ns) + 2)]
    by_entry: dict[str, dict[int, dict]] = defaultdict(dict)
    for row in rows:
        by_entry[row["entry"]][row["n"]] = row
    order = sorted(by_entry, key=lambda e: -by_entry[e][ns[-1]]["mean"])
    for entry in order:
        cells = [f"{by_entry[entry][n]['mean']:.3f} ± {by_entry[entry][n]['std']:.3f}" for n in ns]
        added = statistics.fmean(len(seed.get("added", [])) for seed in r["entries"][entry].values())
        lines.append(f"| {entry} | " + " | ".join(cells) + f" | {by_entry[entry][ns[-1]]['gain']:+.3f} | {added:.1f} |")
    rows = paired(r)
    if rows:
        lines += ["", "Exact (`systolic`) minus each entry, per search seed (mean ± std, seeds exact is ahead, paired t, p):", "",
                  "| entry | " + " | ".join(f"N = {n}" for n in ns) + " |", "|---|" + "---|" * len(ns)]
        for entry in [e for e in order if any(p["entry"] == e for p in rows)]:
            cells = []
            for n in ns:
                p = next(p for p in rows if p["entry"] == entry and p["n"] == n)
                test = "" if p["t"] is None else f", t {p['t']:+.2f}, p {p['p']:.3f}"
                cells.append(f"{p['mean']:+.4f} ± {p['std']:.4f} ({p['ahead']}/{p['seeds']}{test})")
            lines.append(f"| {entry} | " + " | ".join(cells) + " |")
    first, last = speedups(r, ns[0]), speedups(r, ns[-1])
    if first:
        lines += ["", "Matched-accuracy speed-up over FLOPs (within 0.3 points, the same seed and N for both; geometric mean "
                  "over the front points of every seed; matched / unmatched points):", "",
                  f"| entry | N = {ns[0]} | N = {ns[-1]} |", "|---|---|---|"]
        for entry in [e for e in order if e in first]:
            cells = [("-" if m is None else f"{m:.2f}x") + f" ({k} / {u})" for m, k, u in (first[entry], last[entry])]
            lines.append(f"| {entry} | " + " | ".join(cells) + " |")
    lines += ["", f"{r['networks_retrained']} distinct networks at K = {r['retrain_seeds']}; {r['wall_s']:.0f} s wall."]
    return "\n".join(lines) + "\n"


def seeds_of(text: str) -> list[int]:
    import cosearch_oracle

    return cosearch_oracle.seeds_of(text)


def main(argv=None) -> int:
    sys.path.insert(0, str(ROOT))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", default="lenet-16x16")
    parser.add_argument("--points", required=True, help="the sweeps' points.csv")
    parser.add_argument("--seeds", type=seeds_of, default=[0, 1, 2], help="search seeds, e.g. 0-9 or 0,2")
    parser.add_argument("--entries", type=lambda s: [e for e in s.split(",") if e], default=None)
    parser.add_argument("--local", type=lambda s: [int(x) for x in s.split(",")], default=[0, 3, 6, 11],
                        help="numbers of local-search retrains to report (the first is the baseline, usually 0)")
    parser.add_argument("--retrain-seeds", type=int, default=5)
    parser.add_argument("--retrain-epochs", type=int, default=10)
    parser.add_argument("--root", default=str(ROOT / "runs" / "fronts-oracle"), help="network folders and retrain cache")
    parser.add_argument("--oracle", default=None, help="fronts_oracle.py's oracle.json (the attainable hypervolume)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    result = run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "local.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    (out / "local.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
