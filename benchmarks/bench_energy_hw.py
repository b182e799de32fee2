"""Energy benchmarks, hardware side (not a test): ``--part b`` energy vs frequency per preset,
``--part c`` access counts vs SCALE-Sim. (Part (a), the searches, is ``bench_energy.py``.)

Part (b): a network priced on one array at every point of each operating-point preset, with each
energy preset. Per point: latency, energy (split), EDP; where the least-energy point lies and why
(dynamic energy ~ V^2 falls toward the voltage floor, leakage x time grows as f falls). With
``--dram-bw-gbps`` and ``--cost-model systolic-mem`` the DRAM bandwidth is fixed in bytes per
second, so a faster clock stalls more.

Part (c): (1) the share of SCALE-Sim 3.0 CALC-mode access counts (``tests/hardware/data/
scalesim_access_golden.csv``) that :func:`uboost.hardware.access.access_counts` matches exactly;
(2) with finite SRAM (SCALE-Sim USER mode, ``tests/hardware/data/scalesim_user_access.csv``) the
error of the DRAM reads (ifmap + filter, re-fetches included) of the unbounded-memory counts and of
``systolic-mem``'s counts with its re-fetch estimate (:meth:`MemorySystolicArray.accesses`).

    nice -n 10 python benchmarks/bench_energy_hw.py --part b [--network resnet18 --input 3x32x32]
    nice -n 10 python benchmarks/bench_energy_hw.py --part b --cost-model systolic-mem --dram-bw-gbps 4
    nice -n 10 python benchmarks/bench_energy_hw.py --part c
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "hardware" / "data"
sys.path.insert(0, str(REPO))  # tests.hardware.test_scalesim_golden.shape_of: one reader of the golden rows


def part_b(args) -> int:
    from uboost.hardware import HardwareSpec, create, extract_layers, parse_array
    from uboost.hardware.energy import PRESETS as ENERGY
    from uboost.hardware.operating import PRESETS as POINTS, at_point
    from uboost.networks import load_network_or_run

    loaded = load_network_or_run(args.network)
    shape = tuple(int(x) for x in args.input.split("x"))
    layers = extract_layers(loaded.module, shape)
    rows, cols = parse_array(args.array)
    bw = args.dram_bw_gbps or None
    print(f"{loaded.label} @ {args.input} on {args.array} {args.dataflow}, {args.cost_model}, {args.sram_kb} kB per SRAM, "
          + (f"DRAM {bw:g} GB/s" if bw else "DRAM bandwidth unbounded"))
    print("\n| energy table | DVFS table | MHz | mV | latency ms | energy uJ | MAC | SRAM | DRAM | leakage | EDP uJ*ms | |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    summary = []
    for energy in ENERGY:
        for table in args.tables:
            points = POINTS[table]
            spec = HardwareSpec(rows=rows, cols=cols, dataflow=args.dataflow, sram_kb=args.sram_kb, dram_bw_gbps=bw,
                                energy=energy, operating_points=points, clock_hz=points.points[-1].freq_hz)
            reports = [create(args.cost_model, spec=at_point(spec, p)).evaluate(layers) for p in points]
            best = min(range(len(reports)), key=lambda i: reports[i].energy_uj)
            fastest = reports[-1]
            for i, r in enumerate(reports):
                e = r.energy_breakdown_uj
                print(f"| {energy} | {table} | {r.spec.clock_hz / 1e6:g} | {r.spec.voltage * 1e3:g} | {r.latency_ms:.4g} | "
                      f"{r.energy_uj:.4g} | {e['mac']:.3g} | {e['sram']:.3g} | {e['dram']:.3g} | {e['leakage']:.3g} | "
                      f"{r.edp_uj_ms:.4g} | {'least energy' if i == best else ''} |")
            b = reports[best]
            summary.append(f"{energy} on {table}: least energy at {b.spec.clock_hz / 1e6:g} MHz / {b.spec.voltage * 1e3:g} mV, "
                           f"{b.energy_uj:.4g} uJ = {100 * (1 - b.energy_uj / fastest.energy_uj):.1f} % below the fastest point, "
                           f"{b.latency_ms / fastest.latency_ms:.2f}x its latency; leakage share there "
                           f"{100 * b.energy_breakdown_uj['leakage'] / b.energy_uj:.1f} %")
    print()
    for line in summary:
        print(line)
    return 0


def _load(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def part_c(args) -> int:
    from tests.hardware.test_scalesim_golden import shape_of
    from uboost.hardware import HardwareSpec, LayerTable, create
    from uboost.hardware.access import ACCESS_KEYS, access_counts

    rows = _load(DATA / "scalesim_access_golden.csv")
    exact = total = 0
    windowed = 0
    for row in rows:
        spec = HardwareSpec(rows=int(row["rows"]), cols=int(row["cols"]), dataflow=row["dataflow"], batch_size=int(row["batch"]))
        counts = access_counts(spec, LayerTable.from_shapes([shape_of(row)]))
        for key in ACCESS_KEYS:
            if key == "ifmap_dram_reads" and row["topology"] == "gemm" and int(row["kernel_h"]) > 1:
                windowed += 1  # SCALE-Sim's GEMM rows read im2col; checked against B x batch 1 in the test
                continue
            total += 1
            exact += counts[key].item() == int(row[key])
    print(f"(c1) CALC mode: {exact}/{total} counts equal SCALE-Sim's exactly ({100 * exact / total:.1f} %) on {len(rows)} "
          f"points x 6 counts ({windowed} batched-conv ifmap DRAM reads compared as batch x the batch-1 count instead)")

    path = DATA / "scalesim_user_access.csv"
    if not path.exists():
        print(f"(c2) {path} missing: run tools/make_scalesim_access_golden.py --user")
        return 0
    user = _load(path)
    configs: dict[tuple, list] = {}
    same: dict[str, int] = {}
    for row in user:
        spec = HardwareSpec(rows=int(row["rows"]), cols=int(row["cols"]), dataflow=row["dataflow"], batch_size=int(row["batch"]),
                            sram_kb=int(row["sram_kb"]), dram_bw_words=float(row["dram_bw_words"]))
        table = LayerTable.from_shapes([shape_of(row)])
        unbounded = access_counts(spec, table)
        mem = create("systolic-mem", spec=spec).accesses(table)
        for key in ("ifmap_sram_reads", "filter_sram_reads", "ofmap_sram_writes", "ofmap_dram_writes"):
            same[key] = same.get(key, 0) + (mem[key].item() == int(row[key]))
        truth = int(row["ifmap_dram_reads"]) + int(row["filter_dram_reads"])
        flat = unbounded["ifmap_dram_reads"].item() + unbounded["filter_dram_reads"].item()
        est = mem["ifmap_dram_reads"].item() + mem["filter_dram_reads"].item()
        configs.setdefault((spec.array, spec.dataflow, int(row["sram_kb"])), []).append((truth, flat, est, row))
    print(f"\n(c2) USER mode, DRAM reads (ifmap + filter words, re-fetches included) on {len(user)} points: "
          "mean absolute % error; 'reads > unique' = share of points where SCALE-Sim reads more words than the unique "
          "ones; 'unbounded counts' = the CALC-mode counts (unique words, read once)")
    print("\n| array | dataflow | SRAM kB | points | reads > unique | unbounded counts MAPE | systolic-mem MAPE | systolic-mem median |")
    print("|---|---|---|---|---|---|---|---|")
    every_flat, every_est = [], []
    for (array, flow, kb), items in sorted(configs.items()):
        flat = [abs(f - t) / t for t, f, _, _ in items]
        est = [abs(e - t) / t for t, _, e, _ in items]
        refetch = sum(t > f for t, f, _, _ in items) / len(items)
        every_flat += flat
        every_est += est
        print(f"| {array} | {flow} | {kb} | {len(items)} | {100 * refetch:.0f} % | {100 * statistics.mean(flat):.1f} % | "
              f"{100 * statistics.mean(est):.1f} % | {100 * statistics.median(est):.1f} % |")
    print(f"\nall USER points: unbounded counts MAPE {100 * statistics.mean(every_flat):.1f} %, systolic-mem MAPE "
          f"{100 * statistics.mean(every_est):.1f} % (median {100 * statistics.median(every_est):.1f} %)")
    print("USER mode, other counts equal to SCALE-Sim's: " + ", ".join(f"{k} {v}/{len(user)}" for k, v in same.items()))
    worst = sorted((abs(e - t) / t, r["layer"], r["rows"], r["dataflow"], r["sram_kb"], t, e)
                   for items in configs.values() for t, _, e, r in items)[-5:]
    for err, layer, r, flow, kb, t, e in reversed(worst):
        print(f"  worst: {layer} {r}x{r} {flow} {kb} kB: SCALE-Sim {t:,} words, systolic-mem {e:,.0f} ({100 * err:.0f} %)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["b", "c"], required=True)
    parser.add_argument("--network", default="resnet18")
    parser.add_argument("--input", default="3x32x32")
    parser.add_argument("--array", default="16x16")
    parser.add_argument("--dataflow", default="ws")
    parser.add_argument("--cost-model", default="systolic")
    parser.add_argument("--sram-kb", type=int, default=16)
    parser.add_argument("--dram-bw-gbps", type=float, default=0.0, help="0: unbounded")
    parser.add_argument("--tables", nargs="+", default=["rk3576-npu", "rk356x-gpu"])
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    return part_b(args) if args.part == "b" else part_c(args)


if __name__ == "__main__":
    sys.exit(main())
