"""Energy per layer: a two-layer network priced by hand, voltage and frequency, TOML tables, validation."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from uboost.exceptions import ConfigError
from uboost.hardware import HardwareSpec, LayerShape, LayerTable, create
from uboost.hardware.energy import ENERGY_KEYS, PRESETS, EnergyTable, load_energy_toml, resolve_energy
from uboost.hardware.operating import PRESETS as POINTS, at_point

# MAC(8x8) = 0.001 * 64 + 0.01 * 16 = 0.224 pJ; each WS MAC forwards an activation (8 bits) and a
# partial sum (16 bits): 24 * 0.005 = 0.12 pJ -> 0.344 pJ per MAC. SRAM at 32 kB = 4x the 8 kB
# reference: sqrt(4) = 2 -> read 0.2, write 0.4 pJ/bit. Leakage 2 uW x 16 PEs + 1 uW x 3 x 32 kB = 128 uW.
HAND = EnergyTable(
    name="hand", v_ref=1.0, mult_pj_per_bit2=0.001, add_pj_per_bit=0.01, acc_bits=16,
    sram_read_pj_per_bit=0.1, sram_write_pj_per_bit=0.2, sram_ref_kb=8.0, sram_size_exponent=0.5,
    dram_pj_per_bit=1.0, pe_move_pj_per_bit=0.005, leakage_uw_per_pe=2.0, leakage_uw_per_kb=1.0,
)
LAYERS = [
    # M = 16, K = 27, N = 5 on 4x4 WS: 14 folds x (16 + 10) - 1 = 363 cycles, 2160 MACs
    LayerShape(name="conv", kind="conv", in_channels=3, out_channels=5, kernel_h=3, kernel_w=3, in_h=6, in_w=6, out_h=4, out_w=4),
    # M = 1, K = 5, N = 3: 2 folds x (1 + 10) - 1 = 21 cycles, 15 MACs
    LayerShape(name="fc", kind="linear", in_channels=5, out_channels=3),
]


def _model(**kw):
    spec = HardwareSpec(rows=4, cols=4, dataflow="ws", sram_kb=32, energy=HAND, voltage_v=1.0, **kw)
    return create("systolic", spec=spec)


def test_two_layer_network_by_hand():
    parts = _model().energy_breakdown_pj(LayerTable.from_shapes(LAYERS))
    assert set(parts) == set(ENERGY_KEYS)
    # conv: ifmap SRAM 16*27*2 = 864 reads, DRAM 6*6*3 = 108 (filled: SRAM writes); filter 135 and 135;
    # ofmap SRAM writes 16*5*7 = 560, DRAM writes 560 (drained: SRAM reads)
    #   mac 2160 * 0.344 = 743.04
    #   sram 8 * (864*0.2 + 108*0.4) + 8 * (135*0.2 + 135*0.4) + 8 * (560*0.4 + 560*0.2) = 1728 + 648 + 2688
    #   dram 8 * (108 + 560 + 135) * 1.0 = 6424;  leakage 128 uW * 363 ns = 46.464 pJ
    # fc: ifmap 5 / 5, filter 15 / 15, ofmap 1*3*2 = 6 / 6, 15 MACs, 21 cycles
    expected = {
        "mac": [743.04, 15 * 0.344],
        "sram": [5064.0, 8 * (5 * 0.2 + 5 * 0.4) + 8 * (15 * 0.2 + 15 * 0.4) + 8 * (6 * 0.4 + 6 * 0.2)],
        "dram": [6424.0, 8 * (5 + 6 + 15)],
        "leakage": [46.464, 128 * 21e-3],
    }
    for key, values in expected.items():
        assert parts[key].tolist() == pytest.approx(values, rel=1e-12), key
    total = _model().energy_pj(LayerTable.from_shapes(LAYERS))
    assert total.tolist() == pytest.approx([743.04 + 5064 + 6424 + 46.464, 5.16 + 124.8 + 208 + 2.688], rel=1e-12)
    # half the voltage: on-chip dynamic x 1/4, leakage x 1/2, DRAM (its own supply) unchanged
    half = _model(clock_hz=1e9).__class__(replace(_model().spec, voltage_v=0.5)).energy_breakdown_pj(LayerTable.from_shapes(LAYERS))
    assert half["mac"][0].item() == pytest.approx(743.04 / 4) and half["sram"][0].item() == pytest.approx(5064 / 4)
    assert half["dram"][0].item() == pytest.approx(6424) and half["leakage"][0].item() == pytest.approx(46.464 / 2)
    # leakage is power x time: twice the clock, half the leakage energy
    fast = _model(clock_hz=2e9).energy_breakdown_pj(LayerTable.from_shapes(LAYERS))
    assert fast["leakage"][0].item() == pytest.approx(46.464 / 2) and fast["mac"][0].item() == pytest.approx(743.04)


def test_energy_takes_per_layer_bits():
    table = LayerTable.from_shapes(LAYERS)
    model = _model()
    four = model.energy_breakdown_pj(table, w_bits=torch.tensor([4.0, 8.0]), a_bits=torch.tensor([4.0, 8.0]))
    eight = model.energy_breakdown_pj(table)
    # conv at 4x4 bits: MAC 0.001*16 + 0.16 = 0.176, moves (4 + 16) * 0.005 = 0.1 -> 0.276 per MAC
    assert four["mac"][0].item() == pytest.approx(2160 * 0.276)
    assert four["dram"][0].item() == pytest.approx(6424 / 2) and four["mac"][1].item() == pytest.approx(eight["mac"][1].item())


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_energy_rises_with_voltage(preset):
    table = LayerTable.from_shapes(LAYERS)
    parts = [
        create("systolic", rows=8, cols=8, energy=preset, voltage_v=v).energy_breakdown_pj(table) for v in (0.6, 0.8, 1.0, 1.2)
    ]
    totals = [sum(p[k] for k in ENERGY_KEYS).sum().item() for p in parts]
    assert all(a < b for a, b in zip(totals, totals[1:]))
    assert all(torch.equal(p["dram"], parts[0]["dram"]) for p in parts)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_energy_convex_in_frequency_with_minimum_at_the_voltage_floor(preset):
    """On the RK356x GPU table (825 mV from 200 to 600 MHz, then 900 and 1000 mV) energy per inference
    falls with f along the floor (leakage x time shrinks), then rises with V^2: convex, least at 600 MHz."""
    table = LayerTable.from_shapes(LAYERS)
    base = HardwareSpec(rows=8, cols=8, sram_kb=16, energy=preset, operating_points="rk356x-gpu", clock_hz=2e8)
    points = list(POINTS["rk356x-gpu"])
    energy = [create("systolic", spec=at_point(base, p)).energy_pj(table).sum().item() for p in points]
    steps = [b - a for a, b in zip(energy, energy[1:])]  # equal 100 MHz spacing
    assert all(s2 >= s1 - 1e-9 * abs(s1) for s1, s2 in zip(steps, steps[1:]))
    assert points[energy.index(min(energy))].freq_hz == 600e6


def test_voltage_follows_the_operating_point_table():
    spec = HardwareSpec(operating_points="rk3576-npu", clock_hz=750e6)
    assert spec.voltage == 0.8  # the slowest point that runs 750 MHz is 800 MHz @ 800 mV
    assert HardwareSpec().voltage == PRESETS["horowitz45"].v_ref
    assert HardwareSpec(voltage_v=0.7, operating_points="rk3576-npu").voltage == 0.7
    with pytest.raises(ConfigError, match="above the fastest operating point"):
        HardwareSpec(operating_points="rk3576-npu", clock_hz=1e9)


def test_cycles_and_latency_do_not_depend_on_energy_settings():
    table = LayerTable.from_shapes(LAYERS)
    plain = create("systolic", rows=4, cols=4)
    dressed = create("systolic", rows=4, cols=4, energy="gemmini16", voltage_v=0.6, operating_points="rk356x-gpu")
    assert torch.equal(plain.cycles(table), dressed.cycles(table)) and plain.cycles(table).tolist() == [363, 21]


@pytest.mark.parametrize("temperature", [None, 4.0])
def test_energy_is_differentiable_in_soft_channels(temperature):
    table = LayerTable.from_shapes(LAYERS)
    cin = torch.tensor([3.0, 4.6], dtype=torch.float64, requires_grad=True)
    cout = torch.tensor([4.3, 3.0], dtype=torch.float64, requires_grad=True)
    for name in ("systolic", "systolic-mem"):
        model = create(name, rows=4, cols=4, sram_kb=1, dram_bw_words=2)
        energy = model.energy_pj(table, in_channels=cin, out_channels=cout, temperature=temperature).sum()
        (gin, gout) = torch.autograd.grad(energy, (cin, cout))
        assert torch.isfinite(gin).all() and torch.isfinite(gout).all() and (gin > 0).all() and (gout > 0).all()
    # at the integer channels of the layers the exact soft energy equals the hard one
    exact = create("systolic", rows=4, cols=4)
    soft = exact.energy_pj(table, in_channels=table.in_channels, out_channels=table.out_channels)
    assert torch.equal(soft, exact.energy_pj(table))


def test_dram_bandwidth_in_gbps_becomes_words_per_cycle_at_the_clock():
    spec = HardwareSpec(sram_kb=4, dram_bw_gbps=16.0)
    assert spec.dram_words_per_cycle == 16.0 and spec.memory_bound
    assert HardwareSpec(sram_kb=4, dram_bw_gbps=16.0, clock_hz=2e9).dram_words_per_cycle == 8.0
    # bytes per cycle whatever `bits` is: the memory models count a b-bit operand as b/8 words already
    # (divided by bits/8 too, 16-bit layers on a bits=16 spec paid for their width twice)
    assert HardwareSpec(sram_kb=4, dram_bw_gbps=16.0, bits=16).dram_words_per_cycle == 16.0
    assert HardwareSpec(sram_kb=4, dram_bw_gbps=16.0, bits=4).dram_words_per_cycle == 16.0
    big = [LayerShape(name="c", kind="conv", in_channels=64, out_channels=64, kernel_h=3, kernel_w=3, in_h=18, in_w=18, out_h=16, out_w=16)]
    table = LayerTable.from_shapes(big)

    def cycles(**kw):
        return create("systolic-mem", rows=16, cols=16, sram_kb=4, **kw).cycles(table)

    assert torch.equal(cycles(dram_bw_gbps=16.0), cycles(dram_bw_words=16))
    assert torch.equal(cycles(dram_bw_gbps=16.0, clock_hz=4e9), cycles(dram_bw_words=4))
    assert cycles(dram_bw_gbps=16.0, clock_hz=4e9) > cycles(dram_bw_gbps=16.0)  # stalls grow with f
    with pytest.raises(ConfigError, match="not both"):
        HardwareSpec(dram_bw_words=4, dram_bw_gbps=16.0)


def test_energy_table_from_toml(tmp_path):
    full = tmp_path / "mine.toml"
    full.write_text("\n".join(f"{k} = {v!r}" for k, v in HAND.to_dict().items() if k != "name"))
    assert replace(load_energy_toml(full), name="hand") == HAND
    based = tmp_path / "based.toml"
    based.write_text('[energy]\nbase = "gemmini16"\ndram_pj_per_bit = 3.9\n')
    table = resolve_energy(str(based))
    assert table.dram_pj_per_bit == 3.9 and table.mult_pj_per_bit2 == PRESETS["gemmini16"].mult_pj_per_bit2
    assert HardwareSpec(energy=str(based)).energy_table == table


@pytest.mark.parametrize(
    "text, match",
    [
        ("v_ref = 1.0\n", "missing key"),
        ('base = "horowitz45"\ncolour = 1\n', "unknown key"),
        ('base = "horowitz45"\ndram_pj_per_bit = -1.0\n', ">= 0"),
        ('base = "horowitz45"\nmult_pj_per_bit2 = nan\n', ">= 0"),
        ('base = "horowitz45"\nv_ref = 0.0\n', "positive"),
        ('base = "tsmc3"\n', "unknown energy preset"),
        ('base = ["horowitz45"]\n', "base must be a preset name"),  # was a TypeError: unhashable
        ('base = {name = "horowitz45"}\n', "base must be a preset name"),
        ("v_ref = [\n", "cannot read"),
    ],
)
def test_bad_energy_tables(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_energy_toml(path)


def test_bad_energy_settings():
    with pytest.raises(ConfigError, match="unknown energy preset"):
        HardwareSpec(energy="tsmc3")
    with pytest.raises(ConfigError, match="does not exist"):
        HardwareSpec(energy="missing.toml")
    with pytest.raises(ConfigError, match="leakage_uw_per_pe"):
        replace(PRESETS["horowitz45"], leakage_uw_per_pe=float("nan"))
    for bad in (0.0, -0.9, math.inf, float("nan")):
        with pytest.raises(ConfigError, match="voltage_v"):
            HardwareSpec(voltage_v=bad)
    for bad in (725, 0.05, 5.0):  # mV given as V, or no CMOS supply: 725 V was accepted
        with pytest.raises(ConfigError, match="voltage_v must be between 0.1 and 5 volts.*did you give mV"):
            HardwareSpec(voltage_v=bad)


def test_no_energy_table_is_the_default_one():
    """QA: HardwareSpec(energy=None) said "unknown energy preset 'None'"; None is the default, as for the area."""
    assert HardwareSpec(energy=None).energy == HardwareSpec().energy
