"""The cycle-exact systolic model against SCALE-Sim 3.0 on corners the main golden data leaves out.

``scalesim_corners.csv`` and ``scalesim_precision.csv`` were produced by
``tools/make_scalesim_corners.py`` (real SCALE-Sim runs through uboost's runner; see its docstring
for the columns). The corners: non-square and degenerate arrays, WS/OS/IS, batch 1 and above, grouped,
depthwise and channel-multiplier depthwise layers, strides 2 and 3, padding, kernels larger than their
input, 1x1 and non-square kernels, ``Linear`` with and without tokens, an attention's per-sample rows
and channel counts next to multiples of the array's sides. The precision rows check the relations
by which ``uboost.hardware.precision`` and ``uboost.hardware.systolic`` say the ``bitfusion`` and
``bit-serial`` PEs relate to a fixed-PE array, with SCALE-Sim as that array.

The coverage tests read the geometry, not the ``corner`` labels, so a regenerated file that loses
a kind of corner fails.
"""

import csv
import math
from collections import defaultdict
from pathlib import Path

from tests.hardware.test_scalesim_golden import shape_of
from uboost.hardware import HardwareSpec, LayerTable, create

DATA = Path(__file__).parent / "data"
CORNERS = DATA / "scalesim_corners.csv"
PRECISION = DATA / "scalesim_precision.csv"
DATAFLOWS = {"ws", "os", "is"}
ARRAYS = {(8, 32), (32, 8), (4, 64), (1, 16), (16, 1), (3, 5), (7, 13)}


def load(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def num(row, *keys):
    return [int(row[k]) for k in keys]


def gemm(row):
    """``(groups, M, K, N)`` of a row's layer, from its geometry alone (as ``uboost.hardware.layers`` states it)."""
    cin, cout, g, kh, kw, oh, ow, b = num(row, "in_channels", "out_channels", "groups", "kernel_h", "kernel_w", "out_h",
                                          "out_w", "batch")
    per_sample = row["per_sample"] == "1"
    return (g * b if per_sample else g), (1 if per_sample else b) * oh * ow, kh * kw * cin // g, cout // g


def systolic_cycles(rows, **pe):
    """``systolic``'s cycles of every row, on its array, dataflow, batch (and PE mode)."""
    groups = defaultdict(list)
    for i, row in enumerate(rows):
        extra = {k: (row[k] if k == "pe" else int(row[k])) for k in pe}
        groups[(*num(row, "rows", "cols", "batch"), row["dataflow"], tuple(sorted(extra.items())))].append(i)
    out = [None] * len(rows)
    for (r, c, b, flow, extra), members in groups.items():
        model = create("systolic", spec=HardwareSpec(rows=r, cols=c, dataflow=flow, batch_size=b, **dict(extra)))
        for i, cycles in zip(members, model.cycles(LayerTable.from_shapes([shape_of(rows[i]) for i in members])).tolist()):
            out[i] = cycles
    return out


# -- corners -----------------------------------------------------------------------------------
def test_systolic_matches_scalesim_on_every_corner():
    rows = load(CORNERS)
    ours = systolic_cycles(rows)
    bad = [(r["layer"], r["rows"], r["cols"], r["dataflow"], r["batch"], o, r["cycles"])
           for r, o in zip(rows, ours) if o != float(r["cycles"])]
    assert not bad, f"{len(bad)} of {len(rows)} differ, e.g. {bad[:5]}"
    for r in rows:  # the GEMM columns are the layer's (per group; M = one sample's rows for per-sample layers)
        assert num(r, "M", "K", "N") == list(gemm(r)[1:]), r


def _edge(x: int, side: int):
    """-1, 0 or 1 when ``x`` is one below, at or one above a (nonzero) multiple of ``side`` (side >= 3)."""
    for d in (-1, 0, 1):
        if (x - d) % side == 0 and x - d >= side:
            return d
    return None


def _padded(r):
    kh, kw, s, ih, iw, oh, ow = num(r, "kernel_h", "kernel_w", "stride", "in_h", "in_w", "out_h", "out_w")
    return r["kind"] != "linear" and ((oh - 1) * s + kh > ih or (ow - 1) * s + kw > iw)


CORNER_KINDS = {  # kind -> (test on a row's geometry, whether it must also appear at batch 1)
    "grouped": (lambda r: r["kind"] != "linear" and 1 < int(r["groups"]) < int(r["in_channels"]), True),
    "depthwise": (lambda r: 1 < int(r["groups"]) == int(r["in_channels"]) == int(r["out_channels"]), True),
    "dw-multiplier": (lambda r: 1 < int(r["groups"]) == int(r["in_channels"]) < int(r["out_channels"]), True),
    "stride2": (lambda r: r["stride"] == "2", True),
    "stride3": (lambda r: r["stride"] == "3", True),
    "padded": (_padded, True),
    "kernel>input": (lambda r: int(r["kernel_h"]) > int(r["in_h"]) or int(r["kernel_w"]) > int(r["in_w"]), True),
    "1x1": (lambda r: r["kind"] == "pointwise", True),
    "non-square-kernel": (lambda r: r["kernel_h"] != r["kernel_w"], True),
    "linear": (lambda r: r["kind"] == "linear" and int(r["out_h"]) * int(r["out_w"]) == 1, True),
    "linear-tokens": (lambda r: r["kind"] == "linear" and int(r["out_h"]) * int(r["out_w"]) > 1 and r["per_sample"] == "0", True),
    "per-sample": (lambda r: r["per_sample"] == "1" and int(r["batch"]) > 1 and int(r["groups"]) > 1, False),
}


def test_corners_cover_every_kind_array_and_dataflow():
    rows = load(CORNERS)
    assert 200 <= len(rows) <= 500
    for kind, (test, at_batch_one) in CORNER_KINDS.items():
        hits = [r for r in rows if test(r)]
        assert {r["dataflow"] for r in hits} == DATAFLOWS, kind
        assert len({(r["rows"], r["cols"]) for r in hits}) >= 4, kind
        assert any(int(r["batch"]) > 1 for r in hits), kind
        assert not at_batch_one or any(r["batch"] == "1" for r in hits), kind
        labelled = [r for r in rows if r["corner"] == kind]
        assert labelled and all(test(r) for r in labelled), kind  # the labels say what the geometry is
    arrays = defaultdict(set)
    for r in rows:
        arrays[tuple(num(r, "rows", "cols"))].add(r["dataflow"])
    assert ARRAYS <= set(arrays) and all(arrays[a] == DATAFLOWS for a in ARRAYS)
    # SCALE-Sim's three topology formats (batch-1 conv rows, its depthwise rows, GEMM rows), each on every dataflow
    assert {(r["topology"], r["dataflow"]) for r in rows} == {(t, d) for t in ("conv", "dp", "gemm") for d in DATAFLOWS}


def test_corners_put_channels_one_below_at_and_one_above_the_array_sides():
    """K against the rows, N against the columns, and the streamed rows M against the side that tiles
    them (OS: rows, IS: columns), on every array whose side is at least 3."""
    rows = load(CORNERS)
    for rr, cc in ARRAYS:
        here = [r for r in rows if num(r, "rows", "cols") == [rr, cc]]
        checks = [("K", rr, here), ("N", cc, here), ("M", rr, [r for r in here if r["dataflow"] == "os"]),
                  ("M", cc, [r for r in here if r["dataflow"] == "is"])]
        for column, side, members in checks:
            if side >= 3:
                assert {_edge(int(r[column]), side) for r in members} >= {-1, 0, 1}, (rr, cc, column)


# -- precision ---------------------------------------------------------------------------------
def test_pe_modes_equal_scalesim_through_the_documented_relations():
    """``bitfusion`` WS/IS is SCALE-Sim on an (R*perf) x C array less 2R(perf-1) per fold, OS a SCALE-Sim GEMM
    of K = ceil(K/perf); ``bit-serial`` a SCALE-Sim GEMM whose streamed side (WS M, OS K, IS N) is
    ceil(act_bits/serial_bits) times longer. The SCALE-Sim jobs are checked against the layers' own
    geometry, then ``systolic`` with the PE mode against SCALE-Sim's cycles so related."""
    rows = load(PRECISION)
    for r in rows:
        R, C, w, a, sb, perf, slow = num(r, "rows", "cols", "weight_bits", "act_bits", "serial_bits", "perf", "slowdown")
        g, m, k, n = gemm(r)
        sim = num(r, "sim_rows", "sim_cols", "sim_M", "sim_K", "sim_N", "sim_repeat")
        assert sim[-1] == g, r
        if r["pe"] == "bitfusion":
            assert (perf, slow) == ((8 // max(a, 2)) * (8 // max(w, 2)), 1), r
            if r["dataflow"] == "os":
                assert r["relation"] == "reduced-k" and sim[:5] == [R, C, m, math.ceil(k / perf), n], r
                fix = 0
            else:
                assert r["relation"] == "wide-array" and sim[:5] == [R * perf, C, m, k, n], r
                fix = g * math.ceil(k / (R * perf)) * math.ceil((n if r["dataflow"] == "ws" else m) / C) * 2 * R * (perf - 1)
        else:
            assert r["pe"] == "bit-serial" and (perf, slow) == (1, math.ceil(a / sb)), r
            stretched = {"ws": [m * slow, k, n], "os": [m, k * slow, n], "is": [m, k, n * slow]}[r["dataflow"]]
            assert r["relation"] == "stretched" and sim[:5] == [R, C, *stretched], r
            fix = 0
        assert int(r["correction"]) == fix and int(r["cycles"]) == int(r["sim_cycles"]) - fix, r
    ours = systolic_cycles(rows, pe=None, serial_bits=None)
    bad = [(r["layer"], r["pe"], r["weight_bits"], r["act_bits"], r["rows"], r["cols"], r["dataflow"], o, r["cycles"])
           for r, o in zip(rows, ours) if o != float(r["cycles"])]
    assert not bad, f"{len(bad)} of {len(rows)} differ, e.g. {bad[:5]}"


def test_precision_rows_cover_both_modes_every_dataflow_and_real_speedups():
    rows = load(PRECISION)
    assert {(r["pe"], r["dataflow"]) for r in rows} == {(p, d) for p in ("bitfusion", "bit-serial") for d in DATAFLOWS}
    fusion = [r for r in rows if r["pe"] == "bitfusion"]
    assert {int(r["perf"]) for r in fusion} >= {1, 2, 4, 16}
    assert {r["relation"] for r in fusion} == {"wide-array", "reduced-k"}
    assert {int(r["slowdown"]) for r in rows if r["pe"] == "bit-serial"} >= {1, 2, 4, 8}
    assert any(int(r["correction"]) > 0 for r in fusion)
    assert any(int(r["batch"]) > 1 for r in rows) and any(r["batch"] == "1" for r in rows)
    assert any(r["per_sample"] == "1" for r in rows) and any(1 < int(r["groups"]) for r in rows)
    assert {r["sim_topology"] for r in rows} == {"conv", "dp", "gemm"}
