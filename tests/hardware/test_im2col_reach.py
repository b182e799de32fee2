"""Issue 22: SCALE-Sim's im2col copies of IS's stationary ifmap, and the crawl of an operand just over
half a buffer, against numbers worked out by hand and SCALE-Sim's own (data file and read-buffer replay)."""

import pytest
import torch

from uboost.hardware import HardwareSpec, LayerShape, LayerTable, create
from uboost.hardware.im2col_reach import tile_reach
from uboost.hardware.systolic import compute_cycles


def test_tile_reach_by_hand():
    """A 2x2 conv on a 3x3 input (2x2 outputs, 1 channel) on a 2x2 array. Fetch order (column fold =
    one output row, k-major): fold 0 holds pixels 0 1 | 1 2 | 3 4 | 4 5 at positions 0-7, fold 1
    holds 3 4 | 4 5 | 6 7 | 7 8 at 8-15. Tile t = (fold t // 2, k rows 2 (t % 2) .. +2)."""
    lo, hi = tile_reach(2, 2, 2, 2, 1, 1, 2, 2, 100.0, 64)
    # a wide window: every copy reaches every other (pixel 3 at 4 and 8, pixel 4 at 5 6 9 10, pixel 5 at 7 11)
    assert lo.tolist() == [0, 8, 8, 12]  # smallest last copy: tile 1's pixels 3-5 last appear in fold 1
    assert hi.tolist() == [3, 7, 7, 15]  # largest first copy: tile 2's pixels first appear in fold 0
    # a window of 3: copies 3 or more apart do not reach each other (pixel 3's at 4 and 8, pixel 4's 6 -> 9)
    lo, hi = tile_reach(2, 2, 2, 2, 1, 1, 2, 2, 3.0, 64)
    assert lo.tolist() == [0, 4, 8, 12]
    assert hi.tolist() == [3, 7, 11, 15]
    lo, hi = tile_reach(2, 2, 2, 2, 1, 1, 2, 2, 3.0, 3)  # only the traced tiles
    assert len(lo) == len(hi) == 3


def _conv(cin, cout, k, size, stride=1):
    out = (size - k) // stride + 1
    return LayerShape(name="c", kind="conv", in_channels=cin, out_channels=cout, kernel_h=k, kernel_w=k, stride=stride,
                      in_h=size, in_w=size, out_h=out, out_w=out)


def _terms(model, table):
    _, compute, (ceil, m, k, n) = compute_cycles(model.spec, table)
    return model.terms(compute, m, k, n, ceil, None, ifmap_copies=torch.tensor([True]), ifmap_reach=model.ifmap_reach(table, m, k))


def test_a_3x3_conv_on_a_32x32_is_array_never_circles():
    """SCALE-Sim never stalls on this 16-channel 3x3 stride-1 conv at 32x32 IS with 8-16 kB (its
    cycles equal its compute cycles in tests/hardware/data/scalesim_user_groups.csv: 17,599): every
    demanded pixel has a copy in the window. Without the copies traced, the window edges inside its
    tiles made the model circle the 147k-word ifmap 17-40 times (issue 22's worst corner, 47 % off). What is left
    above SCALE-Sim (22,103 cycles with the constants refitted on the exact filter counts) is the combine's overlap
    share of those filter prefetches, which SCALE-Sim hides under compute here."""
    table = LayerTable.from_shapes([_conv(16, 16, 3, 34)])
    for kb in (8, 16):
        model = create("systolic-mem", spec=HardwareSpec(rows=32, cols=32, dataflow="is", sram_kb=kb, dram_bw_words=10))
        assert _terms(model, table)["ifmap_wrap"].item() == 0.0
        assert model.cycles(table).item() == pytest.approx(17_599, rel=0.3)
    # a 1x1 conv repeats no pixel: its tiles are traced as before and it still circles
    plain = LayerTable.from_shapes([_conv(48, 16, 1, 32)])
    model = create("systolic-mem", spec=HardwareSpec(rows=32, cols=32, dataflow="is", sram_kb=16, dram_bw_words=10))
    assert torch.isnan(model.ifmap_reach(plain, *compute_cycles(model.spec, plain)[2][1:3])[0]).all()
    assert _terms(model, plain)["ifmap_wrap"].item() > 0.0


def test_filters_just_over_half_a_buffer_crawl():
    """OS, 32x32, 16 kB: a 3x3 conv's 9,216 filter words fill 57 of the buffer's 100 hashed lines, so
    each prefetch moves the window 7 lines for a full chunk. SCALE-Sim's read buffer, replayed
    (tools/replay_scalesim_prefetches.py), issues 58 prefetches for the 8 walks (one per row fold
    of the outputs); the half-buffer walk gave 8."""
    table = LayerTable.from_shapes([_conv(32, 32, 3, 18)])
    model = create("systolic-mem", spec=HardwareSpec(rows=32, cols=32, dataflow="os", sram_kb=16, dram_bw_words=10))
    seq = _terms(model, table)["filter_seq"].item()
    assert seq == pytest.approx(58, rel=0.15)
    # twice the filters (115 lines) no longer crawl: half a buffer per chunk
    wide = LayerTable.from_shapes([_conv(64, 32, 3, 18)])
    assert _terms(model, wide)["filter_seq"].item() < seq
