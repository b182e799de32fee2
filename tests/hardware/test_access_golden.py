"""Access counts against SCALE-Sim 3.0's DETAILED_ACCESS_REPORT, word for word.

The golden CSV was produced by ``tools/make_scalesim_access_golden.py`` (SCALE-Sim in its own
virtualenv, CALC mode, buffers large enough): real layers of ResNet-18, MobileNetV2 and a
DARTS-style CIFAR network on 16x16, 8x32 and 32x8 arrays, WS/OS/IS, batch 1 to 64.

SCALE-Sim's batch is fixed at 1, so batched layers run as GEMM rows (``M = B*H*W``): it sees no
convolution windows there and reads the whole ``M x K`` im2col matrix from DRAM. uboost counts the
input pixels the windows touch, ``B`` times the batch-1 convolution's count: on batched rows with a
kernel larger than 1 the test checks that, against the batch-1 row of the same layer.
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
    return tuple(row[k] for k in ("network", "kind", "in_channels", "out_channels", "kernel_h", "stride", "out_h", "rows", "cols", "dataflow"))


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
                if key == "ifmap_dram_reads" and row["topology"] == "gemm" and int(row["kernel_h"]) > 1:
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
