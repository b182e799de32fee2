#!/usr/bin/env python3
"""Exact DRAM prefetch counts of SCALE-Sim's read buffers, and how well ``systolic-mem`` would do with them.

A diagnostic for ``systolic-mem`` (issue 22), not a cost model. Two steps, in two interpreters:

1. In SCALE-Sim's virtualenv, replay every (layer, array, dataflow, SRAM) point of the USER-mode
   data: SCALE-Sim's own compute classes build the ifmap and filter prefetch and demand matrices
   (from the im2col addresses of its ``operand_matrix``: no padding, a batch as a GEMM, a
   depthwise layer as one one-channel layer), then the hit test and the window moves of its
   ``memory/read_buffer.py`` run on them (lines of ``ceil(S / 100)`` fetched words; an address hits
   when any line of the active window holds it; a miss moves the window by the prefetch half).
   Only the prefetch counts come out, no timing: 1-2 s per point, not minutes. Bandwidth does not
   change them.

       ~/.cache/uboost/scalesim-venv/bin/python tools/replay_scalesim_prefetches.py replay OUT.jsonl

2. With uboost, put those counts in place of the model's (sequential + weighted wrap-arounds) and
   score the same 3-fold held-out fit per group as ``bench_memory_model.py --groups``: what the
   model's ``combine`` could reach if its counts were exact (4.6 % mean in RESULTS.md).

       python tools/replay_scalesim_prefetches.py oracle OUT.jsonl

3. In SCALE-Sim's virtualenv, the filter and ifmap ports' prefetches (OS, WS, IS) on a grid of GEMM shapes (batch-1
   ``Linear`` layers and 1x1 convs over a few output pixels, 16x16 to 128x128 arrays, 8-64 kB): the
   golden data of ``tests/hardware/test_window_trace.py``, which checks ``systolic-mem``'s exact traces
   (``uboost.hardware._window_trace.traced_passes`` and ``traced_stationary``) against them.

       ~/.cache/uboost/scalesim-venv/bin/python tools/replay_scalesim_prefetches.py filters tests/hardware/data/filter_prefetches.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = [REPO / "tests" / "hardware" / "data" / name for name in ("scalesim_user.csv", "scalesim_user_groups.csv")]


def key_of(row: dict) -> tuple:
    return row["layer"], int(row["rows"]), int(row["cols"]), row["dataflow"], int(row["sram_kb"])


def operands(row: dict):
    """SCALE-Sim's ifmap, filter and ofmap address matrices of a data row (``operand_matrix`` layout)."""
    import numpy as np

    batch, cin, cout, groups = int(row["batch"]), int(row["in_channels"]), int(row["out_channels"]), int(row["groups"])
    kh, kw, s, oh, ow = int(row["kernel_h"]), int(row["kernel_w"]), int(row["stride"]), int(row["out_h"]), int(row["out_w"])
    if row["kind"] == "linear" or batch > 1:  # a GEMM: distinct addresses (a 1x1 conv over M pixels of K channels)
        channels, filters, oh, ow = kh * kw * cin // groups, cout // groups, 1, batch * oh * ow
        kh = kw = s = 1
    else:
        depthwise = groups == cin and groups > 1
        channels, filters = (1, 1) if depthwise else (cin // groups, cout // groups)
    width = (ow - 1) * s + kw
    i = np.arange(oh * ow)[:, None]
    j = np.arange(kh * kw * channels)[None, :]
    orow, ocol = np.divmod(i, ow)
    krow, rest = np.divmod(j, kw * channels)
    kcol, ch = np.divmod(rest, channels)
    ifmap = ((orow * s + krow) * width + ocol * s + kcol) * channels + ch
    filt = 10_000_000 + np.arange(kh * kw * channels)[:, None] * filters + np.arange(filters)[None, :]
    ofmap = 20_000_000 + np.arange(oh * ow)[:, None] * filters + np.arange(filters)[None, :]
    return ifmap, filt, ofmap


class _Config:  # what SCALE-Sim's compute classes read from their config
    sparsity_support = False
    sparsity_optimized_mapping = False

    def __init__(self, rows: int, cols: int):
        self.rows, self.cols = rows, cols

    def get_array_dims(self):
        return self.rows, self.cols


def matrices(flow: str, rows: int, cols: int, ifmap, filt, ofmap):
    """((ifmap prefetch, ifmap demand), (filter prefetch, filter demand)) from SCALE-Sim's compute classes."""
    from scalesim.compute.systolic_compute_is import systolic_compute_is
    from scalesim.compute.systolic_compute_os import systolic_compute_os
    from scalesim.compute.systolic_compute_ws import systolic_compute_ws

    system = {"is": systolic_compute_is, "os": systolic_compute_os, "ws": systolic_compute_ws}[flow]()
    extra = {} if flow != "ws" else {"sparsity_ratio_N": 1, "sparsity_ratio_M": 1, "ifmap_op_mat_original": ifmap,
                                     "sparsity_filter_array": filt * 0 + 1}
    system.set_params(config_obj=_Config(rows, cols), ifmap_op_mat=ifmap, filter_op_mat=filt, ofmap_op_mat=ofmap, **extra)
    prefetch_i, prefetch_f = system.get_prefetch_matrices()
    demand_i, demand_f, _ = system.get_demand_matrices()
    return (prefetch_i, demand_i), (prefetch_f, demand_f)


def replay_port(prefetch, demand, kb: int) -> dict:
    """Prefetches SCALE-Sim's ``read_buffer`` issues for ``demand`` (its hashed lines and window moves)."""
    total = kb * 1024
    per_line = math.ceil(total / 100)
    fetched = prefetch.reshape(-1)
    fetched = fetched[fetched != -1]
    n_lines = len(fetched) // per_line + 1  # read_buffer closes a last (partial or empty) line
    lines_of: dict[int, list[int]] = {}
    for index, address in enumerate(fetched.tolist()):
        lines_of.setdefault(address, []).append(index // per_line)
    active = min(n_lines, math.ceil(math.ceil(total * 0.5) / per_line))
    step = min(n_lines - active, math.ceil((total - math.ceil(total * 0.5)) / per_line))
    start, prefetches = 0, 0
    for row in demand:
        for address in row.tolist():
            if address == -1:
                continue
            lines = lines_of[address]
            while True:
                end = (start + active) % n_lines
                if any((start <= line < end) if start < end else (line >= start or line < end) for line in lines):
                    break
                start = (start + step) % n_lines
                prefetches += 1
    return {"prefetches": prefetches, "lines": n_lines, "active": active}


def replay(out: Path) -> int:
    points = {}
    for path in DATA:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                points.setdefault(key_of(row), row)
    done = set()
    if out.exists():
        done = {tuple(json.loads(line)["key"]) for line in out.read_text().splitlines() if line.strip()}
    with open(out, "a") as f:
        for key, row in sorted(points.items(), key=lambda kv: (kv[0][1], kv[0][4] < 64, kv[0])):
            if key in done:
                continue
            (pi, di), (pf, df) = matrices(key[3], key[1], key[2], *operands(row))
            f.write(json.dumps({"key": list(key), "ifmap": replay_port(pi, di, key[4]), "filter": replay_port(pf, df, key[4])}) + "\n")
            f.flush()
    return 0


def oracle(path: Path) -> int:
    import torch

    sys.path.insert(0, str(REPO / "tools"))
    import fit_systolic_mem as fitting

    torch.set_num_threads(1)
    counts = {tuple(json.loads(line)["key"]): json.loads(line) for line in path.read_text().splitlines() if line.strip()}
    data = fitting.Data(fitting.DATA)
    for _, index, _, terms in data.groups:
        for port in ("ifmap", "filter"):
            exact = [counts[key_of(data.rows[i])][port]["prefetches"] for i in index.tolist()]
            terms[f"{port}_seq"] = torch.tensor(exact, dtype=torch.float64)
            terms[f"{port}_wrap"] = torch.zeros_like(terms[f"{port}_seq"])
    held = [v["held_out"] for v in fitting.per_group(data).values()]
    print(f"systolic-mem's combine with SCALE-Sim's exact prefetch counts, 3-fold held out over {len(held)} groups: "
          f"mean {100 * statistics.mean(held):.1f} %, worst {100 * max(held):.1f} %, {sum(h > 0.25 for h in held)} over 25 %")
    return 0


FILTER_SHAPES = [  # (output pixels, in, out): batch-1 Linear layers, then 1x1 convs over several row folds
    *((1, k, n) for k, n in ((96, 128), (128, 128), (128, 256), (256, 128), (256, 256), (384, 64), (384, 32), (192, 64),
                              (64, 64), (256, 10), (512, 64), (120, 84), (84, 10), (400, 120), (512, 512), (1024, 256))),
    (16, 256, 256), (64, 256, 256), (64, 128, 256), (64, 256, 128), (256, 64, 128), (64, 64, 64), (32, 256, 256),
]


def filters(out: Path) -> int:
    """The filter and ifmap ports' prefetches (OS, WS, IS) on ``FILTER_SHAPES`` x arrays x buffer sizes (GEMMs: every
    input pixel read once), as CSV (written atomically)."""
    import itertools
    import os

    lines = ["dataflow,pixels,in_channels,out_channels,rows,cols,sram_kb,prefetches,ifmap_prefetches"]
    for flow, (pixels, k, n), (rows, cols), kb in itertools.product(("os", "ws", "is"), FILTER_SHAPES, ((16, 16), (32, 32), (128, 128)),
                                                                     (8, 16, 64)):
        side = max(d for d in range(1, int(math.isqrt(pixels)) + 1) if pixels % d == 0)
        row = dict(batch=1, in_channels=k, out_channels=n, groups=1, kernel_h=1, kernel_w=1, stride=1, out_h=side,
                   out_w=pixels // side, kind="linear" if pixels == 1 else "conv")
        (pi, di), (pf, df) = matrices(flow, rows, cols, *operands(row))
        lines.append(f"{flow},{pixels},{k},{n},{rows},{cols},{kb},{replay_port(pf, df, kb)['prefetches']},"
                     f"{replay_port(pi, di, kb)['prefetches']}")
    tmp = out.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, out)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("replay", "oracle", "filters"))
    parser.add_argument("counts", type=Path, help="JSON lines of exact prefetch counts (written by replay, read by oracle), "
                                                  "or the CSV filters writes")
    args = parser.parse_args()
    return {"replay": replay, "oracle": oracle, "filters": filters}[args.step](args.counts)


if __name__ == "__main__":
    sys.exit(main())
