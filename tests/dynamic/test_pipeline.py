"""uboost exits end to end on a tiny retrained run: thresholds never see the test set; the CLI."""

import json

import numpy as np
import pytest
from torch.utils.data import Dataset

from uboost.dynamic import pipeline
from tests.cli.conftest import one_line_error
from tests.dynamic.conftest import assert_priced, hand_priced
from uboost.dynamic.pricing import ExitCosts
from uboost.dynamic.pipeline import ExitsConfig, load_data, prepare, run_exits

# 0.1: the tiny heads' confidence is about 0.15 (10 classes, barely trained), so policies that exit early exist
TINY = dict(epochs=2, max_samples=128, grid=(0.1, 0.9), operating_points="rk3576-npu")


def recorded_costs(summary: dict) -> ExitCosts:
    return ExitCosts(**{k: (tuple(v) if k == "positions" else np.array(v)) for k, v in summary["costs"].items()})


class Recording(Dataset):
    def __init__(self, inner):
        self.inner, self.seen = inner, set()

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, i):
        self.seen.add(i)
        return self.inner[i]


def test_thresholds_never_see_the_test_data(retrained_run, tmp_path, monkeypatch):
    config = ExitsConfig(**TINY)
    prepared = prepare(retrained_run, config, out=tmp_path / "exits")
    fit, validation, test = load_data(prepared)
    assert not set(fit.indices) & set(validation.indices)  # the validation split is carved from the training data
    recorder = Recording(test)
    monkeypatch.setattr(pipeline, "load_data", lambda _prepared: (fit, validation, recorder))
    calibrate = pipeline.calibrate
    checked, calibrated = {}, []

    def calibrate_and_check(*args, **kwargs):
        result = calibrate(*args, **kwargs)
        checked["seen during calibration"] = len(recorder.seen)
        calibrated.append(result)
        return result

    monkeypatch.setattr(pipeline, "calibrate", calibrate_and_check)
    summary = run_exits(retrained_run, config, prepared=prepared)
    assert checked == {"seen during calibration": 0}  # heads, thresholds and the search never read a test sample
    assert recorder.seen == set(range(len(test)))  # the test set is read afterwards, to score the chosen points
    assert summary["pareto"] and all("test_accuracy" in p for p in summary["pareto"])
    costs = calibrated[0].costs
    assert_priced(calibrated[0].candidates, costs)  # every candidate at its own shares, kept exits and point
    assert_priced(summary["pareto"], recorded_costs(summary))  # as exits.json records them
    saving = [r for r in calibrated[0].candidates if any(t is not None and s > 0 for t, s in zip(r["thresholds"], r["shares"]))]
    assert saving and all(r["expected_energy_uj"] < r["worst_energy_uj"] for r in saving)  # an exit taken saves energy
    for p in summary["pareto"]:  # the test metrics: the same formula at the shares measured on the test set
        expected, _ = hand_priced(costs, p["test_shares"], [t is not None for t in p["thresholds"]], p["point"])
        assert (p["test_expected_latency_ms"], p["test_expected_energy_uj"]) == pytest.approx(expected, rel=1e-12)
    files = sorted(p.name for p in (tmp_path / "exits" / "points").iterdir())
    assert files == [f"p{i:02d}.json" for i in range(len(summary["pareto"]))]
    # a written point reloads as a dynamic network that reproduces its measured test accuracy and shares
    from uboost.dynamic.pipeline import measure
    from uboost.dynamic.pipeline_io import load_dynamic

    point = summary["pareto"][-1]
    network = load_dynamic(tmp_path / "exits", tmp_path / "exits" / "points" / files[-1])
    accuracy, shares = measure(network, test, network.thresholds, 64)
    assert accuracy == pytest.approx(point["test_accuracy"]) and shares == pytest.approx(point["test_shares"])


def test_exits_and_switch_commands(retrained_run, tmp_path, cli):
    out = tmp_path / "ex"
    result = cli("exits", retrained_run, "--epochs", "2", "--max-samples", "128", "--thresholds", "0.6,0.9", "--out", out)
    assert result.code == 0, result.err + result.out
    assert "Pareto points" in result.out and (out / "exits.json").is_file()
    written = json.loads((out / "exits.json").read_text())
    front = written["pareto"]
    assert_priced(front, recorded_costs(written))  # the points the CLI wrote, priced as their own costs say
    # the table shows the expectations `switch` budgets on (validation) beside the test ones, each labelled
    from uboost.cli.exits import _val_test

    assert _val_test(front[0], "expected_latency_ms", 1e3) == (
        f"{1e3 * front[0]['expected_latency_ms']:.4g} / {1e3 * front[0]['test_expected_latency_ms']:.4g}")
    assert "val / test" in result.out.replace("\n", " ") or "val /" in result.out
    cheapest = min(p["expected_latency_ms"] for p in front)
    result = cli("switch", out, "--latency-ms", cheapest * 1.0000001)
    assert result.code == 0, result.err
    assert result.out.startswith("p") and "accuracy" in result.out
    assert "%" in result.out.split("accuracy")[1].split(",")[0]  # as a percentage, as every other command prints it
    listing = cli("exits", retrained_run, "--list")
    assert listing.code == 0 and "pool" in listing.out


def test_bad_input_is_one_line_and_writes_nothing(retrained_run, tmp_path, cli):
    out = tmp_path / "never"
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "arch.json"):
        (bare / name).write_text((retrained_run / name).read_text())
    one_line_error(cli("exits", bare, "--out", out), "no retrained model", "uboost retrain")
    one_line_error(cli("exits", retrained_run, "--positions", "nope", "--out", out), "'nope' does not exist")
    one_line_error(cli("exits", retrained_run, "--positions", "7", "--out", out), "index 7 does not exist")
    one_line_error(cli("exits", retrained_run, "--thresholds", "0.5,1.5", "--out", out), "[0, 1]")
    one_line_error(cli("exits", retrained_run, "--operating-points", "nope", "--out", out), "nope")
    one_line_error(cli("exits", retrained_run, "--max-worst-latency-ms", "1e-9", "--out", out), "without exits already needs")
    one_line_error(cli("exits", retrained_run, "--max-worst-latency-ms", "-1", "--out", out), "positive")
    assert not out.exists() and not (retrained_run / "exits").exists()
    empty = tmp_path / "frontier"
    empty.mkdir()
    one_line_error(cli("switch", empty, "--latency-ms", "1"), "no frontier points")
    one_line_error(cli("switch", empty, "--latency-ms", "-1"), "non-negative")


def test_a_folder_without_a_retrained_model_says_what_to_give_instead(cli, retrained_run, tmp_path):
    one_line_error(cli("exits", retrained_run / "retrain", "--out", tmp_path / "a"), f"uboost exits {retrained_run}")
    exits_dir = tmp_path / "ex"
    exits_dir.mkdir()
    (exits_dir / "exits.json").write_text("{}")
    one_line_error(cli("exits", exits_dir, "--out", tmp_path / "b"), "this is an exits folder")
    unfinished = tmp_path / "half"
    unfinished.mkdir()
    (unfinished / "config.json").write_text((retrained_run / "config.json").read_text())
    result = cli("exits", unfinished, "--out", tmp_path / "c")
    one_line_error(result)
    assert "uboost retrain" not in result.err  # a search with no arch.json cannot be retrained
    one_line_error(cli("exits", retrained_run, "--head-width", "-1", "--out", tmp_path / "d"), "whole number >= 0")


def test_max_samples_above_the_retrains_are_the_retrains_stored_and_compared(cli, retrained_run, tmp_path):
    """QA: `--max-samples 100000` trained on the retrain's 128 images but stored 100000, and the same command at the
    default was then refused as other settings (128 -> 100000), though the heads are the same."""
    out = tmp_path / "ex"
    base = ["exits", retrained_run, "--epochs", "1", "--thresholds", "0.5", "--out", out]
    assert cli(*base, "--max-samples", "100000").code == 0
    assert json.loads((out / "exits.json").read_text())["settings"]["max_samples"] == 128  # as trained
    again = cli(*base, "--trials", "3")  # the default: the retrain's images, the same heads searched again
    assert again.code == 0, again.err
    one_line_error(cli(*base, "--max-samples", "64"), "other settings (max samples: 128 -> 64)")


def test_exits_with_other_settings_replace_earlier_ones_only_with_force(cli, retrained_run, tmp_path):
    out = tmp_path / "ex"
    base = ["exits", retrained_run, "--epochs", "1", "--max-samples", "64", "--thresholds", "0.5", "--out", out]
    assert cli(*base).code == 0
    assert cli(*base, "--trials", "3").code == 0  # search-only settings: the same heads searched again
    # the same exits typed another way (the default's names, in another order) are the same setting (QA: refused)
    names = [p["name"] for p in json.loads((out / "exits.json").read_text())["positions"]]
    assert cli(*base, "--trials", "3", "--positions", ",".join(reversed(names))).code == 0
    heads = (out / "heads.pt").read_bytes()
    one_line_error(cli(*base, "--seed", "1"), "other settings (seed: 0 -> 1)", "--force")
    assert (out / "heads.pt").read_bytes() == heads
    assert cli(*base, "--seed", "1", "--force").code == 0
    assert json.loads((out / "exits.json").read_text())["settings"]["seed"] == 1
    # an optuna study of other thresholds: --force replaces it too (it was refused after the heads had trained)
    optuna_args = [*base, "--seed", "1", "--method", "optuna", "--trials", "3"]
    assert cli(*optuna_args).code == 0 and (out / "study.journal").is_file()
    other = [*[x if x != "0.5" else "0.6" for x in optuna_args]]
    assert cli(*other, "--force").code == 0, "replaced"
    assert json.loads((out / "exits.json").read_text())["settings"]["grid"] == [0.6]


def test_exits_price_on_the_runs_own_energy_and_dvfs_tables_by_default(tmp_path):
    """exits priced every run on horowitz45 and rk3576-npu, whatever tables the run was searched on."""
    from tests.cli.conftest import tiny_search
    from uboost.retrain import RetrainConfig, retrain

    run = tiny_search(tmp_path / "run", accelerator="cpu", energy="gemmini16", operating_points="rk356x-gpu")
    retrain(run, RetrainConfig(epochs=1, max_samples=64, accelerator="cpu", augment=False))
    prepared = prepare(run, ExitsConfig(max_samples=64), out=tmp_path / "exits")
    assert prepared.spec.energy.name == "gemmini16" and prepared.points.name == "rk356x-gpu"
    assert prepared.spec.clock_hz == 8e8 and prepared.spec.voltage == pytest.approx(1.0)
    given = prepare(run, ExitsConfig(max_samples=64, energy="eyeriss65", operating_points="rk3576-npu"), out=tmp_path / "e2")
    assert given.spec.energy.name == "eyeriss65" and given.points.name == "rk3576-npu"  # the options still replace them


def test_exits_default_to_rk3576_npu_for_a_run_without_a_dvfs_table(retrained_run, tmp_path):
    prepared = prepare(retrained_run, ExitsConfig(max_samples=64), out=tmp_path / "exits")
    assert prepared.points.name == "rk3576-npu" and prepared.spec.energy.name == "horowitz45"


def test_a_refused_force_call_leaves_the_earlier_exits_and_their_study_as_they_were(cli, retrained_run, tmp_path):
    """--force deleted OUT/study.journal before the bound was checked: one-line error, rc 1, and the study gone."""
    from tests.reliability.conftest import tree

    out = tmp_path / "ex"
    base = ["exits", retrained_run, "--epochs", "1", "--max-samples", "64", "--thresholds", "0.5", "--method", "optuna",
            "--trials", "3", "--out", out]
    assert cli(*base).code == 0 and (out / "study.journal").is_file()
    before = tree(out)
    one_line_error(cli(*base, "--force", "--max-worst-latency-ms", "1e-9"), "without exits already needs")
    assert tree(out) == before
