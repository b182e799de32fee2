"""Operating-point tables: presets, TOML files, validation."""

from __future__ import annotations

import pytest

from uboost.exceptions import ConfigError
from uboost.hardware import HardwareSpec
from uboost.hardware.operating import PRESETS, OperatingPoint, at_point, load_operating_points, operating_points_from_pairs


def test_presets_are_sorted_tables():
    npu = PRESETS["rk3576-npu"]
    assert [(p.freq_hz, p.voltage_v) for p in npu] == [(6e8, 0.725), (7e8, 0.775), (8e8, 0.8), (9e8, 0.85)]
    assert npu.voltage_at(6e8) == 0.725 and npu.voltage_at(1e8) == 0.725 and npu.voltage_at(8.5e8) == 0.85
    gpu = PRESETS["rk356x-gpu"]
    assert [p.voltage_v for p in gpu][:5] == [0.825] * 5 and gpu.points[-1].label == "800 MHz @ 1000 mV"


def test_table_from_toml(tmp_path):
    pairs = tmp_path / "pairs.toml"
    pairs.write_text("points = [[4e8, 0.7], [8e8, 0.9]]\n")
    tables = tmp_path / "tables.toml"
    tables.write_text("[[point]]\nfreq_hz = 4e8\nvoltage_v = 0.7\n[[point]]\nfreq_hz = 8e8\nvoltage_v = 0.9\n")
    a, b = load_operating_points(pairs), load_operating_points(str(tables))
    assert a.to_list() == b.to_list() == [[4e8, 0.7], [8e8, 0.9]]
    spec = HardwareSpec(operating_points=str(pairs), clock_hz=5e8)
    assert spec.voltage == 0.9 and at_point(spec, a.points[0]).voltage == 0.7


@pytest.mark.parametrize(
    "text, match",
    [
        ("points = []\n", "at least one"),
        ("points = [[8e8, 0.9], [4e8, 0.7]]\n", "sorted"),
        ("points = [[4e8, 0.9], [8e8, 0.7]]\n", "must not fall"),
        ("points = [[4e8, 0.9], [4e8, 0.9]]\n", "sorted"),
        ("points = [[0, 0.9]]\n", "freq_hz must be a positive"),
        ("points = [[4e8, -0.9]]\n", "voltage_v must be a positive"),
        ("points = [[4e8, nan]]\n", "voltage_v must be a positive"),
        ("points = [[4e8]]\n", "pair"),
        ("points = [[600, 725], [900, 850]]\n", r"600 Hz @ 725 V is out of range.*did you give MHz/mV\?"),  # MHz/mV
        ("points = [[6e8, 725]]\n", "did you give MHz/mV"),
        ("points = [[600, 0.725]]\n", "did you give MHz/mV"),
        ("points = [[6e8, 0.05]]\n", "did you give MHz/mV"),
        ("[[point]]\nfreq_hz = 4e8\n", "missing: voltage_v"),
        ("pts = [[4e8, 0.9]]\n", "one key"),
    ],
)
def test_bad_tables(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_operating_points(path)


def test_unknown_preset_and_missing_file():
    with pytest.raises(ConfigError, match="unknown operating-point preset 'rk9999'.*rk3576-npu"):
        load_operating_points("rk9999")
    with pytest.raises(ConfigError, match="does not exist"):
        load_operating_points("nowhere.toml")
    with pytest.raises(ConfigError, match="freq_hz"):
        OperatingPoint(freq_hz=-1.0, voltage_v=0.8)
    with pytest.raises(ConfigError, match="at least one"):
        operating_points_from_pairs([])
