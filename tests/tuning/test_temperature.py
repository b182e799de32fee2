"""Issue 12: T (the smooth-ceiling temperature) has no effect with cost_mode="expected": tune
searches it only where it acts. On main every trial suggested a temperature."""

from __future__ import annotations

import optuna

from tests.cli.conftest import cli, one_line_error  # noqa: F401 - `cli` is a fixture
from uboost import UBoostError
from uboost.tuning import TuneSpace, create_study, objective

SPACE = TuneSpace(rows=(8, 16), cols=(8, 16), area_budget=64)


def _first_params(tmp_path, cost_mode: str) -> dict:
    study = create_study(tmp_path / cost_mode, seed=0)
    study.enqueue_trial({"rows": 16, "cols": 16})  # over the area budget: suggested, then skipped without a search
    study.optimize(lambda t: objective(t, space="lenet", dataset="digits", cost_mode=cost_mode, out_root=tmp_path,
                                       tune_space=SPACE), n_trials=1, catch=(UBoostError,))
    (trial,) = study.trials
    assert trial.user_attrs["skipped"] == "area_budget"
    return trial.params


def test_temperature_is_searched_only_with_the_smooth_cost(tmp_path):
    assert "temperature" not in _first_params(tmp_path, "expected")
    assert "temperature" in _first_params(tmp_path, "smooth")


def test_for_cost_mode_and_distributions():
    assert SPACE.for_cost_mode("smooth") is SPACE
    expected = SPACE.for_cost_mode("expected")
    assert expected.temperature is None and "temperature" not in expected.distributions()
    trial = optuna.create_study().ask()
    assert "temperature" not in expected.suggest(trial) and expected.to_dict()["temperature"] is None


def test_temperature_range_with_the_expected_cost_is_refused(cli, tmp_path):
    result = cli("tune", "--space", "lenet", "--trials", "1", "--out", tmp_path / "t", "--temperature-range", "1:5")
    one_line_error(result, "--temperature-range has no effect with --cost-mode expected", "--cost-mode smooth")
    assert not (tmp_path / "t").exists()
