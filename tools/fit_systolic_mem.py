#!/usr/bin/env python3
"""Fit the constants of ``systolic-mem`` to SCALE-Sim USER-mode data, and score them on layers left out.

Least squares on log(predicted / simulated) cycles (robust soft-L1 loss), with the torch model
itself (``uboost.hardware.systolic_mem.COEFFICIENTS`` patched), so what is fitted is what ships.
Three ways to score constants on rows they were not fitted on, per configuration (array,
dataflow, SRAM, bandwidth) and then averaged over configurations:

* ``split``: fitted on the rows marked ``fit`` in the data file, scored on those marked
  ``held-out`` (every third layer: 11 layers per configuration);
* ``3-fold``: layers dealt into three folds (layer i into fold i mod 3); each fold's rows are
  predicted by constants fitted on the other two, and MAPE and Kendall's tau are computed over
  all 34 out-of-fold predictions of a configuration;
* ``leave-one-out``: the same with one fold per layer.

Then the constants that ship are fitted on every row. Prints the ``COEFFICIENTS`` literal to
paste into ``systolic_mem.py`` and the scores; ``benchmarks/bench_memory_model.py`` prints the
per-configuration table of the shipped constants.

    python tools/fit_systolic_mem.py [--data FILE] [--scores split,3-fold[,leave-one-out]]

The residual is the relative error (what MAPE scores); every fit starts from ``START``. The model's
structure was chosen by 3-fold cross-validation within the ``fit`` rows only.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASE = REPO / "tests" / "hardware" / "data" / "scalesim_user.csv"
GROUPS = REPO / "tests" / "hardware" / "data" / "scalesim_user_groups.csv"
DATA = [BASE, GROUPS]  # 32x32 WS/OS at 16-256 kB (issue 11), then 128x128, IS and 8 kB (issue 22)
sys.path.insert(0, str(REPO / "benchmarks"))


def flatten(coef: dict) -> tuple[list[tuple[str, str]], list[float]]:
    keys = [(group, name) for group, inner in coef.items() for name in inner]
    return keys, [float(coef[g][n]) for g, n in keys]


def unflatten(keys, theta) -> dict:
    coef: dict[str, dict[str, float]] = {}
    for (group, name), value in zip(keys, theta):
        coef.setdefault(group, {})[name] = float(value)
    return coef


class Data:
    """The rows of the data files, with the model's constant-free terms computed once per row
    (``MemorySystolicArray.terms``), so that predicting with new constants is a few tensor operations."""

    def __init__(self, paths=DATA, keep=None):
        import torch

        from bench_memory_model import shape
        from uboost.hardware import HardwareSpec, LayerTable, create
        from uboost.hardware.systolic import compute_cycles
        from uboost.hardware.systolic_mem import window_reuse

        paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
        self.rows = []
        for path in paths:
            with open(path, newline="") as f:
                self.rows += [r for r in csv.DictReader(f) if keep is None or keep(r)]
        self.layers = list(dict.fromkeys(r["layer"] for r in self.rows))  # in file order
        self.config = [(f"{r['rows']}x{r['cols']}", r["dataflow"], int(r["sram_kb"]), float(r["dram_bw_words"])) for r in self.rows]
        self.target = torch.tensor([float(r["cycles"]) for r in self.rows], dtype=torch.float64)
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(self.rows):
            key = (int(r["rows"]), int(r["cols"]), r["dataflow"], int(r["batch"]), int(r["sram_kb"]), float(r["dram_bw_words"]))
            groups.setdefault(key, []).append(i)
        self.groups = []  # (dataflow, row index, layer groups, terms)
        for (rr, cc, flow, batch, kb, bw), index in groups.items():
            spec = HardwareSpec(rows=rr, cols=cc, dataflow=flow, batch_size=batch, sram_kb=kb, dram_bw_words=bw)
            table = LayerTable.from_shapes([shape(self.rows[i]) for i in index])
            model = create("systolic-mem", spec=spec)
            reps, compute, (ceil, m, k, n) = compute_cycles(spec, table)
            reuse, cover = (t.to(compute.dtype) for t in window_reuse(table, batch, kb))
            terms = model.terms(compute, m, k, n, ceil, None, table.weight_bits / 8.0, table.act_bits / 8.0, ifmap_copies=reuse > 1.0,
                                ifmap_reach=model.ifmap_reach(table, m, k))
            terms["reuse"], terms["cover"] = reuse, cover
            self.groups.append((flow, torch.tensor(index), reps, terms))

    def predict(self, coef: dict):
        """Cycles of every row with the constants ``coef`` (the model's own :func:`combine`)."""
        import torch

        from uboost.hardware.systolic_mem import combine

        out = torch.empty_like(self.target)
        for flow, index, reps, terms in self.groups:
            out[index] = (reps * combine(terms, flow, coef)).to(out.dtype)
        return out

    def fold_of(self, folds: int) -> list[int]:
        """Fold of every row: layer i (in file order) goes into fold ``i mod folds``."""
        where = {name: i % folds for i, name in enumerate(self.layers)}
        return [where[r["layer"]] for r in self.rows]


# The small slice that tests/hardware/test_memory_groups.py scores held out (bench_memory_model.py
# --groups --slice prints the same): a few groups of each kind, every other layer of the file.
SLICE_GROUPS = {("32x32", "ws", 16, 10.0), ("32x32", "os", 64, 10.0), ("32x32", "is", 64, 10.0), ("32x32", "ws", 8, 10.0),
                ("128x128", "ws", 16, 10.0), ("128x128", "os", 16, 10.0), ("128x128", "is", 64, 10.0)}


def in_slice(row: dict) -> bool:
    key = (f"{row['rows']}x{row['cols']}", row["dataflow"], int(row["sram_kb"]), float(row["dram_bw_words"]))
    return key in SLICE_GROUPS and row["layer"] in SLICE_LAYERS


SLICE_LAYERS = {
    "stem_conv3x3_3_48", "c0_sep3x3_dw_16", "c0_conv3x3_16_16", "c2_preprocess_1x1_64_32", "c2_conv3x3_s2_32_32",
    "c3_preprocess_1x1_128_32", "c3_sep_pw_32_32", "c3_conv5x5_32_32", "c5_conv3x3_s2_64_64", "c6_sep3x3_dw_64",
    "c6_conv3x3_64_64", "c6_conv3x3_64_128", "conv1_5x5_1_16", "conv2_5x5_16_64", "fc_512_64", "layer4_0_downsample_1x1_s2",
    "c6_sep_pw_64_64_b8", "classifier_fc_256_10_b64",
}


# Where every fit starts (not the shipped constants, which were fitted on every row).
START = {"ws": {"ifmap": 0.5, "reuse": 0.0, "cover": 0.0}, "os": {"ifmap": 0.5, "reuse": 0.0, "cover": 0.0},
         "is": {"ifmap": 0.5, "reuse": 0.0, "cover": 0.0},
         "combine": {"overlap": 0.3, "writes": 1.0, "ports": 0.5}}
RELATIVE = True  # residual: the relative error (what MAPE scores; it cross-validated better), else the log ratio


def fit(data: Data, rows: list[int], start: dict) -> dict:
    """Constants that minimise the soft-L1 loss of log(predicted / simulated) over ``rows``. Each is bounded to
    [0, 5]: a fold of a small slice with few layers for a weight otherwise drove it to the bound (20 before), the
    constants fitted on all rows are all below 3."""
    import numpy as np
    import torch
    from scipy.optimize import least_squares

    keys, theta0 = flatten(start)
    index = torch.tensor(rows)

    def residuals(theta):
        p = data.predict(unflatten(keys, theta))[index]
        ratio = p.clamp_min(1.0) / data.target[index]
        return (ratio - 1.0 if RELATIVE else torch.log(ratio)).numpy()

    result = least_squares(residuals, np.array(theta0), bounds=(0.0, 5.0), loss="soft_l1")
    return unflatten(keys, result.x)


def scores(data: Data, predicted, rows: list[int]) -> dict:
    """{"mape", "tau", "mape_64_10": {flow: ...}, "per_config": {(array, flow, kb, bw): (mape, tau)}}:
    MAPE and Kendall's tau per configuration of ``rows`` and their means over configurations
    (``mape_64_10``: 32x32 arrays at 64 kB and 10 words per cycle)."""
    from bench_memory_model import kendall_tau

    by: dict[tuple, list[int]] = {}
    for i in rows:
        by.setdefault(data.config[i], []).append(i)
    per = {}
    for cfg, index in by.items():
        p = [float(predicted[i]) for i in index]
        t = [float(data.target[i]) for i in index]
        per[cfg] = (statistics.mean(abs(a - b) / b for a, b in zip(p, t)), kendall_tau(p, t))
    at64 = {flow: v[0] for (array, flow, kb, bw), v in per.items() if array == "32x32" and kb == 64 and bw == 10}
    return {
        "mape": statistics.mean(v[0] for v in per.values()),
        "tau": statistics.mean(v[1] for v in per.values() if v[1] == v[1]),
        "mape_64_10": at64,
        "per_config": per,
    }


def out_of_fold(data: Data, folds: list[int], start: dict):
    """Every row predicted by constants fitted on the rows of the other folds."""
    import torch

    predicted = torch.empty_like(data.target)
    for f in sorted(set(folds)):
        train = [i for i, g in enumerate(folds) if g != f]
        test = torch.tensor([i for i, g in enumerate(folds) if g == f])
        predicted[test] = data.predict(fit(data, train, start))[test]
    return predicted


def held_out_scores(data: Data, which: list[str], start: dict) -> dict:
    """{name: scores} of constants scored only on rows they were not fitted on."""
    everything = list(range(len(data.rows)))
    out = {}
    for name in which:
        if name == "split":
            train = [i for i, r in enumerate(data.rows) if r["split"] == "fit"]
            test = [i for i, r in enumerate(data.rows) if r["split"] == "held-out"]
            out[name] = scores(data, data.predict(fit(data, train, start)), test)
        else:
            folds = data.fold_of(3 if name == "3-fold" else len(data.layers))
            out[name] = scores(data, out_of_fold(data, folds, start), everything)
    return out


def per_group(data: Data, folds: int = 3, start: dict = START, predicted=None) -> dict:
    """{(array, dataflow, kB, w/c): {"n", "held_out", "shipped", "compute"}}: per configuration, the MAPE
    of constants refitted without the scored layers (``folds``-fold over layers: layer i in fold
    i mod folds; every row predicted by constants fitted on the other folds' rows of *every*
    configuration), of the shipped constants (in-sample) and of compute-only pricing. ``predicted``:
    the out-of-fold predictions when already computed (:func:`out_of_fold`)."""
    import torch

    from uboost.hardware.systolic_mem import COEFFICIENTS

    everything = list(range(len(data.rows)))
    if predicted is None:
        predicted = out_of_fold(data, data.fold_of(folds), start)
    held = scores(data, predicted, everything)["per_config"]
    shipped = scores(data, data.predict(COEFFICIENTS), everything)["per_config"]
    compute = torch.tensor([float(r["compute_cycles"]) for r in data.rows], dtype=torch.float64)
    plain = scores(data, compute, everything)["per_config"]
    n = {cfg: data.config.count(cfg) for cfg in held}
    return {cfg: {"n": n[cfg], "held_out": held[cfg][0], "shipped": shipped[cfg][0], "compute": plain[cfg][0]}
            for cfg in sorted(held, key=lambda c: (int(c[0].split("x")[0]), c[1], c[2], c[3]))}


def line(name: str, s: dict) -> str:
    at = s["mape_64_10"]
    mean64 = statistics.mean(at.values()) if at else float("nan")
    flows = ", ".join(f"{flow.upper()} {100 * v:.1f} %" for flow, v in sorted(at.items(), reverse=True))
    return f"| {name} | {100 * s['mape']:.1f} % | {s['tau']:.3f} | {100 * mean64:.1f} % ({flows}) |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, nargs="+", default=[p for p in DATA if p.exists()])
    parser.add_argument("--scores", default="split,3-fold")
    args = parser.parse_args()
    data = Data(args.data)
    start = START  # the same neutral start for every fit: the shipped values would leak into the scores
    which = [s.strip() for s in args.scores.split(",") if s.strip()]
    shipped = fit(data, list(range(len(data.rows))), start)
    print("COEFFICIENTS: dict[str, dict[str, float]] = {")
    for group, inner in shipped.items():
        print(f'    "{group}": {{' + ", ".join(f'"{k}": {v:.4g}' for k, v in inner.items()) + "},")
    print("}\n")
    print("| constants scored on | mean MAPE | mean Kendall tau | MAPE at 64 kB, 10 w/c (mean: WS, OS) |")
    print("|---|---|---|---|")
    print(line("all rows, fitted on all (shipped)", scores(data, data.predict(shipped), list(range(len(data.rows))))))
    for name, s in held_out_scores(data, which, start).items():
        print(line(name, s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
