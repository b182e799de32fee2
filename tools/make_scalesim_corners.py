#!/usr/bin/env python3
"""SCALE-Sim golden cycles for the corners ``make_scalesim_golden.py`` leaves out, and for the PE modes.

Outputs (both committed, both checked by ``tests/hardware/test_scalesim_corners.py``):

* ``tests/hardware/data/scalesim_corners.csv`` -- small layers on non-square and degenerate arrays
  (:data:`ARRAYS`: 8x32, 32x8, 4x64, 1x16, 16x1, 3x5, 7x13, 1x1), WS/OS/IS, batch 1 and 2-3: grouped,
  depthwise and channel-multiplier depthwise convolutions, stride 2 and 3, padding, kernels larger
  than their input, 1x1 and non-square kernels, ``Linear`` with and without tokens, an attention's
  per-sample rows (``LayerShape.per_sample``) and, per array, channel counts one below, at and one
  above multiples of the array's sides. The columns are those of ``scalesim_golden.csv`` (``in_h``
  and ``in_w`` are the layer's own input here, before padding: SCALE-Sim is given
  ``(out - 1) * stride + k``), plus ``per_sample`` (0/1), ``topology`` (``conv``, ``dp``: a SCALE-Sim
  depthwise row, ``gemm``), ``repeat`` (how many times the layer runs that topology row: groups,
  channels, samples) and ``corner`` (the case the row was added for).
* ``tests/hardware/data/scalesim_precision.csv`` -- the relations by which uboost's docstrings
  (``uboost.hardware.precision``, ``uboost.hardware.systolic``) price the ``bitfusion`` and
  ``bit-serial`` PE modes, run through SCALE-Sim, whose PEs are fixed 1-byte ones:

  - ``wide-array`` (``bitfusion``, WS and IS): SCALE-Sim on an ``(R * perf) x C`` array, minus
    ``2 R (perf - 1)`` per fold (fill and drain cross the ``R`` physical rows);
  - ``reduced-k`` (``bitfusion``, OS): a SCALE-Sim GEMM whose ``K`` is ``ceil(K / perf)``;
  - ``stretched`` (``bit-serial``): a SCALE-Sim GEMM whose streamed dimension (WS ``M``, OS ``K``,
    IS ``N``) is ``ceil(act_bits / serial_bits)`` times longer.

  ``sim_*`` describe the SCALE-Sim job (array, GEMM sizes, topology, repeats), ``sim_cycles`` its
  Total Cycles times ``sim_repeat``, ``correction`` what the relation takes off and ``cycles`` the
  difference: what ``systolic`` must give with ``pe``, ``weight_bits``, ``act_bits``, ``serial_bits``.

Every number is SCALE-Sim 3.0.0's own (``Total Cycles``, CALC mode), run through uboost's runner
(:mod:`uboost.hardware.scalesim_runner`: :func:`layer_job` maps a layer to a topology row, as the
``scalesim`` cost model does, and its worker runs SCALE-Sim in the SCALE-Sim virtualenv, see
``uboost hw setup-scalesim``). The point list is fixed (seed :data:`SEED` picks batches and the
array each layer runs on), so a rerun writes the same file. A throw-away result cache is used
unless ``--cache-dir`` is given. The layers are small: the 366 simulations take about 15 s with
``--jobs 2`` on a 2-core machine. SCALE-Sim's utilization columns are not kept (cycles only)::

    PYTHONPATH=src python tools/make_scalesim_corners.py --jobs 2 [--cache-dir DIR] [--out-dir DIR] [--list]
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "src"))

from uboost.hardware.layers import LayerShape, conv_kind
from uboost.hardware.scalesim_runner import Job, ResultCache, layer_job, simulate
from uboost.hardware.spec import HardwareSpec
from uboost.io import atomic_write

DATA = os.path.join(REPO, "tests", "hardware", "data")
CORNERS_OUT = "scalesim_corners.csv"
PRECISION_OUT = "scalesim_precision.csv"
SEED = 2024
DATAFLOWS = ("ws", "os", "is")
ARRAYS = [(8, 32), (32, 8), (4, 64), (1, 16), (16, 1), (3, 5), (7, 13), (1, 1)]
EDGE_ARRAYS = [a for a in ARRAYS if a != (1, 1)]  # a side of 1 has no "one below"; 1x16 and 16x1 keep their long side
PRECISION_ARRAYS = [(4, 16), (16, 4), (3, 5), (1, 8), (7, 13)]
BITFUSION_BITS = [(4, 4), (2, 2), (8, 2), (2, 8), (4, 8), (3, 5), (6, 6)]  # (weight, act): perf 4, 16, 4, 4, 2, 2, 1
BIT_SERIAL = [(8, 1), (4, 1), (4, 2), (3, 2), (5, 4), (8, 8)]  # (act bits, serial_bits): slowdown 8, 4, 2, 2, 2, 1

LAYER_COLUMNS = ["network", "layer", "kind", "batch", "in_channels", "out_channels", "groups", "kernel_h", "kernel_w",
                 "stride", "in_h", "in_w", "out_h", "out_w"]
CORNER_HEADER = LAYER_COLUMNS + ["rows", "cols", "dataflow", "M", "K", "N", "cycles", "per_sample", "topology", "repeat",
                                 "corner"]
PRECISION_HEADER = LAYER_COLUMNS + [
    "per_sample", "rows", "cols", "dataflow", "pe", "weight_bits", "act_bits", "serial_bits", "perf", "slowdown", "relation",
    "sim_rows", "sim_cols", "sim_topology", "sim_M", "sim_K", "sim_N", "sim_repeat", "sim_cycles", "correction", "cycles",
    "corner"]


@dataclass(frozen=True)
class Corner:
    corner: str
    shape: LayerShape


def conv(name: str, corner: str, cin: int, cout: int, k, *, stride: int = 1, size=(8, 8), pad=0, groups: int = 1) -> Corner:
    kh, kw = (k, k) if isinstance(k, int) else k
    ph, pw = (pad, pad) if isinstance(pad, int) else pad
    ih, iw = size
    oh, ow = (ih + 2 * ph - kh) // stride + 1, (iw + 2 * pw - kw) // stride + 1
    assert oh >= 1 and ow >= 1, name
    return Corner(corner, LayerShape(name=name, kind=conv_kind(cin, groups, kh, kw), in_channels=cin, out_channels=cout,
                                     groups=groups, kernel_h=kh, kernel_w=kw, stride=stride, in_h=ih, in_w=iw, out_h=oh,
                                     out_w=ow))


def linear(name: str, corner: str, cin: int, cout: int, tokens: int = 1, groups: int = 1, per_sample: bool = False) -> Corner:
    return Corner(corner, LayerShape(name=name, kind="linear", in_channels=cin, out_channels=cout, groups=groups,
                                     in_h=tokens, out_h=tokens, per_sample=per_sample))


def corner_layers() -> list[Corner]:
    """The layers every array meets (each on two arrays per dataflow, see :func:`corner_points`)."""
    layers = [
        conv("grouped_g3_k3", "grouped", 6, 9, 3, pad=1, size=(6, 6), groups=3),
        conv("grouped_pw_g4", "grouped", 8, 4, 1, size=(5, 5), groups=4),
        conv("grouped_g2_k1x3_s2", "grouped", 4, 6, (1, 3), stride=2, pad=(0, 1), size=(7, 7), groups=2),
        conv("dw_k3", "depthwise", 5, 5, 3, pad=1, size=(7, 7), groups=5),
        conv("dw_k5_s2", "depthwise", 6, 6, 5, stride=2, pad=2, size=(9, 9), groups=6),
        conv("dw_k3_s3", "depthwise", 3, 3, 3, stride=3, size=(10, 10), groups=3),
        conv("dwmult_x3", "dw-multiplier", 4, 12, 3, pad=1, size=(6, 6), groups=4),
        conv("dwmult_x2_s2", "dw-multiplier", 3, 6, 3, stride=2, size=(7, 7), groups=3),
        conv("conv_s2", "stride2", 3, 10, 3, stride=2, size=(9, 9)),
        conv("conv_s2_pad", "stride2", 5, 8, 3, stride=2, pad=1, size=(8, 8)),
        conv("conv_k5_s3_pad", "stride3", 4, 7, 5, stride=3, pad=2, size=(11, 11)),
        conv("pw_s3", "stride3", 5, 6, 1, stride=3, size=(8, 8)),
        conv("pad_k7", "padded", 2, 5, 7, pad=3, size=(6, 6)),
        conv("pad_k3_in4x9", "padded", 3, 4, 3, pad=1, size=(4, 9)),
        conv("bigk_k5_in3", "kernel>input", 3, 4, 5, pad=2, size=(3, 3)),
        conv("bigk_k7_in2x4", "kernel>input", 2, 3, 7, pad=3, size=(2, 4)),
        conv("bigk_k3_in1", "kernel>input", 4, 5, 3, pad=1, size=(1, 1)),
        conv("pw_9_17", "1x1", 9, 17, 1, size=(4, 4)),
        conv("pw_1_1", "1x1", 1, 1, 1, size=(6, 6)),
        conv("k1x3", "non-square-kernel", 4, 6, (1, 3), pad=(0, 1), size=(5, 7)),
        conv("k5x1", "non-square-kernel", 3, 5, (5, 1), pad=(2, 0), size=(8, 3)),
        conv("k3x5_s2", "non-square-kernel", 2, 4, (3, 5), stride=2, pad=(1, 2), size=(7, 9)),
        conv("conv_c1", "degenerate", 1, 1, 3, size=(5, 5)),
        conv("conv_out1x1", "degenerate", 3, 4, 3, size=(3, 3)),
        linear("linear_70_11", "linear", 70, 11),
        linear("linear_1_20", "linear", 1, 20),
        linear("linear_24_30_x9", "linear-tokens", 24, 30, tokens=9),
        linear("linear_5_3_x17", "linear-tokens", 5, 3, tokens=17),
        # an attention's Q K^T and attention x V (uboost.hardware.attention): E -> h*S and h*S -> E in h groups over L
        linear("attn_scores_e8_h2_s5_l6", "per-sample", 8, 2 * 5, tokens=6, groups=2, per_sample=True),
        linear("attn_context_e8_h2_s5_l6", "per-sample", 2 * 5, 8, tokens=6, groups=2, per_sample=True),
        linear("attn_scores_e12_h4_s7_l3", "per-sample", 12, 4 * 7, tokens=3, groups=4, per_sample=True),
    ]
    names = [c.shape.name for c in layers]
    assert len(names) == len(set(names))
    return layers


def edge_layers(rows: int, cols: int, dataflow: str) -> list[Corner]:
    """Channels one below, at and one above a multiple of the array's sides: ``K`` (input channels)
    against the rows, ``N`` against the columns, and the tokens ``M`` against the side that tiles
    them (OS: rows, IS: columns)."""
    out = []
    for d in (-1, 0, 1):
        tag = {-1: "m1", 0: "eq", 1: "p1"}[d]
        tokens = {"ws": 3, "os": max(1, rows + d), "is": max(1, cols + d)}[dataflow]
        out.append(linear(f"edge_lin_{tag}_{rows}x{cols}", "channel-edge", max(1, rows + d), max(1, cols + d), tokens=tokens))
        out.append(conv(f"edge_pw_{tag}_{rows}x{cols}", "channel-edge", 2 * rows + d, 2 * cols + d, 1, size=(3, 3)))
    return out


@dataclass(frozen=True)
class Point:
    corner: Corner
    rows: int
    cols: int
    dataflow: str
    batch: int

    @property
    def spec(self) -> HardwareSpec:
        return HardwareSpec(rows=self.rows, cols=self.cols, dataflow=self.dataflow, batch_size=self.batch)


def corner_points() -> list[Point]:
    rng = random.Random(SEED)
    points = []
    for i, c in enumerate(corner_layers()):
        for j, df in enumerate(DATAFLOWS):
            first = ARRAYS[(3 * i + j) % len(ARRAYS)]
            second = ARRAYS[(3 * i + j + len(ARRAYS) // 2) % len(ARRAYS)]
            # a per-sample row is only itself at a batch above 1
            b1 = rng.choice([2, 3]) if c.shape.per_sample else 1
            points.append(Point(c, *first, df, b1))
            points.append(Point(c, *second, df, rng.choice([2, 3])))
    for r, col in EDGE_ARRAYS:
        for df in DATAFLOWS:
            for c in edge_layers(r, col, df):
                points.append(Point(c, r, col, df, 1 if c.shape.kind == "linear" else rng.choice([1, 2])))
    keys = [(p.corner.shape, p.rows, p.cols, p.dataflow, p.batch) for p in points]
    return [p for i, p in enumerate(points) if keys.index(keys[i]) == i]  # edge layers clamped to 1 can repeat


@dataclass(frozen=True)
class PrecisionPoint:
    point: Point  # the layer at its bits, on the spec with its PE mode
    pe: str
    serial_bits: int

    @property
    def spec(self) -> HardwareSpec:
        return replace(self.point.spec, pe=self.pe, serial_bits=self.serial_bits)


PRECISION_LAYERS = ("conv_s2", "dw_k3", "grouped_g3_k3", "dwmult_x3", "pw_9_17", "k1x3", "linear_70_11",
                    "linear_24_30_x9", "attn_scores_e8_h2_s5_l6")


def precision_points() -> list[PrecisionPoint]:
    rng = random.Random(SEED + 1)
    by_name = {c.shape.name: c for c in corner_layers()}
    out = []
    def batch(shape: LayerShape) -> int:  # a per-sample row is only itself at a batch above 1
        return rng.choice([2, 3]) if shape.per_sample or rng.random() < 0.5 else 1

    for i, name in enumerate(PRECISION_LAYERS):
        c = by_name[name]
        for j, df in enumerate(DATAFLOWS):
            w, a = BITFUSION_BITS[(i + 3 * j) % len(BITFUSION_BITS)]
            r, col = PRECISION_ARRAYS[(i + j) % len(PRECISION_ARRAYS)]
            shape = replace(c.shape, weight_bits=w, act_bits=a)
            out.append(PrecisionPoint(Point(Corner(c.corner, shape), r, col, df, batch(shape)), "bitfusion", 1))
            a, sb = BIT_SERIAL[(i + 2 * j) % len(BIT_SERIAL)]
            r, col = PRECISION_ARRAYS[(i + j + 2) % len(PRECISION_ARRAYS)]
            shape = replace(c.shape, weight_bits=rng.choice([2, 4, 8]), act_bits=a)
            out.append(PrecisionPoint(Point(Corner(c.corner, shape), r, col, df, batch(shape)), "bit-serial", sb))
    return out


def fusion_perf(w: int, a: int) -> int:
    return (8 // max(a, 2)) * (8 // max(w, 2))


def job_gemm(job: Job) -> tuple[int, int, int]:
    """(M, K, N) of one topology row (a ``dp`` row: one channel)."""
    t = dict(job.topology)
    if t["kind"] == "gemm":
        return t["m"], t["k"], t["n"]
    m = ((t["ifmap_h"] - t["filter_h"]) // t["stride"] + 1) * ((t["ifmap_w"] - t["filter_w"]) // t["stride"] + 1)
    return m, t["filter_h"] * t["filter_w"] * t["channels"], 1 if t["depthwise"] else t["filters"]


def topology_name(job: Job) -> str:
    t = dict(job.topology)
    return "gemm" if t["kind"] == "gemm" else "dp" if t["depthwise"] else "conv"


def gemm_job(rows: int, cols: int, dataflow: str, m: int, k: int, n: int) -> Job:
    return Job(rows, cols, dataflow, "CALC", None, None, tuple(sorted({"kind": "gemm", "m": m, "k": k, "n": n}.items())))


def precision_job(p: PrecisionPoint) -> tuple[Job, int, str, int, int]:
    """(SCALE-Sim job, repeat, relation, perf, slowdown) of a precision point; see the module docstring."""
    s, pt = p.point.corner.shape, p.point
    base, repeat = layer_job(replace(s, weight_bits=8, act_bits=8), pt.spec)
    m, k, n = job_gemm(base)
    if p.pe == "bitfusion":
        perf = fusion_perf(s.weight_bits, s.act_bits)
        if pt.dataflow == "os":
            return gemm_job(pt.rows, pt.cols, "os", m, -(-k // perf), n), repeat, "reduced-k", perf, 1
        wide, rep = layer_job(replace(s, weight_bits=8, act_bits=8), replace(pt.spec, rows=pt.rows * perf))
        assert rep == repeat
        return wide, repeat, "wide-array", perf, 1
    slow = -(-s.act_bits // p.serial_bits)
    m, k, n = {"ws": (m * slow, k, n), "os": (m, k * slow, n), "is": (m, k, n * slow)}[pt.dataflow]
    return gemm_job(pt.rows, pt.cols, pt.dataflow, m, k, n), repeat, "stretched", 1, slow


def correction(p: PrecisionPoint, job: Job, repeat: int, perf: int) -> int:
    """Cycles the relation takes off SCALE-Sim's: ``2 R (perf - 1)`` per fold of the wide array."""
    if p.pe != "bitfusion" or p.point.dataflow == "os":
        return 0
    m, k, n = job_gemm(job)
    r, c = p.point.rows, p.point.cols
    folds = math.ceil(k / (r * perf)) * math.ceil((n if p.point.dataflow == "ws" else m) / c)
    return repeat * folds * 2 * r * (perf - 1)


def layer_fields(s: LayerShape, batch: int) -> list:
    return ["corners", s.name, s.kind, batch, s.in_channels, s.out_channels, s.groups, s.kernel_h, s.kernel_w, s.stride,
            s.in_h, s.in_w, s.out_h, s.out_w]


def uboost_gemm(s: LayerShape, batch: int) -> tuple[int, int, int]:
    groups = s.in_channels if s.depthwise else s.groups
    m = (1 if s.per_sample else batch) * s.out_h * s.out_w
    return m, s.kernel_h * s.kernel_w * s.in_channels // groups, s.out_channels // groups


def write_csv(path: str, header: list[str], rows: list[list]) -> None:
    """Atomically (:func:`uboost.io.atomic_write`: temp file + ``os.replace``)."""

    def write(f):
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)

    atomic_write(path, write)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=1, help="SCALE-Sim worker processes")
    ap.add_argument("--cache-dir", default=None, help="keep SCALE-Sim's results here (default: a throw-away folder)")
    ap.add_argument("--out-dir", default=DATA, help=f"where the two CSVs go (default {DATA})")
    ap.add_argument("--list", action="store_true", help="list the points and their rough cycles; do not simulate")
    args = ap.parse_args(argv)

    points = corner_points()
    cjobs = [layer_job(p.corner.shape, p.spec) for p in points]
    ppoints = precision_points()
    pjobs = [precision_job(p) for p in ppoints]
    every = [j for j, _ in cjobs] + [j[0] for j in pjobs]
    if args.list:
        for p, (job, rep) in zip(points, cjobs):
            print(f"{p.corner.corner:18s} {p.corner.shape.name:30s} {p.rows:2d}x{p.cols:<2d} {p.dataflow} b{p.batch} "
                  f"{topology_name(job):4s} x{rep:<3d} ~{job.rough_cycles() * rep:8.0f} cycles")
        for p, (job, rep, rel, perf, slow) in zip(ppoints, pjobs):
            s = p.point.corner.shape
            print(f"{p.pe:10s} w{s.weight_bits}a{s.act_bits}/{p.serial_bits} {s.name:30s} {p.point.rows:2d}x{p.point.cols:<2d} "
                  f"{p.point.dataflow} b{p.point.batch} {rel:10s} on {job.rows}x{job.cols} x{rep} ~{job.rough_cycles() * rep:8.0f}")
        unique = len({j.key for j in every})
        print(f"{len(points)} corner rows, {len(ppoints)} precision rows, {unique} SCALE-Sim jobs, "
              f"rough {sum(j.rough_cycles() for j in {j.key: j for j in every}.values()):.0f} simulated cycles")
        return 0

    cache_dir = args.cache_dir or tempfile.mkdtemp(prefix="scalesim_corners_cache_")
    t0 = time.time()
    try:
        done = [0]

        def progress(n: int, total: int) -> None:
            if n == total or n % 20 == 0:
                print(f"[{n}/{total}] {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
            done[0] = n

        results = simulate(every, workers=args.jobs, cache=ResultCache(cache_dir), progress=progress)
    finally:
        if args.cache_dir is None:
            shutil.rmtree(cache_dir, ignore_errors=True)
    assert all(stalls == 0 for _, stalls in results), "CALC mode never stalls"
    cycles = [c for c, _ in results]

    corner_rows = []
    for p, (job, rep), cyc in zip(points, cjobs, cycles):
        s = p.corner.shape
        corner_rows.append(layer_fields(s, p.batch) + [p.rows, p.cols, p.dataflow, *uboost_gemm(s, p.batch), cyc * rep,
                                                        int(s.per_sample), topology_name(job), rep, p.corner.corner])
    precision_rows = []
    for p, (job, rep, rel, perf, slow), cyc in zip(ppoints, pjobs, cycles[len(points):]):
        s, pt = p.point.corner.shape, p.point
        fix = correction(p, job, rep, perf)
        precision_rows.append(
            layer_fields(s, pt.batch) + [int(s.per_sample), pt.rows, pt.cols, pt.dataflow, p.pe, s.weight_bits, s.act_bits,
                                         p.serial_bits, perf, slow, rel, job.rows, job.cols, topology_name(job), *job_gemm(job),
                                         rep, cyc * rep, fix, cyc * rep - fix, p.point.corner.corner])
    write_csv(os.path.join(args.out_dir, CORNERS_OUT), CORNER_HEADER, corner_rows)
    write_csv(os.path.join(args.out_dir, PRECISION_OUT), PRECISION_HEADER, precision_rows)
    print(f"wrote {len(corner_rows)} corner rows and {len(precision_rows)} precision rows to {args.out_dir} "
          f"in {time.time() - t0:.0f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
