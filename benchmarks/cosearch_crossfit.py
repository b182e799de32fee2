"""Co-search verdicts without the winner's curse (issue 22 item 5): cross-fitted on the retrain seeds (not a test).

``bench_cosearch.py --retrain-seeds K`` chooses the reference (the most accurate of the baseline's trial
networks) and the pick (the co-search network of least EDP within 0.5 points of it) on the mean of K retrains
per network, and judges the pick's accuracy on the **same** means. A maximum over noisy means is biased up (the
reference is partly the luckiest network) and the pick is chosen for clearing ``reference - 0.5`` on the means it
is judged on: both choices see the noise their verdict is measured with.

Cross-fitting separates the two: split the K seeds into two halves; choose the reference and the pick on one
half's means (the benchmark's own rule, :func:`bench_cosearch.choose`), and judge the accuracy difference on the
other half's, whose retrains took no part in the choice. Every split of the seeds into two halves, each half
choosing once (252 ordered splits for K = 10), gives a verdict; a cell's result is the share of splits where the
goal holds (gain >= 1.5x and held-out difference >= -0.5 points) and the median gain and held-out difference.
The EDPs are exact (cycle model), so only the accuracies are split. Nothing is retrained: the summaries hold
every network's accuracy per seed (``accuracy_seeds``).

    python benchmarks/cosearch_crossfit.py [--summaries 'benchmarks/cosearch/*-k10'] [--out benchmarks/cosearch/crossfit]
"""

from __future__ import annotations

import argparse
import collections
import glob
import itertools
import json
import statistics
import sys
from pathlib import Path

from _accuracies import at_least
from bench_cosearch import choose

ROOT = Path(__file__).resolve().parent
GOAL = 1.5


def mean_over(seeds: tuple[int, ...]):
    """A row's accuracy: its mean over the retrain ``seeds`` (indices into ``accuracy_seeds``)."""
    return lambda row: statistics.fmean(row["accuracy_seeds"][s] for s in seeds)


def splits(k: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Every ``(choosing seeds, judging seeds)`` split of ``range(k)`` into halves, the choosing half the larger
    for odd ``k`` (for even ``k`` each half chooses once: a half's complement is another half)."""
    return [(a, tuple(s for s in range(k) if s not in a)) for a in itertools.combinations(range(k), (k + 1) // 2)]


def crossfit(cell: dict, tolerance: float, goal: float = GOAL, split: tuple[tuple[int, ...], tuple[int, ...]] | None = None,
             margin: float = 0.0) -> dict:
    """Cross-fitted verdicts of one (space, budget, seed) cell of a ``bench_cosearch`` summary: over every
    split of its seeds into halves, or over the one ``split`` given (``(choosing seeds, judging seeds)``, e.g.
    the seeds of a published verdict and fresh ones). ``margin`` (a fraction, as ``tolerance``): the pick must
    clear ``reference - tolerance + margin`` on the choosing seeds, a guard band against the winner's curse; it is
    still judged at ``tolerance``."""
    base, co = cell["baseline"]["trials"], cell["cosearch"]["trials"]
    k = min(len(r["accuracy_seeds"]) for r in base + co)
    if k < 2:
        raise ValueError("cross-fitting needs at least 2 retrain seeds per network (bench_cosearch.py --retrain-seeds K)")
    if split is not None and (max(split[0] + split[1]) >= k or set(split[0]) & set(split[1]) or not all(split)):
        raise ValueError(f"the choosing and judging seeds must be disjoint, non-empty and below {k}, got {split}")
    verdicts = []
    for chosen_on, judged_on in ([split] if split is not None else splits(k)):
        chosen, judge = mean_over(chosen_on), mean_over(judged_on)
        reference, pick, within = choose(base, co, tolerance - margin, chosen)
        gain = reference["edp_uj_ms"] / pick["edp_uj_ms"]
        delta = judge(pick) - judge(reference)
        verdicts.append(dict(reference=reference["trial"], pick=pick["trial"], within=within, gain=gain,
                             held_out_delta_points=100 * delta, met=within and gain >= goal and at_least(delta, -tolerance),
                             # the winner's curse: how much each chosen network's accuracy falls on the seeds that did not choose it
                             reference_fall=100 * (chosen(reference) - judge(reference)), pick_fall=100 * (chosen(pick) - judge(pick))))
    pairs = collections.Counter((v["reference"], v["pick"]) for v in verdicts)
    every = mean_over(split[0] if split is not None else tuple(range(k)))  # chosen and judged on the same seeds
    reference, pick, within = choose(base, co, tolerance, every)
    median_gain = statistics.median(v["gain"] for v in verdicts)
    median_delta = statistics.median(v["held_out_delta_points"] for v in verdicts)
    return dict(space=cell["space"], sram_kb=cell["baseline_sram_kb"], seeds=k, splits=len(verdicts),
                met_share=sum(v["met"] for v in verdicts) / len(verdicts),
                median_gain=median_gain, median_held_out_delta_points=median_delta,
                # the verdict of the median split: each split's gain and held-out difference judged together (the
                # median gain and the median difference apart came from different splits: lenet 16 kB seed 2 "met" in 28 %)
                median_met=2 * sum(v["met"] for v in verdicts) >= len(verdicts),
                mean_reference_fall_points=statistics.fmean(v["reference_fall"] for v in verdicts),
                mean_pick_fall_points=statistics.fmean(v["pick_fall"] for v in verdicts),
                pairs=[dict(reference=r, pick=p, splits=n) for (r, p), n in pairs.most_common()],
                published=dict(reference=reference["trial"], pick=pick["trial"], gain=reference["edp_uj_ms"] / pick["edp_uj_ms"],
                               delta_points=100 * (every(pick) - every(reference)),
                               met=within and reference["edp_uj_ms"] / pick["edp_uj_ms"] >= goal))


def cells(patterns: list[str]) -> list[tuple[int, dict, float]]:
    """``(study seed, cell, tolerance)`` of every result in the summaries the glob ``patterns`` name."""
    found = []
    for pattern in patterns:
        for folder in sorted(glob.glob(pattern)):
            path = Path(folder) / "summary.json"
            if not path.is_file():
                continue
            summary = json.loads(path.read_text())
            settings = summary["settings"]
            for cell in summary["results"]:
                if cell.get("baseline", {}).get("trials") and cell.get("cosearch", {}).get("trials"):
                    found.append((settings["seed"], cell, settings["tolerance"]))
    return found


def markdown(rows: list[dict]) -> str:
    lines = ["| space | budget | seed | published (K means): gain, delta, verdict | cross-fitted: goal met in | median gain | "
             "median held-out delta | median split: verdict | accuracy fall held out: reference / pick | most frequent (reference, pick) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        p = r["published"]
        top = r["pairs"][0]
        lines.append(f"| {r['space']} | {r['sram_kb']} kB | {r['study_seed']} | {p['gain']:.2f}x, {p['delta_points']:+.2f}, "
                     f"{'met' if p['met'] else 'missed'} | **{100 * r['met_share']:.0f} %** of {r['splits']} | "
                     f"{r['median_gain']:.2f}x | {r['median_held_out_delta_points']:+.2f} | {'met' if r['median_met'] else 'missed'} | "
                     f"{r['mean_reference_fall_points']:.2f} / {r['mean_pick_fall_points']:.2f} | "
                     f"({top['reference']}, {top['pick']}) in {top['splits']} |")
    majority = sum(r["met_share"] > 0.5 for r in rows)
    published = sum(r["published"]["met"] for r in rows)
    lines.append("")
    medians = sum(r["median_met"] for r in rows)
    lines.append(f"Goal met (published rule, K means): {published} of {len(rows)} cells; cross-fitted, in more than half of "
                 f"the splits: {majority} of {len(rows)}; in at least half (the median split's verdict): {medians} of {len(rows)}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--summaries", nargs="+", default=[str(ROOT / "cosearch" / "*-k10")],
                        help="globs of bench_cosearch --summary folders judged with --retrain-seeds K (default: the K = 10 ones)")
    parser.add_argument("--out", default=None, help="folder for crossfit.json and crossfit.md")
    parser.add_argument("--choose", default=None, metavar="A-B", help="one split: choose on retrain seeds A..B (e.g. 0-9) ...")
    parser.add_argument("--judge", default=None, metavar="C-D", help="... and judge on seeds C..D (e.g. 10-19)")
    parser.add_argument("--choose-margin", type=float, default=0.0, metavar="POINTS",
                        help="the pick must clear the reference minus the tolerance plus this many points on the choosing "
                             "seeds (a guard band; judged at the tolerance)")
    args = parser.parse_args(argv)
    split = None
    if (args.choose is None) != (args.judge is None):
        parser.error("--choose and --judge go together")
    if args.choose is not None:
        try:
            split = tuple(tuple(range(int(a), int(b) + 1)) for a, b in (v.split("-") for v in (args.choose, args.judge)))
        except ValueError:
            parser.error(f"--choose/--judge take seed ranges such as 0-9, got {args.choose!r} / {args.judge!r}")
    found = cells(args.summaries)
    if not found:
        print(f"no co-search summaries with trials under {args.summaries}", file=sys.stderr)
        return 1
    rows = []
    for seed, cell, tolerance in found:
        try:
            rows.append({"study_seed": seed, **crossfit(cell, tolerance, split=split, margin=args.choose_margin / 100)})
        except (KeyError, ValueError) as exc:
            print(f"{cell['space']} {cell['baseline_sram_kb']} kB seed {seed}: {exc}", file=sys.stderr)
            return 1
    rows.sort(key=lambda r: (r["space"], r["sram_kb"], r["study_seed"]))
    text = markdown(rows)
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "crossfit.json").write_text(json.dumps(rows, indent=1) + "\n")
        (out / "crossfit.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
