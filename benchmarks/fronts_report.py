"""Tables and plot of ``bench_fronts.py``'s finished points: hypervolume per cost model, the
matched-accuracy speed-up over FLOPs-guided search, every point as CSV, the fronts as a PNG.

Reads every ``point.json`` under the run root, so the summary grows as later invocations (other
seeds, pairs, models) finish. A point whose stored search config is not what ``bench_fronts.py``
would run today (a default changed since; fields added since count at their default) is left out and
counted as stale.

Hypervolume: objectives test error (percentage points) and cycle-exact latency (µs), both
minimized, from the fixed per-pair reference point, as a share of the reference
box (``hypervolume.normalized_hypervolume``; the reference is ``bench_fronts.REFERENCE``): higher is better. Per (pair, entry) the mean and
standard deviation over the seeds whose sweep is complete.

Matched-accuracy speed-up over ``flops``: for each point on an entry's front (same pair and seed),
the fastest FLOPs-searched network of that seed whose accuracy is within ``MATCH_POINTS`` (0.3)
points below it or better, divided by the point's latency. Points no FLOPs network matches are
counted as unmatched (FLOPs-guided search never reached that accuracy). The last column reads the
same ratio over the front points no more than ``MATCH_POINTS`` below the accuracy of every FLOPs
network of the seed: a point less accurate than all of them is otherwise compared with FLOPs'
fastest network, a more accurate one (``matched_speedups(in_range=True)``).

Accuracy with ``retrain_seeds`` K (``bench_fronts.py --retrain-seeds``): the mean of each point's
first K retrains (``fronts_seeds.at_seeds``); points retrained fewer than K times are left out and
counted. At K = 1 a point retrained more often counts with its seed-0 accuracy, as before.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections import defaultdict
from pathlib import Path

import _reuse
import fronts_seeds
import hypervolume as hv
from bench_fronts import REFERENCE

MATCH_POINTS = 0.3
CSV_FIELDS = ("pair", "entry", "model", "lambda", "seed", "point", "test_acc", "error_pct", "latency_us", "cycles",
              "utilization", "macs", "search_latency_us", "val_acc", "search_wall_s", "retrain_wall_s", "run_dir",
              "retrain_from", "arch")


def _is_current(point: dict) -> bool:
    import bench_fronts

    config = point["settings"]["search_config"]
    model = bench_fronts.frontier_model(point["pair"]) if point["entry"] in bench_fronts.FRONTIERS else point["model"]
    if model == bench_fronts.TASK_ONLY:
        model = "flops"  # any model without a utilization term: lambda 0 maps to the task-only search
    try:
        wanted, _ = bench_fronts.search_config(point["pair"], model, point["lambda"], point["seed"], epochs=config["epochs"],
                                               max_samples=config["max_samples"])
    except Exception:  # noqa: BLE001  (a stored config today's SearchConfig cannot even build is stale too)
        return False
    return json.loads(json.dumps(wanted.to_dict())) == _reuse.as_today(config)


def load_points(root: Path, retrain_seeds: int = 1, seeds: list[int] | None = None) -> tuple[list[dict], int]:
    """Every current finished point under ``root`` retrained at least ``retrain_seeds`` times (seen
    with its first ``retrain_seeds`` accuracies) and how many were left out (stale or fewer retrains);
    with ``seeds``, only the points of those search seeds (the others are neither read nor counted)."""
    points, left_out = [], 0
    for path in sorted(Path(root).glob("**/point.json")):
        stored = json.loads(path.read_text())
        if seeds is not None and stored["seed"] not in seeds:
            continue
        point = fronts_seeds.at_seeds(stored, retrain_seeds)
        if point is not None and _is_current(point):
            points.append(point)
        else:
            left_out += 1
    return points, left_out


def fronts(points: list[dict]) -> dict[tuple[str, str, int], list[dict]]:
    """(pair, entry, seed) -> its points; the task-only search joins the front of every model whose lambda = 0 it is
    (``bench_fronts.shares_task_only``)."""
    import bench_fronts

    grouped = defaultdict(list)
    for p in points:
        if p["entry"] != bench_fronts.TASK_ONLY:
            grouped[(p["pair"], p["entry"], p["seed"])].append(p)
    for p in points:
        if p["entry"] == bench_fronts.TASK_ONLY:
            for model, changes in bench_fronts.MODELS.items():
                if bench_fronts.shares_task_only(changes) and (p["pair"], model, p["seed"]) in grouped:
                    grouped[(p["pair"], model, p["seed"])].append(p)
    return dict(grouped)


def front_hypervolume(pair: str, group: list[dict]) -> float:
    return hv.normalized_hypervolume([(p["error_pct"], p["latency_us"]) for p in group], REFERENCE[pair])


def matched_speedups(group: list[dict], flops: list[dict], *, in_range: bool = False) -> tuple[list[float], int]:
    """Latency of the fastest FLOPs network within MATCH_POINTS of each front point's accuracy,
    over the point's latency; and how many front points no FLOPs network matches. Each point of the
    front counts once, however many lambdas found its network.

    ``in_range``: leave out the points more than MATCH_POINTS *below* every FLOPs network's accuracy.
    Without it such a point is compared with FLOPs' fastest network, which is more accurate than
    it by more than the tolerance: a speed-up bought with accuracy, not one at matched accuracy."""
    on_front = set(hv.pareto_front([(p["error_pct"], p["latency_us"]) for p in group]))
    floor = min(100 * f["test_acc"] for f in flops) - MATCH_POINTS if in_range and flops else -math.inf
    ratios, unmatched, seen = [], 0, set()
    for p in group:
        key = (p["error_pct"], p["latency_us"])
        if key not in on_front or key in seen or 100 * p["test_acc"] < floor:
            continue
        seen.add(key)
        rivals = [f["latency_us"] for f in flops if 100 * f["test_acc"] >= 100 * p["test_acc"] - MATCH_POINTS]
        if rivals:
            ratios.append(min(rivals) / p["latency_us"])
        else:
            unmatched += 1
    return ratios, unmatched


def _pm(values: list[float], fmt: str = "{:.3f}") -> str:
    if not values:
        return "-"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{fmt.format(statistics.fmean(values))} ± {fmt.format(spread)}"


def _geomean(values: list[float]) -> float | None:
    return math.exp(statistics.fmean(math.log(v) for v in values)) if values else None


def _complete(entry: str, group: list[dict], lambdas: list[float], grid: list[float]) -> bool:
    """A sweep is complete with every lambda of its pair's ``grid``; a frontier with as many points as its
    settings asked for (a frontier still being retrained is partial; points read back from a
    ``points.csv`` carry no settings and count as complete, as they did when they were summarized)."""
    import bench_fronts

    if entry in bench_fronts.FRONTIERS:
        wanted = max((p.get("settings") or {}).get("frontier_points", 0) for p in group)
        return len({p.get("point") for p in group}) >= wanted
    return set(grid) <= set(lambdas)


def grids_of(points: list[dict]) -> dict[str, list[float]]:
    """Each pair's lambda grid as the union of the lambdas its sweeps ran: how a summary written before grids
    were recorded is judged (a seed missing one of them is still partial; an old grid is not measured
    against today's)."""
    import bench_fronts

    grids = defaultdict(set)
    for p in points:
        if p["entry"] not in bench_fronts.FRONTIERS:
            grids[p["pair"]].add(p["lambda"])
    return {pair: sorted(g) for pair, g in grids.items()}


def summarize(points: list[dict], grids: dict[str, list[float]] | None = None) -> dict:
    """Hypervolume and matched speed-ups per (pair, entry). ``grids``: each pair's lambda grid, against which a
    sweep is judged complete (default: ``bench_fronts``' grid of today)."""
    import bench_fronts

    grouped = fronts(points)
    grids = {pair: (grids or {}).get(pair) or bench_fronts.lambdas_for(pair, None) for pair, _, _ in grouped}
    table = defaultdict(dict)
    for (pair, entry, seed), group in sorted(grouped.items()):
        row = table[(pair, entry)].setdefault("seeds", {})
        flops = grouped.get((pair, "flops", seed), [])
        ratios, unmatched = matched_speedups(group, flops) if entry != "flops" and flops else ([], 0)
        strict = matched_speedups(group, flops, in_range=True)[0] if entry != "flops" and flops else []
        lambdas = sorted({p["lambda"] for p in group})
        row[seed] = {"points": len(group), "hypervolume": front_hypervolume(pair, group), "lambdas": lambdas,
                     "complete": _complete(entry, group, lambdas, grids[pair]),
                     "flops_complete": bool(flops) and _complete("flops", flops, [p["lambda"] for p in flops], grids[pair]),
                     "speedup_vs_flops": ratios, "speedup_vs_flops_in_range": strict,
                     "unmatched_vs_flops": unmatched if flops else None}
    out = []
    for (pair, entry), row in sorted(table.items()):
        seeds = {k: v for k, v in row["seeds"].items() if v["complete"]}  # the mean is over complete sweeps only
        if not seeds:
            out.append({"pair": pair, "entry": entry, "reference": REFERENCE[pair], "seeds": {}, "partial": row["seeds"],
                        "hypervolume_mean": None, "hypervolume_std": None, "speedup_vs_flops_geomean": None,
                        "speedup_vs_flops_range": None, "speedup_vs_flops_in_range_geomean": None, "speedup_vs_flops_in_range_points": 0})
            continue
        hvs = [s["hypervolume"] for s in seeds.values()]
        ratios = [r for s in seeds.values() if s["flops_complete"] for r in s["speedup_vs_flops"]]
        strict = [r for s in seeds.values() if s["flops_complete"] for r in s.get("speedup_vs_flops_in_range", [])]
        partial = {k: v for k, v in row["seeds"].items() if not v["complete"]}
        out.append({"pair": pair, "entry": entry, "reference": REFERENCE[pair], "seeds": seeds, "partial": partial,
                    "hypervolume_mean": statistics.fmean(hvs), "hypervolume_std": statistics.stdev(hvs) if len(hvs) > 1 else 0.0,
                    "speedup_vs_flops_geomean": _geomean(ratios),
                    "speedup_vs_flops_range": [min(ratios), max(ratios)] if ratios else None,
                    "speedup_vs_flops_in_range_geomean": _geomean(strict), "speedup_vs_flops_in_range_points": len(strict)})
    return {"match_points": MATCH_POINTS, "entries": out,
            "lambda_grids": dict(sorted(grids.items()))}


def markdown(summary: dict, n_points: int, stale: int, retrain_seeds: int = 1) -> str:
    many = retrain_seeds > 1
    lines = [f"{n_points} points ({stale} stale{f' or retrained fewer than {retrain_seeds} times' if many else ''} left out). "
             + (f"Accuracy of every point: the mean of {retrain_seeds} retrains of its network (seeds 0..{retrain_seeds - 1}). "
                if many else "") + "Hypervolume = share of the reference box (error %, latency µs) "
             f"dominated, higher is better; matched speed-up = FLOPs latency / latency at accuracy within "
             f"{MATCH_POINTS} points, over each front's points (geometric mean, range, unmatched = no FLOPs network that accurate).",
             "Mean and std over the seeds whose lambda grid is complete; partial seeds are listed apart, their "
             "hypervolume marked with the number of points done.",
             "", "| pair | entry | reference | complete seeds | points per seed | hypervolume mean ± std | per seed | partial seeds | speed-up vs flops (geomean, range) | unmatched | speed-up, points not below every flops network (geomean, points) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in summary["entries"]:
        seeds = e["seeds"]
        per_seed = ", ".join(f"{k}: {v['hypervolume']:.3f}" for k, v in sorted(seeds.items()))
        partial = ", ".join(f"{k}: {v['hypervolume']:.3f} ({v['points']} pts)" for k, v in sorted(e["partial"].items())) or "-"
        npts = ", ".join(str(v["points"]) for _, v in sorted(seeds.items())) or "-"
        speed = "-" if e["speedup_vs_flops_geomean"] is None else (
            f"{e['speedup_vs_flops_geomean']:.2f}x ({e['speedup_vs_flops_range'][0]:.2f}-{e['speedup_vs_flops_range'][1]:.2f})")
        unmatched = sum(v["unmatched_vs_flops"] or 0 for v in seeds.values() if v["flops_complete"])
        in_range = "-" if e.get("speedup_vs_flops_in_range_geomean") is None else (
            f"{e['speedup_vs_flops_in_range_geomean']:.2f}x ({e['speedup_vs_flops_in_range_points']})")
        ref = f"({e['reference'][0]:g} %, {e['reference'][1]:g} µs)"
        lines.append(f"| {e['pair']} | {e['entry']} | {ref} | {len(seeds)} | {npts} | "
                     f"{_pm([v['hypervolume'] for v in seeds.values()])} | {per_seed or '-'} | {partial} | {speed} | {unmatched} | {in_range} |")
    return "\n".join(lines) + "\n"


def _priced_by(pair: str) -> str:
    """What the pair's latencies are: SCALE-Sim USER mode where its memory is bounded, else cycle-exact."""
    import bench_fronts

    return "SCALE-Sim USER mode" if bench_fronts.memory_bound(pair) else "cycle-exact"


def lambda_tables(points: list[dict]) -> str:
    """Per (pair, seed): test accuracy % / cycle-exact µs of every entry at every lambda (frontier: per point)."""
    import bench_fronts

    grouped = fronts(points)
    blocks = []
    for pair, seed in sorted({(k[0], k[2]) for k in grouped}):
        entries = sorted(e for p_, e, s_ in grouped if (p_, s_) == (pair, seed))
        lambdas = sorted({p["lambda"] for (p_, e, s_), g in grouped.items() if (p_, s_) == (pair, seed) and e not in bench_fronts.FRONTIERS for p in g})
        lines = [f"{pair}, seed {seed}: test accuracy % / latency µs ({_priced_by(pair)}); frontier: points p00.. by budget", "",
                 "| entry | " + " | ".join(f"λ={v:g}" for v in lambdas) + " |", "|---" * (len(lambdas) + 1) + "|"]
        for entry in entries:
            group = grouped[(pair, entry, seed)]
            if entry in bench_fronts.FRONTIERS:
                cells = [f"p{p['point']:02d}: {100 * p['test_acc']:.1f} / {p['latency_us']:.2f}" for p in sorted(group, key=lambda p: p["point"])]
                cells += [""] * (len(lambdas) - len(cells))
            else:
                by_lambda = {p["lambda"]: p for p in group}
                cells = [f"{100 * by_lambda[v]['test_acc']:.1f} / {by_lambda[v]['latency_us']:.2f}" if v in by_lambda else "" for v in lambdas]
            lines.append(f"| {entry} | " + " | ".join(cells) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def points_csv(points: list[dict], retrain_seeds: int = 1) -> str:
    buffer = io.StringIO()
    fields = CSV_FIELDS + (("retrain_seeds", "retrain_accs") if retrain_seeds > 1 else ())
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for p in sorted(points, key=lambda p: (p["pair"], p["entry"], p["seed"], p["lambda"], p.get("point", -1))):
        row = {k: p.get(k, "") for k in fields}
        if isinstance(row["arch"], dict):  # the derived network (points made before 2026-12-05 have none)
            row["arch"] = json.dumps(row["arch"], sort_keys=True, separators=(",", ":"))
        if retrain_seeds > 1:
            row["retrain_accs"] = " ".join(f"{a:.6f}" for a in p["retrain_accs"])
        writer.writerow(row)
    return buffer.getvalue()


def plot_fronts(path: Path, points: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from uboost.io import atomic_path

    grouped = fronts(points)
    pairs = sorted({k[0] for k in grouped})
    entries = sorted({k[1] for k in grouped})
    palette = plt.get_cmap("tab10" if len(entries) <= 10 else "tab20")  # one color per entry
    colors = {e: palette(i) for i, e in enumerate(entries)}
    markers = "os^Dv<>"
    fig, axes = plt.subplots(1, max(1, len(pairs)), figsize=(6 * max(1, len(pairs)), 4.5), squeeze=False)
    for ax, pair in zip(axes[0], pairs):
        for (p_, entry, seed), group in sorted(grouped.items()):
            if p_ != pair:
                continue
            xs = [p["latency_us"] for p in group]
            ys = [100 * p["test_acc"] for p in group]
            ax.scatter(xs, ys, color=colors[entry], marker=markers[seed % len(markers)], s=22, alpha=0.8,
                       label=entry if seed == min(k[2] for k in grouped if k[:2] == (pair, entry)) else None)
            front = sorted(hv.pareto_front(zip([100 - y for y in ys], xs)), key=lambda f: f[1])  # by latency
            ax.step([f[1] for f in front], [100 - f[0] for f in front], where="post", color=colors[entry], alpha=0.5, lw=1)
        ref = REFERENCE[pair]
        ax.axvline(ref[1], color="grey", ls=":", lw=1)
        ax.axhline(100 - ref[0], color="grey", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel(f"latency (µs, {_priced_by(pair)})")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{pair} (markers = seeds; dotted = reference)")
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def read_points_csv(path: Path) -> list[dict]:
    """The points of a ``points.csv`` this module wrote (what :func:`summarize` reads)."""
    numbers = {"lambda": float, "seed": int, "point": int, "test_acc": float, "error_pct": float, "latency_us": float}
    points = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            points.append({k: (numbers[k](v) if k in numbers and v != "" else (None if k == "point" and v == "" else v))
                           for k, v in row.items()})
    return points


def refresh_summary(out: Path) -> dict:
    """Recompute ``out/summary.json`` and the table of ``out/summary.md`` from the committed ``out/points.csv``
    (the run directories need not exist); the rest of ``summary.md`` (environments, per-lambda tables) is kept."""
    from uboost.io import write_json, write_text

    old = json.loads((out / "summary.json").read_text())
    points = read_points_csv(out / "points.csv")
    summary = summarize(points, old.get("lambda_grids") or grids_of(points))  # judged on the grid it was run on
    keep = {k: old[k] for k in ("stale_points", "points", "retrain_seeds", "search_seeds") if k in old}
    write_json(out / "summary.json", {**summary, **keep})
    text = (out / "summary.md").read_text()
    end = text.find("\n\n", text.index("| pair | entry |"))  # the end of the table this module wrote first
    rest = text[end + 1:] if end >= 0 else ""
    write_text(out / "summary.md", markdown(summary, len(points), old.get("stale_points", 0), old.get("retrain_seeds", 1)) + rest)
    return summary


def write_summary(root: Path, out: Path, *, plot: bool = True, retrain_seeds: int = 1, seeds: list[int] | None = None,
                  grids: dict[str, list[float]] | None = None) -> dict:
    """Summarize the finished points under ``root`` into ``out``; ``grids`` (pair -> lambdas, default today's)
    is recorded in ``summary.json``, so a later refresh judges the summary on the grid it was run on."""
    from uboost.io import write_json, write_text

    points, stale = load_points(root, retrain_seeds, seeds)
    summary = summarize(points, grids) if points else {"match_points": MATCH_POINTS, "entries": []}
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "points.csv", points_csv(points, retrain_seeds))
    many = {"retrain_seeds": retrain_seeds} if retrain_seeds > 1 else {}
    only = {"search_seeds": sorted(seeds)} if seeds is not None else {}
    write_json(out / "summary.json", {**summary, "stale_points": stale, "points": len(points), **many, **only})
    text = markdown(summary, len(points), stale, retrain_seeds) + (f"\nMade with: {_reuse.environments_line(points)}.\n"
                                                                   + "\n" + lambda_tables(points) if points else "")
    write_text(out / "summary.md", text)
    if points and plot:
        plot_fronts(out / "fronts.png", points)
    print(text, flush=True)
    return summary


if __name__ == "__main__":  # python benchmarks/fronts_report.py benchmarks/fronts/lenet-k5-s10 ...
    import sys

    for folder in sys.argv[1:]:
        for e in refresh_summary(Path(folder))["entries"]:
            if e["speedup_vs_flops_geomean"] is not None:
                print(f"{folder}: {e['pair']} {e['entry']} {e['speedup_vs_flops_geomean']:.2f}x")
