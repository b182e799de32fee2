"""The attainable front of a small space: every network retrained and priced, against the lambda sweeps' fronts
(issue 26; not a test).

``bench_fronts.py`` compares cost models by the hypervolume of their lambda-sweep fronts. Those numbers say which
sweep is ahead, not how far any of them is from what the space can give. ``lenet`` has 300 networks, so its true
accuracy-latency front on an array can be computed: every network priced cycle-exact (``systolic``, as the sweeps'
points are) and retrained. Retraining all 300 K times is avoided by a screen, which can drop a front network only
when its one screening retrain fell more than the margin below its neighbours' (a single lenet retrain varies by
about 1 point, so the default margin of 1 point leaves that possible: the front is a lower bound):

1. every network retrained once (seed 0);
2. the networks within ``--margin`` points of the screened front (no network at most as slow is more than
   ``margin`` points more accurate) retrained with seeds 0..K-1, as the sweeps' points (``--retrain-seeds``);
3. the true front = the non-dominated of those K-retrain means.

Reported: the true front's hypervolume from the pair's fixed reference point (``bench_fronts.REFERENCE``), each
entry's (from ``--summary``, the sweeps' ``summary.json`` at the same K) as a share of it, and how many of the true
front's networks each entry's sweeps found (``--points``, the sweeps' ``points.csv``; the run directories are not
needed: networks are matched on their cycle and MAC counts, which tell lenet's front networks apart -- checked
when the script runs: two front networks with equal counts would be an error).

    PYTHONPATH=src python benchmarks/fronts_oracle.py --pair lenet-16x16 --retrain-seeds 5 \\
        --points benchmarks/fronts/lenet-k5-s10/points.csv --summary benchmarks/fronts/lenet-k5-s10/summary.json \\
        --root benchmarks/runs/fronts-oracle --out benchmarks/fronts/lenet-oracle

Also the matched-accuracy speed-up over FLOPs-guided search that the true front itself gives against each seed's FLOPs
sweep in ``--points`` (:func:`attainable_speedups`): the most any search of the space could show by that measure.
``--report-only`` retrains nothing: it reads ``--out``'s oracle.json and recomputes the part ``--points`` gives.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent
GOAL = 2.8  # issue 26: matched-accuracy speed-up over FLOPs-guided search, the paper's lower bound


def near_front(rows: list[dict], margin_pct: float) -> list[dict]:
    """The rows no other row beats by more than ``margin_pct`` points of error at a latency no higher
    (``error_pct``, ``latency_us``): what a second look must re-measure."""
    kept = []
    for row in rows:
        beaten = any(o is not row and o["latency_us"] <= row["latency_us"] and o["error_pct"] + margin_pct < row["error_pct"]
                     for o in rows)
        if not beaten:
            kept.append(row)
    return kept


def front(rows: list[dict]) -> list[dict]:
    """The non-dominated rows (error and latency minimized; ties both kept): ``fronts_crossfit``'s rule."""
    from fronts_crossfit import non_dominated

    return [rows[i] for i in non_dominated(rows)]


def _key(row) -> tuple[int, int]:
    return round(float(row["cycles"])), round(float(row["macs"]))


def found_by_entries(points_csv: Path, pair: str, true_front: list[dict]) -> dict[str, dict]:
    """Per entry: how many of the true front's networks its sweeps reached (any seed) and per seed on average (a
    sweep point with the cycle and MAC counts of a front network)."""
    per_entry: dict[str, dict[int, set]] = defaultdict(lambda: defaultdict(set))
    with open(points_csv, newline="") as fh:
        for p in csv.DictReader(fh):
            if p["pair"] == pair:
                per_entry[p["entry"]][int(p["seed"])].add(_key(p))
    wanted = {_key(r) for r in true_front}
    if len(wanted) != len(true_front):
        raise ValueError("two networks of the true front have the same cycle and MAC counts: match them some other way")
    out = {}
    for entry, seeds in sorted(per_entry.items()):
        reached = set().union(*seeds.values()) & wanted
        out[entry] = {"front_networks_reached": len(reached), "of": len(wanted),
                      "per_seed_mean": sum(len(s & wanted) for s in seeds.values()) / len(seeds), "seeds": len(seeds)}
    return out


def attainable_speedups(points_csv: Path, pair: str, true_front: list[dict]) -> dict:
    """The matched-accuracy speed-up over FLOPs-guided search (``fronts_report.matched_speedups``: within
    ``MATCH_POINTS`` of accuracy) that the true front itself gives against each seed's FLOPs sweep, beside the one
    each entry's own front gives against the same sweep: how much of the issue's 2.8x the space holds at all.
    Both strict (front points not more than the tolerance below every FLOPs network) and over every matched point."""
    import fronts_report as fr

    grouped = fr.fronts([p for p in fr.read_points_csv(points_csv) if p["pair"] == pair])  # as the sweeps' summary groups them
    flops = {seed: group for (_, entry, seed), group in grouped.items() if entry == "flops"}
    fronts = defaultdict(dict)
    for (_, entry, seed), group in grouped.items():
        if entry != "flops":
            fronts[entry][seed] = group
    truth = [{"test_acc": r["accuracy"], "error_pct": 100 * (1 - r["accuracy"]), "latency_us": r["latency_us"]}
             for r in true_front]
    fronts["true front"] = {seed: truth for seed in flops}
    out = {}
    for entry, by_seed in sorted(fronts.items()):
        every, strict, per_seed = [], [], {}
        for seed, group in sorted(by_seed.items()):
            if seed not in flops:
                continue
            ratios, unmatched = fr.matched_speedups(group, flops[seed])
            in_range = fr.matched_speedups(group, flops[seed], in_range=True)[0]
            every += ratios
            strict += in_range
            per_seed[seed] = {"geomean": fr._geomean(ratios), "geomean_in_range": fr._geomean(in_range),
                              "points": len(ratios), "points_in_range": len(in_range), "unmatched": unmatched,
                              "in_range_at_goal": sum(r >= GOAL for r in in_range)}
        out[entry] = {"geomean": fr._geomean(every), "points": len(every), "geomean_in_range": fr._geomean(strict),
                      "points_in_range": len(strict), "in_range_at_goal": sum(r >= GOAL for r in strict), "seeds": per_seed}
    return out


def report_only(args, result: dict) -> dict:
    """``result`` (a finished run's oracle.json) with the sweeps' part computed again from ``--points``."""
    if args.points:
        found = found_by_entries(Path(args.points), result["pair"], result["front"])
        for entry, values in found.items():
            result["entries"].setdefault(entry, {}).update(values)
        result["speedups_vs_flops"] = attainable_speedups(Path(args.points), result["pair"], result["front"])
    return result


def run(args) -> dict:
    import _reuse
    import bench_fronts
    import cosearch_oracle
    import hypervolume as hv

    config, _ = bench_fronts.search_config(args.pair, "systolic", 0.1, 0)
    root = Path(args.root)
    cache = root / _reuse.RETRAIN_CACHE
    archs = cosearch_oracle.networks(config)
    started = time.perf_counter()
    rows = []
    for i, arch in enumerate(archs):
        run_dir = cosearch_oracle.network_dir(root / "networks", arch, config.to_dict())
        acc, _ = _reuse.shared_retrain_acc(run_dir, args.retrain_epochs, args.max_samples, cache, seed=0)
        rows.append({"arch": arch, "run_dir": str(run_dir), "screen_acc": acc, "error_pct": 100 * (1 - acc),
                     **bench_fronts.price(run_dir, config)})
        if (i + 1) % 25 == 0:
            print(f"screened {i + 1}/{len(archs)} in {time.perf_counter() - started:.0f} s", flush=True)
    screen_s = time.perf_counter() - started
    candidates = near_front(rows, args.margin)
    started = time.perf_counter()
    for row in candidates:
        mean, accs = _reuse.mean_retrain_acc(Path(row["run_dir"]), args.retrain_epochs, args.max_samples, cache, args.retrain_seeds)
        row.update(accuracy=mean, accuracies=accs)
    seeds_s = time.perf_counter() - started
    measured = [{**r, "error_pct": 100 * (1 - r["accuracy"])} for r in candidates]
    true_front = sorted(front(measured), key=lambda r: r["latency_us"])
    reference = bench_fronts.REFERENCE[args.pair]
    true_hv = hv.normalized_hypervolume([(r["error_pct"], r["latency_us"]) for r in true_front], reference)
    entries = {}
    if args.summary:
        summary = json.loads(Path(args.summary).read_text())
        for e in summary["entries"]:
            if e["pair"] == args.pair:
                hvs = [s["hypervolume"] for s in e["seeds"].values() if s.get("complete", True)]
                if hvs:
                    entries[e["entry"]] = {"hypervolume_mean": sum(hvs) / len(hvs), "seeds": len(hvs),
                                           "share_of_true": sum(hvs) / len(hvs) / true_hv if true_hv > 0 else None}
    if args.points:
        for entry, found in found_by_entries(Path(args.points), args.pair, true_front).items():
            entries.setdefault(entry, {}).update(found)
    return {"pair": args.pair, "networks": len(archs), "retrain_epochs": args.retrain_epochs, "max_samples": args.max_samples,
            "retrain_seeds": args.retrain_seeds, "margin_points": args.margin, "reference": list(reference),
            "screen_s": screen_s, "seeds_s": seeds_s, "candidates": len(candidates), "true_hypervolume": true_hv,
            "front": [{k: r[k] for k in ("arch", "latency_us", "cycles", "utilization", "macs", "accuracy", "accuracies",
                                         "screen_acc")} for r in true_front],
            "entries": entries,
            "speedups_vs_flops": attainable_speedups(Path(args.points), args.pair, true_front) if args.points else None}


def _times(value: float | None, points: int | None = None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}x" + ("" if points is None else f" ({points})")


def markdown(r: dict) -> str:
    lines = [f"# The attainable front of {r['pair']}: all {r['networks']} networks",
             "",
             f"Every network retrained once ({r['retrain_epochs']} epochs, seed 0; {r['screen_s']:.0f} s), the "
             f"{r['candidates']} within {r['margin_points']:g} points of that screen's front retrained with seeds "
             f"0..{r['retrain_seeds'] - 1} ({r['seeds_s']:.0f} s), priced cycle-exact. Hypervolume from the reference "
             f"({r['reference'][0]:g} % error, {r['reference'][1]:g} µs), higher is better.",
             "",
             f"**True front: hypervolume {r['true_hypervolume']:.3f}**, {len(r['front'])} networks:",
             "",
             "| latency µs | accuracy % (mean of K) | utilization | network |",
             "|---|---|---|---|"]
    for f in r["front"]:
        arch = ", ".join(f"{k}={v}" for k, v in sorted(f["arch"].items()))
        lines.append(f"| {f['latency_us']:.3f} | {100 * f['accuracy']:.2f} | {f['utilization']:.3f} | {arch} |")
    lines += ["", "| entry | hypervolume (mean over seeds) | share of the true front's | front networks reached (any seed) | per seed |",
              "|---|---|---|---|---|"]
    for name, e in sorted(r["entries"].items(), key=lambda kv: -kv[1].get("hypervolume_mean", 0)):
        hv_text = f"{e['hypervolume_mean']:.3f} ({e['seeds']} seeds)" if "hypervolume_mean" in e else "-"
        share = f"{100 * e['share_of_true']:.1f} %" if e.get("share_of_true") is not None else "-"
        reached = f"{e['front_networks_reached']} of {e['of']}" if "of" in e else "-"
        per_seed = f"{e['per_seed_mean']:.1f}" if "per_seed_mean" in e else "-"
        lines.append(f"| {name} | {hv_text} | {share} | {reached} | {per_seed} |")
    if r.get("speedups_vs_flops"):
        lines += ["", "Matched-accuracy speed-up over each seed's FLOPs sweep (FLOPs latency / latency, accuracy within 0.3 "
                  "points; geometric mean over the front's points of every seed; strict: only points not more than 0.3 "
                  "below every FLOPs network of the seed). The true front's row is what the space holds at all.", "",
                  f"| front | speed-up (points) | strict (points) | strict points >= {GOAL}x | per seed, strict |", "|---|---|---|---|---|"]
        rows = sorted(r["speedups_vs_flops"].items(), key=lambda kv: (kv[0] != "true front", -(kv[1]["geomean_in_range"] or 0)))
        for name, e in rows:
            seeds = ", ".join(f"{k}: {_times(v['geomean_in_range'])}" for k, v in sorted(e["seeds"].items()))
            lines.append(f"| {name} | {_times(e['geomean'], e['points'])} | {_times(e['geomean_in_range'], e['points_in_range'])} "
                         f"| {e['in_range_at_goal']} of {e['points_in_range']} | {seeds} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pair", default="lenet-16x16")
    p.add_argument("--retrain-epochs", type=int, default=10)
    p.add_argument("--max-samples", type=int, default=None)
    p.add_argument("--retrain-seeds", type=int, default=5)
    p.add_argument("--margin", type=float, default=1.0, help="points of error a screened network may trail the screen's front by")
    p.add_argument("--points", help="the sweeps' points.csv (which front networks each entry reached)")
    p.add_argument("--summary", help="the sweeps' summary.json at the same K (their hypervolumes)")
    p.add_argument("--root", default=str(ROOT / "runs" / "fronts-oracle"))
    p.add_argument("--out", default=str(ROOT / "fronts" / "lenet-oracle"))
    p.add_argument("--report-only", action="store_true",
                   help="retrain nothing: read --out's oracle.json and recompute what --points and --summary add to it")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import bench_fronts

    from uboost.io import write_json, write_text

    bench_fronts._quiet(1)
    out = Path(args.out)
    if args.report_only and not (out / "oracle.json").is_file():
        p.error(f"--report-only reads {out / 'oracle.json'}, which does not exist: run without it first")
    result = report_only(args, json.loads((out / "oracle.json").read_text())) if args.report_only else run(args)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "oracle.json", result)
    write_text(out / "oracle.md", markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
