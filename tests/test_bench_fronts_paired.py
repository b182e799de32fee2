"""benchmarks/fronts_paired.py (paired comparison over search seeds) and bench_fronts.py --report-seeds."""

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from tests.test_bench_fronts import fake_training  # noqa: E402,F401  (the stubbed search and retrain)


def _summary(rows, pair="lenet-16x16"):
    return {"entries": [{"pair": pair, "entry": e, "seeds": {str(s): {"hypervolume": v} for s, v in hvs.items()}}
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


def test_pooled_cases_span_pairs_and_summaries_and_match_the_hand_counts(tmp_path):
    import fronts_pooled

    # pair A: exact ahead of flops on seeds 0, 1 (+0.1, +0.2); roofline comes from a second summary of A
    a1 = _summary(pair="A", rows={"systolic": {0: 0.9, 1: 0.8}, "flops": {0: 0.8, 1: 0.6}})
    a2 = _summary(pair="A", rows={"flops": {0: 0.8}, "roofline": {0: 0.95}})  # flops seed 0 repeated, equal: fine
    # pair B: exact behind flops on seed 0 (-0.05), tied on seed 1; no roofline
    b = _summary(pair="B", rows={"systolic": {0: 0.70, 1: 0.5}, "flops": {0: 0.75, 1: 0.5}})
    tables = {"A": fronts_pooled.merged([a1, a2], "A"), "B": fronts_pooled.merged([b], "B")}
    found = fronts_pooled.cases(tables, "systolic", "flops")
    assert [(p, s) for p, s, _ in found] == [("A", 0), ("A", 1), ("B", 0), ("B", 1)]
    r = fronts_pooled.pooled([d for _, _, d in found])
    assert (r["n"], r["ahead"], r["behind"], r["ties"]) == (4, 2, 1, 1)
    assert r["mean"] == pytest.approx((0.1 + 0.2 - 0.05 + 0.0) / 4) and r["median"] == pytest.approx(0.05)
    assert r["sign_p"] == pytest.approx(1.0)  # 2 of 3 untied cases: binomial two-sided p = 1
    assert fronts_pooled.cases(tables, "systolic", "roofline") == [("A", 0, pytest.approx(-0.05))]
    three = fronts_pooled.pooled([0.1, 0.2, 0.3])
    assert three["sign_p"] == pytest.approx(0.25) and three["wilcoxon_p"] == pytest.approx(0.25)  # 2 * (1/2)^3
    text = fronts_pooled.markdown(tables, "systolic", ["flops", "roofline"])
    assert "| flops | 4 | 2 | 1 | +0.062 | +0.050 | 1.0000 |" in text and "| roofline | 1 | 0 | 1 |" in text
    assert "+0.150 (2) | -0.025 (2) |" in text  # the mean difference per pair
    with pytest.raises(SystemExit, match="two summaries disagree"):
        fronts_pooled.merged([a1, _summary(pair="A", rows={"flops": {1: 0.61}})], "A")
    (tmp_path / "a.json").write_text(json.dumps(a1))
    with pytest.raises(SystemExit, match="expected PAIR=SUMMARY"):
        fronts_pooled.main(["--pair", "A", "--entries", "flops"])
    with pytest.raises(SystemExit, match="no summary at"):
        fronts_pooled.main(["--pair", f"A={tmp_path / 'missing.json'}", "--entries", "flops"])
    assert fronts_pooled.main(["--pair", f"A={tmp_path / 'a.json'}", "--entries", "flops", "--out", str(tmp_path / "o.md")]) == 0
    assert "| flops | 2 | 2 | 0 | +0.150 |" in (tmp_path / "o.md").read_text()


def test_pooled_takes_only_the_named_entries_of_a_summary(tmp_path):
    import fronts_pooled

    old = _summary(pair="A", rows={"systolic": {0: 0.9}, "flops": {0: 0.7}})
    new = _summary(pair="A", rows={"systolic": {0: 0.8}, "flops": {0: 0.6}})  # the same entries, measured elsewhere
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    with pytest.raises(SystemExit, match="two summaries disagree"):
        fronts_pooled.merged([old, new], "A")
    pair, files, only = fronts_pooled.parse_pair(f"A={tmp_path / 'old.json'}@systolic,{tmp_path / 'new.json'}@flops")
    assert pair == "A" and only == [{"systolic"}, {"flops"}]
    table = fronts_pooled.merged([json.loads(f.read_text()) for f in files], pair, only)
    assert table == {"systolic": {0: 0.9}, "flops": {0: 0.6}}  # exact from the first, FLOPs from the second
    with pytest.raises(SystemExit, match="no entry named"):
        fronts_pooled.parse_pair(f"A={tmp_path / 'old.json'}@")
