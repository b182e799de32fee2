"""benchmarks/fronts_crossfit.py: fronts chosen on some retrains and scored on the others (hand-computed cases)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_fronts  # noqa: E402
import fronts_crossfit  # noqa: E402
import hypervolume as hv  # noqa: E402

PAIR = "lenet-16x16"
REF = bench_fronts.REFERENCE[PAIR]  # (20 %, 16 µs)


def sweep(entry, networks, seed=0):
    """One complete lambda sweep of ``entry``: ``networks`` = [(latency µs, retrain accuracies)], one per lambda,
    repeated over the pair's lambdas."""
    lambdas = bench_fronts.lambdas_for(PAIR, None)
    return [{"pair": PAIR, "entry": entry, "model": entry, "lambda": lam, "seed": seed,
             "latency_us": networks[i % len(networks)][0], "retrain_accs": list(networks[i % len(networks)][1])}
            for i, lam in enumerate(lambdas)]


def test_non_dominated():
    group = [{"error_pct": e, "latency_us": l} for e, l in [(5, 4), (4, 5), (5, 5), (6, 3), (4, 5)]]
    assert fronts_crossfit.non_dominated(group) == [0, 1, 3, 4]  # (5, 5) is dominated; the tie (4, 5) stays twice


def test_equally_many_correct_images_are_equally_accurate():
    """points.csv stores each retrain's accuracy with 6 decimals: two networks with 1,065 of 1,080 images right
    (3 retrains of 360) get mean errors 3e-5 points apart; the slower one is dominated, not kept on the front."""
    six = lambda *images: [float(f"{k / 360:.6f}") for k in images]  # noqa: E731
    slow = {"latency_us": 4.29, "retrain_accs": six(353, 353, 359)}
    fast = {"latency_us": 3.82, "retrain_accs": six(354, 352, 359)}
    group = fronts_crossfit.at([slow, fast], (0, 1, 2))
    assert group[0]["error_pct"] != group[1]["error_pct"]
    assert fronts_crossfit.non_dominated(group) == [1]
    assert fronts_crossfit.non_dominated(list(reversed(group))) == [0]


def test_a_noise_free_entry_keeps_its_hypervolume_and_a_lucky_network_loses_it():
    steady = sweep("systolic", [(8.0, [0.9] * 4)])
    # two networks at 4 µs: A 90 % on every retrain; B lucky on seeds 0-1 (95 %), unlucky on 2-3 (85 %): mean 90 %
    lucky = sweep("systolic-paper", [(4.0, [0.9] * 4), (4.0, [0.95, 0.95, 0.85, 0.85])])
    published, crossfit = fronts_crossfit.tables(steady + lucky, PAIR)
    one = hv.normalized_hypervolume([(10.0, 8.0)], REF)
    assert published["systolic"][0] == pytest.approx(one) and crossfit["systolic"][0] == pytest.approx(one)
    at_4us = lambda err: hv.normalized_hypervolume([(err, 4.0)], REF)  # noqa: E731
    assert published["systolic-paper"][0] == pytest.approx(at_4us(10.0))  # both at 90 % on the mean: 10 % error
    # 4 retrains: 6 splits of 2 + 2. Choosing {0,1}: B (95 %) alone is the front, judged on {2,3}: 85 %.
    # Choosing {2,3}: A alone (90 % vs 85 %), judged 90 %. The 4 mixed splits: A and B tie at 90 % (both kept),
    # judged 90 % each: the front is 10 % error.
    expected = (at_4us(15.0) + at_4us(10.0) + 4 * at_4us(10.0)) / 6
    assert crossfit["systolic-paper"][0] == pytest.approx(expected)
    assert crossfit["systolic-paper"][0] < published["systolic-paper"][0]


def test_report_and_bad_input(tmp_path, capsys):
    points = sweep("systolic", [(8.0, [0.9, 0.92])]) + sweep("systolic-paper", [(4.0, [0.95, 0.85])])
    points += sweep("systolic", [(8.0, [0.88, 0.9])], seed=1) + sweep("systolic-paper", [(4.0, [0.93, 0.87])], seed=1)
    text = fronts_crossfit.report(points, PAIR)
    assert "| systolic | " in text and "| systolic-paper | " in text and "paired" in text.lower()
    csv = tmp_path / "points.csv"
    csv.write_text("pair,entry,model,lambda,seed,latency_us,retrain_accs\n" +
                   "".join(f"{p['pair']},{p['entry']},{p['model']},{p['lambda']},{p['seed']},{p['latency_us']},"
                           f"{' '.join(map(str, p['retrain_accs']))}\n" for p in points))
    assert fronts_crossfit.main([str(csv), "--pair", PAIR, "--out", str(tmp_path / "cf.md")]) == 0
    assert (tmp_path / "cf.md").read_text().startswith("# Cross-fitted hypervolumes")
    csv.write_text("pair,entry,model,lambda,seed,latency_us,retrain_accs\nlenet-16x16,systolic,systolic,0.1,0,8.0,0.9\n")
    assert fronts_crossfit.main([str(csv), "--pair", PAIR]) == 1
    assert "at least 2 retrains" in capsys.readouterr().err
