"""Paired comparison over search seeds of ``bench_fronts.py``'s hypervolumes (not a test).

Reads a summary's ``summary.json`` (``fronts_report.write_summary``) and, for one (space, array)
pair, compares a base entry (default ``systolic``, U-Boost exact) with every other entry on the
search seeds that all the compared entries have complete: per-seed hypervolume, mean ± std over
those seeds, base minus entry per seed, and the paired t statistic over seeds
(``scipy.stats.ttest_rel``, two-sided p). Seeds some entry lacks are named and left out of every
mean, so the entries are compared on the same seeds.

    python benchmarks/fronts_paired.py benchmarks/fronts/lenet-k5-s5/summary.json --pair lenet-16x16 \\
        --out benchmarks/fronts/lenet-k5-s5/paired.md
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path


def hypervolumes(summary: dict, pair: str, entries: list[str] | None = None) -> dict[str, dict[int, float]]:
    """entry -> {search seed: hypervolume} over the complete seeds of ``pair`` (all entries, or ``entries``)."""
    table = {e["entry"]: {int(seed): row["hypervolume"] for seed, row in e["seeds"].items()}
             for e in summary["entries"] if e["pair"] == pair and e["seeds"]}
    if entries is not None:
        missing = [e for e in entries if e not in table]
        if missing:
            raise SystemExit(f"no complete seed for {missing} on {pair}; entries with one: {sorted(table)}")
        table = {e: table[e] for e in entries}
    return table


def paired(base: dict[int, float], other: dict[int, float], seeds: list[int]) -> dict:
    """base minus other on ``seeds``: the differences, their mean and std, paired t and two-sided p."""
    from scipy import stats

    diffs = [base[s] - other[s] for s in seeds]
    result = {"diffs": diffs, "mean": statistics.fmean(diffs), "std": statistics.stdev(diffs) if len(diffs) > 1 else 0.0,
              "ahead": sum(d > 0 for d in diffs), "t": None, "p": None}
    if len(diffs) > 1 and result["std"] > 0:
        test = stats.ttest_rel([base[s] for s in seeds], [other[s] for s in seeds])
        result["t"], result["p"] = float(test.statistic), float(test.pvalue)
    return result


def markdown(table: dict[str, dict[int, float]], base: str, pair: str) -> str:
    seeds = sorted(set.intersection(*(set(v) for v in table.values())))
    if len(seeds) < 2:
        raise SystemExit(f"fewer than 2 search seeds common to every entry on {pair}: {seeds}")
    left = {e: sorted(set(v) - set(seeds)) for e, v in table.items() if set(v) - set(seeds)}
    lines = [f"{pair}: hypervolume over the {len(seeds)} search seeds every entry has complete ({', '.join(map(str, seeds))})"
             + (f"; left out: {', '.join(f'{e} seeds {s}' for e, s in left.items())}" if left else "")
             + f". Paired: {base} minus entry per seed, t over seeds (scipy.stats.ttest_rel, two-sided p).", "",
             "| entry | " + " | ".join(f"seed {s}" for s in seeds) + f" | mean ± std | {base} minus entry per seed | mean diff ± std | t | p | {base} ahead |",
             "|---" * (len(seeds) + 7) + "|"]
    order = sorted(table, key=lambda e: -statistics.fmean(table[e][s] for s in seeds))
    for entry in order:
        hvs = [table[entry][s] for s in seeds]
        cells = [f"{v:.3f}" for v in hvs] + [f"{statistics.fmean(hvs):.3f} ± {statistics.stdev(hvs):.3f}"]
        if entry == base:
            cells += ["-"] * 5
        else:
            r = paired(table[base], table[entry], seeds)
            cells += [", ".join(f"{d:+.3f}" for d in r["diffs"]), f"{r['mean']:+.3f} ± {r['std']:.3f}",
                      "-" if r["t"] is None else f"{r['t']:+.2f}", "-" if r["p"] is None else f"{r['p']:.2f}",
                      f"{r['ahead']} of {len(seeds)}"]
        lines.append(f"| {entry} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("summary", type=Path, help="a summary.json written by bench_fronts.py")
    p.add_argument("--pair", default="lenet-16x16", help="the (space, array) pair")
    p.add_argument("--base", default="systolic", help="the entry every other is compared with")
    p.add_argument("--entries", default=None, help="comma list of entries to compare (default: every entry with a complete seed)")
    p.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = p.parse_args(argv)
    entries = None if args.entries is None else [e.strip() for e in args.entries.split(",") if e.strip()]
    if entries is not None and args.base not in entries:
        entries = [args.base, *entries]
    return emit(markdown(hypervolumes(json.loads(args.summary.read_text()), args.pair, entries), args.base, args.pair), args.out)


def emit(text: str, out: Path | None) -> int:
    """Print a table, and write it to ``out`` (atomically) when given; the scripts' exit status."""
    if out is not None:
        from uboost.io import write_text

        write_text(out, text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
