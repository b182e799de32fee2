"""`uboost tune`'s "best": the most accurate trial of the Pareto front it prints, never a dominated one."""

from __future__ import annotations

import optuna

from tests.cli.conftest import cli, one_line_error  # noqa: F401 - `cli` is a fixture
from uboost import tuning


def _study(out, objectives, rows):
    study = tuning.create_study(out, objectives=objectives, seed=0)
    names = tuning.front_metrics(study)
    for accuracy, latency, energy in rows:
        attrs = {"accuracy": accuracy, "latency_ms": latency, "energy_uj": energy, "cycles": 100, "utilization": 0.5,
                 "array": "8x8", "dataflow": "ws"}
        study.add_trial(optuna.trial.create_trial(values=[attrs[n] for n in names], user_attrs=attrs))
    return study


def test_best_breaks_accuracy_ties_on_the_studys_own_objectives(tmp_path):
    """accuracy,energy: trial 1 is faster but costs more energy at the same accuracy, so trial 0 dominates it;
    "best" was trial 1 (ties went to latency, not an objective) though the front was [0]."""
    study = _study(tmp_path / "t", "accuracy,energy", [(0.078, 1.0, 1.0), (0.078, 0.5, 2.0)])
    front = [t.number for t in tuning.pareto_front(study)]
    assert front == [0]
    assert tuning.best_trial(study).number == 0
    assert tuning.find_trial(study, "best").number == 0


def test_best_is_on_the_front_for_three_objectives_in_their_order(tmp_path):
    # equal accuracy: latency (the second objective) decides, then energy; equal on all -> the lower number
    study = _study(tmp_path / "t", "accuracy,latency,energy", [(0.9, 2.0, 1.0), (0.9, 1.0, 3.0), (0.8, 0.5, 0.5), (0.9, 1.0, 3.0)])
    front = [t.number for t in tuning.pareto_front(study)]
    best = tuning.best_trial(study).number
    assert best == 1 and best in front
    study = _study(tmp_path / "u", "accuracy,energy,latency", [(0.9, 2.0, 1.0), (0.9, 1.0, 3.0)])
    assert tuning.best_trial(study).number == 0  # energy first here


def test_the_printed_best_is_a_trial_of_the_printed_front(cli, tmp_path):  # noqa: F811
    out = tmp_path / "t"
    _study(out, "accuracy,energy", [(0.078, 1.0, 1.266), (0.06, 0.2, 0.9), (0.078, 0.5, 1.29)])
    result = cli("tune", "--trials", "0", "--out", out)
    assert result.code == 0, result.err
    assert "* best: trial 0 (most accurate)" in result.out
    assert "trial 2" not in result.out


def test_an_over_budget_trial_is_refused_naming_the_feasible_ones(cli, tmp_path):  # noqa: F811
    """It said "trial 8 is COMPLETE (area ... over the budget ...); only finished trials can be exported"."""
    out = tmp_path / "t"
    study = _study(out, "accuracy,latency", [(0.9, 1.0, 1.0), (0.8, 0.5, 1.0), (0.7, 2.0, 1.0)])
    reason = "area 0.5178 mm² is over the budget of 0.05 mm²"
    study.add_trial(optuna.trial.create_trial(values=[0.0, float("inf")], user_attrs={  # as objective() records one
        "skipped": "area_budget_mm2", "fail_reason": reason, "area_mm2": 0.5178, tuning.AREA_CONSTRAINT: 0.4678}))
    result = cli("tune", "--out", out, "--export", "3", "--export-to", tmp_path / "x")
    one_line_error(result, f"trial 3 is infeasible ({reason})", "cannot be exported",
                   "--export best (trial 0) or a trial of the Pareto front: 0, 1")
    assert "COMPLETE" not in result.err and "only finished trials" not in result.err
    assert not (tmp_path / "x").exists()
