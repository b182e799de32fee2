"""benchmarks/cosearch_crossfit.py: co-search verdicts with the reference and pick chosen on one half of the
retrain seeds and judged on the other (a hand-computed two-seed cell; the script on a written summary)."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_cosearch  # noqa: E402
import cosearch_crossfit  # noqa: E402


def row(trial, seeds, edp):
    return {"trial": trial, "accuracy": sum(seeds) / len(seeds), "accuracy_seeds": seeds, "edp_uj_ms": edp}


# baseline 0 is lucky on seed 0, co-search 1 on seed 1; over both seeds all four average 0.84375 (binary
# fractions: the means are exact)
CELL = {"space": "lenet", "baseline_sram_kb": 4,
        "baseline": {"trials": [row(0, [0.90625, 0.78125], 10.0), row(1, [0.84375, 0.84375], 8.0)]},
        "cosearch": {"trials": [row(0, [0.875, 0.8125], 2.0), row(1, [0.78125, 0.90625], 1.0)]}}


def test_splits_partition_the_seeds_into_halves():
    assert cosearch_crossfit.splits(2) == [((0,), (1,)), ((1,), (0,))]
    four = cosearch_crossfit.splits(4)
    assert len(four) == 6 and all(sorted(a + b) == [0, 1, 2, 3] and len(a) == len(b) == 2 for a, b in four)
    assert len({a for a, _ in four}) == 6  # each half chooses once
    assert len(cosearch_crossfit.splits(10)) == 252
    assert all(len(a) == 3 for a, _ in cosearch_crossfit.splits(5))  # odd: the choosing half is the larger


def test_a_verdict_met_on_the_means_is_missed_on_held_out_seeds():
    result = cosearch_crossfit.crossfit(CELL, tolerance=0.005)
    # both seeds' means: the baselines tie (the cheaper, 1, is the reference); both co-search networks are
    # within 0.5 points; the cheaper (1) is the pick: 8x at +0.0 points, met
    assert result["published"] == dict(reference=1, pick=1, gain=8.0, delta_points=0.0, met=True)
    # chosen on seed 0: reference 0 (0.906), no co-search network within 0.5 points (pick: the most accurate, 0; 5x),
    # not met; chosen on seed 1: reference 1 (0.844), pick 1 (0.906, EDP 1: 8x), judged on seed 0: 0.781 - 0.844 =
    # -6.25 points, not met
    assert result["splits"] == 2 and result["met_share"] == 0.0
    assert {(p["reference"], p["pick"]) for p in result["pairs"]} == {(0, 0), (1, 1)}
    assert result["median_gain"] == pytest.approx((10 / 2 + 8 / 1) / 2)
    assert result["median_held_out_delta_points"] == pytest.approx(((0.8125 - 0.78125) + (0.78125 - 0.84375)) / 2 * 100)
    assert result["median_met"] is False

    # the chosen networks' accuracy on the seed that did not choose them: reference 0 falls 12.5 points, 1 none;
    # pick 0 falls 6.25, pick 1 12.5
    assert result["mean_reference_fall_points"] == pytest.approx(12.5 / 2)
    assert result["mean_pick_fall_points"] == pytest.approx((6.25 + 12.5) / 2)


def test_the_median_verdict_judges_each_splits_gain_and_difference_together():
    """A median gain from splits whose difference fails and a median difference from splits whose gain fails made
    a cell "met" that met the goal in 23 % of its splits."""
    cell = {"space": "lenet", "baseline_sram_kb": 4,
            "baseline": {"trials": [row(0, [0.9, 0.9], 10.0)]},
            "cosearch": {"trials": [row(0, [0.9, 0.892], 1.0), row(1, [0.9, 0.9], 8.0)]}}
    result = cosearch_crossfit.crossfit(cell, tolerance=0.005)
    # chosen on seed 0: pick 0, 10x, judged on seed 1 -0.8 points (missed); chosen on seed 1: pick 1, 1.25x, +0.0 (missed)
    assert result["met_share"] == 0.0
    assert result["median_gain"] == pytest.approx(5.625) and result["median_held_out_delta_points"] == pytest.approx(-0.4)
    assert result["median_met"] is False  # each median alone passes; no split meets the goal


def test_a_cell_without_noise_keeps_its_verdict():
    steady = {**CELL, "baseline": {"trials": [row(0, [0.9] * 4, 10.0)]},
              "cosearch": {"trials": [row(0, [0.897] * 4, 5.0), row(1, [0.89] * 4, 1.0)]}}
    result = cosearch_crossfit.crossfit(steady, tolerance=0.005)
    assert result["met_share"] == 1.0 and result["median_gain"] == 2.0 and result["published"]["met"]
    assert cosearch_crossfit.crossfit(steady, tolerance=0.005, goal=2.5)["met_share"] == 0.0


def test_a_guard_band_picks_a_network_clearing_the_tolerance_by_the_margin_on_the_choosing_seeds():
    cell = {"space": "lenet", "baseline_sram_kb": 4,
            "baseline": {"trials": [row(0, [0.9] * 2, 10.0)]},
            "cosearch": {"trials": [row(0, [0.897, 0.89], 1.0), row(1, [0.9, 0.9], 4.0)]}}
    split = ((0,), (1,))
    plain = cosearch_crossfit.crossfit(cell, tolerance=0.005, split=split)  # 0.897 clears 0.895: pick 0, -1 point held out
    assert plain["pairs"] == [dict(reference=0, pick=0, splits=1)] and plain["met_share"] == 0.0
    guarded = cosearch_crossfit.crossfit(cell, tolerance=0.005, split=split, margin=0.0025)  # must clear 0.8975: pick 1
    assert guarded["pairs"] == [dict(reference=0, pick=1, splits=1)] and guarded["met_share"] == 1.0
    assert guarded["median_gain"] == 2.5 and guarded["median_held_out_delta_points"] == 0.0


def test_script_reads_summaries_and_writes_its_tables(tmp_path, capsys):
    folder = tmp_path / "inner-lenet-k2"
    folder.mkdir()
    (folder / "summary.json").write_text(json.dumps({"settings": {"seed": 3, "tolerance": 0.005}, "results": [CELL]}))
    assert cosearch_crossfit.main(["--summaries", str(tmp_path / "*-k2"), "--out", str(tmp_path / "out")]) == 0
    rows = json.loads((tmp_path / "out" / "crossfit.json").read_text())
    assert rows[0]["study_seed"] == 3 and rows[0]["met_share"] == 0.0
    assert "1 of 1 cells; cross-fitted, in more than half of the splits: 0 of 1" in (tmp_path / "out" / "crossfit.md").read_text()
    one_seed = {**CELL, "baseline": {"trials": [row(0, [0.9], 1.0)]}}
    (folder / "summary.json").write_text(json.dumps({"settings": {"seed": 3, "tolerance": 0.005}, "results": [one_seed]}))
    assert cosearch_crossfit.main(["--summaries", str(tmp_path / "*-k2")]) == 1
    assert "at least 2 retrain seeds" in capsys.readouterr().err


def test_one_given_split_judges_a_published_choice_on_fresh_seeds(tmp_path, capsys):
    four = {**CELL, "baseline": {"trials": [row(0, [0.90625, 0.78125, 0.5, 0.5], 10.0), row(1, [0.84375, 0.84375, 0.75, 0.75], 8.0)]},
            "cosearch": {"trials": [row(0, [0.875, 0.8125, 0.75, 0.75], 2.0), row(1, [0.78125, 0.90625, 0.5, 0.5], 1.0)]}}
    result = cosearch_crossfit.crossfit(four, tolerance=0.005, split=((0, 1), (2, 3)))
    # seeds 0-1 choose as the two-seed cell's published rule did (reference 1, pick 1, 8x, met); seeds 2-3 judge:
    # 0.5 - 0.75 = -25 points
    assert result["published"]["met"] and (result["published"]["reference"], result["published"]["pick"]) == (1, 1)
    assert result["splits"] == 1 and result["met_share"] == 0.0
    assert result["median_held_out_delta_points"] == pytest.approx(-25.0)
    with pytest.raises(ValueError, match="disjoint"):
        cosearch_crossfit.crossfit(four, tolerance=0.005, split=((0, 1), (1, 2)))
    folder = tmp_path / "fresh-k4"
    folder.mkdir()
    (folder / "summary.json").write_text(json.dumps({"settings": {"seed": 0, "tolerance": 0.005}, "results": [four]}))
    assert cosearch_crossfit.main(["--summaries", str(folder), "--choose", "0-1", "--judge", "2-3"]) == 0
    assert "cross-fitted, in more than half of the splits: 0 of 1" in capsys.readouterr().out
    assert cosearch_crossfit.main(["--summaries", str(folder), "--choose", "0-1", "--judge", "1-3"]) == 1
    with pytest.raises(SystemExit):
        cosearch_crossfit.main(["--summaries", str(folder), "--choose", "0-1"])


def stored(*images):
    """Test accuracies as ``retrain.json`` stores them: a float32 share of 360 test images."""
    return [float(np.float32(k / 360)) for k in images]


def test_choose_compares_exact_accuracies_not_their_float32_rounding():
    """9 images of 1,800 (5 seeds) below the reference is exactly 0.5 points below: within the tolerance (float32's
    rounding made it -0.5000007 points); equally many correct images are a tie, the cheaper network wins it."""
    every = cosearch_crossfit.mean_over(range(5))
    reference = row(0, stored(350, 350, 350, 350, 350), 10.0)
    pick = row(1, stored(349, 348, 348, 348, 348), 1.0)
    assert bench_cosearch.choose([reference], [pick], 0.005, every) == (reference, pick, True)
    costly = row(0, stored(341, 341, 345, 345, 345), 10.0)
    cheap = row(1, stored(340, 342, 345, 345, 345), 1.0)
    assert every(costly) != every(cheap)  # the same 1,717 images, float32 means 1e-8 apart
    assert bench_cosearch.choose([costly, cheap], [cheap], 0.005, every)[0] is cheap
    assert bench_cosearch.most_accurate([costly, cheap], every) is cheap


def test_a_held_out_difference_of_exactly_half_a_point_meets_the_goal():
    ten = {**CELL, "baseline": {"trials": [row(0, stored(*[350] * 10), 10.0)]},
           "cosearch": {"trials": [row(0, stored(*[350] * 5, 349, 348, 348, 348, 348), 1.0)]}}
    result = cosearch_crossfit.crossfit(ten, tolerance=0.005, split=(tuple(range(5)), tuple(range(5, 10))))
    assert result["median_held_out_delta_points"] == pytest.approx(-0.5, abs=1e-5)  # -0.5000007 in float32
    assert result["met_share"] == 1.0 and result["published"]["met"]
