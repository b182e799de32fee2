#!/usr/bin/env python3
"""Golden per-layer access counts from SCALE-Sim 3.0's ``DETAILED_ACCESS_REPORT.csv``.

Output (CALC mode, buffers large enough): ``tests/hardware/data/scalesim_access_golden.csv``, one
row per (layer x array x dataflow) point with SCALE-Sim's SRAM ifmap/filter reads, SRAM ofmap
writes, DRAM ifmap/filter reads and DRAM ofmap writes (summed over the topology rows of a layer:
a depthwise layer is ``C`` one-channel layers). ``tests/hardware/test_access_golden.py`` asserts
that :func:`uboost.hardware.access.access_counts` equals them.

With ``--user`` it writes ``tests/hardware/data/scalesim_user_access.csv`` instead: the same
counts in USER bandwidth mode (finite SRAM, so operands are re-fetched from DRAM), for
``benchmarks/bench_energy.py`` to measure how far the unbounded-memory DRAM counts (and
``systolic-mem``) are from SCALE-Sim's re-fetches.

Runs in SCALE-Sim's own virtualenv (standard library + ``scalesim``; no uboost, no torch)::

    ~/.cache/uboost/scalesim-venv/bin/python tools/make_scalesim_access_golden.py --jobs 1 [--user] [--list]

The layers are those of ``tools/make_scalesim_golden.py`` (its ``build_layers``) whose simulation
is short, given the same way (SCALE-Sim has no padding: ``in = (out - 1) * stride + k``; batch is
fixed at 1, so batched layers and ``Linear`` run as GEMM rows with ``M = B * out_h * out_w``,
where SCALE-Sim sees no convolution windows and reads the ``M x K`` im2col matrix from DRAM). The
topologies and the config come from ``make_scalesim_golden._topology`` and uboost's SCALE-Sim
worker, so every tool asks SCALE-Sim the same way. The 508 CALC points took 48 minutes on this
(heavily shared) 2-core machine with ``--jobs 1``; the 90 USER points are CIFAR-sized layers only.
Run it with ``nice``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import multiprocessing as mp
import os
import shutil
import signal
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "src", "uboost", "hardware"))  # _scalesim_worker: stdlib + scalesim only

import make_scalesim_golden as golden  # noqa: E402
from _scalesim_worker import CONFIG  # noqa: E402

DATA = os.path.join(REPO, "tests", "hardware", "data")
DEFAULT_OUT = os.path.join(DATA, "scalesim_access_golden.csv")
DEFAULT_USER_OUT = os.path.join(DATA, "scalesim_user_access.csv")

COUNTS = ["ifmap_sram_reads", "filter_sram_reads", "ofmap_sram_writes", "ifmap_dram_reads", "filter_dram_reads", "ofmap_dram_writes"]
REPORT_COLUMNS = {  # DETAILED_ACCESS_REPORT.csv header -> our key
    "SRAM IFMAP Reads": "ifmap_sram_reads", "SRAM Filter Reads": "filter_sram_reads", "SRAM OFMAP Writes": "ofmap_sram_writes",
    "DRAM IFMAP Reads": "ifmap_dram_reads", "DRAM Filter Reads": "filter_dram_reads", "DRAM OFMAP Writes": "ofmap_dram_writes",
}
HEADER = [
    "network", "layer", "kind", "batch", "in_channels", "out_channels", "groups", "kernel_h", "kernel_w", "stride",
    "in_h", "in_w", "out_h", "out_w", "rows", "cols", "dataflow", "topology", "sram_kb", "dram_bw_words", *COUNTS,
]

# square, wide and tall arrays (rows x cols): non-square both ways
ARRAYS = [(16, 16), (8, 32), (32, 8)]
DATAFLOWS = ["ws", "os", "is"]
MAX_SECONDS = 3.0  # rough simulation time per point (make_scalesim_golden._rough_seconds)
UNBOUNDED_KB = 4096  # CALC mode: every operand fits

# USER mode: CIFAR-sized DARTS layers (as systolic-mem was fitted on) on 32x32 WS and OS, two buffer
# sizes, 10 words per cycle; USER simulations run far longer than CALC ones (an fc layer of ResNet-18
# at 16 kB OS took minutes on a loaded machine), hence the tighter bound
USER_NETWORKS = {"darts_cifar"}
USER_ARRAYS = [(32, 32, "ws"), (32, 32, "os")]
USER_SRAM_KB = [16, 64]
USER_BW = 10
USER_MAX_SECONDS = 0.4


def simulate(task) -> tuple[int, dict[str, int], float]:
    idx, layer, rows, cols, df, mode, sram_kb, bw, workroot = task
    from scalesim.scale_sim import scalesim

    t0 = time.time()
    wd = tempfile.mkdtemp(prefix=f"pt{idx}_", dir=workroot)
    try:
        cfg = os.path.join(wd, "uboost.cfg")
        with open(cfg, "w") as f:
            f.write(CONFIG.format(mode=mode, rows=rows, cols=cols, dataflow=df, ifmap_kb=sram_kb, filter_kb=sram_kb,
                                  ofmap_kb=sram_kb, bw=bw))
        text, gemm = golden._topology(layer)
        topo = os.path.join(wd, "topology.csv")
        with open(topo, "w") as f:
            f.write(text)
        lay = os.path.join(wd, "layout.csv")
        with open(lay, "w") as f:
            f.write("Layer name,\n")
        with contextlib.redirect_stdout(io.StringIO()):
            sim = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=lay, input_type_gemm=gemm)
            sim.run_scale(top_path=wd)
        with open(os.path.join(wd, "uboost", "DETAILED_ACCESS_REPORT.csv")) as f:
            lines = [ln for ln in f.read().splitlines() if ln.strip()]
        head = [h.strip() for h in lines[0].split(",")]
        index = {key: head.index(name) for name, key in REPORT_COLUMNS.items()}
        counts = dict.fromkeys(COUNTS, 0)
        for line in lines[1:]:
            fields = [x.strip() for x in line.split(",")]
            for key, i in index.items():
                counts[key] += int(float(fields[i]))
        if len(lines) - 1 != layer.n_gemms():
            raise RuntimeError(f"{layer}: {len(lines) - 1} report rows, expected {layer.n_gemms()}")
        return idx, counts, time.time() - t0
    finally:
        shutil.rmtree(wd, ignore_errors=True)


def points(user: bool) -> list[tuple]:
    layers = golden.build_layers()
    out = []
    if user:
        for layer in (x for x in layers if x.network in USER_NETWORKS):
            for rows, cols, df in USER_ARRAYS:
                if golden._rough_seconds(layer, rows, cols, df) <= USER_MAX_SECONDS:
                    out += [(layer, rows, cols, df, "USER", kb, USER_BW) for kb in USER_SRAM_KB]
        return out
    for layer in layers:
        for rows, cols in ARRAYS:
            for df in DATAFLOWS:
                if golden._rough_seconds(layer, rows, cols, df) <= MAX_SECONDS:
                    out.append((layer, rows, cols, df, "CALC", UNBOUNDED_KB, 10))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--user", action="store_true", help="USER mode (finite SRAM) instead of CALC")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", default=None)
    ap.add_argument("--list", action="store_true", help="list the points and a rough time; do not simulate")
    args = ap.parse_args(argv)
    todo = points(args.user)
    rough = [golden._rough_seconds(p[0], p[1], p[2], p[3]) for p in todo]
    if args.list:
        for p, s in zip(todo, rough):
            print(f"{p[0].network:12s} {p[0].layer:36s} b{p[0].batch:<3d} {p[1]}x{p[2]} {p[3]} {p[4]} {p[5]} kB ~{s:.1f}s")
        print(f"{len(todo)} points ({len({p[0] for p in todo})} layers), rough total {sum(rough) / 60:.1f} core-minutes")
        return 0
    out = args.out or (DEFAULT_USER_OUT if args.user else DEFAULT_OUT)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # SystemExit: the scratch directory is still removed
    workroot = tempfile.mkdtemp(prefix="scalesim_access_")
    tasks = [(i, *p, workroot) for i, p in enumerate(todo)]
    order = sorted(tasks, key=lambda t: -rough[t[0]])
    results: dict[int, dict[str, int]] = {}
    t0 = time.time()
    try:
        if args.jobs > 1:
            with mp.get_context("fork").Pool(args.jobs) as pool:
                stream = pool.imap_unordered(simulate, order, chunksize=1)
                for n, (idx, counts, _) in enumerate(stream, 1):
                    results[idx] = counts
                    if n % 20 == 0:
                        print(f"[{n}/{len(tasks)}] {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
        else:
            for n, task in enumerate(order, 1):
                idx, counts, _ = simulate(task)
                results[idx] = counts
                if n % 20 == 0:
                    print(f"[{n}/{len(tasks)}] {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(workroot, ignore_errors=True)
    fd, tmp = tempfile.mkstemp(prefix=".access_", suffix=".csv", dir=os.path.dirname(os.path.abspath(out)))
    try:
        with os.fdopen(fd, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(HEADER)
            for i, (layer, rows, cols, df, mode, kb, bw) in enumerate(todo):
                topology = "gemm" if layer.batch > 1 or layer.kind == "fc" else "conv"
                w.writerow([
                    layer.network, layer.layer, layer.kind, layer.batch, layer.cin, layer.cout, layer.groups, layer.k, layer.k,
                    layer.stride, layer.in_size, layer.in_size, layer.out, layer.out, rows, cols, df, topology,
                    kb if mode == "USER" else "", bw if mode == "USER" else "", *(results[i][k] for k in COUNTS),
                ])
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    print(f"wrote {len(todo)} rows to {out} in {time.time() - t0:.0f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
