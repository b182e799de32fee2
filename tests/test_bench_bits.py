"""benchmarks/bench_bits.py: K retrains per network, their mean and spread, and the front decided on
the mean (fast: search and retrain stubbed)."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_bits  # noqa: E402


def _row(variant, acc, latency_us, seed=1, retrain_seeds=(0, 1, 2), hardware="bitfusion"):
    return {"space": "lenet", "hardware": hardware, "variant": variant, "seed": seed, "test_acc": acc,
            "latency_us": latency_us, "retrain_seeds": list(retrain_seeds)}


def test_the_failing_single_retrain_case_is_dominated_and_an_equal_point_is_not():
    # RESULTS, BitFusion lenet seed 1: mixed 88.9 % at 0.309 µs, uniform 4-bit 93.3 % at 0.309 µs.
    rows = [_row("uniform-8", 0.908, 0.480), _row("uniform-4", 0.933, 0.309), _row("mixed-2-4-8", 0.889, 0.309)]
    (verdict,) = bench_bits.front_verdicts(rows)
    assert verdict["dominated_by"] == ["uniform-4"] and not verdict["on_front"]
    assert verdict["dominates"] == [] and verdict["compared_with"] == ["uniform-4", "uniform-8"]
    # the same latency and accuracy as uniform 4-bit: on the front (not dominated), dominates 8-bit
    rows[-1] = _row("mixed-2-4-8", 0.933, 0.309)
    (verdict,) = bench_bits.front_verdicts(rows)
    assert verdict["on_front"] and verdict["dominated_by"] == [] and verdict["dominates"] == ["uniform-8"]


def test_a_mixed_row_without_uniform_rows_gets_no_verdict():
    (verdict,) = bench_bits.front_verdicts([_row("mixed-2-4-8", 0.9, 0.3)])
    assert verdict["compared_with"] == [] and verdict["on_front"] is None  # was True: "on the front" of nothing


def test_equal_means_up_to_float32_rounding_count_as_equal_accuracy():
    # darts-cifar BitFusion seed 1: 352 + 353 + 356 and 355 + 351 + 355 correct of 360 (1,061 each);
    # the float32 per-retrain accuracies average to 0.98240739... and 0.98240741...
    mixed = sum([0.9777777791023254, 0.980555534362793, 0.9888888597488403]) / 3
    uniform = sum([0.9861111044883728, 0.9750000238418579, 0.9861111044883728]) / 3
    assert mixed != uniform and mixed * 360 == pytest.approx(1061 / 3)
    rows = [_row("uniform-4", uniform, 3.874), _row("mixed-2-4-8", mixed, 3.217)]
    (verdict,) = bench_bits.front_verdicts(rows)
    assert verdict["dominates"] == ["uniform-4"] and verdict["on_front"]


def test_only_rows_with_the_same_retrain_seeds_and_seed_are_compared_and_the_latest_row_counts():
    rows = [
        _row("uniform-4", 0.95, 0.2, retrain_seeds=(1,)),  # a single-retrain row: another comparison
        _row("uniform-4", 0.95, 0.2, seed=0),  # another search seed
        _row("uniform-4", 0.95, 0.2, hardware="fixed-mem"),  # another array
        _row("uniform-4", 0.95, 0.2),  # replaced by the next, later row of the same cell
        _row("uniform-4", 0.80, 0.5),
        _row("mixed-2-4-8", 0.90, 0.3),
    ]
    verdicts = {(v["hardware"], v["seed"], tuple(v["retrain_seeds"])): v for v in bench_bits.front_verdicts(rows)}
    assert list(verdicts) == [("bitfusion", 1, (0, 1, 2))]
    assert verdicts["bitfusion", 1, (0, 1, 2)]["dominates"] == ["uniform-4"]
    old = [{k: v for k, v in r.items() if k != "retrain_seeds"} for r in rows[:1]]  # rows written before the option
    old += [{**_row("mixed-2-4-8", 0.90, 0.3), "retrain_seeds": [1]}]
    (verdict,) = bench_bits.front_verdicts(old)
    assert verdict["retrain_seeds"] == [1] and verdict["dominated_by"] == ["uniform-4"]


def test_spread_is_the_sample_standard_deviation_and_the_range():
    s = bench_bits.spread([0.8, 0.9, 1.0])  # mean 0.9, deviations -0.1, 0, 0.1: (0.01 + 0.01) / 2 = 0.01
    assert s["test_acc_std"] == pytest.approx(0.1) and (s["test_acc_min"], s["test_acc_max"]) == (0.8, 1.0)
    assert bench_bits.spread([0.7])["test_acc_std"] == 0.0


@pytest.mark.parametrize("text", ["", "0,0", "-1", "a"])
def test_retrain_seeds_must_be_distinct_non_negative_integers(text):
    with pytest.raises((SystemExit, ValueError)):
        bench_bits.main(["--retrain-seeds", text, "--no-steps", "--variants", "none", "--root", "/nonexistent-bench-bits"])


@pytest.fixture
def stubs(monkeypatch):
    """run_search and retrain replaced by stubs that write what the real ones leave behind; the
    retrained accuracy is 0.8 + seed / 10, the latency 0.5 µs."""
    import uboost.retrain
    import uboost.search

    calls = {"search": [], "retrain": []}

    class Found:
        def summary(self):
            return {"latency_ms": 0.0005, "val_acc": 0.5}

    def run_search(config, out, force=False):
        calls["search"].append(config)
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(config.to_dict()))
        (out / "arch.json").write_text("{}")
        (out / "precision.json").write_text(json.dumps({"conv1": {"weight_bits": 8, "act_bits": 8},
                                                        "fc": {"weight_bits": 4, "act_bits": 4}}))
        (out / "result.json").write_text(json.dumps({"latency_ms": 0.0005}))
        return Found()

    def retrain(run, config, out=None):
        calls["retrain"].append((config.seed, out))
        out = Path(out) if out is not None else Path(run) / "retrain"
        out.mkdir(exist_ok=True)
        (out / "retrain.json").write_text(json.dumps({"test_acc": 0.8 + config.seed / 10, "config": {
            "epochs": config.epochs, "seed": config.seed, "max_samples": config.max_samples}}))
        (out / "hardware.json").write_text(json.dumps({"total": {"latency_ms": 0.0005, "utilization": 0.25,
                                                                 "energy_uj": 0.3}}))

    monkeypatch.setattr(uboost.search, "run_search", run_search)
    monkeypatch.setattr(uboost.retrain, "retrain", retrain)
    return calls


def test_each_network_is_retrained_once_per_seed_into_its_own_folder_and_reused(tmp_path, stubs):
    row = bench_bits.run("lenet", "bitfusion", "mixed-2-4-8", 1, tmp_path, 6, 10, [0, 1, 2])
    run = tmp_path / "lenet-bitfusion-mixed-2-4-8-s1"
    assert len(stubs["search"]) == 1 and stubs["search"][0].bits == (2, 4, 8) and stubs["search"][0].seed == 1
    assert stubs["retrain"] == [(0, run / "retrain-s0"), (1, run / "retrain-s1"), (2, run / "retrain-s2")]
    assert row["test_acc_runs"] == pytest.approx([0.8, 0.9, 1.0]) and row["test_acc"] == pytest.approx(0.9)
    assert row["test_acc_std"] == pytest.approx(0.1) and row["retrain_seeds"] == [0, 1, 2]
    assert (row["latency_us"], row["utilization"], row["energy_uj"]) == pytest.approx((0.5, 0.25, 0.3))
    assert row["precision"] == {"conv1": 8, "fc": 4} and row["bits"] == [4, 8] and not row["search_reused"]

    again = bench_bits.run("lenet", "bitfusion", "mixed-2-4-8", 1, tmp_path, 6, 10, [0, 1, 2, 3])
    assert len(stubs["search"]) == 1 and again["search_reused"] and again["search_s"] is None  # same settings
    assert stubs["retrain"][3:] == [(3, run / "retrain-s3")]  # only the new seed trains
    assert again["test_acc"] == pytest.approx(0.95)

    bench_bits.run("lenet", "bitfusion", "mixed-2-4-8", 1, tmp_path, 6, 5, [0])  # other retrain epochs: trains again
    assert stubs["retrain"][4:] == [(0, run / "retrain-s0")]
    bench_bits.run("lenet", "bitfusion", "mixed-2-4-8", 1, tmp_path, 7, 5, [0])  # other search epochs: searches again
    assert len(stubs["search"]) == 2 and stubs["retrain"][5:] == [(0, run / "retrain-s0")]


def test_without_retrain_seeds_one_retrain_at_the_search_seed_as_before(tmp_path, stubs):
    row = bench_bits.run("lenet", "fixed-mem", "uniform-4", 2, tmp_path, 6, 10)
    assert stubs["retrain"] == [(2, tmp_path / "lenet-fixed-mem-uniform-4-s2" / "retrain")]
    assert row["test_acc"] == pytest.approx(1.0) and row["test_acc_std"] == 0.0 and row["retrain_seeds"] == [2]
    assert stubs["search"][0].pe == "fixed" and stubs["search"][0].sram_kb == 16


def test_the_cells8_variant_takes_the_8_bit_search_s_cells_and_runs_that_search_first_when_missing(tmp_path):
    source = tmp_path / "darts-cifar-fixed-mem-uniform-8-s2"
    ran = []

    def run_source():
        ran.append(True)
        source.mkdir()
        (source / "arch.json").write_text(json.dumps({"normal/op_2_0": "conv_3x3", "width_0": 16}))

    found = bench_bits.cell_options("darts-cifar", "fixed-mem", "mixed-2-4-8-cells8", 2, tmp_path, run_source)
    assert ran == [True] and found == {"space_options": {"cell_arch": {"normal/op_2_0": "conv_3x3"}}}
    bench_bits.cell_options("darts-cifar", "fixed-mem", "mixed-2-4-8-cells8", 2, tmp_path, run_source)
    assert ran == [True]  # found: not searched again
    assert bench_bits.cell_options("darts-cifar", "fixed-mem", "mixed-2-4-8", 2, tmp_path, run_source) == {}
    with pytest.raises(SystemExit, match="space lenet has none"):
        bench_bits.cell_options("lenet", "fixed-mem", "mixed-2-4-8-cells8", 2, tmp_path, run_source)


def test_subset_verdicts_judge_every_k_of_the_retrains_on_their_own_means():
    def row(variant, runs, latency_us):
        return {**_row(variant, sum(runs) / len(runs), latency_us, retrain_seeds=(0, 1, 2)), "test_acc_runs": runs}

    # mixed is slower than uniform 8 and more accurate on the mean of 3; on retrain 2 alone it is less accurate
    rows = [row("uniform-8", [0.90, 0.90, 0.95], 1.0), row("uniform-4", [0.80, 0.80, 0.80], 0.5),
            row("mixed-2-4-8", [0.93, 0.93, 0.91], 2.0)]
    (all_three,) = bench_bits.subset_verdicts(rows, 3)
    assert all_three == {"retrain_seeds": [0, 1, 2], "on_front": 1, "cells": 1, "off": []}
    singles = bench_bits.subset_verdicts(rows, 1)
    assert [(s["retrain_seeds"], s["on_front"]) for s in singles] == [([0], 1), ([1], 1), ([2], 0)]
    assert singles[2]["off"] == [("lenet", "bitfusion", 1, "mixed-2-4-8")]
    pairs = bench_bits.subset_verdicts(rows, 2)  # {0, 2} and {1, 2}: 0.92 against 0.925 -> off
    assert [(s["retrain_seeds"], s["on_front"]) for s in pairs] == [([0, 1], 1), ([0, 2], 0), ([1, 2], 0)]
    with pytest.raises(ValueError, match="k must be from 1 to 3"):
        bench_bits.subset_verdicts(rows, 4)
    with pytest.raises(ValueError, match="one set of seeds"):
        bench_bits.subset_verdicts(rows + [{**row("uniform-8", [0.9, 0.9, 0.9], 1.0), "retrain_seeds": [3, 4, 5], "seed": 2}], 2)
