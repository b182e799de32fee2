"""bench_fronts.py --retrain-seeds K (benchmarks/fronts_seeds.py) and fronts_retrain_noise.py (fast: stubbed training)."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from tests.test_bench_fronts import fake_training  # noqa: E402,F401  (the stubbed search and retrain)


def _systolic_point(root, lam=0.1, seed=0):
    import bench_fronts

    config, entry = bench_fronts.search_config("lenet-16x16", "systolic", lam, seed)
    info = {"pair": "lenet-16x16", "entry": entry, "model": "systolic", "lambda": lam, "seed": seed}
    return config, bench_fronts.point_dir(root, "lenet-16x16", entry, lam, seed), info


def test_one_retrain_seed_writes_the_point_as_before_and_three_average(tmp_path, fake_training):
    import _reuse
    import bench_fronts
    import fronts_seeds

    cache = tmp_path / _reuse.RETRAIN_CACHE
    assert fronts_seeds.retrain_settings(10, None) == {"epochs": 10, "max_samples": None}  # K = 1: today's settings
    config, out, info = _systolic_point(tmp_path)
    one, _ = bench_fronts.run_point(out, config, fronts_seeds.retrain_settings(10, None, 1), info, cache)
    assert one["test_acc"] == 0.9 and one["error_pct"] == pytest.approx(10.0)
    assert "retrain_seeds" not in one and "retrain_accs" not in one and one["settings"]["retrain"] == {"epochs": 10, "max_samples": None}

    config, out, info = _systolic_point(tmp_path, lam=1.0)
    fake_training.arch = {"conv": "5x5"}
    three, ran = bench_fronts.run_point(out, config, fronts_seeds.retrain_settings(10, None, 3), info, cache)
    assert ran and [c.seed for c in fake_training.retrain[1:]] == [0, 1, 2]
    assert three["retrain_accs"] == pytest.approx([0.9, 0.89, 0.88]) and three["retrain_seeds"] == 3
    assert three["test_acc"] == pytest.approx(0.89) and three["error_pct"] == pytest.approx(11.0)
    assert json.loads((out / "point.json").read_text())["settings"]["retrain"]["seeds"] == 3
    with pytest.raises(ValueError, match=">= 1"):
        fronts_seeds.retrain_settings(10, None, 0)


def test_changing_the_retrain_seeds_reruns_the_retrains_not_the_search(tmp_path, fake_training):
    import _reuse
    import bench_fronts
    import fronts_seeds

    cache = tmp_path / _reuse.RETRAIN_CACHE
    config, out, info = _systolic_point(tmp_path)
    first, _ = bench_fronts.run_point(out, config, fronts_seeds.retrain_settings(10, None), info, cache)
    assert len(fake_training.search) == 1 and len(fake_training.retrain) == 1

    three, ran = bench_fronts.run_point(out, config, fronts_seeds.retrain_settings(10, None, 3), info, cache)
    assert ran and len(fake_training.search) == 1  # the search is reused...
    assert [c.seed for c in fake_training.retrain] == [0, 1, 2]  # ...and only seeds 1 and 2 retrain
    assert three["retrain_accs"][0] == first["test_acc"] and three["search_wall_s"] == first["search_wall_s"]
    _, ran = bench_fronts.run_point(out, config, fronts_seeds.retrain_settings(10, None, 3), info, cache)
    assert not ran  # same K: reused as it is

    back, ran = bench_fronts.run_point(out, config, fronts_seeds.retrain_settings(10, None), info, cache)
    assert ran and len(fake_training.search) == 1 and len(fake_training.retrain) == 3  # nothing trains
    same = ("test_acc", "error_pct", "latency_us", "search_wall_s", "settings")
    assert {k: back[k] for k in same} == {k: first[k] for k in same} and "retrain_accs" not in back


def test_a_frontier_with_other_retrain_seeds_keeps_its_projections(tmp_path, fake_training, monkeypatch):
    import _reuse
    import bench_fronts
    import fronts_seeds
    import uboost.frontier

    projections = []

    def frontier(projector, targets, out_root, force=False, floor=0.9):
        projections.append(list(targets))
        rows = []
        for i, _ in enumerate(targets):
            run = Path(out_root) / f"p{i:02d}"
            uboost.search.run_search(config, run)  # a stub search writes what a projection leaves: config, arch
            rows.append({"run_dir": str(run)})
        return rows

    import uboost.search

    monkeypatch.setattr(uboost.frontier, "load_projector", lambda source: None)
    monkeypatch.setattr(uboost.frontier, "frontier_targets", lambda projector, points: [0.001 * (i + 1) for i in range(points)])
    monkeypatch.setattr(uboost.frontier, "frontier", frontier)
    cache = tmp_path / _reuse.RETRAIN_CACHE
    config, source, info = _systolic_point(tmp_path, lam=1.0)
    uboost.search.run_search(config, source)
    (source / "alphas.json").write_text("{}")

    def run(k):
        return bench_fronts.run_frontier(tmp_path, "lenet-16x16", 0, source, config, fronts_seeds.retrain_settings(10, None, k),
                                         2, bench_fronts.FRONTIER, cache)

    one = run(1)
    assert len(projections) == 1 and len(fake_training.retrain) == 1  # both points derive one network: shared
    three = run(3)
    assert len(projections) == 1 and [c.seed for c in fake_training.retrain] == [0, 1, 2]
    assert [p["test_acc"] for p in three] == pytest.approx([0.89, 0.89]) and [p["target_us"] for p in three] == [1.0, 2.0]
    assert [p["point"] for p in three] == [p["point"] for p in one] == [0, 1]
    assert run(3) == three and len(projections) == 1


def test_the_report_reads_points_at_k_and_leaves_out_those_with_fewer_retrains(tmp_path, fake_training):
    import _reuse
    import bench_fronts
    import fronts_report
    import fronts_seeds

    cache = tmp_path / _reuse.RETRAIN_CACHE
    config, out, info = _systolic_point(tmp_path)
    bench_fronts.run_point(out, config, fronts_seeds.retrain_settings(10, None, 3), info, cache)
    config, out, info = _systolic_point(tmp_path, lam=1.0)
    bench_fronts.run_point(out, config, fronts_seeds.retrain_settings(10, None), info, cache)

    points, left_out = fronts_report.load_points(tmp_path, 3)
    assert left_out == 1 and [p["lambda"] for p in points] == [0.1] and points[0]["test_acc"] == pytest.approx(0.89)
    points, left_out = fronts_report.load_points(tmp_path, 2)  # the first two of three retrains
    assert left_out == 1 and points[0]["test_acc"] == pytest.approx(0.895) and points[0]["error_pct"] == pytest.approx(10.5)
    points, left_out = fronts_report.load_points(tmp_path)  # K = 1: both, the K = 3 point with its seed-0 accuracy
    assert left_out == 0 and [p["test_acc"] for p in points] == [0.9, 0.9] and "retrain_accs" not in points[0]
    fronts_report.write_summary(tmp_path, tmp_path / "k3", plot=False, retrain_seeds=3)
    assert "mean of 3 retrains" in (tmp_path / "k3" / "summary.md").read_text()
    assert "0.900000 0.890000 0.880000" in (tmp_path / "k3" / "points.csv").read_text()


def test_retrain_seeds_option_defaults_to_one_and_summarizes_apart():
    import bench_fronts

    args = bench_fronts.parse_args([])
    assert args.retrain_seeds == 1 and args.summary == Path("benchmarks/fronts")
    assert bench_fronts.parse_args(["--retrain-seeds", "3"]).summary == Path("benchmarks/fronts/k3")
    assert bench_fronts.parse_args(["--retrain-seeds", "3", "--summary", "x"]).summary == Path("x")
    with pytest.raises(SystemExit):
        bench_fronts.parse_args(["--retrain-seeds", "0"])


def test_retrain_noise_report_gives_each_retrain_seeds_hypervolume_by_hand(tmp_path, fake_training):
    import _reuse
    import bench_fronts
    import fronts_report
    import fronts_retrain_noise
    import fronts_seeds

    cache = tmp_path / _reuse.RETRAIN_CACHE
    for lam in bench_fronts.LAMBDAS["lenet"]:  # a complete sweep, one network (2 µs) retrained to 90, 89, 88 %
        config, out, info = _systolic_point(tmp_path, lam=lam)
        bench_fronts.run_point(out, config, fronts_seeds.retrain_settings(10, None, 3), info, cache)
    assert len(fake_training.retrain) == 3
    points, _ = fronts_report.load_points(tmp_path, 3)
    # reference (20 %, 16 µs): one point at error e and 2 µs dominates (20 - e) * 14 of 320
    for seed, error in enumerate((10.0, 11.0, 12.0)):
        view = fronts_retrain_noise.hypervolumes(fronts_retrain_noise.single_seed(points, seed), "lenet-16x16")
        assert view["systolic"]["per_seed"] == {0: pytest.approx((20 - error) * 14 / 320)}
    text = fronts_retrain_noise.report(tmp_path, "lenet-16x16", 3)
    assert "| systolic | 0.394 ± 0.000 | 0.438 ± 0.000 | 0.394 ± 0.000 | 0.350 ± 0.000 | 0.088 |" in text
