"""--inner-rounds 2: round 2 searches on round 1's chosen accelerator; the trial keeps one consistent pair."""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path

import pytest

from tests.cli.conftest import cli, one_line_error  # noqa: F401 - `cli` is a fixture
from tests.tuning.test_cosearch import LAYERS, TINY
from tests.tuning.test_inner_accelerator import BASE_PTS, NET, _space
from uboost.exceptions import ConfigError
from uboost.search import SearchConfig, build_cost_model
from uboost.tuning import create_study, objective
from uboost.tuning import inner_accelerator as inner
from uboost.tuning import inner_rounds

objective_module = importlib.import_module("uboost.tuning.objective")  # the package re-exports the function
NAMES = "accuracy,latency,energy"
BIG = NET + [dataclasses.replace(NET[-1], name="c3", in_channels=16, out_channels=32, in_h=6, in_w=6, out_h=4, out_w=4)]
START = {"rows": 4, "cols": 4, "dataflow": "ws", "latency_weight": 1.0, "ifmap_sram_kb": 2, "filter_sram_kb": 2,
         "ofmap_sram_kb": 2, "clock_hz": 600e6}


def _fake_child(networks: list[tuple[list, float]], seen: list[dict]):
    """A trial process that 'derives' ``networks[k]`` (layers, test accuracy) in its k-th call, priced on the payload's config."""

    def run_child(trial, payload, **_):
        seen.append(payload)
        layers, accuracy = networks[len(seen) - 1]
        cfg = SearchConfig.from_dict(payload["config"])
        report = build_cost_model(cfg).evaluate(layers)
        Path(payload["run_dir"]).mkdir(parents=True, exist_ok=True)
        summary = {"latency_ms": report.latency_ms, "cycles": report.cycles, "utilization": report.utilization,
                   "macs": report.macs, "val_acc": accuracy, "search_seconds": 0.1, "energy_uj": report.energy_uj}
        return {"ok": True, "summary": summary, "arch": {"net": len(seen)}, "array": report.spec.array,
                "dataflow": report.spec.dataflow, "layers": [s.to_dict() for s in layers], "test_acc": accuracy,
                "retrain_seconds": 0.1}

    return run_child


def _trial(tmp_path, monkeypatch, networks):
    seen: list[dict] = []
    monkeypatch.setattr(objective_module, "_run_child", _fake_child(networks, seen))
    study = create_study(tmp_path, objectives=NAMES)
    study.enqueue_trial(START)
    space = _space()
    study.optimize(lambda t: objective(t, base=BASE_PTS, tune_space=space, out_root=tmp_path, objectives=NAMES,
                                       retrain_epochs=1, inner_rounds=2), n_trials=1)
    trial = study.trials[0]
    assert trial.state.name == "COMPLETE", trial.user_attrs.get("fail_reason")
    return trial, seen, space


@pytest.mark.parametrize("second,second_accuracy,kept", [
    (LAYERS, 0.9, 2),  # a smaller network (cheaper on any accelerator) at equal accuracy: round 2 dominates
    (BIG, 0.8, 1),  # a larger one, less accurate: round 1 dominates
])
def test_round_two_searches_on_round_ones_choice_and_the_trial_keeps_one_pair(tmp_path, monkeypatch, second, second_accuracy, kept):
    trial, seen, space = _trial(tmp_path, monkeypatch, [(NET, 0.9), (second, second_accuracy)])
    a = trial.user_attrs
    second_net = second
    first, second = a["inner_rounds"]
    assert len(seen) == 2 and SearchConfig.from_dict(seen[0]["config"]).array == "4x4"
    # round 2 is searched on exactly the accelerator round 1's inner choice picked for NET, in round-2/
    round_one_choice = inner.choose(NET, space, SearchConfig.from_dict(seen[0]["config"]))
    assert seen[1]["config"] == first["config"] == round_one_choice.config.to_dict() == second["search_config"]
    assert seen[1]["run_dir"] == str(Path(seen[0]["run_dir"]) / inner_rounds.ROUND_DIR) == second["run_dir"]
    assert second["config"] == inner.choose(second_net, space, round_one_choice.config).config.to_dict()
    # the kept pair: network, accelerator, run directory and values all from the same round
    assert a["inner_round_kept"] == kept
    pair, layers = (first, NET) if kept == 1 else (second, second_net)
    assert a["arch"] == {"net": kept} and a["config"] == pair["config"] and a["run_dir"] == pair["run_dir"]
    report = build_cost_model(SearchConfig.from_dict(a["config"])).evaluate(layers)
    assert trial.values == pytest.approx([pair["accuracy"], report.latency_ms, report.energy_uj])
    assert a["array"] == report.spec.array and a["area_mm2"] <= space.accelerator.area_budget_mm2
    saved = json.loads((Path(seen[0]["run_dir"]) / inner_rounds.ROUNDS_FILE).read_text())
    assert saved["kept"] == kept and [r["round"] for r in saved["rounds"]] == [1, 2]
    assert (Path(second["run_dir"]) / inner.INNER_FILE).is_file()


def test_a_failed_round_two_keeps_round_one(tmp_path, monkeypatch):
    seen: list[dict] = []
    ok = _fake_child([(NET, 0.9)], seen)
    monkeypatch.setattr(objective_module, "_run_child",
                        lambda trial, payload, **kw: ok(trial, payload) if not seen else {"ok": False, "error": "boom"})
    study = create_study(tmp_path, objectives=NAMES)
    study.enqueue_trial(START)
    study.optimize(lambda t: objective(t, base=BASE_PTS, tune_space=_space(), out_root=tmp_path, objectives=NAMES,
                                       inner_rounds=2), n_trials=1)
    a = study.trials[0].user_attrs
    assert study.trials[0].state.name == "COMPLETE" and a["inner_round_kept"] == 1 and "boom" in a["inner_round_2_error"]
    assert a["config"] == a["inner_rounds"][0]["config"] and a["run_dir"] == seen[0]["run_dir"]


def test_kept_round_is_pareto_dominance_else_round_two():
    names = ["accuracy", "latency_ms", "energy_uj"]
    one = {"accuracy": 0.9, "latency_ms": 1.0, "energy_uj": 1.0}
    assert inner_rounds.kept_round(one, {**one, "accuracy": 0.8}, names) == 1
    assert inner_rounds.kept_round(one, {**one, "latency_ms": 0.5}, names) == 2
    assert inner_rounds.kept_round(one, dict(one), names) == 2  # equal: the loop's last step
    assert inner_rounds.kept_round(one, {**one, "accuracy": 0.8, "energy_uj": 0.5}, names) == 2  # a trade-off


def test_rounds_are_checked():
    assert inner_rounds.check_rounds(None, inner="exhaustive") == inner_rounds.DEFAULT_ROUNDS
    assert inner_rounds.check_rounds(2, inner="exhaustive") == 2 and inner_rounds.check_rounds(1, inner="off") == 1
    for bad in (0, 3, True, 1.5, "2"):
        with pytest.raises(ConfigError, match="must be 1 or 2"):
            inner_rounds.check_rounds(bad, inner="exhaustive")
    with pytest.raises(ConfigError, match="needs --inner-accelerator exhaustive"):
        inner_rounds.check_rounds(2, inner="off")


@pytest.mark.parametrize("args,fragment", [
    (["--area-budget-mm2", "1", "--sram-kb", "4", "--tech", "recpipe12", "--inner-rounds", "3"], "must be 1 or 2, got 3"),
    (["--area-budget-mm2", "1", "--sram-kb", "4", "--tech", "recpipe12", "--inner-accelerator", "off", "--inner-rounds", "2"],
     "needs --inner-accelerator exhaustive"),
    (["--inner-rounds", "2"], "needs --inner-accelerator exhaustive"),
])
def test_bad_inner_rounds_are_one_red_line_and_write_nothing(cli, tmp_path, args, fragment):
    one_line_error(cli("tune", *TINY, "--trials", "1", "--out", tmp_path / "t", *args), fragment)
    assert not (tmp_path / "t").exists()
