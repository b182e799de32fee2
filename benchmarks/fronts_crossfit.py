"""Front hypervolumes without the winner's curse (issue 26): fronts chosen on some retrains, scored on the others (not a test).

A front's hypervolume counts its non-dominated points. With K retrains per network, the published
hypervolume (``bench_fronts.py --retrain-seeds K``) decides which points are non-dominated and scores them on
the **same** mean accuracies: a network whose retrains came out lucky enters the front and lifts it. An entry
whose sweep returns many different networks (the paper formula's) gets more such draws than one whose sweep
returns the same few networks (U-Boost exact on lenet returns one network at 32 of 33 points), so the comparison
leans towards the entry with more distinct, equally noisy networks.

Cross-fitted: split each point's K retrain seeds into a choosing part (the larger half) and a judging part, in
every way; per (pair, entry, search seed) the front is chosen with the choosing seeds' mean accuracies and its
networks are scored with the judging seeds' means (the hypervolume of those networks: a chosen point that is
dominated on the judging seeds simply adds nothing). The hypervolume per search seed is the mean over the splits;
the entries are then compared as ``fronts_paired.py`` does (per-seed table, paired t over search seeds).
Reads a summary's ``points.csv`` (every point's ``retrain_accs``): nothing is searched or retrained.

    python benchmarks/fronts_crossfit.py benchmarks/fronts/lenet-k5-s10/points.csv --pair lenet-16x16 \\
        --out benchmarks/fronts/lenet-k5-s10/crossfit.md
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _accuracies  # noqa: E402
import fronts_paired  # noqa: E402
from cosearch_crossfit import splits  # noqa: E402  (every choosing/judging split of the retrain seeds)
import fronts_report  # noqa: E402


def read_points(path: Path) -> list[dict]:
    """The points of a ``points.csv`` with their retrain accuracies as floats (the columns the reports read)."""
    points = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            accs = [float(a) for a in row.get("retrain_accs", "").split()]
            if not accs:
                raise ValueError(f"{path}: a point without retrain_accs (pair {row['pair']}, entry {row['entry']}): "
                                 "cross-fitting needs bench_fronts.py --retrain-seeds K >= 2")
            points.append({"pair": row["pair"], "entry": row["entry"], "model": row["model"], "lambda": float(row["lambda"]),
                           "seed": int(row["seed"]), "latency_us": float(row["latency_us"]), "retrain_accs": accs})
    return points


def at(points: list[dict], seeds: tuple[int, ...]) -> list[dict]:
    """The points with their accuracy the mean over the retrain ``seeds``."""
    out = []
    for p in points:
        acc = statistics.fmean(p["retrain_accs"][s] for s in seeds)
        out.append({**p, "test_acc": acc, "error_pct": 100.0 * (1.0 - acc)})
    return out


def non_dominated(group: list[dict]) -> list[int]:
    """Indices of the points of ``group`` no other point dominates (error and latency, both minimized)."""
    point = [(p["error_pct"] / 100, p["latency_us"]) for p in group]  # errors compared exactly (_accuracies.py)
    return [i for i, p in enumerate(point) if not any(_accuracies.dominates(q, p, (-1, -1)) for q in point)]


def tables(points: list[dict], pair: str) -> tuple[dict[str, dict[int, float]], dict[str, dict[int, float]]]:
    """``(published, cross-fitted)``: entry -> {search seed: hypervolume} over the complete sweeps of ``pair``,
    with every retrain's mean (as published), and chosen/scored on separate retrain seeds (mean over splits)."""
    points = [p for p in points if p["pair"] == pair]
    k = min(len(p["retrain_accs"]) for p in points)
    if k < 2:
        raise ValueError("cross-fitting needs at least 2 retrains per point")
    every = at(points, tuple(range(k)))
    published = {e["entry"]: {int(s): row["hypervolume"] for s, row in e["seeds"].items()}
                 for e in fronts_report.summarize(every)["entries"] if e["pair"] == pair and e["seeds"]}
    crossfit: dict[str, dict[int, list[float]]] = {e: {s: [] for s in seeds} for e, seeds in published.items()}
    for choose, judge in splits(k):
        chosen_groups = fronts_report.fronts(at(points, choose))
        judged_groups = fronts_report.fronts(at(points, judge))  # the same points, in the same order
        for (p, entry, seed), group in chosen_groups.items():
            if entry in crossfit and seed in crossfit[entry]:
                judged = judged_groups[(p, entry, seed)]
                crossfit[entry][seed].append(fronts_report.front_hypervolume(pair, [judged[i] for i in non_dominated(group)]))
    return published, {e: {s: statistics.fmean(v) for s, v in seeds.items()} for e, seeds in crossfit.items()}


def report(points: list[dict], pair: str, base: str = "systolic", entries: list[str] | None = None) -> str:
    """The tables for ``entries`` (default: the entries with the most complete search seeds, the headline ones)."""
    published, crossfit = tables(points, pair)
    if entries is None:
        most = max(len(v) for v in crossfit.values())
        entries = [e for e, v in crossfit.items() if len(v) == most]
    missing = sorted(set(entries) - set(crossfit))
    if missing or base not in entries:
        raise ValueError(f"no complete sweep of {missing or [base]} on {pair}; entries with one: {sorted(crossfit)}")
    published, crossfit = ({e: t[e] for e in entries} for t in (published, crossfit))
    k = min(len(p["retrain_accs"]) for p in points if p["pair"] == pair)
    seeds = sorted(set.intersection(*(set(v) for v in crossfit.values())))
    lines = [f"# Cross-fitted hypervolumes, {pair} (`fronts_crossfit.py`, {k} retrains per network, "
             f"{len(splits(k))} splits)", "",
             "Published: the front chosen and scored on the mean of every retrain. Cross-fitted: chosen on the mean of "
             f"{(k + 1) // 2} retrains, scored on the other {k - (k + 1) // 2}, mean over every split. Mean over the "
             f"{len(seeds)} search seeds every entry has complete.", "",
             "| entry | published | cross-fitted | fall |", "|---|---|---|---|"]
    for entry in sorted(crossfit, key=lambda e: -statistics.fmean(crossfit[e][s] for s in seeds)):
        pub = statistics.fmean(published[entry][s] for s in seeds)
        cf = statistics.fmean(crossfit[entry][s] for s in seeds)
        lines.append(f"| {entry} | {pub:.3f} | **{cf:.3f}** | {pub - cf:+.3f} |")
    lines += ["", "Cross-fitted, per search seed and paired:", "", fronts_paired.markdown(crossfit, base, pair)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("points", type=Path, help="a points.csv written by bench_fronts.py --retrain-seeds K (K >= 2)")
    p.add_argument("--pair", default="lenet-16x16")
    p.add_argument("--base", default="systolic", help="the entry every other is compared with")
    p.add_argument("--entries", default=None, help="comma list (default: the entries with the most complete search seeds)")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    entries = None if args.entries is None else [e.strip() for e in args.entries.split(",") if e.strip()]
    try:
        text = report(read_points(args.points), args.pair, args.base, entries)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.out is not None:
        from uboost.io import write_text

        write_text(args.out, text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
