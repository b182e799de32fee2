"""benchmarks/fronts_local.py: the local-search rule on a sweep's front, over a table of priced networks, by hand."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import fronts_local  # noqa: E402

from uboost.tuning.local_search import key  # noqa: E402

CHOICES = {"k": [3, 5], "w": [4, 8, 16]}
# latency µs, MACs, accuracy (0..1) of every network of a 6-network space
NETS = {(5, 16): (8.0, 400, 0.97), (5, 8): (6.0, 200, 0.95), (5, 4): (5.0, 100, 0.80),
        (3, 16): (3.0, 150, 0.96), (3, 8): (2.0, 80, 0.93), (3, 4): (1.5, 40, 0.70)}


def _table():
    rows = [{"arch": {"k": k, "w": w}, "latency_us": lat, "macs": macs, "cycles": 1000 * lat, "acc": acc}
            for (k, w), (lat, macs, acc) in NETS.items()]
    return {key(r["arch"]): r for r in rows}


def test_the_local_search_walks_one_choice_at_a_time_from_the_sweeps_networks():
    table = _table()
    start = [table[key({"k": 5, "w": 16})], table[key({"k": 5, "w": 4})]]
    # records (5,16) 97 % at 8 µs and (5,4) 80 % at 5 µs. A neighbor is promising when cheaper than every record at
    # least as accurate as its parent (the bar); score = bar / cost x MACs kept (at most 1):
    # 1. (3,4) from (5,4): 5 / 1.5 x 40/100 = 1.33; (3,16) from (5,16): 8/3 x 150/400 = 1.0; (5,8): 8/6 x 0.5 = 0.67
    # 2. (3,4) is in (70 %, 1.5 µs), (3,8) from it is dearer than its bar 1.5: (3,16) at 1.0
    # 3. (3,8) from (3,16) (bar 3): 1.5 x 80/150 = 0.8 beats (5,8) at 0.67
    # 4. (5,8); then every network is in: the search stops though 5 were allowed
    added = fronts_local.local_search(start, 5, CHOICES, table, lambda r: r["acc"])
    assert [(a["arch"]["k"], a["arch"]["w"]) for a in added] == [(3, 4), (3, 16), (3, 8), (5, 8)]
    assert [a["move"] for a in added] == ["k 5 -> 3", "k 5 -> 3", "w 16 -> 8", "w 16 -> 8"]
    assert [a["parent"] for a in added] == [key({"k": 5, "w": 4}), key({"k": 5, "w": 16}), key({"k": 3, "w": 16}),
                                            key({"k": 5, "w": 16})]
    assert fronts_local.local_search(start, 2, CHOICES, table, lambda r: r["acc"]) == added[:2]


def test_no_promising_neighbor_stops_the_search():
    table = _table()
    every = list(table.values())
    assert fronts_local.local_search(every, 5, CHOICES, table, lambda r: r["acc"]) == []


def test_sweep_points_map_to_the_space_by_cycle_and_mac_counts(tmp_path):
    table = _table()
    by_counts = {}
    for r in table.values():
        by_counts.setdefault(fronts_local.counts(r), []).append(r)
    points = tmp_path / "points.csv"
    points.write_text("pair,entry,seed,cycles,macs\n"
                      "p,x,0,8000.0,400.0\n"
                      "p,x,0,8000.0,400.0\n"  # the same network at another lambda: once
                      "p,x,1,2000.0,80.0\n"
                      "p,x,2,2000.0,80.0\n"  # a seed not asked for
                      "q,x,0,1500.0,40.0\n"  # another pair
                      "p,task-only,0,3000.0,150.0\n"  # lambda 0 without a utilization term: x's, not y's
                      "p,y,0,1500.0,40.0\n")
    found = fronts_local.sweep_networks(points, "p", by_counts, [0, 1], {"x"})
    assert found == {("x", 0): [key({"k": 5, "w": 16}), key({"k": 3, "w": 16})], ("x", 1): [key({"k": 3, "w": 8})],
                     ("y", 0): [key({"k": 3, "w": 4})]}
    by_counts[(2000, 80)].append(by_counts[(2000, 80)][0])  # two networks with the same counts: refused
    with pytest.raises(ValueError, match="2 networks of the space"):
        fronts_local.sweep_networks(points, "p", by_counts, [1])


def test_the_summary_reports_means_and_gains_over_seeds():
    result = {"pair": "p", "seeds": [0, 1], "local": [0, 3], "retrain_seeds": 5, "reference": [20.0, 16.0],
              "networks_retrained": 7, "wall_s": 1.0, "attainable_hypervolume": 0.9,
              "entries": {"x": {0: {"hypervolume": {0: 0.80, 3: 0.84}, "added": [{}, {}, {}]},
                                1: {"hypervolume": {0: 0.82, 3: 0.83}, "added": [{}]}}}}
    rows = {(r["entry"], r["n"]): r for r in fronts_local.summary_rows(result)}
    assert rows[("x", 3)]["mean"] == pytest.approx(0.835) and rows[("x", 3)]["gain"] == pytest.approx(0.025)
    assert rows[("x", 0)]["gain"] == 0.0
    assert "| x | 0.810 ± 0.014 | 0.835 ± 0.007 | +0.025 | 2.0 |" in fronts_local.markdown(result)


def test_exact_minus_each_entry_is_paired_by_search_seed():
    hv = {"systolic": [0.83, 0.85, 0.84], "y": [0.82, 0.86, 0.80]}
    result = {"local": [0], "entries": {e: {str(s): {"hypervolume": {0: v}} for s, v in enumerate(vs)} for e, vs in hv.items()}}
    (row,) = fronts_local.paired(result)
    assert row["entry"] == "y" and row["seeds"] == 3 and row["ahead"] == 2
    assert row["mean"] == pytest.approx((0.01 - 0.01 + 0.04) / 3)
    from scipy import stats
    assert row["p"] == pytest.approx(stats.ttest_rel(hv["systolic"], hv["y"]).pvalue)


def test_matched_speedups_compare_each_front_point_with_the_fastest_flops_network_as_accurate():
    def seed(start, added=()):
        return {"start": [{"latency_us": lat, "accuracy": acc} for lat, acc in start],
                "added": [{"latency_us": lat, "accuracy": acc} for lat, acc in added]}

    result = {"entries": {"systolic": {"0": seed([(2.0, 0.95)], [(1.0, 0.95)])},
                          "flops": {"0": seed([(4.0, 0.951), (3.0, 0.90)], [(1.5, 0.96)])}}}
    # N = 0: exact's one point (95 %, 2 µs); FLOPs' fastest within 0.3 points: 4 µs -> 2x
    assert fronts_local.speedups(result, 0) == {"systolic": (pytest.approx(2.0), 1, 0)}
    # N = 1: exact's front is (95 %, 1 µs) (2 µs is dominated); FLOPs' local network (96 %, 1.5 µs) -> 1.5x
    assert fronts_local.speedups(result, 1) == {"systolic": (pytest.approx(1.5), 1, 0)}
    result["entries"]["flops"]["0"] = seed([(3.0, 0.90)])  # nothing as accurate: unmatched
    assert fronts_local.speedups(result, 0) == {"systolic": (None, 0, 1)}


def test_a_constant_difference_over_seeds_gets_no_t_test():
    """Differences all +0.01 printed "t +inf, p 0.000" (scipy's answer for no spread)."""
    r = {"local": [0], "entries": {"systolic": {str(s): {"hypervolume": {0: 0.80 + s / 100}} for s in range(3)},
                                   "flops": {str(s): {"hypervolume": {0: 0.79 + s / 100}} for s in range(3)}}}
    (row,) = fronts_local.paired(r)
    assert row["mean"] == pytest.approx(0.01) and row["t"] is None and row["p"] is None
