"""Paired comparison of ``bench_fronts.py``'s hypervolumes pooled over (space, array) pairs (not a test).

``fronts_paired.py`` compares two entries on the search seeds of one pair; three seeds cannot make a
difference significant there. This pools the cases: every (pair, search seed) on which both the base
entry and the other have a complete front is one paired case, base minus entry. Per compared entry it
gives the cases, how many the base is ahead on, the mean and median difference, the sign test
(``scipy.stats.binomtest`` on ahead vs behind, ties left out, two-sided) and the Wilcoxon signed-rank
test (``scipy.stats.wilcoxon``, two-sided), and the mean difference per pair. The cases of different
pairs are not alike (other spaces, arrays and reference boxes), which is why the tests are on signs
and ranks, not on a pooled t.

Each ``--pair`` names its summaries (``summary.json`` from ``fronts_report.write_summary``); an entry
may come from any of them, and an (entry, seed) found in two with different hypervolumes is an error
(a summary written ``PATH@E1+E2`` gives only the entries E1 and E2):

    python benchmarks/fronts_pooled.py --pair darts-cifar-16x16=benchmarks/fronts/darts-today-k3/summary.json \\
        --pair lenet-16x16=benchmarks/fronts/lenet-k5-score/summary.json,benchmarks/fronts/lenet-roofline-today/summary.json \\
        --base systolic --entries systolic-paper,flops --out benchmarks/fronts/pooled-today/pooled.md
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fronts_paired  # noqa: E402


def merged(summaries: list[dict], pair: str, only: list[set[str] | None] | None = None) -> dict[str, dict[int, float]]:
    """entry -> {search seed: hypervolume} of ``pair`` over every summary (from the i-th only the entries
    ``only[i]``, where given); a seed two summaries give different hypervolumes is a one-line error."""
    table: dict[str, dict[int, float]] = {}
    for i, summary in enumerate(summaries):
        keep = None if only is None else only[i]
        for entry, seeds in fronts_paired.hypervolumes(summary, pair).items():
            if keep is not None and entry not in keep:
                continue
            mine = table.setdefault(entry, {})
            for seed, value in seeds.items():
                if seed in mine and abs(mine[seed] - value) > 1e-12:
                    raise SystemExit(f"{pair} {entry} seed {seed}: two summaries disagree ({mine[seed]:.6f} vs {value:.6f})")
                mine[seed] = value
    return table


def cases(tables: dict[str, dict[str, dict[int, float]]], base: str, entry: str) -> list[tuple[str, int, float]]:
    """(pair, seed, base minus entry) on every pair and seed both have, in the pairs' order."""
    out = []
    for pair, table in tables.items():
        if base in table and entry in table:
            out += [(pair, s, table[base][s] - table[entry][s]) for s in sorted(set(table[base]) & set(table[entry]))]
    return out


def pooled(diffs: list[float]) -> dict:
    """Counts, mean and median of base-minus-entry differences, the sign test and the Wilcoxon signed-rank test."""
    from scipy import stats

    ahead, behind = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
    result = {"n": len(diffs), "ahead": ahead, "behind": behind, "ties": len(diffs) - ahead - behind,
              "mean": statistics.fmean(diffs), "median": statistics.median(diffs), "sign_p": None, "wilcoxon_p": None}
    if ahead + behind:
        result["sign_p"] = float(stats.binomtest(ahead, ahead + behind, 0.5).pvalue)
    if any(diffs) and len(diffs) > 1:
        result["wilcoxon_p"] = float(stats.wilcoxon(diffs).pvalue)
    return result


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def markdown(tables: dict[str, dict[str, dict[int, float]]], base: str, entries: list[str]) -> str:
    pairs = list(tables)
    found = {entry: cases(tables, base, entry) for entry in entries}
    lines = [f"{base} minus entry, hypervolume, pooled over (pair, search seed) cases where both have a complete front. "
             "Sign test: scipy.stats.binomtest on ahead vs behind (ties left out), two-sided; Wilcoxon: "
             "scipy.stats.wilcoxon, two-sided.", "",
             f"| entry | cases | {base} ahead | behind | mean diff | median diff | sign test p | Wilcoxon p | "
             + " | ".join(f"mean diff {p}" for p in pairs) + " |",
             "|---" * (8 + len(pairs)) + "|"]
    for entry in entries:
        if not found[entry]:
            lines.append(f"| {entry} | 0 | " + " | ".join("-" for _ in range(6 + len(pairs))) + " |")
            continue
        r = pooled([d for _, _, d in found[entry]])
        per_pair = []
        for pair in pairs:
            mine = [d for p, _, d in found[entry] if p == pair]
            per_pair.append(f"{statistics.fmean(mine):+.3f} ({len(mine)})" if mine else "-")
        lines.append(f"| {entry} | {r['n']} | {r['ahead']} | {r['behind']} | {r['mean']:+.3f} | {r['median']:+.3f} | "
                     f"{_p(r['sign_p'])} | {_p(r['wilcoxon_p'])} | " + " | ".join(per_pair) + " |")
    lines += ["", "Per case (pair, seed: base minus entry):", ""]
    lines += [f"- {entry}: " + ", ".join(f"{p} {s}: {d:+.3f}" for p, s, d in found[entry]) for entry in entries if found[entry]]
    return "\n".join(lines) + "\n"


def parse_pair(text: str) -> tuple[str, list[Path], list[set[str] | None]]:
    """``PAIR=SUMMARY[@E1+E2][,SUMMARY...]`` -> the pair, its summary files and each one's entries (None: all)."""
    pair, sep, paths = text.partition("=")
    if not sep or not pair.strip() or not paths.strip():
        raise SystemExit(f"--pair {text!r}: expected PAIR=SUMMARY[@ENTRY+ENTRY][,SUMMARY...]")
    files, only = [], []
    for item in (p.strip() for p in paths.split(",")):
        if not item:
            continue
        path, at, names = item.partition("@")
        keep = {n.strip() for n in names.split("+") if n.strip()} if at else None
        if at and not keep:
            raise SystemExit(f"--pair {pair}: no entry named after '@' in {item!r}")
        files.append(Path(path))
        only.append(keep)
    for f in files:
        if not f.is_file():
            raise SystemExit(f"--pair {pair}: no summary at {f}")
    return pair.strip(), files, only


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pair", action="append", required=True, help="PAIR=SUMMARY[@ENTRY+ENTRY][,SUMMARY...] (repeat per pair; @: only those entries of that summary)")
    p.add_argument("--base", default="systolic", help="the entry every other is compared with")
    p.add_argument("--entries", required=True, help="comma list of entries compared with the base")
    p.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = p.parse_args(argv)
    tables = {}
    for text in args.pair:
        pair, files, only = parse_pair(text)
        tables[pair] = merged([json.loads(f.read_text()) for f in files], pair, only)
        if args.base not in tables[pair]:
            raise SystemExit(f"{pair}: no complete seed of {args.base}; entries with one: {sorted(tables[pair])}")
    entries = [e.strip() for e in args.entries.split(",") if e.strip() and e.strip() != args.base]
    return fronts_paired.emit(markdown(tables, args.base, entries), args.out)


if __name__ == "__main__":
    sys.exit(main())
