"""`uboost tune --local-search N`: networks one choice away from the front's, priced first, retrained, added as trials."""

from __future__ import annotations

import json

import optuna
import pytest

from tests.cli.conftest import cli, one_line_error  # noqa: F401 - `cli` is a fixture
from tests.tuning.test_cosearch import BASE, KB_MM2, PE_MM2, TINY
from uboost import runs
from uboost.exceptions import ConfigError
from uboost.search import SearchConfig, build_cost_model
from uboost.tuning import AcceleratorSpace, TuneSpace, create_study, export_trial
from uboost.tuning import inner_accelerator as inner
from uboost.tuning import local_search as ls
from uboost.tuning import local_trials

CHOICES = {"a": [1, 2, 3], "b": ["x", "y"]}


class Trial:  # what records() reads of an optuna trial
    def __init__(self, number, arch, accuracy, latency, energy=None, **extra):
        self.number = number
        self.user_attrs = {"arch": arch, "accuracy": accuracy, "latency_ms": latency, "energy_uj": energy, **extra}


def test_neighbors_change_exactly_one_choice():
    found = ls.neighbors({"a": 2, "b": "x"}, CHOICES)
    assert [(arch, label, old, new) for arch, label, old, new in found] == [
        ({"a": 1, "b": "x"}, "a", 2, 1), ({"a": 3, "b": "x"}, "a", 2, 3), ({"a": 2, "b": "y"}, "b", "x", "y")]
    with pytest.raises(ConfigError, match="no choice 'b'"):
        ls.neighbors({"a": 1}, CHOICES)


def test_records_merge_a_network_and_fronts_peel_by_dominance():
    trials = [Trial(0, {"a": 1, "b": "x"}, 0.90, 2.0), Trial(1, {"a": 1, "b": "x"}, 0.80, 1.5),  # one network twice
              Trial(2, {"a": 2, "b": "x"}, 0.95, 4.0), Trial(3, {"a": 3, "b": "x"}, 0.84, 3.0),
              Trial(4, {"a": 3, "b": "y"}, 0.99, 9.0, area_over_budget_mm2=0.5),  # infeasible: not a record
              Trial(5, {"a": 2, "b": "y"}, 0.70, 5.0)]
    recs = {ls.key(r.arch): r for r in ls.records(trials, "latency")}
    assert len(recs) == 4
    merged = recs[ls.key({"a": 1, "b": "x"})]
    assert merged.accuracy == pytest.approx(0.85) and merged.cost == 1.5 and merged.trial.number == 1
    first = ls.fronts(list(recs.values()), 1)
    assert sorted(r.trial.number for r in first) == [1, 2]
    assert sorted(r.trial.number for r in ls.fronts(list(recs.values()), 2)) == [1, 2, 3]
    assert sorted(r.trial.number for r in ls.fronts(list(recs.values()), 3)) == [1, 2, 3, 5]
    assert ls.cost_of({"latency_ms": 2.0, "energy_uj": 3.0}, "edp") == 6.0
    assert ls.cost_of({"latency_ms": 2.0, "energy_uj": None}, "edp") == 2.0  # no energy priced: latency


def test_a_neighbor_is_promising_when_it_undercuts_every_record_as_accurate_as_its_parent():
    recs = ls.records([Trial(0, {"a": 1, "b": "x"}, 0.80, 1.0), Trial(1, {"a": 2, "b": "x"}, 0.90, 4.0),
                       Trial(2, {"a": 3, "b": "x"}, 0.85, 6.0)], "latency")  # trial 2: second front
    prices = {("a", 1, "y"): 0.5, ("a", 2, "y"): 3.0, ("a", 3, "y"): 2.0}
    asked = []

    def price(arch, parent):
        asked.append(ls.key(arch))
        return prices[("a", arch["a"], arch["b"])], None  # MACs unknown: the score is the gain

    found = ls.promising(recs, CHOICES, price)
    # parent 0 (bar 1.0): 1y at 0.5 -> gain 2; parent 1 (bar 4.0): 2y at 3.0 -> 1.33; parent 2 (bar 4.0): 3y at 2.0 -> 2
    assert [(n.arch, n.parent.trial.number, n.gain, n.score) for n in found] == [
        ({"a": 1, "b": "y"}, 0, 2.0, 2.0), ({"a": 3, "b": "y"}, 2, 2.0, 2.0), ({"a": 2, "b": "y"}, 1, pytest.approx(4 / 3), pytest.approx(4 / 3))]
    assert ls.key({"a": 1, "b": "x"}) not in asked  # networks of the study are never priced again
    assert ls.promising(recs, CHOICES, price, depth=1) == found[::2]  # trial 2 is no parent on the first front only
    prices[("a", 1, "y")] = 1.0  # as dear as the bar: it would not join the front
    assert [n.arch for n in ls.promising(recs, CHOICES, price)] == [{"a": 3, "b": "y"}, {"a": 2, "b": "y"}]
    prepared = []
    ls.promising(recs, CHOICES, price, prepare=prepared.extend)  # every pair to price, before any is priced
    assert sorted((ls.key(a), p.trial.number) for a, p in prepared) == [(ls.key({"a": a, "b": "y"}), a - 1) for a in (1, 2, 3)]


def test_the_rank_weighs_the_gain_by_the_share_of_the_parents_macs_kept():
    recs = ls.records([Trial(0, {"a": 2, "b": "x"}, 0.90, 4.0, macs=100.0)], "latency")
    prices = {(1, "x"): (1.0, 25.0), (3, "x"): (3.0, 400.0), (2, "y"): (2.0, 100.0)}  # gains 4, 1.33, 2
    found = ls.promising(recs, CHOICES, lambda arch, parent: prices[(arch["a"], arch["b"])])
    # 1x: 4 x 0.25 = 1; 3x: cheaper with more MACs, 1.33 x 1 (capped); 2y: cheaper at equal MACs, 2 x 1
    assert [(n.arch, n.kept, n.score) for n in found] == [
        ({"a": 2, "b": "y"}, 1.0, 2.0), ({"a": 3, "b": "x"}, 1.0, pytest.approx(4 / 3)), ({"a": 1, "b": "x"}, 0.25, 1.0)]


def test_a_neighbor_the_screen_cannot_tell_from_one_already_retrained_ranks_last():
    recs = ls.records([Trial(0, {"a": 2, "b": "x"}, 0.90, 4.0, macs=100.0)], "latency")
    prices = {(1, "x"): (1.0, 50.0), (3, "x"): (1.0, 50.0), (2, "y"): (2.0, 100.0)}  # 1x and 3x: twins, score 2 each
    price = lambda arch, parent: prices[(arch["a"], arch["b"])]  # noqa: E731
    assert [n.arch["a"] for n in ls.promising(recs, CHOICES, price)] == [1, 3, 2]  # equal scores (2): cheaper first
    assert ls.twin(1.0, 50.0) == ls.twin(1.0000000001, 50.0) != ls.twin(1.0, 51.0)
    tried = {ls.twin(1.0, 50.0)}  # 1x was retrained (and is no record: it fell short of the front)
    found = ls.promising(recs, CHOICES, price, exclude={ls.key({"a": 1, "b": "x"})}, tried=tried)
    assert [(n.arch, n.macs) for n in found] == [({"a": 2, "b": "y"}, 100.0), ({"a": 3, "b": "x"}, 50.0)]
    assert ls.promising(recs, CHOICES, price, tried={ls.twin(2.0, 100.0)})[-1].arch == {"a": 2, "b": "y"}


def test_bad_local_search_settings_are_refused():
    assert ls.check_local_search(0, mode="budget", retrain_epochs=0) == 0
    with pytest.raises(ConfigError, match="give it with --local-search N"):  # accepted with no effect before (QA)
        ls.check_local_search(0, mode="pareto", retrain_epochs=1, screen="parent")
    for n in (-1, 1.5, True):
        with pytest.raises(ConfigError, match="non-negative integer"):
            ls.check_local_search(n, mode="pareto", retrain_epochs=1)
    with pytest.raises(ConfigError, match="--mode pareto"):
        ls.check_local_search(2, mode="budget", retrain_epochs=1)
    with pytest.raises(ConfigError, match="needs --retrain-epochs"):
        ls.check_local_search(2, mode="pareto", retrain_epochs=0)
    with pytest.raises(ConfigError, match="unknown local-search screen 'all'"):
        local_trials.Pricer(BASE, TuneSpace(), ["accuracy", "latency_ms"], "off", "all")


@pytest.mark.parametrize("args,fragment", [
    (["--local-search", "2"], "needs --retrain-epochs"),
    (["--local-search", "2", "--retrain-epochs", "1", "--mode", "budget", "--budget-ms", "1"], "needs --mode pareto"),
    (["--local-search", "-1", "--retrain-epochs", "1"], "non-negative integer"),
    (["--local-search", "2", "--retrain-epochs", "1", "--local-search-screen", "all"], "unknown local-search screen 'all'"),
])
def test_bad_local_search_input_is_one_red_line_and_writes_nothing(cli, tmp_path, args, fragment):
    one_line_error(cli("tune", *TINY, "--trials", "1", "--out", tmp_path / "t", *args), fragment)
    assert not (tmp_path / "t").exists()


SMALL = BASE.replace(space_options={"widths": [4, 8], "hidden": [16]}, max_samples=96)  # 16 networks
BUDGET = 64 * PE_MM2 + 12 * KB_MM2
SPACE = TuneSpace(rows=(4, 8), cols=(4, 8), dataflows=("ws", "os"), temperature=None,
                  accelerator=AcceleratorSpace(ifmap_sram_kb=(2, 8), filter_sram_kb=(2,), ofmap_sram_kb=(2,), area_budget_mm2=BUDGET))
NAMES = ["accuracy", "latency_ms", "energy_uj"]
PARAMS = {"rows": 4, "cols": 4, "dataflow": "ws", "latency_weight": 1.0, "ifmap_sram_kb": 2, "filter_sram_kb": 2, "ofmap_sram_kb": 2}


def _study_with(tmp_path, parents: list[tuple[dict, float]]):
    """A co-search study whose finished trials are ``parents`` (network, accuracy), each priced on its best accelerator
    as an inner choice prices it (the accuracies are given: the local search only reads them)."""
    study = create_study(tmp_path, objectives="accuracy,latency,energy")
    distributions = SPACE.for_cost_mode(SMALL.cost_mode).distributions()
    pricer = local_trials.Pricer(SMALL, SPACE.for_cost_mode(SMALL.cost_mode), NAMES, "exhaustive")
    for arch, accuracy in parents:
        attrs = {k: v for k, v in pricer.attrs(arch, None).items() if not k.startswith("_")}
        attrs.update(arch=arch, accuracy=accuracy, search_config=SMALL.to_dict())
        study.add_trial(optuna.trial.create_trial(params={k: PARAMS[k] for k in distributions}, distributions=distributions,
                                                  values=[accuracy, attrs["latency_ms"], attrs["energy_uj"]], user_attrs=attrs))
    return study


ARCH = {"conv1_width": 8, "conv1_kernel": 5, "conv2_width": 8, "conv2_kernel": 5, "fc1_width": 16}


@pytest.mark.parametrize("screen", ls.SCREENS)
def test_local_search_retrains_the_best_ranked_neighbors_and_adds_them_as_trials(tmp_path, screen):
    study = _study_with(tmp_path, [(ARCH, 0.9), ({**ARCH, "conv1_width": 4, "conv2_width": 4}, 0.6)])
    choices = local_trials.space_choices(SMALL)
    assert sum(len(v) - 1 for v in choices.values()) == 4  # fc1 has one width: four neighbors per network
    fresh = local_trials.Pricer(SMALL, SPACE.for_cost_mode(SMALL.cost_mode), NAMES, "exhaustive", screen)
    expected = ls.promising(ls.records(study.trials, fresh.objective), choices, fresh.cost)[0]
    if screen == "parent":  # screened on the parent's accelerator: one evaluation, an upper bound of its best
        parent_config = SearchConfig.from_dict(expected.parent.trial.user_attrs["config"])
        on_parent = build_cost_model(parent_config).evaluate(local_trials.layers_of(parent_config, expected.arch))
        assert expected.cost == pytest.approx(on_parent.latency_ms * on_parent.energy_uj)
    added = local_trials.run_local_search(study, 3, base=SMALL, tune_space=SPACE, out_root=tmp_path, retrain_epochs=1,
                                          objectives="accuracy,latency,energy", inner_accelerator="exhaustive", screen=screen)
    assert 1 <= len(added) <= 3 and [t.number for t in added] == list(range(2, 2 + len(added)))
    first = added[0].user_attrs
    assert first["arch"] == expected.arch and first["local_search"]["parent"] == expected.parent.trial.number
    assert first["latency_ms"] * first["energy_uj"] <= expected.cost * (1 + 1e-9)  # its best accelerator: no dearer
    assert first["local_search"]["label"] == expected.label
    assert local_trials.tried_twins(study) == {ls.twin(t.user_attrs["local_search"]["screened_cost"], t.user_attrs["macs"])
                                               for t in added}  # what later rounds rank last
    assert ls.twin(expected.cost, expected.macs) in local_trials.tried_twins(study)
    archs = [ls.key(t.user_attrs["arch"]) for t in study.trials]
    assert len(set(archs)) == len(archs)  # never a network the study had
    for trial in added:
        a = trial.user_attrs
        parent = study.trials[a["local_search"]["parent"]].user_attrs["arch"]
        assert [k for k in parent if parent[k] != a["arch"][k]] == [a["local_search"]["label"]]
        run_dir = tmp_path / ls.FOLDER / "uboost"
        assert str(run_dir) in a["run_dir"]
        retrained = json.loads((tmp_path / a["run_dir"] / runs.RETRAIN / "retrain.json").read_text())
        assert trial.values == [a["accuracy"], a["latency_ms"], a["energy_uj"]] and a["accuracy"] == retrained["test_acc"]
        config = SearchConfig.from_dict(a["config"])  # the chosen accelerator prices the network as the trial says
        report = build_cost_model(config).evaluate(local_trials.layers_of(config, a["arch"]))
        assert report.latency_ms == pytest.approx(a["latency_ms"]) and report.energy_uj == pytest.approx(a["energy_uj"])
        choice = inner.choose(local_trials.layers_of(config, a["arch"]), SPACE.for_cost_mode(SMALL.cost_mode), SMALL)
        assert choice.config.hardware_spec() == config.hardware_spec() and a["area_mm2"] <= BUDGET
    target = export_trial(study, added[0].number, tmp_path / "export")  # exported like any trial
    assert runs.load_run(target).arch == first["arch"] and (target / inner.INNER_FILE).is_file()
    assert json.loads((target / "tune.json").read_text())["trial"] == added[0].number


def test_a_finished_neighbor_is_reused_and_an_unfinished_one_is_redone(tmp_path, monkeypatch):
    neighbor = ls.Neighbor(arch=ARCH, parent=None, label="conv1_width", old=4, new=8, cost=1.0, gain=2.0)
    run_dir = tmp_path / "n"
    calls = []

    class Result:
        test_acc, seconds = 0.75, 1.0

    def fake_retrain(source, config, *, out):
        calls.append(out)
        return Result()

    monkeypatch.setattr("uboost.retrain.retrain", fake_retrain)
    run_dir.mkdir()
    (run_dir / "leftover.txt").write_text("an interrupted retrain")
    kept = local_trials._retrained(run_dir, neighbor, {"config": SMALL.to_dict()}, 1)
    assert kept == {"arch": ARCH, "test_acc": 0.75, "retrain_seconds": 1.0} and len(calls) == 1
    assert not (run_dir / "leftover.txt").exists() and runs.load_run(run_dir).arch == ARCH
    assert local_trials._retrained(run_dir, neighbor, {"config": SMALL.to_dict()}, 1) == kept and len(calls) == 1


def test_tune_runs_a_local_search_after_its_trials_and_on_a_finished_study(cli, tmp_path):
    from uboost.tuning import load_study

    out = tmp_path / "t"
    common = [*TINY, "--rows", "8", "--cols", "8", "--retrain-epochs", "1", "--out", out, "--seed", "0"]
    result = cli("tune", *common, "--trials", "2", "--local-search", "1")
    assert result.code == 0, (result.out, result.err)
    assert "local search: up to 1 retrains" in result.out
    study = load_study(out)
    local = [t for t in study.trials if ls.ATTR in t.user_attrs]
    assert len(local) == 1 and local[0].number == 2, result.out
    assert f"trial 2: trial {local[0].user_attrs[ls.ATTR]['parent']}'s network" in result.out
    again = cli("tune", *common, "--trials", "0", "--local-search", "1")  # on the study as it is
    assert again.code == 0, (again.out, again.err)
    study = load_study(out)
    added = [t for t in study.trials if ls.ATTR in t.user_attrs][1:]
    assert len(study.trials) == 3 + len(added) and all(t.state.name == "COMPLETE" for t in study.trials)
    assert ("trial 3: trial" in again.out) if added else ("stopped after 0" in again.out)
    stored = load_study(out).user_attrs["uboost_base"]  # without the study's flags: refused, and the study keeps its own
    one_line_error(cli("tune", "--out", out, "--rows", "8", "--cols", "8", "--retrain-epochs", "1", "--seed", "0",
                       "--trials", "0", "--local-search", "1"), "runs on the study as it was searched", "repeat the study's settings")
    assert load_study(out).user_attrs["uboost_base"] == stored and len(load_study(out).trials) == len(study.trials)
    # another --retrain-epochs would rank neighbors retrained longer against the front's (it warned, then ran)
    other = [x if x != "1" or common[i - 1] != "--retrain-epochs" else "4" for i, x in enumerate(common)]
    one_line_error(cli("tune", *other, "--trials", "0", "--local-search", "1"), "retrain_epochs 1 (this command: 4)")
    assert load_study(out).user_attrs["uboost_retrain_epochs"] == 1


def test_a_cell_input_choice_varies_among_the_lists_an_architecture_can_give_it():
    config = SearchConfig(space="darts-cifar", dataset="digits", image_size=8, space_options={"width": 4, "cells": 3})
    choices = local_trials.space_choices(config)
    inputs = [label for label in choices if "input" in label]
    assert inputs and all(all(isinstance(v, list) and len(v) == 1 for v in choices[label]) for label in inputs)
    arch = {label: values[0] for label, values in choices.items()}
    from uboost.search import build_space

    built = build_space(config)[:2]
    found = ls.neighbors(arch, choices)
    assert {label for _, label, _, _ in found} == set(choices)
    for neighbor, label, old, new in found[::7]:
        assert local_trials.layers_of(config, neighbor, built)  # a neighbor of any kind freezes in the space


def test_a_neighbor_whose_retrain_fails_is_left_out_and_the_next_one_is_tried(tmp_path, monkeypatch):
    from uboost.exceptions import SearchError

    study = _study_with(tmp_path, [(ARCH, 0.9), ({**ARCH, "conv1_width": 4, "conv2_width": 4}, 0.6)])
    calls = []

    class Result:
        test_acc, seconds = 0.5, 0.1

    def flaky_retrain(source, config, *, out):
        calls.append(runs.load_run(source).arch)
        if len(calls) == 1:
            raise SearchError("the retrain diverged")
        return Result()

    monkeypatch.setattr("uboost.retrain.retrain", flaky_retrain)
    added = local_trials.run_local_search(study, 2, base=SMALL, tune_space=SPACE, out_root=tmp_path, retrain_epochs=1,
                                          objectives="accuracy,latency,energy", inner_accelerator="exhaustive")
    assert len(calls) == 2 and calls[0] != calls[1]  # the failed network is not tried again
    assert [t.user_attrs["arch"] for t in added] == [calls[1]]  # a failure counts as one of the n tries
    assert not (local_trials.neighbor_dir(tmp_path, "uboost", calls[0]) / ls.DONE).exists()


def test_a_warm_start_searches_the_parent_again_not_the_local_trial(tmp_path):
    from uboost.tuning.warm_start import enqueue_from

    space = SPACE.for_cost_mode(SMALL.cost_mode)
    searched = space.apply(SMALL.replace(latency_weight=0.5), {"array": "4x4", "dataflow": "ws", "accelerator_point": dict(
        ifmap_sram_kb=2, filter_sram_kb=2, ofmap_sram_kb=2)})
    source = create_study(tmp_path / "source", objectives="accuracy,latency,energy")
    for attrs in ({}, {ls.ATTR: {"parent": 0}}):  # a searched trial, then a local one derived from it
        source.add_trial(optuna.trial.create_trial(values=[0.9, 1.0, 1.0], user_attrs={
            "arch": ARCH, "accuracy": 0.9, "latency_ms": 1.0, "energy_uj": 1.0, "search_config": searched.to_dict(), **attrs}))
    target = create_study(tmp_path / "target", objectives="accuracy,latency,energy")
    enqueued, left = enqueue_from(target, tmp_path / "source", space, base_seed=SMALL.seed)
    assert (enqueued, left) == (1, [])
    assert target.trials[0].system_attrs["fixed_params"]["latency_weight"] == 0.5  # the searched trial's point


def test_a_local_search_with_an_area_objective_and_no_inner_choice_keeps_its_parents_area(cli, tmp_path):
    from uboost.tuning import load_study

    out = tmp_path / "t"
    result = cli("tune", *TINY, "--rows", "8", "--cols", "8", "--sram-kb", "16", "--objectives", "accuracy,area",
                 "--retrain-epochs", "1", "--trials", "2", "--local-search", "1", "--seed", "1", "--out", out)
    assert result.code == 0, (result.out, result.err)  # was a KeyError: 'area_mm2' after the neighbor's retrain
    trials = load_study(out).trials
    local = [t for t in trials if ls.ATTR in t.user_attrs]
    for t in local:  # on its parent's accelerator (no inner choice): the parent's area, and the objective is it
        parent = trials[t.user_attrs[ls.ATTR]["parent"]]
        assert t.user_attrs["area_mm2"] == parent.user_attrs["area_mm2"] and t.values[1] == parent.values[1]
    assert local, result.out
