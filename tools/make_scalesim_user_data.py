#!/usr/bin/env python3
"""SCALE-Sim USER-mode (finite SRAM and DRAM bandwidth) cycle counts for the memory-aware models.

Output: ``tests/hardware/data/scalesim_user.csv`` -- one row per (layer x configuration), with
SCALE-Sim 3.0.0's "Total Cycles" (compute plus memory stalls) in USER bandwidth mode, its
stall count and the compute-only cycles of the exact ``systolic`` model. ``benchmarks/
bench_memory_model.py`` scores ``systolic-mem`` (and the compute-only models) against it.

Data sets (``--set``); ``base`` and ``groups`` have the same layers:

* ``base`` (``scalesim_user.csv``): 32x32 WS and OS arrays x SRAM of 16, 64 and 256 kB per buffer x
  DRAM bandwidth of 4, 10 and 32 words per cycle (18 configurations), what ``systolic-mem`` was
  first designed on;
* ``groups`` (``scalesim_user_groups.csv``, issue 22): the accelerators beyond it: 128x128 arrays
  (the paper's default) in WS, OS and IS, 32x32 IS, and 8 kB buffers, each at 4, 10 and 32 words per
  cycle (54 configurations). They are simulated in tiers (10 and 32 words per cycle, 256 kB, 4 words
  per cycle, IS at 4 words per cycle) and the file is rewritten after every tier with every point
  simulated so far, so an interrupted run leaves a usable file and a rerun simulates only what the
  cache lacks. Points whose :func:`rough_user_cycles` exceed 400k are skipped
  (``--max-rough-cycles``): SCALE-Sim takes minutes on each of them (mostly IS at 8-16 kB on the
  32x32 DARTS layers), so the data under-represents the worst thrashing;
* ``linear`` (``scalesim_user_linear.csv``): 20 batch-1 ``Linear`` layers on 32x32 WS, OS and IS
  arrays with 16 kB buffers and 4 words per cycle, a class the other two sets barely hold (two
  shapes). Never fitted on: ``tests/hardware/test_window_trace.py`` checks the model against it.

Layers (``base``, ``groups``): DARTS-style CIFAR layers (32x32, 16x16
and 8x8 maps, 16-128 channels, 3x3/5x5 convs, separable and dilated depthwise, pointwise,
reduction convs), LeNet-style digits layers, two ResNet-18 downsampling layers (bigger layers take minutes each in USER mode), FC layers
and batched (GEMM-mode) layers. Every third layer (by position in the list) is **held out**:
``split = held-out`` rows are never looked at while designing or tuning ``systolic-mem``.

Runs through uboost's own SCALE-Sim runner (``uboost.hardware.scalesim_runner``): its virtualenv
(``$UBOOST_SCALESIM_PYTHON`` or ``uboost hw setup-scalesim``), its disk cache and ``--jobs`` worker
processes; a rerun only simulates what is missing. ``base``: about 80 minutes with ``--jobs 2`` on the
shared 2-core machine; ``groups``: see ``benchmarks/RESULTS.md`` (issue 22).

    python tools/make_scalesim_user_data.py --jobs 2 [--set base|groups|linear] [--tiers 1,2,3] [--out FILE] [--list]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "tests", "hardware", "data")
OUT = {"base": os.path.join(DATA, "scalesim_user.csv"), "groups": os.path.join(DATA, "scalesim_user_groups.csv"),
       "linear": os.path.join(DATA, "scalesim_user_linear.csv")}


def configurations(which: str) -> list[list[tuple[int, int, str, int, int]]]:
    """Tiers of (rows, cols, dataflow, sram_kb, dram_bw_words), simulated in this order."""
    if which == "base":
        return [[(32, 32, df, kb, bw) for df in ("ws", "os") for kb in (16, 64, 256) for bw in (4, 10, 32)]]
    if which == "linear":  # batch-1 Linear layers on an accelerator inside the data (never fitted on: a check)
        return [[(32, 32, df, 16, 4) for df in ("ws", "os", "is")]]
    new = [(128, 128, df, kb) for df in ("ws", "os", "is") for kb in (8, 16, 64)]
    new += [(32, 32, "is", kb) for kb in (8, 16, 64)] + [(32, 32, df, 8) for df in ("ws", "os")]
    roomy = [(128, 128, df, 256) for df in ("ws", "os", "is")] + [(32, 32, "is", 256)]
    # SCALE-Sim's run time follows the cycles, stalls included, which grow as the bandwidth shrinks:
    # 4 w/c last, and IS at 4 w/c (tens of millions of cycles in all) in a tier of its own
    slow = [c + (4,) for c in new]
    return [[c + (10,) for c in new], [c + (32,) for c in new], [c + (bw,) for c in roomy for bw in (4, 10, 32)],
            [c for c in slow if c[2] != "is"], [c for c in slow if c[2] == "is"]]


def rough_user_cycles(job) -> float:
    """A frozen, model-free guess at a USER-mode point's cycles (SCALE-Sim's run time follows them,
    about 5-10k cycles per second here): compute, plus both read operands' words over the bandwidth,
    times how many half buffers they span (an operand far over its buffer circles it again and again)."""
    t = dict(job.topology)
    if t["kind"] == "gemm":
        m, k, n = t["m"], t["k"], t["n"]
    else:
        m = ((t["ifmap_h"] - t["filter_h"]) // t["stride"] + 1) * ((t["ifmap_w"] - t["filter_w"]) // t["stride"] + 1)
        k, n = t["filter_h"] * t["filter_w"] * t["channels"], 1 if t["depthwise"] else t["filters"]
    words, half = m * k + k * n, job.sram_kb[0] * 1024 / 2
    return job.rough_cycles() + words / job.bw * max(1.0, words / half)


HEADER = [
    "network", "layer", "kind", "batch", "in_channels", "out_channels", "groups", "kernel_h", "kernel_w", "stride",
    "in_h", "in_w", "out_h", "out_w", "rows", "cols", "dataflow", "sram_kb", "dram_bw_words", "split",
    "compute_cycles", "cycles", "stall_cycles",
]


def layers(which: str = "base"):
    from uboost.hardware import LayerShape

    out = []
    if which == "linear":  # 20 batch-1 Linear shapes, 96-384 inputs x 32-256 outputs
        return [("linear_sweep", 1, LayerShape(name=f"fc_{k}_{n}", kind="linear", in_channels=k, out_channels=n))
                for k in (96, 128, 192, 256, 384) for n in (32, 64, 128, 256)]

    def conv(net, name, cin, cout, k, stride, size, *, dw=False, batch=1):
        kind = "depthwise" if dw else ("pointwise" if k == 1 else "conv")
        out.append((net, batch, LayerShape(
            name=name, kind=kind, in_channels=cin, out_channels=cout, groups=cin if dw else 1, kernel_h=k, kernel_w=k,
            stride=stride, in_h=size * stride, in_w=size * stride, out_h=size, out_w=size)))

    def fc(net, name, cin, cout, batch=1):
        out.append((net, batch, LayerShape(name=name, kind="linear", in_channels=cin, out_channels=cout)))

    d = "darts_cifar"
    conv(d, "stem_conv3x3_3_48", 3, 48, 3, 1, 32)
    conv(d, "c0_preprocess_1x1_48_16", 48, 16, 1, 1, 32)
    conv(d, "c0_sep3x3_dw_16", 16, 16, 3, 1, 32, dw=True)
    conv(d, "c0_sep_pw_16_16", 16, 16, 1, 1, 32)
    conv(d, "c0_sep5x5_dw_16", 16, 16, 5, 1, 32, dw=True)
    conv(d, "c0_conv3x3_16_16", 16, 16, 3, 1, 32)
    conv(d, "c0_conv5x5_16_16", 16, 16, 5, 1, 32)
    conv(d, "c2_preprocess_1x1_64_32", 64, 32, 1, 1, 32)
    conv(d, "c2_sep3x3_dw_s2_32", 32, 32, 3, 2, 16, dw=True)
    conv(d, "c2_conv3x3_s2_32_32", 32, 32, 3, 2, 16)
    conv(d, "c2_factreduce_1x1_s2_32_16", 32, 16, 1, 2, 16)
    conv(d, "c3_preprocess_1x1_128_32", 128, 32, 1, 1, 16)
    conv(d, "c3_sep5x5_dw_32", 32, 32, 5, 1, 16, dw=True)
    conv(d, "c3_sep_pw_32_32", 32, 32, 1, 1, 16)
    conv(d, "c3_conv3x3_32_32", 32, 32, 3, 1, 16)
    conv(d, "c3_conv5x5_32_32", 32, 32, 5, 1, 16)
    conv(d, "c5_preprocess_1x1_128_64", 128, 64, 1, 1, 16)
    conv(d, "c5_conv3x3_s2_64_64", 64, 64, 3, 2, 8)
    conv(d, "c6_preprocess_1x1_256_64", 256, 64, 1, 1, 8)
    conv(d, "c6_sep3x3_dw_64", 64, 64, 3, 1, 8, dw=True)
    conv(d, "c6_sep_pw_64_64", 64, 64, 1, 1, 8)
    conv(d, "c6_conv3x3_64_64", 64, 64, 3, 1, 8)
    conv(d, "c6_conv5x5_64_64", 64, 64, 5, 1, 8)
    conv(d, "c6_conv3x3_64_128", 64, 128, 3, 1, 8)
    fc(d, "classifier_fc_256_10", 256, 10)
    l = "lenet_digits"
    conv(l, "conv1_5x5_1_16", 1, 16, 5, 1, 8)
    conv(l, "conv2_3x3_16_32", 16, 32, 3, 1, 8)
    conv(l, "conv2_5x5_16_64", 16, 64, 5, 1, 4)
    fc(l, "fc_512_64", 512, 64)
    r = "resnet18"
    conv(r, "layer3_0_downsample_1x1_s2", 128, 256, 1, 2, 14)
    conv(r, "layer4_0_downsample_1x1_s2", 256, 512, 1, 2, 7)
    b = "batched"
    conv(b, "c3_conv3x3_32_32_b4", 32, 32, 3, 1, 16, batch=4)
    conv(b, "c6_sep_pw_64_64_b8", 64, 64, 1, 1, 8, batch=8)
    fc(b, "classifier_fc_256_10_b64", 256, 10, batch=64)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=2, help="SCALE-Sim worker processes")
    ap.add_argument("--set", default="base", choices=sorted(OUT), help="which configurations (see the docstring)")
    ap.add_argument("--tiers", default=None, help="comma-separated tiers to simulate (1-based; default all)")
    ap.add_argument("--out", default=None, help="CSV to write (default: the set's file under tests/hardware/data)")
    ap.add_argument("--python", default=None, help="interpreter with scalesim (default: uboost's search order)")
    ap.add_argument("--list", action="store_true", help="list the points; do not simulate")
    ap.add_argument("--max-rough-cycles", type=float, default=None,
                    help="skip points whose rough_user_cycles exceed this (groups: 400000; base: no cap)")
    args = ap.parse_args(argv)

    from uboost.hardware import HardwareSpec
    from uboost.hardware.scalesim_runner import ResultCache, RunStats, layer_job, simulate

    tiers = configurations(args.set)
    wanted = range(1, len(tiers) + 1) if args.tiers is None else [int(t) for t in args.tiers.split(",")]
    points = []  # (tier, net, layer, spec, split), layer-major as in the file
    for idx, (net, batch, layer) in enumerate(layers(args.set)):
        split = "held-out" if idx % 3 == 2 else "fit"
        for tier, configs in enumerate(tiers, 1):
            for rows, cols, df, kb, bw in configs:
                spec = HardwareSpec(rows=rows, cols=cols, dataflow=df, batch_size=batch, sram_kb=kb, dram_bw_words=bw)
                points.append((tier, net, layer, spec, split))
    jobs = [layer_job(layer, spec) for _, _, layer, spec, _ in points]
    cap = args.max_rough_cycles if args.max_rough_cycles is not None else (4e5 if args.set == "groups" else None)
    if cap is not None:
        kept = [i for i, (job, _) in enumerate(jobs) if rough_user_cycles(job) <= cap]
        print(f"{len(points) - len(kept)} of {len(points)} points over {cap:,.0f} rough cycles are skipped", file=sys.stderr)
        points, jobs = [points[i] for i in kept], [jobs[i] for i in kept]
    if args.list:
        for (tier, net, layer, spec, split), (job, rep) in zip(points, jobs):
            print(f"{tier} {net:14s} {layer.name:32s} {spec.array} {spec.dataflow} {spec.memory_text:28s} {split:8s} ~{job.rough_cycles() * rep:,.0f} cycles")
        print(f"{len(points)} points, {len({j.key for j, _ in jobs})} simulations")
        return 0

    t0 = time.time()

    def progress(n, total):
        if n % 10 == 0 or n == total:
            print(f"[{n}/{total}] {time.time() - t0:.0f}s", file=sys.stderr, flush=True)

    out = os.path.abspath(args.out or OUT[args.set])
    stats = RunStats()
    for tier in wanted:
        simulate([job for (t, *_), (job, _) in zip(points, jobs) if t == tier], python=args.python, workers=args.jobs,
                 progress=progress, stats=stats)
        write(out, points, jobs, ResultCache())
        print(f"tier {tier} done: {stats.simulated} simulated, {stats.cached} cached, {time.time() - t0:.0f}s", file=sys.stderr)
    return 0


def write(out: str, points, jobs, cache) -> None:
    """Write (atomically) every point whose simulation is in the cache, in the order of ``points``."""
    from uboost.hardware import HardwareSpec, LayerTable, create

    known = cache.get_many({job.key for job, _ in jobs})
    rows = []
    for (_, net, layer, spec, split), (job, repeat) in zip(points, jobs):
        if job.key not in known:
            continue
        cycles, stalls = known[job.key]
        compute_spec = HardwareSpec(rows=spec.rows, cols=spec.cols, dataflow=spec.dataflow, batch_size=spec.batch_size)
        compute = create("systolic", spec=compute_spec).cycles(LayerTable.from_shapes([layer])).item()
        rows.append([
            net, layer.name, layer.kind, spec.batch_size, layer.in_channels, layer.out_channels, layer.groups,
            layer.kernel_h, layer.kernel_w, layer.stride, layer.in_h, layer.in_w, layer.out_h, layer.out_w,
            spec.rows, spec.cols, spec.dataflow, spec.sram_kb, spec.dram_bw_words, split,
            int(compute), cycles * repeat, stalls * repeat,
        ])
    os.makedirs(os.path.dirname(out), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".scalesim_user_", suffix=".csv", dir=os.path.dirname(out))
    with os.fdopen(fd, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(HEADER)
        w.writerows(rows)
    os.chmod(tmp, 0o644)
    os.replace(tmp, out)
    print(f"wrote {len(rows)} of {len(points)} rows to {out}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
