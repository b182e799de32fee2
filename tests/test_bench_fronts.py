"""benchmarks/hypervolume.py and the reuse rule of benchmarks/bench_fronts.py (fast: no training)."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import hypervolume as hv  # noqa: E402

# (error %, latency µs), both minimized; reference (10 %, 20 µs).
FRONT = [(1.0, 10.0), (2.0, 5.0), (4.0, 2.0)]
REF = (10.0, 20.0)


def test_hypervolume_equals_the_hand_computation_on_three_points():
    # Sweep over latency: [10, 20] is dominated from error 1 (width 9), [5, 10) from error 2
    # (width 8), [2, 5) from error 4 (width 6): 9*10 + 8*5 + 6*3 = 90 + 40 + 18 = 148.
    assert hv.hypervolume(FRONT, REF) == pytest.approx(148.0)
    assert hv.normalized_hypervolume(FRONT, REF) == pytest.approx(148.0 / 200.0)


def test_dominated_and_outside_points_add_nothing():
    extra = FRONT + [(3.0, 12.0), (12.0, 1.0), (5.0, 25.0)]  # dominated; worse error than ref; slower than ref
    assert hv.hypervolume(extra, REF) == pytest.approx(148.0)
    assert hv.hypervolume([], REF) == 0.0
    assert hv.hypervolume([(11.0, 1.0)], REF) == 0.0


def test_one_point_is_its_rectangle_and_a_better_point_adds_area():
    assert hv.hypervolume([(2.0, 4.0)], REF) == pytest.approx(8.0 * 16.0)
    assert hv.hypervolume(FRONT + [(0.5, 1.0)], REF) == pytest.approx(9.5 * 19.0)  # it dominates all three


def test_pareto_front_keeps_the_non_dominated_points_sorted():
    assert hv.pareto_front(FRONT[::-1] + [(3.0, 12.0), (2.0, 5.0)]) == FRONT


def test_reference_must_be_positive_and_finite():
    with pytest.raises(ValueError, match="reference"):
        hv.hypervolume(FRONT, (0.0, 20.0))


# -- the sweep's reuse rule -------------------------------------------------------------------
class _Calls:
    def __init__(self):
        self.search, self.retrain = [], []
        self.arch = {}  # the network every fake search derives


@pytest.fixture
def fake_training(monkeypatch):
    """run_search and retrain replaced by stubs that write what the real ones leave behind."""
    import uboost.retrain
    import uboost.search

    import bench_fronts

    calls = _Calls()

    class Found:
        def summary(self):
            return {"latency_ms": 0.002, "val_acc": 0.5}

    def run_search(config, out, force=False):
        calls.search.append(config)
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(config.to_dict()))
        (out / "arch.json").write_text(json.dumps(calls.arch))
        (out / "result.json").write_text(json.dumps({"latency_ms": 0.002}))
        return Found()

    class Trained:
        def summary(self):
            return {"test_acc": 0.9}

    def retrain(run, config, out=None):
        calls.retrain.append(config)
        done = Path(out) if out is not None else Path(run) / "retrain"
        done.mkdir(exist_ok=True)
        acc = 0.9 - 0.01 * config.seed  # each retrain seed its own accuracy
        (done / "retrain.json").write_text(json.dumps({"config": {"epochs": config.epochs, "max_samples": config.max_samples,
                                                                  "seed": config.seed}, "test_acc": acc}))
        trained = Trained()
        trained.summary = lambda: {"test_acc": acc}
        return trained

    monkeypatch.setattr(uboost.search, "run_search", run_search)
    monkeypatch.setattr(uboost.retrain, "retrain", retrain)
    monkeypatch.setattr(bench_fronts, "price", lambda run, config: {"latency_us": 2.0, "cycles": 2000, "utilization": 0.5, "macs": 1})
    return calls


def test_a_finished_point_is_reused_and_one_whose_settings_changed_runs_again(tmp_path, fake_training):
    import bench_fronts

    config, entry = bench_fronts.search_config("lenet-16x16", "systolic", 0.1, 0)
    assert entry == "systolic"
    out = bench_fronts.point_dir(tmp_path, "lenet-16x16", entry, 0.1, 0)
    retrain = {"epochs": 10, "max_samples": None}
    info = {"pair": "lenet-16x16", "entry": entry, "model": "systolic", "lambda": 0.1, "seed": 0}

    point, ran = bench_fronts.run_point(out, config, retrain, info)
    assert ran and len(fake_training.search) == 1 and len(fake_training.retrain) == 1
    assert point["error_pct"] == pytest.approx(10.0) and json.loads((out / "point.json").read_text())["test_acc"] == 0.9

    _, ran = bench_fronts.run_point(out, config, retrain, info)  # same settings: nothing runs
    assert not ran and len(fake_training.search) == 1 and len(fake_training.retrain) == 1

    changed = config.replace(arch_lr=0.05)  # e.g. a default that changed since: search and retrain again
    _, ran = bench_fronts.run_point(out, changed, retrain, info)
    assert ran and len(fake_training.search) == 2 and fake_training.search[-1].arch_lr == 0.05
    assert len(fake_training.retrain) == 2

    _, ran = bench_fronts.run_point(out, changed, {"epochs": 5, "max_samples": None}, info)  # only the retrain changed
    assert ran and len(fake_training.search) == 2 and fake_training.retrain[-1].epochs == 5


def test_points_csv_carries_the_derived_network_so_the_summary_outlives_the_run_directories(tmp_path, fake_training):
    import csv

    import bench_fronts
    import fronts_report

    fake_training.arch = {"conv1_width": 8, "conv1_kernel": 3}
    config, entry = bench_fronts.search_config("lenet-16x16", "systolic", 0.1, 0)
    out = bench_fronts.point_dir(tmp_path, "lenet-16x16", entry, 0.1, 0)
    info = {"pair": "lenet-16x16", "entry": entry, "model": "systolic", "lambda": 0.1, "seed": 0}
    point, _ = bench_fronts.run_point(out, config, {"epochs": 10, "max_samples": None}, info)
    assert point["arch"] == fake_training.arch
    old = dict(point)
    del old["arch"]  # a point made before the field existed: an empty cell
    text = fronts_report.points_csv([point, {**old, "lambda": 1.0}])
    rows = list(csv.DictReader(text.splitlines()))
    assert json.loads(rows[0]["arch"]) == fake_training.arch and rows[1]["arch"] == ""


def test_a_network_retrained_once_is_shared_until_the_network_or_a_retrain_setting_changes(tmp_path, fake_training):
    import _reuse
    import bench_fronts

    cache, retrain = tmp_path / _reuse.RETRAIN_CACHE, {"epochs": 10, "max_samples": None}

    def point(lam, seed, *, config=None, settings=retrain):
        wanted, entry = bench_fronts.search_config("lenet-16x16", "systolic", lam, seed)
        out = bench_fronts.point_dir(tmp_path, "lenet-16x16", entry, lam, seed)
        info = {"pair": "lenet-16x16", "entry": entry, "model": "systolic", "lambda": lam, "seed": seed}
        done, ran = bench_fronts.run_point(out, config or wanted, settings, info, cache)
        assert ran
        return done, out

    fake_training.arch = {"conv": "3x3"}
    first, first_dir = point(0.1, 0)
    assert len(fake_training.retrain) == 1 and "retrain_from" not in first
    # another lambda (a search-only setting) deriving the same network: its accuracy, no retrain
    shared, _ = point(1.0, 0)
    assert len(fake_training.search) == 2 and len(fake_training.retrain) == 1
    assert shared["retrain_from"] == str(first_dir) and shared["test_acc"] == first["test_acc"]
    # the same network from another search seed: retrained, since the seed splits the test images
    seeded, _ = point(0.1, 2)
    assert len(fake_training.retrain) == 2 and "retrain_from" not in seeded
    fake_training.arch = {"conv": "5x5"}  # another network: retrained
    other, _ = point(0.3, 0)
    assert len(fake_training.retrain) == 3 and "retrain_from" not in other
    fake_training.arch = {"conv": "3x3"}
    point(3.0, 0, settings={"epochs": 5, "max_samples": None})  # a retrain setting changed: retrained
    assert len(fake_training.retrain) == 4 and fake_training.retrain[-1].epochs == 5
    wider, _ = bench_fronts.search_config("lenet-16x16", "systolic", 0.03, 0)
    point(0.03, 0, config=wider.replace(image_size=12))  # the network's input changed: retrained
    assert len(fake_training.retrain) == 5

    # a later invocation's index finds the finished retrains: five (network, data) settings in all
    assert _reuse.index_retrains(tmp_path, tmp_path / "fresh-cache") == 5


def test_retrains_over_seeds_are_averaged_kept_apart_and_shared(tmp_path, fake_training):
    import _reuse
    import bench_fronts

    cache = tmp_path / _reuse.RETRAIN_CACHE
    config, entry = bench_fronts.search_config("lenet-16x16", "systolic", 0.1, 0)
    first = bench_fronts.point_dir(tmp_path, "lenet-16x16", entry, 0.1, 0)
    fake_training.arch = {"conv": "3x3"}
    import uboost.search
    uboost.search.run_search(config, first)
    mean, accs = _reuse.mean_retrain_acc(first, 10, None, cache, seeds=3)
    assert accs == pytest.approx([0.9, 0.89, 0.88]) and mean == pytest.approx(0.89)
    assert [c.seed for c in fake_training.retrain] == [0, 1, 2]
    assert sorted(p.name for p in first.iterdir() if p.name.startswith("retrain")) == ["retrain", "retrain-seed1", "retrain-seed2"]
    assert _reuse.mean_retrain_acc(first, 10, None, cache, seeds=3)[1] == accs  # all reused: nothing retrains
    assert len(fake_training.retrain) == 3
    other = bench_fronts.point_dir(tmp_path, "lenet-16x16", entry, 1.0, 0)  # the same network at another lambda: shared
    uboost.search.run_search(config.replace(latency_weight=1.0), other)
    assert _reuse.mean_retrain_acc(other, 10, None, cache, seeds=4)[1] == pytest.approx([0.9, 0.89, 0.88, 0.87])
    assert [c.seed for c in fake_training.retrain] == [0, 1, 2, 3]  # only the fourth seed is new
    assert _reuse.index_retrains(tmp_path, tmp_path / "fresh-cache") == 4  # one entry per (network, seed)
    seeded = bench_fronts.point_dir(tmp_path, "lenet-16x16", entry, 0.1, 2)  # another search seed: its own test split
    uboost.search.run_search(config.replace(seed=2), seeded)
    _reuse.mean_retrain_acc(seeded, 10, None, cache, seeds=2)
    assert [c.seed for c in fake_training.retrain] == [0, 1, 2, 3, 0, 1]  # retrained, not shared


def test_a_point_made_before_a_field_existed_is_reused_at_that_fields_default_only(tmp_path, fake_training):
    import bench_fronts
    import fronts_report

    config, entry = bench_fronts.search_config("lenet-16x16", "systolic", 0.1, 0)
    out = bench_fronts.point_dir(tmp_path, "lenet-16x16", entry, 0.1, 0)
    retrain = {"epochs": 10, "max_samples": None}
    info = {"pair": "lenet-16x16", "entry": entry, "model": "systolic", "lambda": 0.1, "seed": 0}
    bench_fronts.run_point(out, config, retrain, info)
    for name in ("point.json", "config.json"):  # as written before SearchConfig had energy_weight and precision
        stored = json.loads((out / name).read_text())
        held = stored["settings"]["search_config"] if name == "point.json" else stored
        del held["energy_weight"], held["precision"]
        (out / name).write_text(json.dumps(stored))

    point, ran = bench_fronts.run_point(out, config, retrain, info)
    assert not ran and len(fake_training.search) == 1 and fronts_report._is_current(point)

    energy = config.replace(energy_weight=0.5)  # the new field at another value than its default: runs again
    _, ran = bench_fronts.run_point(out, energy, retrain, info)
    assert ran and len(fake_training.search) == 2 and fake_training.search[-1].energy_weight == 0.5


def test_a_config_made_before_widen_existed_equals_todays_resolved_default():
    """``widen``'s default (None) is stored resolved ("bits"; "all" for a bits search): filled as None, every run
    made before the field existed was stale and searched again."""
    import dataclasses

    import _reuse

    from uboost.search import SearchConfig

    for config in (SearchConfig(space="lenet"), SearchConfig(space="lenet", bits=(2, 4, 8))):
        today = json.loads(json.dumps(dataclasses.asdict(config)))
        old = {k: v for k, v in today.items() if k != "widen"}
        assert _reuse.as_today(old) == today
        assert _reuse.as_today({**old, "widen": "all"})["widen"] == "all"  # a stored value is kept


def test_a_bits_run_made_before_utilization_on_bits_existed_is_stale_only_where_the_default_changed_it():
    """Until the field, the utilization term moved the bits on every PE: a precision-aware bits search made then
    searched otherwise than today's default (stale); a fixed-PE one, or one width, did not (reused)."""
    import dataclasses

    import _reuse

    from uboost.search import SearchConfig

    for config, same in ((SearchConfig(space="lenet", bits=(2, 4, 8), pe="bitfusion"), False),
                         (SearchConfig(space="lenet", bits=(2, 4, 8)), True),
                         (SearchConfig(space="lenet", bits=(4,), pe="bitfusion"), True),
                         (SearchConfig(space="lenet", bits=(2, 4, 8), pe="bitfusion", utilization_on_bits=True), True)):
        today = json.loads(json.dumps(dataclasses.asdict(config)))
        old = {k: v for k, v in today.items() if k != "utilization_on_bits"}
        assert (_reuse._resolved(_reuse.as_today(old)) == _reuse._resolved(today)) is same, config
        # a run stored with auto's resolved value, or with auto, is the same search as either
        resolved = {**today, "utilization_on_bits": config.resolved_utilization_on_bits()}
        assert _reuse._resolved(_reuse.as_today(resolved)) == _reuse._resolved(today)


def test_a_point_made_before_utilization_scale_existed_counts_as_fixed(tmp_path, fake_training):
    import _reuse
    import bench_fronts
    import fronts_report

    config, entry = bench_fronts.search_config("lenet-16x16", "systolic", 0.1, 0)
    assert config.utilization_scale == "fixed"
    out = bench_fronts.point_dir(tmp_path, "lenet-16x16", entry, 0.1, 0)
    retrain = {"epochs": 10, "max_samples": None}
    info = {"pair": "lenet-16x16", "entry": entry, "model": "systolic", "lambda": 0.1, "seed": 0}
    bench_fronts.run_point(out, config, retrain, info)
    for name in ("point.json", "config.json"):  # as written before SearchConfig had utilization_scale
        stored = json.loads((out / name).read_text())
        held = stored["settings"]["search_config"] if name == "point.json" else stored
        del held["utilization_scale"]
        (out / name).write_text(json.dumps(stored))
    assert _reuse.as_today(json.loads((out / "config.json").read_text()))["utilization_scale"] == "fixed"

    point, ran = bench_fronts.run_point(out, config, retrain, info)
    assert not ran and len(fake_training.search) == 1 and fronts_report._is_current(point)

    scaled, entry = bench_fronts.search_config("lenet-16x16", "systolic-ulambda", 0.1, 0)  # the study entry: its own search
    assert entry == "systolic-ulambda" and scaled.utilization_scale == "lambda" and scaled.replace(utilization_scale="fixed") == config
    _, ran = bench_fronts.run_point(out, scaled, retrain, info)
    assert ran and len(fake_training.search) == 2 and fake_training.search[-1].utilization_scale == "lambda"


def test_lambda_zero_without_a_utilization_term_is_one_shared_task_only_search():
    import bench_fronts

    flops, entry_f = bench_fronts.search_config("lenet-16x16", "flops", 0.0, 1)
    roof, entry_r = bench_fronts.search_config("lenet-16x16", "roofline", 0.0, 1)
    assert entry_f == entry_r == bench_fronts.TASK_ONLY and flops == roof
    assert (flops.latency_weight, flops.utilization_weight) == (0.0, 0.0)
    exact, entry = bench_fronts.search_config("lenet-16x16", "systolic", 0.0, 1)  # keeps its utilization term
    assert entry == "systolic" and exact.utilization_weight == 1.0
    # an entry that changes the estimator searches its own lambda = 0: the shared point runs today's estimator
    scored, entry = bench_fronts.search_config("lenet-16x16", "flops-score", 0.0, 1)
    assert entry == "flops-score" and scored.score_weight == 1.0 and scored.replace(score_weight=0.0) == flops.replace(
        cost_model="flops")


# -- the matched-accuracy speed-up ------------------------------------------------------------
def _pt(acc_pct, latency_us):
    return {"test_acc": acc_pct / 100, "error_pct": 100 - acc_pct, "latency_us": latency_us}


def test_matched_speedup_takes_the_fastest_flops_network_within_the_accuracy_window():
    import fronts_report

    ours = [_pt(98.0, 10.0), _pt(95.0, 2.0), _pt(94.0, 5.0)]  # the last is dominated: not counted
    flops = [_pt(97.8, 40.0), _pt(99.0, 60.0), _pt(95.5, 8.0), _pt(90.0, 1.0)]
    ratios, unmatched = fronts_report.matched_speedups(ours, flops)
    # 98.0 %: flops networks >= 97.7 % are 40 and 60 µs -> 40/10; 95.0 %: >= 94.7 % -> 8 µs -> 8/2
    assert sorted(ratios) == pytest.approx([4.0, 4.0]) and unmatched == 0
    ratios, unmatched = fronts_report.matched_speedups([_pt(99.5, 10.0)], flops)
    assert ratios == [] and unmatched == 1


def test_in_range_leaves_out_points_below_every_flops_networks_accuracy():
    """A 60 % network 'matched' with FLOPs' fastest 96.7 % one is a speed-up bought with accuracy: the in-range
    reading leaves it out and keeps the points within 0.3 points of FLOPs' least accurate network or above."""
    import fronts_report

    flops = [_pt(96.7, 6.0), _pt(99.2, 40.0)]
    ours = [_pt(60.0, 2.0), _pt(96.5, 4.0), _pt(99.0, 10.0)]
    ratios, _ = fronts_report.matched_speedups(ours, flops)
    assert sorted(ratios) == pytest.approx([1.5, 3.0, 4.0])  # 6/2 for the 60 % network too
    strict, unmatched = fronts_report.matched_speedups(ours, flops, in_range=True)
    assert sorted(strict) == pytest.approx([1.5, 4.0]) and unmatched == 0  # 96.5 >= 96.7 - 0.3: kept (6/4)
    summary = fronts_report.summarize(
        [{**p, "pair": "lenet-16x16", "entry": e, "seed": 0, "lambda": lam}
         for e, pts in (("flops", flops), ("systolic", ours)) for p, lam in zip(pts * 11, [0, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1, 3])])
    row = next(e for e in summary["entries"] if e["entry"] == "systolic")
    assert row["speedup_vs_flops_in_range_points"] == 2
    assert row["speedup_vs_flops_in_range_geomean"] == pytest.approx(6.0 ** 0.5)
    assert row["speedup_vs_flops_geomean"] == pytest.approx(18.0 ** (1 / 3))


def test_a_network_found_at_several_lambdas_is_one_front_point_in_the_speedup():
    """Exact pricing's lenet sweep returns one network at six lambdas: it entered the geometric mean six times
    (lenet 0.96x reported where its distinct front points give 1.35x)."""
    import fronts_report

    flops = [_pt(97.8, 40.0), _pt(95.5, 8.0)]
    ratios, unmatched = fronts_report.matched_speedups([_pt(98.0, 10.0)] * 6 + [_pt(95.0, 2.0)], flops)
    assert sorted(ratios) == pytest.approx([4.0, 4.0]) and unmatched == 0
    ratios, unmatched = fronts_report.matched_speedups([_pt(99.5, 10.0)] * 3, flops)
    assert ratios == [] and unmatched == 1


def test_a_frontier_still_being_retrained_is_a_partial_seed_not_a_complete_one():
    """Two of five frontier points done: listed apart, not averaged in as a complete seed."""
    import fronts_report

    def point(i, acc, lat):
        return {**_pt(acc, lat), "pair": "darts-cifar-16x16", "entry": "frontier", "seed": 2, "lambda": 1.0, "point": i,
                "settings": {"frontier_points": 5}}

    done = [point(0, 60.0, 5.0), point(1, 85.0, 6.0)]
    row = next(e for e in fronts_report.summarize(done)["entries"] if e["entry"] == "frontier")
    assert row["seeds"] == {} and set(row["partial"]) == {2} and row["hypervolume_mean"] is None
    done += [point(2, 98.0, 8.0), point(3, 98.5, 10.0), point(4, 99.0, 12.0)]
    row = next(e for e in fronts_report.summarize(done)["entries"] if e["entry"] == "frontier")
    assert set(row["seeds"]) == {2} and row["partial"] == {} and row["hypervolume_mean"] > 0


def test_a_summary_is_recomputed_from_its_committed_points(tmp_path):
    import shutil

    import fronts_report

    src = Path(__file__).resolve().parents[1] / "benchmarks" / "fronts" / "lenet-k5-s10"
    for name in ("summary.json", "summary.md", "points.csv"):
        shutil.copy(src / name, tmp_path / name)
    before = (tmp_path / "summary.md").read_text()
    summary = fronts_report.refresh_summary(tmp_path)
    after = (tmp_path / "summary.md").read_text()
    exact = next(e for e in summary["entries"] if e["entry"] == "systolic")
    assert exact["hypervolume_mean"] == pytest.approx(0.831, abs=5e-4)  # the committed hypervolume, from the csv
    assert after.split("| pair | entry |")[0] == before.split("| pair | entry |")[0]
    assert after[after.index("\n\n", after.index("| pair |")):] == before[before.index("\n\n", before.index("| pair |")):]  # the rest is kept



def test_a_summary_is_judged_on_the_lambda_grid_it_was_run_on(tmp_path):
    """darts-today was run on the 7-value grid: refreshed after the grid grew to 9 values its seeds stay complete
    (they refreshed as partial, with no means); a seed missing one of its own lambdas is still partial; a new
    summary records its grid."""
    import csv
    import json
    import shutil

    import bench_fronts
    import fronts_report

    src = Path(__file__).resolve().parents[1] / "benchmarks" / "fronts" / "darts-today"
    for name in ("summary.json", "summary.md", "points.csv"):
        shutil.copy(src / name, tmp_path / name)
    committed = json.loads((src / "summary.json").read_text())
    assert "lambda_grids" not in committed and len(bench_fronts.LAMBDAS["darts-cifar"]) == 9
    summary = fronts_report.refresh_summary(tmp_path)
    exact = next(e for e in summary["entries"] if e["entry"] == "systolic")
    assert exact["hypervolume_mean"] == pytest.approx(0.880, abs=5e-4) and set(exact["seeds"]) == {0, 1, 2}
    assert summary["lambda_grids"]["darts-cifar-16x16"] == [0, 0.001, 0.003, 0.01, 0.03, 0.1, 1]
    assert json.loads((tmp_path / "summary.json").read_text())["lambda_grids"] == summary["lambda_grids"]

    with open(tmp_path / "points.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    kept = [r for r in rows if not (r["entry"] == "systolic" and r["seed"] == "1" and float(r["lambda"]) == 0.1)]
    assert len(kept) == len(rows) - 1
    with open(tmp_path / "points.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(kept)
    exact = next(e for e in fronts_report.refresh_summary(tmp_path)["entries"] if e["entry"] == "systolic")
    assert set(exact["seeds"]) == {0, 2} and set(exact["partial"]) == {1}  # its recorded grid still has 0.1

# -- the hardware term's own optimum (fronts_hw_optimum.py) -----------------------------------
def test_hardware_optimum_path_by_hand():
    import fronts_hw_optimum as hw

    # (latency, utilization) of three networks, latency_ref 2: the term is lambda * L / 2 + beta * (1 - U).
    rows = [{"arch": {"w": 1}, "m": (1.0, 0.1)}, {"arch": {"w": 2}, "m": (2.0, 0.5)}, {"arch": {"w": 4}, "m": (4.0, 0.6)}]
    # beta 1: w4 (2 lambda + 0.4) beats w2 (lambda + 0.5) below lambda 0.1; w2 beats w1 (lambda / 2 + 0.9) below 0.8.
    steps = hw.path(rows, "m", 1.0, 2.0)
    assert [s[1]["arch"]["w"] for s in steps] == [4, 2, 1]
    assert steps[1][0] == pytest.approx(0.1, rel=0.03) and steps[2][0] == pytest.approx(0.8, rel=0.03)
    assert hw.is_optimum(rows, {"w": 2}, "m", 1.0, 0.5, 2.0) and not hw.is_optimum(rows, {"w": 4}, "m", 1.0, 0.5, 2.0)
    assert hw.is_optimum(rows, {"w": 4}, "m", 1.0, 0.1, 2.0)  # the tie at the break point counts for both
    # beta 0: the cheapest network at every lambda > 0
    assert [s[1]["arch"]["w"] for s in hw.path(rows, "m", 0.0, 2.0)] == [1]


def test_scaled_utilization_term_has_one_optimum_for_every_positive_lambda():
    import fronts_hw_optimum as hw

    # lambda * (L / 2 + beta * (1 - U)), beta 1: w1 0.5 + 0.9 = 1.4, w2 1.0 + 0.1 = 1.1, w4 2.0 + 0.4 = 2.4 (times lambda)
    rows = [{"arch": {"w": 1}, "m": (1.0, 0.1)}, {"arch": {"w": 2}, "m": (2.0, 0.9)}, {"arch": {"w": 4}, "m": (4.0, 0.6)}]
    assert hw.hardware_term(rows[1], "m", 1.0, 3.0, 2.0, "lambda") == pytest.approx(3.3)
    assert [s[1]["arch"]["w"] for s in hw.path(rows, "m", 1.0, 2.0, "lambda")] == [2]  # not the cheapest network
    assert hw.hardware_term(rows[2], "m", 1.0, 0.0, 2.0, "lambda") == 0.0  # lambda = 0: every network ties
    # fixed (today's): w2 at small lambda (0.1 beats 0.9 and 0.4), w1 once lambda / 2 + 0.9 < lambda + 0.1, lambda > 1.6
    assert [s[1]["arch"]["w"] for s in hw.path(rows, "m", 1.0, 2.0)] == [2, 1]


def test_points_record_the_torch_they_were_made_with_and_summaries_say_which_they_mix():
    import _reuse
    import torch

    env = _reuse.environment()
    assert env["torch"] == torch.__version__
    assert set(env) == {"python", "torch", "lightning", "nni"}
    points = [{"environment": {"torch": "2.14.1"}}, {"environment": {"torch": "2.14.1"}},
              {"environment": {"torch": "2.11.0"}}, {}]  # the last made before versions were stored
    assert _reuse.environments_line(points) == (
        "not recorded (before 2026-12-05): 1 point; torch 2.11.0: 1 point; torch 2.14.1: 2 points")


def test_the_shared_task_only_point_joins_the_fronts_of_today_s_estimator_only():
    import fronts_report

    def point(entry, lam):
        return {"pair": "lenet-16x16", "entry": entry, "seed": 0, "lambda": lam, "error_pct": 2.0, "latency_us": 5.0}

    points = [point("task-only", None), point("flops", 0.1), point("flops-score", 0.0), point("flops-score", 0.1),
              point("systolic", 0.0)]
    grouped = fronts_report.fronts(points)
    entries = {key[1]: [p["entry"] for p in group] for key, group in grouped.items()}
    assert entries == {"flops": ["flops", "task-only"], "flops-score": ["flops-score", "flops-score"],
                       "systolic": ["systolic"]}
