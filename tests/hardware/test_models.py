import dataclasses
import math

import pytest
import torch
from torch import nn

from uboost.exceptions import ConfigError, HardwareError, DataError, RegistryError
from uboost.hardware import (
    HardwareSpec, LayerShape, LayerTable, LookupTable, create, extract_layers, list_models, parse_array, resolve,
)
from uboost.testing import CONTRACT_LAYERS


def conv(cin, cout, k=3, out=8, groups=1, stride=1, name="l"):
    kind = "depthwise" if groups == cin > 1 else "conv"
    return LayerShape(name=name, kind=kind, in_channels=cin, out_channels=cout, groups=groups, kernel_h=k, kernel_w=k,
                      stride=stride, in_h=(out - 1) * stride + k, in_w=(out - 1) * stride + k, out_h=out, out_w=out)


def test_spec_validation_messages():
    with pytest.raises(ConfigError, match="rows must be a positive integer, got 0"):
        HardwareSpec(rows=0)
    with pytest.raises(ConfigError, match="expected one of: ws, os, is"):
        HardwareSpec(dataflow="rs")
    with pytest.raises(ConfigError, match="clock_hz"):
        HardwareSpec(clock_hz=-1)
    with pytest.raises(TypeError):
        HardwareSpec(128, 128)  # keyword-only


@pytest.mark.parametrize("text,expected", [("128x128", (128, 128)), ("16X64", (16, 64)), (" 8 x 4 ", (8, 4))])
def test_parse_array(text, expected):
    assert parse_array(text) == expected


@pytest.mark.parametrize("text", ["0x8", "12", "axb", "8x", "-1x4", ""])
def test_parse_array_rejects(text):
    with pytest.raises(ConfigError):
        parse_array(text)


def test_registry_create_resolve_and_errors():
    assert {"systolic", "systolic-paper", "flops", "roofline", "lookup"} <= set(list_models())
    model = create("systolic", rows=64, cols=32, dataflow="os")
    assert (model.spec.rows, model.spec.cols, model.spec.dataflow) == (64, 32, "os")
    assert resolve(model) is model
    with pytest.raises(RegistryError, match="unknown cost model 'nope'; expected one of: flops, lookup"):
        create("nope")
    with pytest.raises(ConfigError):
        resolve(42)


def test_duplicate_registration_raises():
    from uboost.hardware import COST_MODELS
    with pytest.raises(ConfigError, match="already registered"):
        COST_MODELS.add("systolic", lambda **kw: None)


def test_systolic_hand_computed_ws():
    # 3x3 conv 32->64 at 8x8 output on a 16x16 WS array, batch 2:
    # K = 288 -> 18 folds of rows, N = 64 -> 4 folds of cols, M = 128
    spec = HardwareSpec(rows=16, cols=16, dataflow="ws", batch_size=2)
    layer = conv(32, 64)
    cycles = create("systolic", spec=spec).evaluate([layer]).cycles
    assert cycles == 18 * 4 * (128 + 2 * 16 + 16 - 2) - 1
    paper = create("systolic-paper", spec=spec).evaluate([layer]).cycles
    assert paper == 18 * 4 * 128


def test_systolic_hand_computed_os_is_and_depthwise():
    layer = conv(32, 64)
    os_ = create("systolic", rows=16, cols=8, dataflow="os").evaluate([layer]).cycles
    assert os_ == math.ceil(64 / 16) * math.ceil(64 / 8) * (288 + 16 + 8 - 2) - 1
    is_ = create("systolic", rows=16, cols=8, dataflow="is").evaluate([layer]).cycles
    assert is_ == math.ceil(288 / 16) * math.ceil(64 / 8) * (64 + 32 + 8 - 2) - 1
    dw = conv(32, 32, k=5, groups=32)
    ws = create("systolic", rows=16, cols=16, dataflow="ws").evaluate([dw]).cycles
    assert ws == 32 * (math.ceil(25 / 16) * 1 * (64 + 32 + 16 - 2) - 1)  # each channel's GEMM: -1


def test_flops_and_roofline_by_hand():
    layer = conv(16, 32, k=3, out=4)
    macs = 4 * 4 * 9 * 16 * 32
    spec = HardwareSpec(rows=8, cols=8, batch_size=1, bits=8, mem_bw_gbps=1.0, clock_hz=1e9)
    assert create("flops", spec=spec).evaluate([layer]).cycles == macs / 64
    bytes_ = 32 * 16 * 9 + 16 * 6 * 6 + 32 * 4 * 4
    assert create("roofline", spec=spec).evaluate([layer]).cycles == pytest.approx(max(macs / 64, bytes_ / 1e9 * 1e9))



def test_roofline_uses_the_spec_s_dram_bandwidth_where_it_has_one():
    """A memory-bounded accelerator's roofline moves its bytes through that accelerator's DRAM (three ports of
    dram_bw_words each), not through mem_bw_gbps; the same in GB/s at another clock; unbounded specs as before."""
    layer = conv(16, 32, k=3, out=4)
    macs = 4 * 4 * 9 * 16 * 32
    bytes_ = 32 * 16 * 9 + 16 * 6 * 6 + 32 * 4 * 4
    bounded = HardwareSpec(rows=8, cols=8, batch_size=1, bits=8, mem_bw_gbps=100.0, sram_kb=16, dram_bw_words=0.5)
    assert create("roofline", spec=bounded).evaluate([layer]).cycles == pytest.approx(max(macs / 64, bytes_ / 1.5))
    assert bytes_ / 1.5 > macs / 64  # memory-bound at that bandwidth, compute-bound at mem_bw_gbps
    gbps = HardwareSpec(rows=8, cols=8, batch_size=1, sram_kb=16, dram_bw_gbps=1.0, clock_hz=2e9)
    narrow = dataclasses.replace(layer, weight_bits=4, act_bits=4)  # the layer's own bits: half the bytes
    assert create("roofline", spec=gbps).evaluate([narrow]).cycles == pytest.approx(max(macs / 64, bytes_ / 2 / (3 * 0.5)))
    # QA: a 4-bit layer moved 8-bit bytes (the roofline read the spec's bits, which nothing sets from a network)
    mixed = dataclasses.replace(layer, weight_bits=2, act_bits=8)
    assert create("roofline", spec=bounded).evaluate([mixed]).cycles == pytest.approx(
        max(macs / 64, (32 * 16 * 9 / 4 + 16 * 6 * 6 + 32 * 4 * 4) / 1.5))
    unbounded = HardwareSpec(rows=8, cols=8, batch_size=1, bits=8, mem_bw_gbps=100.0)
    assert create("roofline", spec=unbounded).evaluate([layer]).cycles == pytest.approx(max(macs / 64, bytes_ / 100))

def test_network_utilization_is_total_macs_over_total_capacity():
    spec = HardwareSpec(rows=16, cols=16)
    report = create("systolic", spec=spec).evaluate(list(CONTRACT_LAYERS))
    assert report.utilization == pytest.approx(report.macs / (256 * report.cycles))
    mean_of_ratios = sum(l.utilization for l in report.layers) / len(report.layers)
    assert report.utilization != pytest.approx(mean_of_ratios)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 5, stride=2, padding=2, groups=8)
        self.grouped = nn.Conv2d(8, 16, 3, padding=2, dilation=2, groups=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.grouped(self.dw(torch.relu(self.bn(self.stem(x)))))
        return self.fc(self.pool(x).view(x.shape[0], -1))


def test_extract_layers_kinds_and_shapes():
    layers = extract_layers(Net(), (3, 16, 16))
    assert [l.name for l in layers] == ["stem", "dw", "grouped", "fc"]
    assert [l.kind for l in layers] == ["conv", "depthwise", "conv", "linear"]
    stem, dw, grouped, fc = layers
    assert (stem.out_h, stem.out_w, stem.in_channels, stem.out_channels) == (16, 16, 3, 8)
    assert (dw.groups, dw.stride, dw.out_h) == (8, 2, 8) and dw.depthwise
    assert (grouped.groups, grouped.kernel_h, grouped.out_h) == (2, 3, 8)
    assert grouped.macs == 8 * 8 * 9 * 4 * 16
    assert (fc.in_channels, fc.out_channels, fc.out_h) == (16, 10, 1)


def test_linear_over_sequence_streams_every_position():
    layers = extract_layers(nn.Sequential(nn.Flatten(0, 0), nn.Linear(8, 4)), (5, 8))
    assert layers[0].out_h == 5 and layers[0].macs == 5 * 8 * 4


def test_torchvision_resnet18_totals():
    torchvision = pytest.importorskip("torchvision")
    layers = extract_layers(torchvision.models.resnet18(), (3, 224, 224))
    assert len(layers) == 21  # 20 convs (incl. 3 downsample) + fc
    assert sum(l.macs for l in layers) == 1_814_073_344  # the well-known 1.8 GMACs


def test_soft_channels_at_integers_equal_exact():
    table = LayerTable.from_shapes(CONTRACT_LAYERS)
    for name in ("systolic", "systolic-paper"):
        for flow in ("ws", "os", "is"):
            model = create(name, rows=16, cols=16, dataflow=flow)
            exact = model.cycles(table)
            soft = model.cycles(table, in_channels=table.in_channels, out_channels=table.out_channels, temperature=1e5)
            assert torch.allclose(soft, exact, rtol=1e-9), (name, flow)


def test_lookup_interpolates_and_errors(tmp_path):
    layer = conv(16, 16, k=3, out=8)
    rows = []
    for cin in (8, 16, 32):
        for cout in (8, 32):
            rows.append({**conv(cin, cout, k=3, out=8).to_dict(), "cycles": cin * 10 + cout})
    path = tmp_path / "t.csv"
    import csv
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    model = create("lookup", table=path, rows=16, cols=16)
    assert model.evaluate([conv(16, 8)]).cycles == 168
    assert model.evaluate([layer]).cycles == pytest.approx(160 + 16)  # bilinear: cout 16 between 8 and 32
    assert model.evaluate([conv(24, 20)]).cycles == pytest.approx(240 + 20)
    with pytest.raises(HardwareError, match="outside the lookup table"):
        model.evaluate([conv(64, 8)])
    with pytest.raises(HardwareError, match="not in the lookup table"):
        model.evaluate([conv(16, 8, k=5)])
    with pytest.raises(DataError, match="cannot read lookup table"):
        create("lookup", table=tmp_path / "missing.csv")
    with pytest.raises(HardwareError, match="needs a table"):
        create("lookup")


@pytest.mark.parametrize("generic_first", [True, False])
def test_lookup_rows_made_for_the_memory_system_win_over_rows_for_any(generic_first):
    """A table holding unbounded rows after this memory system's priced the layers compute-only (the last row won)
    and said nothing."""
    spec = dict(rows=16, cols=16, sram_kb=4, dram_bw_words=2)
    grid = [(ci, co) for ci in (8, 16) for co in (8, 16)]
    generic = [{**conv(ci, co, k=3, out=8).to_dict(), "cycles": 100} for ci, co in grid]
    memory = [{**conv(ci, co, k=3, out=8).to_dict(), "cycles": 400, "sram_kb": 4, "dram_bw_words": 2} for ci, co in grid]
    rows = generic + memory if generic_first else memory + generic
    model = create("lookup", table=[{**r, "sram_kb": r.get("sram_kb", ""), "dram_bw_words": r.get("dram_bw_words", "")}
                                    for r in rows], **spec)
    assert model.evaluate([conv(16, 8)]).cycles == 400 and model.memory_note() is None
    only_generic = create("lookup", table=generic, **spec)
    assert only_generic.evaluate([conv(16, 8)]).cycles == 100 and "compute only" in only_generic.memory_note()


@pytest.mark.parametrize("cycles", ["nan", "inf", "-5"])
def test_lookup_cycles_must_be_finite_and_not_negative(cycles):
    rows = [{**conv(8, 8, k=3, out=8).to_dict(), "cycles": cycles}]
    with pytest.raises(DataError, match="cycles must be a finite number >= 0"):
        create("lookup", table=rows, rows=16, cols=16)


def test_lookup_tabulated_from_systolic_is_exact_on_grid():
    spec = HardwareSpec(rows=16, cols=16)
    lut = LookupTable.example(spec, CONTRACT_LAYERS)
    systolic = create("systolic", spec=spec)
    assert lut.evaluate(list(CONTRACT_LAYERS)).cycles == systolic.evaluate(list(CONTRACT_LAYERS)).cycles


def test_hardware_does_not_import_nni():
    import subprocess, sys
    code = "import sys, uboost.hardware as h; h.create('systolic').evaluate([]); print('nni' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


LENET_8X8 = [conv(1, 8, k=3, out=8, name="conv1"), conv(8, 16, k=3, out=4, name="conv2"),
             LayerShape(name="fc1", kind="linear", in_channels=64, out_channels=16),
             LayerShape(name="fc2", kind="linear", in_channels=16, out_channels=10)]


def _tabulated(model, memory_columns):
    """``model``'s cycles as a lookup table for its own spec, as `hw tabulate` writes them."""
    channels = sorted({c for s in LENET_8X8 for c in (s.in_channels, s.out_channels)})
    rows = LookupTable.from_model(model, LENET_8X8, channels)._rows
    return LookupTable(model.spec, table=[{**r, **memory_columns} for r in rows])


def test_lookup_with_a_memory_table_moves_the_words_of_systolic_mem():
    """Cycles with the stalls of 1 kB buffers were priced with every word read from DRAM once: 3.7x too little energy."""
    spec = HardwareSpec(rows=8, cols=4, dataflow="os", batch_size=2, sram_kb=1, dram_bw_words=2)
    mem = create("systolic-mem", spec=spec)
    lut = _tabulated(mem, {"sram_kb": 1, "dram_bw_words": 2.0})
    assert lut.prices_memory
    want, got = mem.evaluate(LENET_8X8), lut.evaluate(LENET_8X8)
    assert got.cycles == pytest.approx(want.cycles)
    assert got.words == pytest.approx(want.words)
    assert got.words["ifmap_dram_reads"] > create("systolic", spec=spec).evaluate(LENET_8X8).words["ifmap_dram_reads"]
    assert got.energy_breakdown_uj == pytest.approx(want.energy_breakdown_uj)
    # the search prices soft (expected) channels through the same words
    table, cin = LayerTable.from_shapes(LENET_8X8), torch.tensor([1.0, 6.5, 50.0, 12.0], dtype=torch.float64)
    soft = dict(in_channels=cin, temperature=1.0)
    got_soft, want_soft = lut.accesses(table, **soft), mem.accesses(table, **soft)
    assert all(torch.allclose(got_soft[k], want_soft[k]) for k in want_soft)


def test_lookup_with_a_compute_only_table_moves_every_word_once():
    spec = HardwareSpec(rows=8, cols=4, dataflow="os", batch_size=2, sram_kb=1, dram_bw_words=2)
    lut = _tabulated(create("systolic", spec=spec), {"sram_kb": "", "dram_bw_words": ""})
    assert not lut.prices_memory
    assert lut.evaluate(LENET_8X8).words == pytest.approx(create("systolic", spec=spec).evaluate(LENET_8X8).words)
