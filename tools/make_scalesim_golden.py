#!/usr/bin/env python3
"""Generate golden systolic-array cycle counts with SCALE-Sim.

Output: ``tests/hardware/data/scalesim_golden.csv`` -- one row per
(layer x array x dataflow) point, with the cycle count reported by the
cycle-accurate simulator SCALE-Sim (PyPI ``scalesim`` 3.0.0).  Our own
closed-form cost model is tested against these numbers to the cycle.

How to run
----------
SCALE-Sim 3.0.0 only works with ``numpy<2.3``, so it lives in its own
(git-ignored) virtualenv, separate from the project's environment::

    python3 -m venv .venv-scalesim
    .venv-scalesim/bin/pip install scalesim==3.0.0 'numpy<2.3'
    .venv-scalesim/bin/python tools/make_scalesim_golden.py --jobs 2

(run from the repository root).  ``--quick`` simulates a tiny subset and
writes it to a scratch file under the system temp dir unless ``--out`` is
given, so it never clobbers the committed CSV (about 40 s).  ``--list``
prints the points and a rough CPU-time estimate without simulating.  The full
run (747 points) needs about 44 CPU-minutes, i.e. about 22 minutes of wall time
with ``--jobs 2`` on an otherwise idle 2-core machine (longer if the machine is
busy).  SCALE-Sim costs roughly 50-150 us of CPU per simulated cycle, which is
why the array sizes are 32x32, 16x64 and 128x128 (an 8x8 array would need
hours for the ResNet-18 layers) and only some MobileNetV2 depthwise layers
are included.  Simulations run in a throw-away temporary directory
outside the repository; the CSV is written atomically (temp file +
``os.replace``).

What is simulated and how
-------------------------
* Every point is its own SCALE-Sim run (fresh config, topology and a layout
  file that only holds a header line).  The config has the ``[layout]`` and
  ``[sparsity]`` sections SCALE-Sim 3.0.0 insists on, custom layouts and
  sparsity off, and the default bandwidth mode ``InterfaceBandwidth = CALC``
  (the finite-bandwidth ``USER`` mode's stall counts looked wrong in 3.0.0
  to a colleague; it is not used here).  In CALC mode the reported stall count is always
  0; the script asserts that.
* ``cycles`` is the *second* column of SCALE-Sim's ``COMPUTE_REPORT.csv``,
  headed ``Total Cycles`` (the memory system's compute cycle count).  The
  first column, ``Total Cycles (incl. prefetch)``, adds the initial DRAM
  prefetch and is NOT used.
* SCALE-Sim has no padding: a layer is given the unpadded-equivalent input
  ``in = (out - 1) * stride + k`` so that its output is ``out``.  Those are
  the ``in_h``/``in_w`` columns.  Dilated convolutions are given their
  effective kernel ``k_eff = d * (k - 1) + 1`` (the kernel_h/kernel_w columns
  hold k_eff; the layer name records k and d).  SCALE-Sim then streams all
  k_eff*k_eff taps, zero taps included, so K = k_eff^2 (* C_in).
* Batch-1 conv / pointwise / depthwise layers use SCALE-Sim's convolution
  topology format (``name, ifmap h, ifmap w, filter h, filter w, channels,
  num filter, stride,`` -- the trailing comma is required).  SCALE-Sim's
  batch is fixed at 1, so layers with batch > 1 and all fc layers use its
  GEMM format (``name, M, N, K,``) with ``M = B * out_h * out_w``.
* Depthwise layers: SCALE-Sim's only depthwise support is a conv-topology
  row whose name contains ``DP`` with ``Num filter = 1``; it then expands the
  row into ``C`` one-channel layers that are simulated independently (each
  paying its own fill and drain).  ``cycles`` is the sum of their Total
  Cycles.  Batched depthwise layers are given as ``C`` GEMM rows
  ``(M = B*out_h*out_w, N = 1, K = k*k)``, which is the same thing (a batch-1
  check gave identical per-channel counts in both formats).  Any other layer
  name must not contain "DP", or SCALE-Sim silently treats it as depthwise.  For
  depthwise rows the M, K, N columns describe ONE channel
  (``M = B*out_h*out_w, K = k_h*k_w, N = 1``); the layer is C such GEMMs.
* GEMM dimensions in the CSV: ``M = B*out_h*out_w`` (streamed / output
  pixels), ``K = k_h*k_w*C_in`` (reduction), ``N = C_out`` (filters); the
  array is ``rows x cols`` (``ArrayHeight x ArrayWidth``).

Closed forms these numbers follow (verified to the cycle on every row;
R = rows, C = cols, ceil = ceiling division)::

    ws: ceil(K/R) * ceil(N/C) * (M + 2R + C - 2) - 1
    os: ceil(M/R) * ceil(N/C) * (K + R + C - 2) - 1
    is: ceil(K/R) * ceil(M/C) * (N + 2R + C - 2) - 1   (ws with M and N swapped)
    depthwise (any dataflow): C_in * f(M, K=k*k, N=1) with f the form above.

This script never uses these forms for its output (only to order the work so
the longest simulations start first). The corners it leaves out (non-square and degenerate arrays,
grouped layers, stride 3, per-sample rows, PE modes) are ``tools/make_scalesim_corners.py``'s.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import math
import multiprocessing as mp
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "tests", "hardware", "data", "scalesim_golden.csv")

HEADER = [
    "network", "layer", "kind", "batch", "in_channels", "out_channels", "groups",
    "kernel_h", "kernel_w", "stride", "in_h", "in_w", "out_h", "out_w",
    "rows", "cols", "dataflow", "M", "K", "N", "cycles",
]

# (rows, cols) = (ArrayHeight, ArrayWidth).  One small square, one non-square,
# one large square array.
ARRAYS = [(32, 32), (16, 64), (128, 128)]
DATAFLOWS = ["ws", "os", "is"]

# SRAM sizes do not influence the CALC-mode cycle count; keep them generous.
SRAM_KB = 1024

CONFIG_TEMPLATE = """\
[general]
run_name = golden

[run_presets]
InterfaceBandwidth = CALC
UseRamulatorTrace = False

[architecture_presets]
ArrayHeight = {rows}
ArrayWidth = {cols}
ifmapsramszkB = {sram}
filtersramszkB = {sram}
ofmapsramszkB = {sram}
IfmapOffset = 0
FilterOffset = 10000000
OfmapOffset = 20000000
Dataflow = {dataflow}
ReadRequestBuffer = 32
WriteRequestBuffer = 32

[layout]
IfmapCustomLayout = False
FilterCustomLayout = False
IfmapSRAMBankBandwidth = 10
IfmapSRAMBankNum = 10
IfmapSRAMBankPort = 2
FilterSRAMBankBandwidth = 10
FilterSRAMBankNum = 10
FilterSRAMBankPort = 2

[sparsity]
SparsitySupport = false
"""

CONV_HEADER = ("Layer name, IFMAP height, IFMAP width, Filter height, Filter width, "
               "Channels, Num filter, Stride height,\n")
GEMM_HEADER = "Layer, M, N, K,\n"


@dataclass(frozen=True)
class Layer:
    network: str
    layer: str
    kind: str          # conv | depthwise | pointwise | fc
    batch: int
    cin: int
    cout: int
    k: int             # square kernel (effective kernel for dilated convs)
    stride: int
    out: int           # square output (1 for fc)

    @property
    def groups(self) -> int:
        return self.cin if self.kind == "depthwise" else 1

    @property
    def in_size(self) -> int:
        return (self.out - 1) * self.stride + self.k

    def gemm(self) -> tuple[int, int, int]:
        """(M, K, N); per channel for depthwise."""
        m = self.batch * self.out * self.out
        if self.kind == "depthwise":
            return m, self.k * self.k, 1
        return m, self.k * self.k * self.cin, self.cout

    def n_gemms(self) -> int:
        return self.cin if self.kind == "depthwise" else 1

    def key(self) -> tuple:
        return (self.kind, self.batch, self.cin, self.cout, self.k, self.stride, self.out)


def _validate(layer: Layer) -> Layer:
    assert layer.kind in ("conv", "depthwise", "pointwise", "fc"), layer
    if layer.kind == "depthwise":
        assert layer.cin == layer.cout, layer
    if layer.kind == "pointwise":
        assert layer.k == 1, layer
    if layer.kind == "fc":
        assert layer.k == 1 and layer.out == 1 and layer.stride == 1, layer
    return layer


def build_layers() -> list[Layer]:
    L: list[Layer] = []

    def add(net, name, kind, cin, cout, k, stride, out, batch=1):
        L.append(_validate(Layer(net, name, kind, batch, cin, cout, k, stride, out)))

    # --- ResNet-18, 224x224 input --------------------------------------------------
    r = "resnet18"
    add(r, "conv1_7x7_s2", "conv", 3, 64, 7, 2, 112)
    add(r, "layer1_conv3x3", "conv", 64, 64, 3, 1, 56)
    add(r, "layer2_0_conv1_3x3_s2", "conv", 64, 128, 3, 2, 28)
    add(r, "layer2_conv3x3", "conv", 128, 128, 3, 1, 28)
    add(r, "layer2_0_downsample_1x1_s2", "pointwise", 64, 128, 1, 2, 28)
    add(r, "layer3_0_conv1_3x3_s2", "conv", 128, 256, 3, 2, 14)
    add(r, "layer3_conv3x3", "conv", 256, 256, 3, 1, 14)
    add(r, "layer3_0_downsample_1x1_s2", "pointwise", 128, 256, 1, 2, 14)
    add(r, "layer4_0_conv1_3x3_s2", "conv", 256, 512, 3, 2, 7)
    add(r, "layer4_conv3x3", "conv", 512, 512, 3, 1, 7)
    add(r, "layer4_0_downsample_1x1_s2", "pointwise", 256, 512, 1, 2, 7)
    add(r, "fc", "fc", 512, 1000, 1, 1, 1)
    add(r, "fc_b32", "fc", 512, 1000, 1, 1, 1, batch=32)
    add(r, "layer4_0_downsample_1x1_s2_b4", "pointwise", 256, 512, 1, 2, 7, batch=4)

    # --- MobileNetV2 (width 1.0), 224x224 input -----------------------------------
    m = "mobilenetv2"
    add(m, "stem_conv3x3_s2", "conv", 3, 32, 3, 2, 112)
    add(m, "b1_project_32_16", "pointwise", 32, 16, 1, 1, 112)
    add(m, "b2_project_96_24", "pointwise", 96, 24, 1, 1, 56)
    add(m, "b3_expand_24_144", "pointwise", 24, 144, 1, 1, 56)
    add(m, "b3_project_144_24", "pointwise", 144, 24, 1, 1, 56)
    add(m, "b4_dw3x3_s2_144", "depthwise", 144, 144, 3, 2, 28)
    add(m, "b4_project_144_32", "pointwise", 144, 32, 1, 1, 28)
    add(m, "b5_expand_32_192", "pointwise", 32, 192, 1, 1, 28)
    add(m, "b5_project_192_32", "pointwise", 192, 32, 1, 1, 28)
    add(m, "b7_dw3x3_s2_192", "depthwise", 192, 192, 3, 2, 14)
    add(m, "b7_project_192_64", "pointwise", 192, 64, 1, 1, 14)
    add(m, "b8_expand_64_384", "pointwise", 64, 384, 1, 1, 14)
    add(m, "b8_dw3x3_384", "depthwise", 384, 384, 3, 1, 14)
    add(m, "b8_project_384_64", "pointwise", 384, 64, 1, 1, 14)
    add(m, "b11_project_384_96", "pointwise", 384, 96, 1, 1, 14)
    add(m, "b12_expand_96_576", "pointwise", 96, 576, 1, 1, 14)
    add(m, "b12_project_576_96", "pointwise", 576, 96, 1, 1, 14)
    add(m, "b14_dw3x3_s2_576", "depthwise", 576, 576, 3, 2, 7)
    add(m, "b14_project_576_160", "pointwise", 576, 160, 1, 1, 7)
    add(m, "b15_expand_160_960", "pointwise", 160, 960, 1, 1, 7)
    add(m, "b15_dw3x3_960", "depthwise", 960, 960, 3, 1, 7)
    add(m, "b15_project_960_160", "pointwise", 960, 160, 1, 1, 7)
    add(m, "b17_project_960_320", "pointwise", 960, 320, 1, 1, 7)
    add(m, "conv_last_320_1280", "pointwise", 320, 1280, 1, 1, 7)
    add(m, "classifier_fc", "fc", 1280, 1000, 1, 1, 1)
    add(m, "b12_expand_96_576_b2", "pointwise", 96, 576, 1, 1, 14, batch=2)
    add(m, "classifier_fc_b16", "fc", 1280, 1000, 1, 1, 1, batch=16)

    # --- DARTS-style CIFAR-10 network (C_init=16, 8 cells: 32x32 C=16, 16x16 C=32,
    #     8x8 C=64).  sep_conv = dw + pw; dil_conv k,d = dw with k_eff = d(k-1)+1.
    d = "darts_cifar"
    # 32x32, C=16
    add(d, "stem_conv3x3_3_48", "conv", 3, 48, 3, 1, 32)
    add(d, "c0_preprocess_1x1_48_16", "pointwise", 48, 16, 1, 1, 32)
    add(d, "c1_preprocess_1x1_64_16", "pointwise", 64, 16, 1, 1, 32)
    add(d, "c0_sep3x3_dw_16", "depthwise", 16, 16, 3, 1, 32)
    add(d, "c0_sep_pw_16_16", "pointwise", 16, 16, 1, 1, 32)
    add(d, "c0_sep5x5_dw_16", "depthwise", 16, 16, 5, 1, 32)
    add(d, "c0_dil5x5_d2_dw_16_keff9", "depthwise", 16, 16, 9, 1, 32)
    add(d, "c0_conv3x3_16_16", "conv", 16, 16, 3, 1, 32)
    add(d, "c0_conv5x5_16_16", "conv", 16, 16, 5, 1, 32)
    # reduction cell 2 (C=32): preprocess at 32x32, stride-2 ops 32 -> 16
    add(d, "c2_preprocess_1x1_64_32", "pointwise", 64, 32, 1, 1, 32)
    add(d, "c2_sep3x3_dw_s2_32", "depthwise", 32, 32, 3, 2, 16)
    add(d, "c2_sep5x5_dw_s2_32", "depthwise", 32, 32, 5, 2, 16)
    add(d, "c2_dil5x5_d2_dw_s2_32_keff9", "depthwise", 32, 32, 9, 2, 16)
    add(d, "c2_factreduce_1x1_s2_32_16", "pointwise", 32, 16, 1, 2, 16)
    add(d, "c2_conv3x3_s2_32_32", "conv", 32, 32, 3, 2, 16)
    add(d, "c2_dilconv3x3_d2_s2_32_32_keff5", "conv", 32, 32, 5, 2, 16)
    # 16x16, C=32
    add(d, "c3_factreduce_1x1_s2_64_16", "pointwise", 64, 16, 1, 2, 16)
    add(d, "c3_preprocess_1x1_128_32", "pointwise", 128, 32, 1, 1, 16)
    add(d, "c3_sep3x3_dw_32", "depthwise", 32, 32, 3, 1, 16)
    add(d, "c3_sep5x5_dw_32", "depthwise", 32, 32, 5, 1, 16)
    add(d, "c3_sep_pw_32_32", "pointwise", 32, 32, 1, 1, 16)
    add(d, "c3_dil5x5_d2_dw_32_keff9", "depthwise", 32, 32, 9, 1, 16)
    add(d, "c3_conv3x3_32_32", "conv", 32, 32, 3, 1, 16)
    add(d, "c3_conv5x5_32_32", "conv", 32, 32, 5, 1, 16)
    # reduction cell 5 (C=64): preprocess at 16x16, stride-2 ops 16 -> 8
    add(d, "c5_preprocess_1x1_128_64", "pointwise", 128, 64, 1, 1, 16)
    add(d, "c5_sep3x3_dw_s2_64", "depthwise", 64, 64, 3, 2, 8)
    add(d, "c5_dil3x3_d2_dw_s2_64_keff5", "depthwise", 64, 64, 5, 2, 8)
    add(d, "c5_factreduce_1x1_s2_64_32", "pointwise", 64, 32, 1, 2, 8)
    # 8x8, C=64
    add(d, "c6_factreduce_1x1_s2_128_32", "pointwise", 128, 32, 1, 2, 8)
    add(d, "c6_preprocess_1x1_256_64", "pointwise", 256, 64, 1, 1, 8)
    add(d, "c6_sep3x3_dw_64", "depthwise", 64, 64, 3, 1, 8)
    add(d, "c6_sep5x5_dw_64", "depthwise", 64, 64, 5, 1, 8)
    add(d, "c6_sep_pw_64_64", "pointwise", 64, 64, 1, 1, 8)
    add(d, "c6_dil5x5_d2_dw_64_keff9", "depthwise", 64, 64, 9, 1, 8)
    add(d, "c6_conv3x3_64_64", "conv", 64, 64, 3, 1, 8)
    add(d, "c6_conv5x5_64_64", "conv", 64, 64, 5, 1, 8)
    add(d, "classifier_fc_256_10", "fc", 256, 10, 1, 1, 1)
    # batched (search-time) variants -> GEMM mode with M = B*H*W
    add(d, "c0_sep_pw_16_16_b2", "pointwise", 16, 16, 1, 1, 32, batch=2)
    add(d, "c3_conv3x3_32_32_b4", "conv", 32, 32, 3, 1, 16, batch=4)
    add(d, "c6_conv3x3_64_64_b8", "conv", 64, 64, 3, 1, 8, batch=8)
    add(d, "c6_sep3x3_dw_64_b4", "depthwise", 64, 64, 3, 1, 8, batch=4)
    add(d, "classifier_fc_256_10_b64", "fc", 256, 10, 1, 1, 1, batch=64)

    keys = [x.key() for x in L]
    assert len(keys) == len(set(keys)), "duplicate layer geometry in the list"
    names = [(x.network, x.layer) for x in L]
    assert len(names) == len(set(names)), "duplicate layer name"
    return L


QUICK_LAYERS = {
    ("darts_cifar", "c6_conv3x3_64_64"),
    ("darts_cifar", "c6_sep3x3_dw_64"),
    ("darts_cifar", "c6_sep3x3_dw_64_b4"),
    ("darts_cifar", "c3_conv3x3_32_32_b4"),
    ("darts_cifar", "classifier_fc_256_10"),
    ("resnet18", "layer4_0_downsample_1x1_s2"),
}
QUICK_ARRAYS = [(16, 16), (16, 64)]


def _rough_cycles(layer: Layer, rows: int, cols: int, df: str) -> int:
    """Rough work estimate, used only to schedule long simulations first."""
    m, k, n = layer.gemm()
    if df == "ws":
        c = math.ceil(k / rows) * math.ceil(n / cols) * (m + 2 * rows + cols)
    elif df == "os":
        c = math.ceil(m / rows) * math.ceil(n / cols) * (k + rows + cols)
    else:
        c = math.ceil(k / rows) * math.ceil(m / cols) * (n + 2 * rows + cols)
    return c * layer.n_gemms()


def _rough_seconds(layer: Layer, rows: int, cols: int, df: str) -> float:
    # Calibrated on the full run (2-core machine): roughly 50-150 us of CPU per
    # simulated cycle, growing with the array width, plus a cost per simulated layer.
    return _rough_cycles(layer, rows, cols, df) * (20 + cols) * 1e-6 + 0.01 * layer.n_gemms()


def _topology(layer: Layer) -> tuple[str, bool]:
    """Topology CSV text and whether it is in GEMM format."""
    use_gemm = layer.batch > 1 or layer.kind == "fc"
    if use_gemm:
        m, k, n = layer.gemm()
        rows = "".join(f"G{i}, {m}, {n}, {k},\n" for i in range(layer.n_gemms()))
        return GEMM_HEADER + rows, True
    s = layer.in_size
    if layer.kind == "depthwise":
        # SCALE-Sim splits a row whose name contains "DP" into `Channels`
        # one-channel layers; Num filter must be 1.
        row = f"L0_DP, {s}, {s}, {layer.k}, {layer.k}, {layer.cin}, 1, {layer.stride},\n"
    else:
        # Plain names: must NOT contain "DP".
        row = f"L0, {s}, {s}, {layer.k}, {layer.k}, {layer.cin}, {layer.cout}, {layer.stride},\n"
    return CONV_HEADER + row, False


def simulate(task: tuple[int, Layer, int, int, str, str]) -> tuple[int, int, float]:
    """Run one SCALE-Sim simulation; return (task index, cycles, seconds)."""
    idx, layer, rows, cols, df, workroot = task
    from scalesim.scale_sim import scalesim  # imported in the worker

    t0 = time.time()
    wd = tempfile.mkdtemp(prefix=f"pt{idx}_", dir=workroot)
    try:
        cfg = os.path.join(wd, "golden.cfg")
        with open(cfg, "w") as f:
            f.write(CONFIG_TEMPLATE.format(rows=rows, cols=cols, dataflow=df, sram=SRAM_KB))
        topo_text, use_gemm = _topology(layer)
        topo = os.path.join(wd, "topology.csv")
        with open(topo, "w") as f:
            f.write(topo_text)
        lay = os.path.join(wd, "layout.csv")
        with open(lay, "w") as f:
            f.write("Layer name,\n")  # header only; custom layouts are off

        sink = io.StringIO()
        with contextlib.redirect_stdout(sink):
            sim = scalesim(save_disk_space=True, verbose=False, config=cfg,
                           topology=topo, layout=lay, input_type_gemm=use_gemm)
            sim.run_scale(top_path=wd)

        report = os.path.join(wd, "golden", "COMPUTE_REPORT.csv")
        with open(report) as f:
            lines = [ln for ln in f.read().splitlines() if ln.strip()]
        head = [h.strip() for h in lines[0].split(",")]
        assert head[1] == "Total Cycles (incl. prefetch)" and head[2] == "Total Cycles" \
            and head[3] == "Stall Cycles", head
        total = 0
        nrows = 0
        for ln in lines[1:]:
            fields = [x.strip() for x in ln.split(",")]
            cyc, stall = int(fields[2]), int(fields[3])
            assert stall == 0, f"unexpected stalls in CALC mode: {ln}"
            total += cyc
            nrows += 1
        assert nrows == layer.n_gemms(), (nrows, layer)
        return idx, total, time.time() - t0
    finally:
        shutil.rmtree(wd, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="tiny subset (6 layers x 2 arrays x 3 dataflows)")
    ap.add_argument("--jobs", type=int, default=1, help="parallel worker processes")
    ap.add_argument("--out", default=None,
                    help=f"output CSV (default: {DEFAULT_OUT}; with --quick a temp file)")
    ap.add_argument("--list", action="store_true",
                    help="list the points with a rough time estimate; do not simulate")
    args = ap.parse_args(argv)

    layers = build_layers()
    arrays = ARRAYS
    if args.quick:
        layers = [x for x in layers if (x.network, x.layer) in QUICK_LAYERS]
        arrays = QUICK_ARRAYS
    points = [(lay, r, c, df) for lay in layers for (r, c) in arrays for df in DATAFLOWS]

    if args.list:
        tot = 0.0
        for lay, r, c, df in points:
            est = _rough_seconds(lay, r, c, df)
            tot += est
            print(f"{lay.network:12s} {lay.layer:40s} {r:3d}x{c:<3d} {df}  ~{est:7.1f}s")
        print(f"{len(layers)} layers, {len(arrays)} arrays, {len(points)} points, "
              f"rough total {tot / 60:.1f} core-minutes")
        return 0

    out = args.out
    if out is None:
        out = (os.path.join(tempfile.gettempdir(), "scalesim_golden_quick.csv")
               if args.quick else DEFAULT_OUT)

    # Turn SIGTERM into SystemExit so the scratch directory is still removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workroot = tempfile.mkdtemp(prefix="scalesim_golden_")
    tasks = [(i, lay, r, c, df, workroot) for i, (lay, r, c, df) in enumerate(points)]
    order = sorted(tasks, key=lambda t: -_rough_seconds(t[1], t[2], t[3], t[4]))
    cycles: dict[int, int] = {}
    t0 = time.time()
    try:
        if args.jobs > 1:
            with mp.get_context("fork").Pool(args.jobs) as pool:
                results = pool.imap_unordered(simulate, order, chunksize=1)
                for n, (idx, cyc, dt) in enumerate(results, 1):
                    cycles[idx] = cyc
                    _progress(n, len(tasks), tasks[idx], cyc, dt, t0)
        else:
            for n, task in enumerate(order, 1):
                idx, cyc, dt = simulate(task)
                cycles[idx] = cyc
                _progress(n, len(tasks), tasks[idx], cyc, dt, t0)
    finally:
        shutil.rmtree(workroot, ignore_errors=True)

    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".scalesim_golden_", suffix=".csv",
                               dir=os.path.dirname(os.path.abspath(out)))
    try:
        with os.fdopen(fd, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(HEADER)
            for i, (lay, r, c, df) in enumerate(points):
                m, k, n = lay.gemm()
                w.writerow([lay.network, lay.layer, lay.kind, lay.batch, lay.cin, lay.cout,
                            lay.groups, lay.k, lay.k, lay.stride, lay.in_size, lay.in_size,
                            lay.out, lay.out, r, c, df, m, k, n, cycles[i]])
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    print(f"wrote {len(points)} rows ({len(layers)} layers x {len(arrays)} arrays x "
          f"{len(DATAFLOWS)} dataflows) to {out} in {time.time() - t0:.0f}s", file=sys.stderr)
    return 0


def _progress(n, total, task, cyc, dt, t0):
    _, lay, r, c, df, _ = task
    print(f"[{n:4d}/{total}] {time.time() - t0:7.0f}s  {lay.network}/{lay.layer} "
          f"{r}x{c} {df}: {cyc} cycles ({dt:.1f}s)", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
