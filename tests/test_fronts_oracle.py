"""benchmarks/fronts_oracle.py: the attainable front of a small space. The screen's margin, the front and the
matching of sweep points to front networks, by hand."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import fronts_oracle  # noqa: E402

ROWS = [  # error %, latency µs
    {"name": "a", "error_pct": 2.0, "latency_us": 10.0, "cycles": 1000, "macs": 50},
    {"name": "b", "error_pct": 3.0, "latency_us": 5.0, "cycles": 500, "macs": 30},
    {"name": "c", "error_pct": 4.5, "latency_us": 6.0, "cycles": 600, "macs": 31},  # dominated by b, 1.5 points behind
    {"name": "d", "error_pct": 8.0, "latency_us": 7.0, "cycles": 700, "macs": 32},  # 5 points behind b
    {"name": "e", "error_pct": 9.0, "latency_us": 1.0, "cycles": 100, "macs": 10},
]


def test_the_front_keeps_the_non_dominated_rows_only():
    assert [r["name"] for r in fronts_oracle.front(ROWS)] == ["a", "b", "e"]


def test_the_screen_keeps_what_trails_the_front_by_at_most_the_margin():
    assert [r["name"] for r in fronts_oracle.near_front(ROWS, 2.0)] == ["a", "b", "c", "e"]
    assert [r["name"] for r in fronts_oracle.near_front(ROWS, 1.0)] == ["a", "b", "e"]
    assert [r["name"] for r in fronts_oracle.near_front(ROWS, 6.0)] == ["a", "b", "c", "d", "e"]


def test_sweep_points_are_matched_to_front_networks_by_cycles_and_macs(tmp_path):
    points = tmp_path / "points.csv"
    points.write_text("pair,entry,seed,cycles,macs\n"
                      "p,x,0,1000.0,50.0\n"  # a
                      "p,x,0,500.0,30.0\n"   # b
                      "p,x,1,1000.0,50.0\n"  # a again, another seed
                      "p,y,0,500.0,31.0\n"   # b's cycles, other MACs: not b
                      "q,y,0,100.0,10.0\n")  # another pair
    found = fronts_oracle.found_by_entries(points, "p", fronts_oracle.front(ROWS))
    assert found["x"] == {"front_networks_reached": 2, "of": 3, "per_seed_mean": 1.5, "seeds": 2}
    assert found["y"]["front_networks_reached"] == 0
    twins = [{**ROWS[0]}, {**ROWS[0], "error_pct": 1.0, "latency_us": 10.0}]
    with pytest.raises(ValueError, match="same cycle and MAC counts"):
        fronts_oracle.found_by_entries(points, "p", twins)


def test_the_attainable_speedup_compares_the_true_front_and_each_entry_with_the_same_flops_sweep(tmp_path):
    points = tmp_path / "points.csv"
    points.write_text("pair,entry,lambda,seed,test_acc,error_pct,latency_us\n"
                      "p,flops,0.1,0,0.95,5.0,6.0\n"   # seed 0's FLOPs sweep: 95 % at 6 µs, 90 % at 3 µs
                      "p,flops,1,0,0.90,10.0,3.0\n"
                      "p,x,0.1,0,0.952,4.8,4.0\n"      # matches 95 % (6 / 4 = 1.5x)
                      "p,x,1,0,0.80,20.0,1.0\n"        # 10 points below every FLOPs network: strict leaves it out
                      "q,flops,0.1,0,0.99,1.0,1.0\n")  # another pair
    true_front = [{"accuracy": 0.951, "latency_us": 2.0},   # matches 95 %: 6 / 2 = 3x
                  {"accuracy": 0.899, "latency_us": 1.5}]   # within 0.3 of 90 %: 3 / 1.5 = 2x
    out = fronts_oracle.attainable_speedups(points, "p", true_front)
    assert out["true front"]["geomean"] == pytest.approx(6 ** 0.5) and out["true front"]["points"] == 2
    assert out["x"]["points"] == 2 and out["x"]["geomean"] == pytest.approx((1.5 * 3.0) ** 0.5)  # 80 % vs FLOPs' fastest
    assert out["x"]["points_in_range"] == 1 and out["x"]["geomean_in_range"] == pytest.approx(1.5)
    assert out["true front"]["in_range_at_goal"] == 1 and out["x"]["in_range_at_goal"] == 0  # 3x >= 2.8x; 2x, 1.5x not
    assert set(out) == {"true front", "x"}
