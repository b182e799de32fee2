"""Which lambda-sweep networks are the hardware term's own optimum? (issue 26 item 3; not a test)

On a space small enough to enumerate (``lenet``: 300 networks), every network is priced by each
cost model (its own latency and utilization, as the search's hardware term sees a one-hot
distribution) and cycle-exact. The hardware term of the search's loss,
``lambda * latency / latency_ref + beta * (1 - utilization)`` (``latency_ref`` = the mean latency
over all networks = the expectation at uniform choices, as ``hw/latency_ref_ms`` logs it), then has
one minimizer per lambda, whatever the task says: the *hardware optimum*. Along a fine lambda grid
the minimizers form a path. A searched network that equals the hardware optimum at its lambda was
decided by the hardware term alone (the task loss did not move it). With the utilization term
weighed by lambda too (``utilization_scale="lambda"``) the term is
``lambda * (latency / latency_ref + beta * (1 - utilization))``: one minimizer for every lambda > 0,
and at lambda = 0 every network ties (not counted).

    python benchmarks/fronts_hw_optimum.py                 # lenet-16x16, every finished point
    python benchmarks/fronts_hw_optimum.py --out benchmarks/fronts/hardware_optimum.md

Reads the finished points of ``bench_fronts.py`` (``--root``) and their ``arch.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_fronts  # noqa: E402

MAX_NETWORKS = 5000
FINE_LAMBDAS = [10 ** (k / 100) for k in range(-500, 201)]  # 1e-5 .. 100


def enumerate_space(pair: str) -> tuple[list[dict], dict]:
    """Every network of ``pair``'s space: its architecture, cycle-exact latency (µs) and, per cost
    model of ``bench_fronts.MODELS``, ``(latency, utilization)`` as that model prices it."""
    from uboost import hardware, runs
    from uboost.search import build_space

    config, _ = bench_fronts.search_config(pair, "systolic", 1.0, 0)
    space, shape, _ = build_space(config)
    choices = {label: list(m.values) for label, m in space.simplify().items()}
    count = 1
    for values in choices.values():
        count *= len(values)
    if count > MAX_NETWORKS:
        raise SystemExit(f"{pair}: {count} networks, more than {MAX_NETWORKS} to enumerate")
    spec = config.hardware_spec()
    names = sorted({changes.get("cost_model", "systolic") for changes in bench_fronts.MODELS.values()} - {"systolic-mem"})
    models = {name: hardware.create(name, spec=spec) for name in names}
    rows = []
    for combo in itertools.product(*choices.values()):
        arch = dict(zip(choices, combo))
        network = runs.freeze_arch(space, arch)
        priced = {name: model.evaluate(network, shape) for name, model in models.items()}
        rows.append({"arch": arch, "exact_us": 1e3 * priced["systolic"].latency_ms,
                     **{name: (1e3 * r.latency_ms, r.utilization) for name, r in priced.items()}})
    return rows, choices


def hardware_term(row: dict, cost_model: str, beta: float, lam: float, ref_us: float, scale: str = "fixed") -> float:
    latency, utilization = row[cost_model]
    utilization_term = beta * (1.0 - utilization)
    return lam * latency / ref_us + (lam * utilization_term if scale == "lambda" else utilization_term)


def optimum(rows: list[dict], cost_model: str, beta: float, lam: float, ref_us: float, scale: str = "fixed") -> dict:
    return min(rows, key=lambda r: hardware_term(r, cost_model, beta, lam, ref_us, scale))


def path(rows: list[dict], cost_model: str, beta: float, ref_us: float, scale: str = "fixed") -> list[tuple[float, dict]]:
    """(lambda from which it is the optimum, network) along FINE_LAMBDAS."""
    steps: list[tuple[float, dict]] = []
    for lam in FINE_LAMBDAS:
        best = optimum(rows, cost_model, beta, lam, ref_us, scale)
        if not steps or steps[-1][1]["arch"] != best["arch"]:
            steps.append((lam, best))
    return steps


def is_optimum(rows: list[dict], arch: dict, cost_model: str, beta: float, lam: float, ref_us: float,
               scale: str = "fixed") -> bool:
    """``arch`` minimizes the hardware term at ``lam`` (ties count)."""
    best = hardware_term(optimum(rows, cost_model, beta, lam, ref_us, scale), cost_model, beta, lam, ref_us, scale)
    mine = next(r for r in rows if r["arch"] == arch)
    return hardware_term(mine, cost_model, beta, lam, ref_us, scale) <= best + 1e-9 * max(1.0, abs(best))


def report(pair: str, root: Path) -> str:
    import fronts_report

    rows, choices = enumerate_space(pair)
    points, _ = fronts_report.load_points(root)
    lines = [f"# Hardware optimum vs searched networks, {pair} ({len(rows)} networks; `fronts_hw_optimum.py`)", "",
             "A searched point counts as *hardware-decided* when its network minimizes lambda * latency / latency_ref "
             "+ beta * (1 - utilization) (`x lambda`: lambda * (latency / latency_ref + beta * (1 - utilization))) over the "
             "whole space at its lambda (the task loss did not move it; lambda = 0 is not counted where every network ties "
             "there).", "",
             "| entry | cost model | beta | points | hardware-decided | per seed (decided / points) |", "|---|---|---|---|---|---|"]
    paths = []
    for entry, changes in bench_fronts.MODELS.items():
        cost_model = changes.get("cost_model", "systolic")
        if cost_model not in rows[0]:
            continue
        beta = changes.get("utilization_weight", 1.0)
        scale = changes.get("utilization_scale", "fixed")
        ref_us = sum(r[cost_model][0] for r in rows) / len(rows)
        # without a utilization term, or with it scaled by lambda, the hardware term is 0 at lambda = 0 (every
        # network ties): not counted
        ties_at_zero = beta == 0 or scale == "lambda"
        mine = [p for p in points if p["pair"] == pair and p["entry"] == entry and (not ties_at_zero or p["lambda"] > 0)]
        if not mine:
            continue
        per_seed: dict[int, list[int]] = {}
        for p in mine:
            arch = json.loads((Path(p["run_dir"]) / "arch.json").read_text())
            hit = is_optimum(rows, arch, cost_model, beta, p["lambda"], ref_us, scale)
            per_seed.setdefault(p["seed"], [0, 0])
            per_seed[p["seed"]][0] += hit
            per_seed[p["seed"]][1] += 1
        decided = sum(v[0] for v in per_seed.values())
        seeds = ", ".join(f"{s}: {d}/{n}" for s, (d, n) in sorted(per_seed.items()))
        lines.append(f"| {entry} | {cost_model} | {beta:g}{' x lambda' if scale == 'lambda' else ''} | {len(mine)} | "
                     f"{decided} | {seeds} |")
        if beta > 0:
            steps = path(rows, cost_model, beta, ref_us, scale)
            text = "; ".join(f"λ ≥ {lam:.3g}: {' '.join(str(v) for v in net['arch'].values())} "
                             f"({net['exact_us']:.2f} µs exact)" for lam, net in steps)
            paths.append(f"- `{entry}` (beta {beta:g}{', x lambda' if scale == 'lambda' else ''}): {text}")
    lines += ["", f"Hardware-optimum path as lambda grows (network = {', '.join(choices)}):", "", *paths, ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pair", default="lenet-16x16", choices=list(bench_fronts.PAIRS))
    p.add_argument("--root", type=Path, default=Path("benchmarks/runs/fronts"), help="bench_fronts.py's run directories")
    p.add_argument("--out", type=Path, default=None, help="write the markdown here (default: print it)")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    text = report(args.pair, args.root)
    if args.out:
        from uboost.io import write_text

        write_text(args.out, text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
