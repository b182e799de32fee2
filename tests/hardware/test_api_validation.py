"""The Python API refuses impossible input with a uboost error (not a raw TypeError, nor negative cycles)."""

import pytest
import torch
from torch import nn

from uboost.exceptions import ConfigError, UBoostError
from uboost.hardware import HardwareSpec, LayerShape, create

BASE = dict(name="c", kind="conv", in_channels=16, out_channels=32, kernel_h=3, kernel_w=3, in_h=18, in_w=18, out_h=16, out_w=16)


@pytest.mark.parametrize("field, value", [
    ("in_channels", 0), ("in_channels", -16), ("out_channels", 0), ("kernel_h", -3), ("groups", 0), ("out_h", 0),
    ("stride", 1.5), ("in_channels", True), ("kind", "bogus"),
])
def test_impossible_layer_shapes_are_refused(field, value):
    with pytest.raises(ConfigError, match=field if field != "kind" else "unknown kind"):
        LayerShape(**{**BASE, field: value})


def test_a_valid_layer_shape_still_prices_positive():
    assert create("systolic", rows=16, cols=16).evaluate([LayerShape(**BASE)]).cycles > 0


def test_operating_points_as_pairs_and_a_clock_above_the_table():
    assert HardwareSpec(operating_points=[[1e9, 0.8]]).voltage == 0.8
    with pytest.raises(ConfigError, match="give clock_hz .at most 9e\\+08"):
        HardwareSpec(operating_points="rk3576-npu")
    assert HardwareSpec(operating_points="rk3576-npu", clock_hz=9e8).voltage == 0.85


def test_cost_model_options_and_instances():
    with pytest.raises(ConfigError, match="unknown hardware field.*rowz"):
        create("systolic", rowz=4)
    with pytest.raises(ConfigError, match="unknown PE mode"):
        HardwareSpec(pe=["fixed"])
    from uboost.strategy import UBoost

    with pytest.raises(ConfigError, match="instance was given with options"):
        UBoost(cost_model=create("systolic", rows=16, cols=16), hardware=dict(rows=8, cols=8))


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(seed="a"), "seed"), (dict(seed=1.5), "seed"), (dict(arch_lr=-1.0), "arch_lr"),
    (dict(arch_lr=float("nan")), "arch_lr"), (dict(warmup_epochs=-1), "warmup_epochs"), (dict(warmup_epochs=1.5), "warmup_epochs"),
])
def test_strategy_numbers_are_checked_when_it_is_made(kwargs, fragment):
    from uboost.strategy import UBoost

    with pytest.raises(ConfigError, match=fragment):
        UBoost(**kwargs)


@pytest.mark.parametrize("shape", ["3x32x32", 224, (3, 32.7, 32), (3, True, 32)])
def test_evaluate_refuses_a_malformed_input_shape(shape):
    with pytest.raises(UBoostError, match="input shape"):
        create("systolic", rows=8, cols=8).evaluate(nn.Sequential(nn.Conv2d(3, 8, 3)), shape)
    assert create("systolic", rows=8, cols=8).evaluate(nn.Sequential(nn.Conv2d(3, 8, 3)), torch.Size([3, 8, 8])).cycles > 0
