"""Python calls a library user makes naturally (found by a QA pass over the API): each works, or raises a UBoostError
naming the problem, where it raised AttributeError / TypeError / IndexError from inside."""

from __future__ import annotations

import pytest

import uboost.hardware as hw
from uboost.exceptions import ConfigError
from uboost.hardware import HardwareSpec
from uboost.hardware.layers import LayerShape, LayerTable

CONV = LayerShape(name="c", kind="conv", in_channels=16, out_channels=32, kernel_h=3, kernel_w=3, in_h=18, in_w=18,
                  out_h=16, out_w=16)


@pytest.mark.parametrize("name", ["systolic", "systolic-mem", "flops", "roofline", "systolic-paper"])
def test_pricing_methods_take_a_list_of_layer_shapes_as_evaluate_does(name):
    model = hw.create(name, rows=16, cols=16, **({"sram_kb": 16, "dram_bw_words": 4} if name == "systolic-mem" else {}))
    table = LayerTable.from_shapes([CONV])
    assert model.cycles([CONV]).tolist() == model.cycles(table).tolist()
    assert model.energy_pj([CONV]).tolist() == model.energy_pj(table).tolist()
    assert model.macs(CONV).tolist() == model.macs(table).tolist()  # one shape too
    with pytest.raises(ConfigError, match="layers must be a LayerTable or a non-empty sequence of LayerShape, got str"):
        model.cycles("resnet18")
    with pytest.raises(ConfigError, match=r"evaluate takes a torch module .* got str: build it first"):
        model.evaluate("resnet18", (3, 32, 32))
    assert model.evaluate(CONV).cycles == model.evaluate([CONV]).cycles


def test_a_spec_must_be_a_hardware_spec_and_a_registered_class_a_cost_model():
    with pytest.raises(ConfigError, match="spec must be a HardwareSpec, got dict"):
        hw.create("systolic", spec={"rows": 8})
    with pytest.raises(ConfigError, match="int is not a CostModel subclass"):
        hw.register("not-a-model")(int)
    assert "not-a-model" not in hw.list_models()


def test_hardware_toml_takes_an_area_preset_by_name():
    from uboost.hardware.area import resolve_area
    from uboost.hardware.files import hardware_toml

    spec = HardwareSpec(rows=8, cols=8)
    assert hardware_toml(spec, area="tpu28") == hardware_toml(spec, area=resolve_area("tpu28"))


def test_uboost_takes_a_hardware_spec_and_checks_its_bits_on_the_pes_at_once():
    from uboost.strategy import UBoost

    assert UBoost(hardware=HardwareSpec(rows=8, cols=8)).cost_model.spec.rows == 8
    with pytest.raises(ConfigError, match="hardware must be a dict of HardwareSpec fields or a HardwareSpec, got str"):
        UBoost(hardware="16x16")
    with pytest.raises(ConfigError, match="the bitfusion PE takes at most 8 bits per operand, got 16"):  # was mid-fit
        UBoost(bits=(4, 16), hardware=dict(pe="bitfusion"))


def test_a_switcher_refuses_twin_names_and_mixed_accuracy_scales():
    from uboost.dynamic.switcher import SwitchPoint, Switcher

    with pytest.raises(ConfigError, match="two points are named 'a'"):
        Switcher([SwitchPoint("a", 0.9, 1.0), SwitchPoint("a", 0.95, 2.0)])
    with pytest.raises(ConfigError, match="mix percentages"):
        Switcher([SwitchPoint("a", 91, 1.0), SwitchPoint("b", 0.95, 2.0)])
    assert Switcher([SwitchPoint("a", -2.0, 1.0), SwitchPoint("b", -1.0, 2.0)]).select(latency_ms=3).name == "b"  # preferences
