"""Access counts per dataflow: the REFERENCES section 3 table on hand-sized layers (the full
SCALE-Sim golden comparison is tests/hardware/test_access_golden.py)."""

from __future__ import annotations

import pytest
import torch

from uboost.hardware import HardwareSpec, LayerShape, LayerTable
from uboost.hardware.access import ACCESS_KEYS, access_counts

CONV = LayerShape(name="c", kind="conv", in_channels=3, out_channels=5, kernel_h=3, kernel_w=3, in_h=6, in_w=6, out_h=4, out_w=4)


@pytest.mark.parametrize(
    "dataflow, expected",
    [
        # M = 16, K = 27, N = 5 on 8 rows x 4 cols; SCALE-Sim 3.0 CALC mode reports the same numbers
        ("ws", [16 * 27 * 2, 27 * 5, 16 * 5 * 4, 6 * 6 * 3, 135, 16 * 5 * 4]),
        ("os", [16 * 27 * 2, 27 * 5 * 2, 16 * 5 + (8 + 4) * 2 * 2, 108, 135, 16 * 5]),
        ("is", [16 * 27, 27 * 5 * 4, 16 * 5 * 4, 108, 135, 16 * 5 * 4]),
    ],
)
def test_counts_by_hand(dataflow, expected):
    counts = access_counts(HardwareSpec(rows=8, cols=4, dataflow=dataflow), LayerTable.from_shapes([CONV]))
    assert list(counts) == list(ACCESS_KEYS)
    assert [counts[k].item() for k in ACCESS_KEYS] == expected


def test_batch_groups_and_skipping_strides():
    # depthwise 3x3 on 4 channels, batch 2: 4 one-channel GEMMs of M = 2*4*4, K = 9, N = 1 (WS, 4x4 array)
    dw = LayerShape(name="dw", kind="depthwise", in_channels=4, out_channels=4, groups=4, kernel_h=3, kernel_w=3,
                    in_h=6, in_w=6, out_h=4, out_w=4)
    # stride 3 with a 2x2 kernel skips a row and a column of every three: 3 x 2 = 6 rows touched of 8
    skip = LayerShape(name="s", kind="conv", in_channels=2, out_channels=3, kernel_h=2, kernel_w=2, stride=3,
                      in_h=8, in_w=8, out_h=3, out_w=3)
    counts = access_counts(HardwareSpec(rows=4, cols=4, batch_size=2), LayerTable.from_shapes([dw, skip]))
    assert counts["ifmap_sram_reads"].tolist() == [4 * 32 * 9, 2 * 9 * 8]
    assert counts["filter_sram_reads"].tolist() == [4 * 9, 8 * 3]
    assert counts["ofmap_sram_writes"].tolist() == [4 * 32 * 3, 2 * 9 * 3 * 2]
    assert counts["ifmap_dram_reads"].tolist() == [2 * 36 * 4, 2 * 6 * 6 * 2]
    assert counts["filter_dram_reads"].tolist() == [36, 24]


def test_soft_channels_give_gradients_and_match_at_integers():
    table = LayerTable.from_shapes([CONV])
    spec = HardwareSpec(rows=8, cols=4, dataflow="os")
    cout = torch.tensor([5.0], dtype=torch.float64, requires_grad=True)
    exact = access_counts(spec, table, out_channels=cout)
    assert all(torch.equal(exact[k], v) for k, v in access_counts(spec, table).items())
    smooth = access_counts(spec, table, out_channels=cout, temperature=5.0)
    (grad,) = torch.autograd.grad(sum(v.sum() for v in smooth.values()), cout)
    assert grad.item() > 0


def test_systolic_mem_dram_read_words():
    """systolic-mem's re-fetch estimate: an operand that fits is read once as SCALE-Sim lays it out for its
    prefetches (folds padded to the array: bench_energy_hw.py --part c, DRAM reads 2.3 % off USER mode), one that
    overflows its half buffer is read walk by walk (more words), and unbounded memory reads each GEMM word once."""
    from uboost.hardware import create

    big = LayerShape(name="big", kind="conv", in_channels=32, out_channels=64, kernel_h=3, kernel_w=3, in_h=18, in_w=18, out_h=16, out_w=16)
    table = LayerTable.from_shapes([CONV, big])
    m, k, n = torch.tensor([16.0, 256.0]), torch.tensor([27.0, 288.0]), torch.tensor([5.0, 64.0])
    free = create("systolic-mem", rows=16, cols=16).dram_read_words(table)
    assert free["ifmap_dram_reads"].tolist() == (m * k).tolist() and free["filter_dram_reads"].tolist() == (k * n).tolist()
    tight = create("systolic-mem", rows=16, cols=16, sram_kb=16, dram_bw_words=10).dram_read_words(table)
    # fits: WS's ifmap (16 pixels x 27) in 2 folds of 16 of its 27 columns, its filters (27 x 5) in one of 16 columns
    assert tight["ifmap_dram_reads"][0].item() == 16 * 16 * 2 and tight["filter_dram_reads"][0].item() == 27 * 16
    # the big ifmap (73,728 words) overflows an 8 kB half and is walked once per filter column fold (4)
    assert tight["ifmap_dram_reads"][1].item() >= 4 * 256 * 288
    soft = create("systolic-mem", rows=16, cols=16, sram_kb=16, dram_bw_words=10)
    cout = torch.tensor([5.0, 64.0], dtype=torch.float64, requires_grad=True)
    words = soft.dram_read_words(table, out_channels=cout, temperature=4.0)
    (grad,) = torch.autograd.grad(words["filter_dram_reads"].sum(), cout)
    assert torch.isfinite(grad).all() and (grad > 0).all()


def test_systolic_mem_accesses_add_the_refetches():
    from uboost.hardware import create

    big = LayerShape(name="big", kind="conv", in_channels=32, out_channels=64, kernel_h=3, kernel_w=3, in_h=18, in_w=18, out_h=16, out_w=16)
    table = LayerTable.from_shapes([CONV, big])
    spec = dict(rows=16, cols=16, sram_kb=16, dram_bw_words=10)
    plain = access_counts(HardwareSpec(**spec), table)
    mem = create("systolic-mem", **spec)
    counts, words = mem.accesses(table), mem.dram_read_words(table)
    # memory-bound: the im2col operand as SCALE-Sim's USER mode fetches it (16 x 27 words padded to 2 folds of 16
    # columns, not 6 x 6 x 3 pixels)
    assert counts["ifmap_dram_reads"][0].item() == 16 * 16 * 2 and plain["ifmap_dram_reads"][0].item() == 6 * 6 * 3
    assert torch.equal(counts["ifmap_dram_reads"], words["ifmap_dram_reads"]) and counts["ifmap_dram_reads"][1] > 256 * 288
    assert all(torch.equal(counts[k], plain[k]) for k in ("ifmap_sram_reads", "filter_sram_reads", "ofmap_sram_writes", "ofmap_dram_writes"))
    assert mem.energy_pj(table)[1] > create("systolic", **spec).energy_pj(table)[1]  # re-fetches cost DRAM energy
    free = create("systolic-mem", rows=16, cols=16)
    assert all(torch.equal(free.accesses(table)[k], v) for k, v in access_counts(free.spec, table).items())
