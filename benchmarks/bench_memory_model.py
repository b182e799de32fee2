"""How close are the closed-form models to SCALE-Sim's USER (finite memory) mode? (not a test)

Data: ``tests/hardware/data/scalesim_user.csv`` (``tools/make_scalesim_user_data.py``): CIFAR- and
digits-sized layers on 32x32 WS and OS arrays with 16/64/256 kB per SRAM buffer and 4/10/32 DRAM
words per cycle, SCALE-Sim 3.0.0's "Total Cycles" (compute + stalls). ``systolic-mem`` ships
constants fitted on every row, so its scores on the data are in-sample; the scores on rows the
constants were not fitted on come from refitting (``tools/fit_systolic_mem.py``): on the ``fit``
rows scored on the ``held-out`` ones (every third layer), and 3-fold cross-validation over layers.
Its structure was chosen by cross-validation within the ``fit`` rows.

Per configuration (array, dataflow, SRAM, bandwidth) it prints the mean absolute percentage error
over layers and Kendall's tau between predicted and simulated cycles (does the model rank the
layers as SCALE-Sim does: what a search needs), then the averages over configurations against
the targets of issue 11: MAPE <= 20 % and tau >= 0.90 on average, MAPE <= 15 % at 64 kB / 10
words per cycle, beating a prototype's 19.8 % / 0.91 (held out: 22 % / 0.90).

    python benchmarks/bench_memory_model.py [--data FILE] [--split all|fit|held-out] [--models ...] [--no-refit]

``--groups`` (issue 22) scores every (array, dataflow, SRAM, bandwidth) group of the base data and of
``tests/hardware/data/scalesim_user_groups.csv`` (128x128 WS/OS/IS, 32x32 IS, 8 kB buffers) **held
out**: 3-fold over layers (layer i in fold i mod 3), the constants refitted on the other two folds'
layers in every group, each layer predicted once; it prints per group that MAPE, the shipped
constants' (in-sample) and compute-only's, against the goal of <= 25 % in every group and <= 12 %
on average over groups. ``--slice`` scores the small slice that ``tests/hardware/test_memory_groups.py``
checks (the same numbers).

    python benchmarks/bench_memory_model.py --groups [--slice]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "hardware" / "data" / "scalesim_user.csv"


def kendall_tau(a: list[float], b: list[float]) -> float:
    """Kendall's tau-b (ties counted as in scipy)."""
    n, concordant, discordant, ties_a, ties_b = len(a), 0, 0, 0, 0
    for i in range(n):
        for j in range(i + 1, n):
            da, db = a[i] - a[j], b[i] - b[j]
            if da == 0 and db == 0:
                continue
            if da == 0:
                ties_a += 1
            elif db == 0:
                ties_b += 1
            elif (da > 0) == (db > 0):
                concordant += 1
            else:
                discordant += 1
    denom = ((concordant + discordant + ties_a) * (concordant + discordant + ties_b)) ** 0.5
    return (concordant - discordant) / denom if denom else float("nan")


def shape(row):
    from uboost.hardware import LayerShape

    return LayerShape(
        name=row["layer"], kind=row["kind"], in_channels=int(row["in_channels"]), out_channels=int(row["out_channels"]),
        groups=int(row["groups"]), kernel_h=int(row["kernel_h"]), kernel_w=int(row["kernel_w"]), stride=int(row["stride"]),
        in_h=int(row["in_h"]), in_w=int(row["in_w"]), out_h=int(row["out_h"]), out_w=int(row["out_w"]),
    )


def score(rows, model_name: str) -> dict:
    """{(array, dataflow, sram, bw): (MAPE, tau, n)} for one model over ``rows``."""
    from uboost.hardware import HardwareSpec, LayerTable, create

    by_config: dict[tuple, list] = {}
    for r in rows:
        key = (f"{r['rows']}x{r['cols']}", r["dataflow"], int(r["sram_kb"]), float(r["dram_bw_words"]))
        by_config.setdefault(key, []).append(r)
    out = {}
    for key, members in sorted(by_config.items()):
        array, flow, kb, bw = key
        predicted, simulated = [], []
        for batch in sorted({int(m["batch"]) for m in members}):
            sel = [m for m in members if int(m["batch"]) == batch]
            spec = HardwareSpec(rows=int(sel[0]["rows"]), cols=int(sel[0]["cols"]), dataflow=flow, batch_size=batch,
                                sram_kb=kb, dram_bw_words=None if model_name == "roofline" else bw, mem_bw_gbps=bw)
            # roofline: bw bytes per cycle at 1 GHz in all, the baseline RESULTS reports (given the spec's DRAM it would
            # use its three ports, 3 * bw)
            cycles = create(model_name, spec=spec).cycles(LayerTable.from_shapes([shape(m) for m in sel])).tolist()
            predicted += cycles
            simulated += [float(m["cycles"]) for m in sel]
        mape = statistics.mean(abs(p - s) / s for p, s in zip(predicted, simulated))
        out[key] = (mape, kendall_tau(predicted, simulated), len(members))
    return out


GOAL_GROUP, GOAL_MEAN = 0.25, 0.12  # issue 22: every group, and the mean over groups, held out


def group_table(table: dict) -> list[str]:
    """Markdown lines of :func:`fit_systolic_mem.per_group`'s result, with the verdict."""
    lines = ["| group (array dataflow SRAM bandwidth) | layers | held-out MAPE (3-fold) | shipped, in-sample | compute-only |",
             "|---|---|---|---|---|"]
    for (array, flow, kb, bw), v in table.items():
        mark = "" if v["held_out"] <= GOAL_GROUP else " **over 25 %**"
        lines.append(f"| {array} {flow.upper()} {kb} kB {bw:g} w/c | {v['n']} | {100 * v['held_out']:.1f} %{mark} | "
                     f"{100 * v['shipped']:.1f} % | {100 * v['compute']:.1f} % |")
    held = [v["held_out"] for v in table.values()]
    over = [k for k, v in table.items() if v["held_out"] > GOAL_GROUP]
    lines.append(f"\nmean over {len(held)} groups, held out: {100 * statistics.mean(held):.1f} % (goal <= {100 * GOAL_MEAN:.0f} %); "
                 f"worst {100 * max(held):.1f} %; {len(over)} group(s) over {100 * GOAL_GROUP:.0f} %"
                 + (": " + ", ".join(f"{a} {f.upper()} {kb} kB {bw:g} w/c" for a, f, kb, bw in over) if over else ""))
    return lines


def groups_main(slice_only: bool) -> int:
    sys.path.insert(0, str(REPO / "tools"))
    import fit_systolic_mem as fitting

    data = fitting.Data(fitting.DATA, keep=fitting.in_slice if slice_only else None)
    print(f"{len(data.rows)} SCALE-Sim USER-mode points, {len(data.layers)} layers, {len(set(data.config))} groups"
          + (" (the test slice)" if slice_only else "") + "\n")
    print("\n".join(group_table(fitting.per_group(data))))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", action="store_true", help="issue 22: held-out MAPE per (array, dataflow, SRAM, bandwidth) group")
    parser.add_argument("--slice", action="store_true", help="with --groups: only the test slice")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--split", default="all", choices=("all", "fit", "held-out"))
    parser.add_argument("--models", default="systolic-mem,systolic,roofline")
    parser.add_argument("--no-refit", action="store_true", help="skip refitting systolic-mem's constants on held-out splits")
    args = parser.parse_args()
    if args.groups:
        return groups_main(args.slice)
    with open(args.data, newline="") as f:
        every = list(csv.DictReader(f))
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    splits = ["fit", "held-out", "all"] if args.split == "all" else [args.split]
    stalled = sum(int(r["stall_cycles"]) > 0 for r in every)
    print(f"{len(every)} SCALE-Sim USER-mode points ({stalled} stall), {len({r['layer'] for r in every})} layers\n")
    summary = []
    for split in splits:
        rows = every if split == "all" else [r for r in every if r["split"] == split]
        results = {m: score(rows, m) for m in models}
        if split == "all":
            print("| config | n | " + " | ".join(f"{m} MAPE / tau" for m in models) + " |")
            print("|---|---|" + "---|" * len(models))
            for key in results[models[0]]:
                cells = " | ".join(f"{100 * results[m][key][0]:.1f} % / {results[m][key][1]:.2f}" for m in models)
                print(f"| {key[0]} {key[1]} {key[2]} kB {key[3]:g} w/c | {results[models[0]][key][2]} | {cells} |")
            print()
        for m in models:
            mapes = [v[0] for v in results[m].values()]
            taus = [v[1] for v in results[m].values() if v[1] == v[1]]
            at64 = [v[0] for k, v in results[m].items() if k[2] == 64 and k[3] == 10]
            summary.append((split, m, statistics.mean(mapes), statistics.mean(taus), statistics.mean(at64) if at64 else float("nan")))
    print("| split | model | mean MAPE over configs | mean Kendall tau | MAPE at 64 kB, 10 w/c |")
    print("|---|---|---|---|---|")
    for split, m, mape, tau, at64 in summary:
        print(f"| {split} | {m} | {100 * mape:.1f} % | {tau:.3f} | {100 * at64:.1f} % |")
    print("(systolic-mem's shipped constants were fitted on every row: the rows above are in-sample for it)")
    print("\ntargets: mean MAPE <= 20 %, mean tau >= 0.90, MAPE at 64 kB / 10 w/c <= 15 %; prototype 19.8 % / 0.91 (held out 22 % / 0.90)")
    if args.no_refit or "systolic-mem" not in models:
        return 0
    sys.path.insert(0, str(REPO / "tools"))
    import fit_systolic_mem as fitting

    data = fitting.Data(args.data)
    print("\nsystolic-mem refitted without the rows it is scored on:\n")
    print("| constants scored on | mean MAPE | mean Kendall tau | MAPE at 64 kB, 10 w/c (mean: WS, OS) |")
    print("|---|---|---|---|")
    for name, s in fitting.held_out_scores(data, ["split", "3-fold"], fitting.START).items():
        ok = s["mape"] <= 0.20 and s["tau"] >= 0.90 and statistics.mean(s["mape_64_10"].values()) <= 0.15
        print(fitting.line(name, s) + f" {'meets' if ok else 'MISSES'} the targets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
