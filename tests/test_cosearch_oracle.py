"""benchmarks/cosearch_oracle.py: every network of a small space on its best accelerator. The choice rule by
hand and the enumeration of lenet."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import cosearch_oracle  # noqa: E402


def test_seed_ranges():
    assert cosearch_oracle.seeds_of("0-3") == [0, 1, 2, 3]
    assert cosearch_oracle.seeds_of("10-12,15") == [10, 11, 12, 15]


def test_the_pick_is_the_least_edp_within_the_tolerance_on_the_choice_seeds_only():
    reference = [0.90, 0.94, 0.50, 0.50]  # seeds 2-3 judge: they must not move the choice
    rows = [{"name": "cheap", "edp_uj_ms": 1.0, "accuracy_seeds": {0: 0.86, 1: 0.90, 2: 1.0, 3: 1.0}},  # 0.88 < 0.915
            {"name": "mid", "edp_uj_ms": 2.0, "accuracy_seeds": {0: 0.90, 1: 0.93, 2: 0.0, 3: 0.0}},    # 0.915: on the line
            {"name": "dear", "edp_uj_ms": 3.0, "accuracy_seeds": {0: 0.95, 1: 0.95, 2: 0.0, 3: 0.0}}]
    assert cosearch_oracle.choose(reference, rows, [0, 1], 0.005)["name"] == "mid"
    assert cosearch_oracle.choose(reference, rows, [2, 3], 0.005)["name"] == "cheap"
    assert cosearch_oracle.choose(reference, rows[2:], [2, 3], 0.005) is None


def test_a_mean_exactly_on_the_line_but_stored_as_float32_is_within():
    """retrain.json stores float32 accuracies: 0.895 comes back as 0.89499998..., which is 0.5 points below 0.9."""
    import numpy as np

    rows = [{"name": "on-line", "edp_uj_ms": 1.0, "accuracy_seeds": {0: float(np.float32(0.895))}}]
    assert cosearch_oracle.choose([0.9], rows, [0], 0.005)["name"] == "on-line"


def test_lenet_enumerates_its_300_networks():
    from uboost.search import SearchConfig

    archs = cosearch_oracle.networks(SearchConfig(space="lenet", dataset="digits"))
    assert len(archs) == 300 == len({tuple(sorted(a.items())) for a in archs})
    assert set(archs[0]) == {"conv1_width", "conv1_kernel", "conv2_width", "conv2_kernel", "fc1_width"}


def test_the_reference_comes_from_the_baseline_study_the_cell_used():
    root = Path("runs")
    assert cosearch_oracle.baseline_dir(root, "lenet", 16, {}) == root / "lenet-16kB" / "baseline"
    assert cosearch_oracle.baseline_dir(root, "lenet", 16, {"baseline_local_search": None}) == root / "lenet-16kB" / "baseline"
    assert cosearch_oracle.baseline_dir(root, "lenet", 4, {"baseline_local_search": 20}) == root / "lenet-4kB" / "baseline-ls20"
