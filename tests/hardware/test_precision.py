"""Precision-aware cost models: PE modes (fixed, bitfusion, bit-serial) and bits in storage."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from uboost.exceptions import ConfigError
from uboost.hardware import HardwareSpec, LayerShape, LayerTable, create, extract_layers

CONV = LayerShape(name="c", kind="conv", in_channels=16, out_channels=32, kernel_h=3, kernel_w=3, in_h=8, in_w=8, out_h=8, out_w=8)
LAYERS = [
    CONV,
    LayerShape(name="p", kind="pointwise", in_channels=48, out_channels=20, in_h=6, in_w=6, out_h=6, out_w=6),
    LayerShape(name="d", kind="depthwise", in_channels=12, out_channels=12, groups=12, kernel_h=3, kernel_w=3,
               in_h=8, in_w=8, out_h=8, out_w=8),
    LayerShape(name="l", kind="linear", in_channels=100, out_channels=10),
]


def at(layers, w, a):
    return [replace(s, weight_bits=w, act_bits=a) for s in layers]


def perf(w, a):
    return (8 // max(a, 2)) * (8 // max(w, 2))


@pytest.mark.parametrize("bits", [(8, 8), (4, 4), (2, 2), (8, 4), (4, 8), (8, 2), (2, 4), (6, 6), (3, 5)])
@pytest.mark.parametrize("dataflow", ["ws", "is"])
def test_bitfusion_equals_systolic_with_perf_times_the_rows(bits, dataflow):
    """The folds of an (R * perf) x C array; each fold fills through the R physical rows, so it
    is 2 R (perf - 1) cycles shorter than on the wider array (with perf = 1: identical)."""
    w, a = bits
    p = perf(w, a)
    fused = create("systolic", rows=16, cols=16, dataflow=dataflow, pe="bitfusion").evaluate(at(LAYERS, w, a))
    wide = create("systolic", rows=16 * p, cols=16, dataflow=dataflow).evaluate(LAYERS)
    for f, l in zip(fused.layers, wide.layers):
        s = l.layer
        groups = s.in_channels if s.depthwise else s.groups
        k = s.kernel_h * s.kernel_w * s.in_channels // groups
        n, m = s.out_channels // groups, s.out_h * s.out_w
        folds = groups * math.ceil(k / (16 * p)) * (math.ceil(n / 16) if dataflow == "ws" else math.ceil(m / 16))
        assert f.cycles == l.cycles - folds * 2 * 16 * (p - 1)
    if p == 1:
        assert fused.cycles == wide.cycles


@pytest.mark.parametrize("bits", [(8, 8), (4, 4), (2, 2), (8, 2)])
@pytest.mark.parametrize("dataflow", ["ws", "is", "os"])
def test_bitfusion_words_are_those_of_its_folds(bits, dataflow):
    """The access counts (and so the energy) fold K as the cycle model does: over R * perf rows under
    WS and IS (partial sums written once per fold), the physical rows under OS. They were counted on
    the R physical rows: a 2-bit layer on 16x16 WS wrote 12x the partial sums its 3 folds write."""
    w, a = bits
    p = perf(w, a) if dataflow != "os" else 1
    fused = create("systolic", rows=16, cols=16, dataflow=dataflow, pe="bitfusion").evaluate(at(LAYERS, w, a))
    wide = create("systolic", rows=16 * p, cols=16, dataflow=dataflow).evaluate(LAYERS)
    for f, l in zip(fused.layers, wide.layers):
        for key in ("ofmap_sram_writes", "ofmap_dram_writes", "ifmap_dram_reads", "filter_dram_reads"):
            assert f.words[key] == l.words[key], (f.layer.name, key)
    conv = create("systolic", rows=16, cols=16, dataflow=dataflow, pe="bitfusion").evaluate(at([CONV], w, a)).layers[0]
    folds = math.ceil(3 * 3 * 16 / (16 * perf(w, a))) if dataflow != "os" else 1
    assert conv.words["ofmap_dram_writes"] == 8 * 8 * 32 * folds  # M N ceil(K / (R perf)); OS: M N
    # systolic-mem's write port moves those partial sums (16x16 outputs x 64 filters overflow a 1 kB ofmap buffer)
    from uboost.hardware.access import reduction_rows
    from uboost.hardware.systolic import compute_cycles

    big = replace(CONV, out_channels=64, in_h=16, in_w=16, out_h=16, out_w=16)
    mem = create("systolic-mem", rows=16, cols=16, dataflow=dataflow, pe="bitfusion", sram_kb=1, dram_bw_words=1)
    table = LayerTable.from_shapes(at([big], w, a))
    _, _, (ceil, m, k, n) = compute_cycles(mem.spec, table, None, None, None)
    writes = mem.write_cycles(m, k, n, ceil, None, a / 8.0, reduction_rows(mem.spec, table))
    words = (1 if dataflow == "os" else folds) * 16 * 16 * 64 * a / 8.0
    assert float(writes) == pytest.approx(words / 2.0)  # at twice the 1 word/cycle (the drain frees half the buffer)


def test_bitfusion_os_streams_the_reduction_perf_times_faster():
    # a Linear layer's K is its input features: on OS each PE accumulates perf products per cycle
    layer = LayerShape(name="l", kind="linear", in_channels=100, out_channels=10, in_h=40, out_h=40)
    fused = create("systolic", rows=16, cols=16, dataflow="os", pe="bitfusion").evaluate(at([layer], 4, 4))
    plain = create("systolic", rows=16, cols=16, dataflow="os").evaluate([replace(layer, in_channels=25)])  # ceil(100 / 4)
    assert fused.cycles == plain.cycles
    # by hand: ceil(M/R) * ceil(N/C) * (ceil(K/perf) + R + C - 2) - 1 = 3 * 1 * (25 + 30) - 1
    assert fused.cycles == 3 * 1 * (25 + 16 + 16 - 2) - 1


def test_fixed_at_8_bits_is_todays_numbers_and_bits_do_not_change_compute():
    # WS by hand: ceil(K/R) * ceil(N/C) * (M + 2R + C - 2) - 1 with M = 64, K = 144, N = 32 on 16x16
    for pe in ("fixed", "bitfusion", "bit-serial"):
        if pe == "bit-serial":
            continue  # 8 serial cycles per step at 8 bits
        report = create("systolic", rows=16, cols=16, pe=pe).evaluate([CONV])
        assert report.cycles == 9 * 2 * (64 + 32 + 16 - 2) - 1 == 1979
    fixed = create("systolic", rows=16, cols=16)
    for w, a in ((4, 4), (2, 8), (16, 16)):
        assert fixed.evaluate(at(LAYERS, w, a)).cycles == fixed.evaluate(LAYERS).cycles


def test_bitfusion_utilization_counts_effective_macs_over_effective_pes():
    report = create("systolic", rows=16, cols=16, pe="bitfusion").evaluate(at([CONV], 4, 4))
    assert report.layers[0].effective_macs == CONV.macs / 4
    assert report.utilization == pytest.approx(CONV.macs / (16 * 4 * 16 * report.cycles))
    assert 0 < report.utilization <= 1


def test_six_bits_is_no_faster_than_eight_on_bitfusion_and_four_is():
    model = create("systolic", rows=16, cols=16, pe="bitfusion")
    c8, c6, c4, c2 = (model.evaluate(at(LAYERS, b, b)).cycles for b in (8, 6, 4, 2))
    assert c6 == c8
    assert c2 < c4 < c8


def test_bit_serial_multiplies_the_streamed_length_by_the_activation_bits():
    for a, serial in ((8, 1), (4, 1), (4, 2), (3, 2)):
        model = create("systolic", rows=16, cols=16, pe="bit-serial", serial_bits=serial)
        steps = math.ceil(a / serial)
        assert model.evaluate(at([CONV], 8, a)).cycles == 9 * 2 * (64 * steps + 32 + 16 - 2) - 1
        assert model.evaluate(at([CONV], 2, a)).cycles == model.evaluate(at([CONV], 8, a)).cycles  # weights in parallel
    # effective MACs: a PE of a 1-bit-serial array does 1/8 MAC per cycle at 8 bits
    report = create("systolic", rows=16, cols=16, pe="bit-serial").evaluate([CONV])
    assert report.layers[0].effective_macs == 8 * CONV.macs
    assert report.utilization == pytest.approx(8 * CONV.macs / (256 * report.cycles))


def test_flops_model_scales_with_perf():
    fused = create("flops", rows=16, cols=16, pe="bitfusion")
    assert fused.evaluate(at([CONV], 4, 4)).cycles == pytest.approx(CONV.macs / 256 / 4)


def test_narrow_operands_stall_less_under_systolic_mem():
    model = create("systolic-mem", rows=16, cols=16, sram_kb=16, dram_bw_words=4)
    layers = [
        LayerShape(name="big", kind="conv", in_channels=64, out_channels=64, kernel_h=3, kernel_w=3, in_h=16, in_w=16, out_h=16, out_w=16),
        LayerShape(name="fc", kind="linear", in_channels=4096, out_channels=256),
    ]
    c8, c4, c2 = (model.evaluate(at(layers, b, b)).layers for b in (8, 4, 2))
    for l8, l4, l2 in zip(c8, c4, c2):
        assert l2.cycles <= l4.cycles <= l8.cycles
    assert sum(l.cycles for l in c4) < sum(l.cycles for l in c8)
    # compute-bound: the unbounded array does not care
    compute = create("systolic", rows=16, cols=16).evaluate(layers)
    assert sum(l.cycles for l in c2) >= compute.cycles
    # the memory part counts bits: a 4-bit fc's 4096 x 256 weights take the bytes of 8-bit ones of half the inputs
    fc4 = model.evaluate(at([layers[1]], 4, 8)).cycles
    fc8_half = model.evaluate([replace(layers[1], in_channels=2048)]).cycles
    assert fc4 > create("systolic", rows=16, cols=16).evaluate([layers[1]]).cycles  # still memory bound
    assert fc8_half < model.evaluate([layers[1]]).cycles


def test_bits_are_table_columns_and_traced_from_modules():
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))
    net[0].uboost_precision = (4, 2)
    shapes = extract_layers(net, (3, 8, 8))
    assert [(s.weight_bits, s.act_bits) for s in shapes] == [(4, 2), (8, 8)]
    table = LayerTable.from_shapes(shapes)
    assert table.weight_bits.tolist() == [4.0, 8.0] and table.act_bits.tolist() == [2.0, 8.0]
    assert [(s.weight_bits, s.act_bits) for s in table.shapes()] == [(4, 2), (8, 8)]


def test_smooth_mode_keeps_gradients_under_every_pe_and_dataflow():
    table = LayerTable.from_shapes(at(LAYERS[:2], 4, 4))
    for pe in ("fixed", "bitfusion", "bit-serial"):
        for flow in ("ws", "os", "is"):
            model = create("systolic", rows=16, cols=16, dataflow=flow, pe=pe)
            cin = table.in_channels.clone().requires_grad_(True)
            model.cycles(table, in_channels=cin, temperature=5.0).sum().backward()
            assert torch.isfinite(cin.grad).all() and cin.grad.abs().sum() > 0


@pytest.mark.parametrize("bad", [{"pe": "simd"}, {"pe": "bit-serial", "serial_bits": 0}, {"serial_bits": 1.5}])
def test_bad_pe_settings_are_refused(bad):
    with pytest.raises(ConfigError):
        HardwareSpec(**bad)


def test_bitfusion_refuses_bits_above_8_and_other_models_refuse_other_pes():
    with pytest.raises(ConfigError, match="at most 8 bits"):
        create("systolic", pe="bitfusion").evaluate(at([CONV], 16, 8))
    with pytest.raises(ConfigError, match="prices only fixed"):
        create("scalesim", pe="bitfusion")
    with pytest.raises(ConfigError):
        LayerShape(name="x", kind="linear", in_channels=1, out_channels=1, weight_bits=0)


def test_an_nni_space_with_open_choices_is_refused_not_priced_at_its_first_choices():
    """`evaluate(create_space("lenet"), shape)` gave 0.00048 ms: the space's first (cheapest) network, quietly."""
    from uboost.search_spaces import create as create_space

    space = create_space("lenet", input_shape=(1, 8, 8))
    with pytest.raises(ConfigError, match="open choices"):
        create("systolic", rows=16, cols=16).evaluate(space, (1, 8, 8))
    frozen = space.freeze({label: choice.values[0] for label, choice in space.simplify().items()})
    assert create("systolic", rows=16, cols=16).evaluate(frozen, (1, 8, 8)).cycles > 0


def test_a_table_priced_directly_refuses_bits_its_pes_cannot_run():
    """QA: cycles() and energy_pj() of a 16-bit table on BitFusion PEs were inf (evaluate() refused it)."""
    model = create("systolic", rows=16, cols=16, pe="bitfusion")
    wide = LayerTable.from_shapes(at([CONV], 16, 16))
    for price in (model.cycles, model.energy_pj):
        with pytest.raises(ConfigError, match="at most 8 bits per operand, got 16"):
            price(wide)
    assert torch.isfinite(model.cycles(LayerTable.from_shapes(at([CONV], 8, 4)))).all()


def test_a_layer_kind_that_contradicts_its_shape_is_refused():
    """QA: kind="depthwise" with groups=1, or kind="pointwise" with a 3x3 kernel, were accepted (priced by the
    shape, labelled by the kind)."""
    with pytest.raises(ConfigError, match="a depthwise layer has groups == in_channels"):
        replace(LAYERS[2], groups=1)
    with pytest.raises(ConfigError, match="a pointwise layer has a 1x1 kernel"):
        replace(LAYERS[1], kernel_h=3, kernel_w=3, in_h=8, in_w=8)
