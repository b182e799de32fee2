#!/usr/bin/env python3
"""SCALE-Sim USER-mode (finite SRAM and DRAM bandwidth) cycle counts for the memory-aware models.

Output: ``tests/hardware/data/scalesim_user.csv`` -- one row per (layer x configuration), with
SCALE-Sim 3.0.0's "Total Cycles" (compute plus memory stalls) in USER bandwidth mode, its
stall count and the compute-only cycles of the exact ``systolic`` model. ``benchmarks/
bench_memory_model.py`` scores ``systolic-mem`` (and the compute-only models) against it.

Configurations: 32x32 WS and OS arrays x SRAM of 16, 64 and 256 kB per buffer x DRAM bandwidth of
4, 10 and 32 words per cycle (18 configurations). Layers: DARTS-style CIFAR layers (32x32, 16x16
and 8x8 maps, 16-128 channels, 3x3/5x5 convs, separable and dilated depthwise, pointwise,
reduction convs), LeNet-style digits layers, two ResNet-18 downsampling layers (bigger layers take minutes each in USER mode), FC layers
and batched (GEMM-mode) layers. Every third layer (by position in the list) is **held out**:
``split = held-out`` rows are never looked at while designing or tuning ``systolic-mem``.

Runs through uboost's own SCALE-Sim runner (``uboost.hardware.scalesim_runner``): its virtualenv
(``$UBOOST_SCALESIM_PYTHON`` or ``uboost hw setup-scalesim``), its disk cache and ``--jobs`` worker
processes; a rerun only simulates what is missing. About 15-30 minutes with ``--jobs 2`` on an idle
2-core machine.

    python tools/make_scalesim_user_data.py --jobs 2 [--out FILE] [--list]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "tests", "hardware", "data", "scalesim_user.csv")

ARRAYS = [(32, 32, "ws"), (32, 32, "os")]
SRAM_KB = [16, 64, 256]
BW = [4, 10, 32]

HEADER = [
    "network", "layer", "kind", "batch", "in_channels", "out_channels", "groups", "kernel_h", "kernel_w", "stride",
    "in_h", "in_w", "out_h", "out_w", "rows", "cols", "dataflow", "sram_kb", "dram_bw_words", "split",
    "compute_cycles", "cycles", "stall_cycles",
]


def layers():
    from uboost.hardware import LayerShape

    out = []

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
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--python", default=None, help="interpreter with scalesim (default: uboost's search order)")
    ap.add_argument("--list", action="store_true", help="list the points; do not simulate")
    args = ap.parse_args(argv)

    from uboost.hardware import HardwareSpec, LayerTable, create
    from uboost.hardware.scalesim_runner import RunStats, layer_job, simulate

    points = []
    for idx, (net, batch, layer) in enumerate(layers()):
        split = "held-out" if idx % 3 == 2 else "fit"
        for rows, cols, df in ARRAYS:
            for kb in SRAM_KB:
                for bw in BW:
                    spec = HardwareSpec(rows=rows, cols=cols, dataflow=df, batch_size=batch, sram_kb=kb, dram_bw_words=bw)
                    points.append((net, layer, spec, split))
    jobs = [layer_job(layer, spec) for _, layer, spec, _ in points]
    if args.list:
        for (net, layer, spec, split), (job, rep) in zip(points, jobs):
            print(f"{net:14s} {layer.name:32s} {spec.array} {spec.dataflow} {spec.memory_text:28s} {split:8s} ~{job.rough_cycles() * rep:,.0f} cycles")
        print(f"{len(points)} points, {len({j.key for j, _ in jobs})} simulations")
        return 0

    done = [0]
    t0 = time.time()

    def progress(n, total):
        if n % 10 == 0 or n == total:
            print(f"[{n}/{total}] {time.time() - t0:.0f}s", file=sys.stderr, flush=True)

    stats = RunStats()
    results = simulate([j for j, _ in jobs], python=args.python, workers=args.jobs, progress=progress, stats=stats)
    rows = []
    for (net, layer, spec, split), (job, repeat), (cycles, stalls) in zip(points, jobs, results):
        compute_spec = HardwareSpec(rows=spec.rows, cols=spec.cols, dataflow=spec.dataflow, batch_size=spec.batch_size)
        compute = create("systolic", spec=compute_spec).cycles(LayerTable.from_shapes([layer])).item()
        rows.append([
            net, layer.name, layer.kind, spec.batch_size, layer.in_channels, layer.out_channels, layer.groups,
            layer.kernel_h, layer.kernel_w, layer.stride, layer.in_h, layer.in_w, layer.out_h, layer.out_w,
            spec.rows, spec.cols, spec.dataflow, spec.sram_kb, spec.dram_bw_words, split,
            int(compute), cycles * repeat, stalls * repeat,
        ])
    out = os.path.abspath(args.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".scalesim_user_", suffix=".csv", dir=os.path.dirname(out))
    with os.fdopen(fd, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(HEADER)
        w.writerows(rows)
    os.chmod(tmp, 0o644)
    os.replace(tmp, out)
    print(f"wrote {len(rows)} rows to {out}: {stats.simulated} simulated, {stats.cached} cached, "
          f"{time.time() - t0:.0f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
