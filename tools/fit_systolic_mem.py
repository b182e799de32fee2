#!/usr/bin/env python3
"""Choose the constants of ``systolic-mem`` on the ``fit`` rows of the SCALE-Sim USER-mode data.

Least squares on log(predicted / simulated) cycles (robust soft-L1 loss), with the torch model
itself (``uboost.hardware.systolic_mem.COEFFICIENTS`` patched), so what is fitted is what ships.
Prints the COEFFICIENTS literal to paste into ``systolic_mem.py`` and the error on both splits;
``benchmarks/bench_memory_model.py`` gives the per-configuration table.

    python tools/fit_systolic_mem.py [--data tests/hardware/data/scalesim_user.csv]
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

KEYS = [("ws", "ifmap_reuse"), ("ws", "ifmap"), ("ws", "filter"), ("os", "ifmap_reuse"), ("os", "ifmap"), ("os", "filter")]


def unpack(theta) -> dict:
    coef = {"ws": {}, "os": {}}
    for i, (flow, operand) in enumerate(KEYS):
        coef[flow][operand] = tuple(float(x) for x in theta[3 * i : 3 * i + 3])
    coef["combine"] = {"overlap": float(theta[18]), "writes": float(theta[19])}
    return coef


def main() -> int:
    import numpy as np
    import torch
    from scipy.optimize import least_squares

    from bench_memory_model import shape
    from uboost.hardware import HardwareSpec, LayerTable, create
    from uboost.hardware import systolic_mem

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / "tests" / "hardware" / "data" / "scalesim_user.csv")
    args = parser.parse_args()
    with open(args.data, newline="") as f:
        rows = list(csv.DictReader(f))
    groups: dict[tuple, list] = {}
    for r in rows:
        key = (int(r["rows"]), int(r["cols"]), r["dataflow"], int(r["batch"]), int(r["sram_kb"]), float(r["dram_bw_words"]), r["split"])
        groups.setdefault(key, []).append(r)
    prepared = []
    for (rr, cc, flow, batch, kb, bw, split), members in groups.items():
        model = create("systolic-mem", spec=HardwareSpec(rows=rr, cols=cc, dataflow=flow, batch_size=batch, sram_kb=kb, dram_bw_words=bw))
        table = LayerTable.from_shapes([shape(m) for m in members])
        target = torch.tensor([float(m["cycles"]) for m in members], dtype=torch.float64)
        prepared.append((split, (rr, cc, flow, kb, bw), model, table, target))

    def predictions(theta, split):
        systolic_mem.COEFFICIENTS.update(unpack(theta))
        return [(cfg, model.cycles(table), target) for s, cfg, model, table, target in prepared if s == split]

    def residuals(theta):
        return torch.cat([torch.log(p.clamp_min(1.0) / t) for _, p, t in predictions(theta, "fit")]).numpy()

    theta0 = np.array([1.0, 0.0, 0.1] * 6 + [0.2, 1.0])
    fit = least_squares(residuals, theta0, bounds=(0.0, 20.0), loss="soft_l1")
    coef = unpack(fit.x)
    print("COEFFICIENTS = {")
    for flow in ("ws", "os"):
        inner = ", ".join(f'"{k}": ({", ".join(f"{x:.4g}" for x in v)})' for k, v in coef[flow].items())
        print(f'    "{flow}": {{{inner}}},')
    print(f'    "combine": {{"overlap": {coef["combine"]["overlap"]:.4g}, "writes": {coef["combine"]["writes"]:.4g}}},')
    print("}")
    for split in ("fit", "held-out"):
        by: dict[tuple, list] = {}
        for cfg, p, t in predictions(fit.x, split):
            by.setdefault(cfg, []).extend(zip(p.tolist(), t.tolist()))
        mapes = [statistics.mean(abs(a - b) / b for a, b in pts) for pts in by.values()]
        print(f"{split}: mean MAPE over {len(by)} configurations {100 * statistics.mean(mapes):.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
