"""Expected and worst-case costs of exits, by hand on a two-exit toy network."""

import numpy as np
import pytest
from torch import nn

from uboost.dynamic.heads import build_heads
from uboost.dynamic.pricing import ExitCosts, price_exits, segment_of_layers
from uboost.hardware import HardwareSpec, create, extract_layers
from uboost.hardware.operating import PRESETS, at_point


def hand_costs():
    # segments 100, 200, 300 cycles and heads 10, 20 at 500 MHz; energies in uJ at the one point
    return ExitCosts(("a", "b"), np.array([5e8]), np.array([0.8]), np.array([[100.0, 200.0, 300.0]]), np.array([[1.0, 2.0, 3.0]]),
                     np.array([[10.0, 20.0]]), np.array([[0.1, 0.2]]))


def test_expected_cost_equals_a_hand_computation():
    costs = hand_costs()
    shares = [0.5, 0.25, 0.25]
    latency, energy = costs.expected(shares, [True, True], 0)
    # exit 0: 100 + 10; exit 1: 100 + 200 + 10 + 20; final: 600 + 10 + 20 (every head evaluated on the way)
    cycles = 0.5 * 110 + 0.25 * 330 + 0.25 * 630
    assert latency == pytest.approx(cycles / 5e8 * 1e3)
    assert energy == pytest.approx(0.5 * 1.1 + 0.25 * 3.3 + 0.25 * 6.3)
    assert costs.worst([True, True], 0) == pytest.approx((630 / 5e8 * 1e3, 6.3))
    # the first exit dropped: its head never runs, nobody leaves there
    latency, energy = costs.expected([0.0, 0.5, 0.5], [False, True], 0)
    assert latency == pytest.approx((0.5 * 320 + 0.5 * 620) / 5e8 * 1e3)
    assert energy == pytest.approx(0.5 * 3.2 + 0.5 * 6.2)
    assert costs.worst([False, False], 0) == pytest.approx((600 / 5e8 * 1e3, 6.0))


class TwoExits(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.pool2 = nn.MaxPool2d(2)
        self.conv3 = nn.Conv2d(16, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 16, 10)

    def forward(self, x):
        x = self.pool1(self.conv1(x))
        x = self.pool2(self.conv2(x))
        return self.fc(self.conv3(x).flatten(1))


def test_segments_and_heads_are_priced_exactly_per_operating_point():
    net = TwoExits().eval()
    heads = build_heads([(8, 8, 8), (16, 4, 4)], 10, width=4)
    spec = HardwareSpec(rows=8, cols=8, batch_size=4, clock_hz=9e8, operating_points="rk3576-npu")
    points = PRESETS["rk3576-npu"]
    costs = price_exits(net, heads, (3, 16, 16), ["pool1", "pool2"], [(8, 8, 8), (16, 4, 4)], cost_model="systolic", spec=spec, points=points)
    layers = extract_layers(net, (3, 16, 16))
    assert segment_of_layers(net, ["pool1", "pool2"], [l.name for l in layers]) == [0, 1, 2, 2]
    for p, point in enumerate(points):
        model = create("systolic", spec=at_point(HardwareSpec(rows=8, cols=8, batch_size=1, clock_hz=9e8, operating_points="rk3576-npu"), point))
        one = [model.evaluate([l]) for l in layers]  # each layer alone, at batch 1 (exits decide per input)
        np.testing.assert_allclose(costs.segment_cycles[p], [one[0].cycles, one[1].cycles, one[2].cycles + one[3].cycles])
        np.testing.assert_allclose(costs.segment_energy_uj[p], [one[0].energy_uj, one[1].energy_uj, one[2].energy_uj + one[3].energy_uj])
        h = model.evaluate(heads[1].eval(), (16, 4, 4))
        assert costs.head_cycles[p, 1] == h.cycles and costs.head_energy_uj[p, 1] == pytest.approx(h.energy_uj)
    assert costs.freq_hz.tolist() == [p.freq_hz for p in points]
    # same cycles at every point; lower voltage, lower dynamic energy
    assert np.all(costs.segment_cycles == costs.segment_cycles[0])
    assert costs.segment_energy_uj[0, 0] < costs.segment_energy_uj[-1, 0]
