"""Access counts against SCALE-Sim 3.0's DETAILED_ACCESS_REPORT, word for word.

The golden CSV was produced by ``tools/make_scalesim_access_golden.py`` (SCALE-Sim in its own
virtualenv, CALC mode, buffers large enough): real layers of ResNet-18, MobileNetV2 and a
DARTS-style CIFAR network on 16x16, 8x32 and 32x8 arrays, WS/OS/IS, batch 1 to 64.

SCALE-Sim's batch is fixed at 1, so batched layers run as GEMM rows (``M = B*H*W``): it sees no
convolution windows there and reads the whole ``M x K`` im2col matrix from DRAM. uboost counts the
input pixels the windows touch, ``B`` times the batch-1 convolution's count: on batched rows with a
kernel larger than 1x1 (``1x3`` included: its windows overlap along one side) the test checks that,
against the batch-1 row of the same layer.
"""

import csv
from pathlib import Path

from tests.hardware.test_scalesim_golden import shape_of
from uboost.hardware import HardwareSpec, LayerTable
from uboost.hardware.access import ACCESS_KEYS, access_counts

GOLDEN = Path(__file__).parent / "data" / "scalesim_access_golden.csv"


def load_rows():
    with open(GOLDEN, newline="") as f:
        return list(csv.DictReader(f))


def _geometry(row):
    return tuple(row[k] for k in ("network", "kind", "in_channels", "out_channels", "groups", "kernel_h", "kernel_w", "stride",
                                  "out_h", "out_w", "rows", "cols", "dataflow"))


def reads_im2col(row) -> bool:
    """SCALE-Sim read the whole im2col matrix where uboost counts the pixels the windows touch: a GEMM
    row (batched) of a kernel larger than 1x1, in either direction."""
    return row["topology"] == "gemm" and int(row["kernel_h"]) * int(row["kernel_w"]) > 1


def test_golden_data_covers_the_required_points():
    rows = load_rows()
    assert len(rows) >= 100
    assert {r["dataflow"] for r in rows} == {"ws", "os", "is"}
    arrays = {(int(r["rows"]), int(r["cols"])) for r in rows}
    assert any(r < c for r, c in arrays) and any(r > c for r, c in arrays)
    assert {"conv", "depthwise", "pointwise", "fc"} <= {r["kind"] for r in rows}
    batched = [r for r in rows if int(r["batch"]) > 1]
    assert len(batched) >= 20 and {r["dataflow"] for r in batched} == {"ws", "os", "is"}


def test_access_counts_equal_scalesim():
    rows = load_rows()
    batch_one = {_geometry(r): r for r in rows if r["batch"] == "1"}
    mismatches, windowed = [], 0
    groups = {}
    for row in rows:
        groups.setdefault((int(row["rows"]), int(row["cols"]), row["dataflow"], int(row["batch"])), []).append(row)
    for (r, c, flow, batch), members in groups.items():
        spec = HardwareSpec(rows=r, cols=c, dataflow=flow, batch_size=batch)
        counts = access_counts(spec, LayerTable.from_shapes([shape_of(m) for m in members]))
        for i, row in enumerate(members):
            for key in ACCESS_KEYS:
                ours, theirs = counts[key][i].item(), int(row[key])
                if key == "ifmap_dram_reads" and reads_im2col(row):
                    m = batch * int(row["out_h"]) * int(row["out_w"])
                    k = int(row["kernel_h"]) * int(row["kernel_w"]) * int(row["in_channels"]) // int(row["groups"])
                    assert theirs == m * k * int(row["groups"]), row  # SCALE-Sim's GEMM rows read im2col
                    single = batch_one.get(_geometry(row))
                    if single is None:
                        continue
                    theirs, windowed = batch * int(single[key]), windowed + 1
                if ours != theirs:
                    mismatches.append((row["layer"], r, c, flow, batch, key, ours, theirs))
    assert not mismatches, f"{len(mismatches)} mismatches, e.g. {mismatches[:5]}"
    assert windowed >= 5  # batched convolutions checked against B x their batch-1 counts


def test_os_ofmap_writes_carry_scalesims_quirk():
    """OS: SCALE-Sim counts M N + (R + C) per output fold of ofmap SRAM writes (the fold's drain), M N to DRAM."""
    rows = [r for r in load_rows() if r["dataflow"] == "os"]
    assert len(rows) >= 30
    for r in rows:
        R, C, groups = int(r["rows"]), int(r["cols"]), int(r["groups"])
        m = int(r["batch"]) * int(r["out_h"]) * int(r["out_w"])
        n = int(r["out_channels"]) // groups
        folds = -(-m // R) * -(-n // C)
        assert int(r["ofmap_dram_writes"]) == groups * m * n, r
        assert int(r["ofmap_sram_writes"]) - int(r["ofmap_dram_writes"]) == groups * (R + C) * folds, r


def test_a_1x3_kernel_at_batch_2_is_exempt_like_a_3x3():
    """Measured with SCALE-Sim 3.0 on an 8x8 array (WS, OS and IS alike): a 4 -> 6 conv, 1x3 kernel on
    5x7 (out 5x5), reads its 140 input pixels as a batch-1 convolution row and 600 = M x K words as a
    batch-2 GEMM row; uboost counts 2 x 140. A 1x1 kernel reads each pixel once either way."""
    row = {"network": "t", "layer": "k1x3", "kind": "conv", "in_channels": "4", "out_channels": "6", "groups": "1", "kernel_h": "1",
           "kernel_w": "3", "stride": "1", "in_h": "5", "in_w": "7", "out_h": "5", "out_w": "5", "rows": "8", "cols": "8",
           "dataflow": "ws", "topology": "gemm", "batch": "2"}
    assert reads_im2col(row) and reads_im2col({**row, "kernel_h": "3", "kernel_w": "1"})
    assert not reads_im2col({**row, "kernel_w": "1", "in_w": "5"}) and not reads_im2col({**row, "topology": "conv"})
    for flow in ("ws", "os", "is"):
        counts = access_counts(HardwareSpec(rows=8, cols=8, dataflow=flow, batch_size=2), LayerTable.from_shapes([shape_of(row)]))
        assert counts["ifmap_dram_reads"].item() == 2 * 140 != 600
