"""benchmarks/fronts_paired.py (paired comparison over search seeds) and bench_fronts.py --report-seeds."""

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from tests.test_bench_fronts import fake_training  # noqa: E402,F401  (the stubbed search and retrain)


def _summary(rows):
    return {"entries": [{"pair": "lenet-16x16", "entry": e, "seeds": {str(s): {"hypervolume": v} for s, v in hvs.items()}}
                        for e, hvs in rows.items()]}


def test_paired_t_equals_the_hand_computation_on_the_common_seeds():
    import fronts_paired

    # exact minus paper on seeds 0-2: +0.10, +0.05, -0.05; mean 1/30, sample std sqrt(0.035/6)
    summary = _summary({"systolic": {0: 0.80, 1: 0.90, 2: 0.70, 3: 0.5},
                        "systolic-paper": {0: 0.70, 1: 0.85, 2: 0.75}})  # seed 3: exact only, left out
    table = fronts_paired.hypervolumes(summary, "lenet-16x16")
    r = fronts_paired.paired(table["systolic"], table["systolic-paper"], [0, 1, 2])
    std = math.sqrt(((0.1 - 1 / 30) ** 2 + (0.05 - 1 / 30) ** 2 + (-0.05 - 1 / 30) ** 2) / 2)
    assert r["mean"] == pytest.approx(1 / 30) and r["std"] == pytest.approx(std) and r["ahead"] == 2
    assert r["t"] == pytest.approx((1 / 30) / (std / math.sqrt(3)))  # 0.756
    assert r["t"] == pytest.approx(0.7559, abs=1e-4) and 0.5 < r["p"] < 0.6
    text = fronts_paired.markdown(table, "systolic", "lenet-16x16")
    assert "(0, 1, 2)" in text and "left out: systolic seeds [3]" in text
    assert "| systolic-paper | 0.700 | 0.850 | 0.750 | 0.767 ± 0.076 | +0.100, +0.050, -0.050 | +0.033 ± 0.076 | +0.76 |" in text
    with pytest.raises(SystemExit, match="no complete seed"):
        fronts_paired.hypervolumes(summary, "lenet-16x16", ["systolic", "flops"])


def test_report_seeds_summarizes_only_those_search_seeds(tmp_path, fake_training):
    import _reuse
    import bench_fronts
    import fronts_report

    cache = tmp_path / _reuse.RETRAIN_CACHE
    for seed in (0, 1):
        config, entry = bench_fronts.search_config("lenet-16x16", "systolic", 0.1, seed)
        info = {"pair": "lenet-16x16", "entry": entry, "model": "systolic", "lambda": 0.1, "seed": seed}
        bench_fronts.run_point(bench_fronts.point_dir(tmp_path, "lenet-16x16", entry, 0.1, seed), config,
                               {"epochs": 10, "max_samples": None}, info, cache)
    assert [p["seed"] for p in fronts_report.load_points(tmp_path)[0]] == [0, 1]
    points, left_out = fronts_report.load_points(tmp_path, seeds=[1])
    assert [p["seed"] for p in points] == [1] and left_out == 0  # other seeds are not counted as left out
    fronts_report.write_summary(tmp_path, tmp_path / "s1", plot=False, seeds=[1])
    assert json.loads((tmp_path / "s1" / "summary.json").read_text())["search_seeds"] == [1]
    assert bench_fronts.parse_args(["--report-seeds", "0,1"]).report_seeds == [0, 1]
    assert bench_fronts.parse_args([]).report_seeds is None
