"""How much of a front's hypervolume is retrain noise (issue 26; not a test).

Reads the points of ``bench_fronts.py --retrain-seeds K`` (every point retrained K times) and
summarizes each (pair, entry) K + 1 ways with ``fronts_report.summarize``: with the mean of the K
retrains, and with each single retrain seed s alone (seed 0 alone is the single-retrain headline,
``--retrain-seeds 1``). The searches are the same in every view; only the retrain differs. So an
entry whose sweep returns the same networks on every search seed (U-Boost exact on lenet) has a
hypervolume spread over search seeds of 0 at one retrain seed, and its spread over retrain seeds
is the noise a single-retrain comparison carries.

    python benchmarks/fronts_retrain_noise.py --pair lenet-16x16 --retrain-seeds 3 \\
        --out benchmarks/fronts/lenet-k3/retrain_noise.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fronts_report  # noqa: E402


def single_seed(points: list[dict], seed: int) -> list[dict]:
    """The points as if each had been retrained once, with retrain seed ``seed``."""
    return [{**p, "test_acc": p["retrain_accs"][seed], "error_pct": 100.0 * (1.0 - p["retrain_accs"][seed])} for p in points]


def hypervolumes(points: list[dict], pair: str) -> dict[str, dict]:
    """entry -> {"per_seed": {search seed: hypervolume}, "speedup": geomean vs flops or None} (complete sweeps)."""
    out = {}
    for e in fronts_report.summarize(points)["entries"]:
        if e["pair"] == pair and e["seeds"]:
            out[e["entry"]] = {"per_seed": {k: v["hypervolume"] for k, v in e["seeds"].items()},
                               "speedup": e["speedup_vs_flops_geomean"]}
    return out


def _pm(values: list[float]) -> str:
    return f"{statistics.fmean(values):.3f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.3f}"


def report(root: Path, pair: str, k: int, rival: str = "systolic-paper", ours: str = "systolic",
           seeds: list[int] | None = None) -> str:
    points, _ = fronts_report.load_points(root, k, seeds)
    points = [p for p in points if p["pair"] == pair]
    mean = hypervolumes(points, pair)
    single = [hypervolumes(single_seed(points, s), pair) for s in range(k)]
    lines = [f"# Retrain noise in the hypervolume, {pair} (`fronts_retrain_noise.py`, {k} retrains per network)", "",
             f"Hypervolume per entry: with the mean of {k} retrains per network, and with one retrain (seed s alone; "
             "s = 0 is the single-retrain headline). Mean ± std over the search seeds; `retrain spread` = per search "
             "seed, max - min of the single-retrain hypervolumes over the retrain seeds, averaged. Speed-up: "
             "matched-accuracy vs FLOPs (geometric mean over the front points).", "",
             f"| entry | mean of {k} | " + " | ".join(f"retrain seed {s} alone" for s in range(k)) +
             " | retrain spread | speed-up vs flops, mean of " + f"{k} | speed-up, seed 0 alone |",
             "|---|---|" + "---|" * k + "---|---|---|"]
    for entry in sorted(mean):
        singles = [single[s].get(entry, {}).get("per_seed", {}) for s in range(k)]
        seeds = sorted(mean[entry]["per_seed"])
        spread = statistics.fmean(max(sv[x] for sv in singles) - min(sv[x] for sv in singles) for x in seeds)
        speed = [mean[entry]["speedup"], single[0].get(entry, {}).get("speedup")]
        lines.append(f"| {entry} | {_pm([mean[entry]['per_seed'][x] for x in seeds])} | "
                     + " | ".join(_pm([sv[x] for x in seeds]) for sv in singles)
                     + f" | {spread:.3f} | " + " | ".join("-" if v is None else f"{v:.2f}x" for v in speed) + " |")
    if ours in mean and rival in mean:
        seeds = sorted(set(mean[ours]["per_seed"]) & set(mean[rival]["per_seed"]))
        diffs = {s: [single[r][ours]["per_seed"][s] - single[r][rival]["per_seed"][s] for r in range(k)] for s in seeds}
        flat = [d for ds in diffs.values() for d in ds]
        lines += ["", f"{ours} - {rival}, per (search seed, retrain seed), one retrain each: "
                  + "; ".join(f"search seed {s}: " + ", ".join(f"{d:+.3f}" for d in ds) for s, ds in diffs.items())
                  + f". {ours} ahead in {sum(d > 0 for d in flat)} of {len(flat)}; with the mean of {k} retrains: "
                  + ", ".join(f"{mean[ours]['per_seed'][s] - mean[rival]['per_seed'][s]:+.3f}" for s in seeds) + "."]
    accs = {}
    for p in points:  # one row per network: its retrains are shared, so equal networks have equal accuracies
        accs.setdefault(tuple(p["retrain_accs"]), p)
    stds = [100 * statistics.stdev(a) for a in accs]
    lines += ["", f"Per network ({len(accs)} distinct retrain results): std of the {k} retrain accuracies "
              f"{statistics.fmean(stds):.2f} points on average, median {statistics.median(stds):.2f}, max {max(stds):.2f}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, default=Path("benchmarks/runs/fronts"))
    p.add_argument("--pair", default="lenet-16x16")
    p.add_argument("--retrain-seeds", type=int, default=3)
    p.add_argument("--out", type=Path, default=None, help="markdown file (default: print only)")
    p.add_argument("--search-seeds", default=None, help="comma list: only these search seeds' points (default: all)")
    args = p.parse_args(argv)
    seeds = None if args.search_seeds is None else [int(s) for s in args.search_seeds.split(",") if s.strip()]
    text = report(args.root, args.pair, args.retrain_seeds, seeds=seeds)
    if args.out:
        from uboost.io import write_text

        write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
