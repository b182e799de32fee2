"""A continued `uboost tune` study keeps its area budget: dropping or changing it is refused in one line, and
the "different base" warning names what differs."""

from __future__ import annotations

import logging

import optuna
import pytest

from tests.cli.conftest import TINY, cli, one_line_error  # noqa: F401 - `cli` is a fixture
from uboost import tuning
from uboost.exceptions import ConfigError
from uboost.search import SearchConfig
from uboost.tuning import AcceleratorSpace, TuneSpace

BASE = SearchConfig(space="lenet", space_options={"widths": [4, 8], "hidden": [16]}, dataset="digits", image_size=8,
                    epochs=1, max_samples=64, batch_size=32, cost_model="systolic-mem", sram_kb=4, dram_bw_words=4.0,
                    hardware={"area": "recpipe12"})


def _space(budget):
    return TuneSpace(rows=(8,), cols=(8,), accelerator=AcceleratorSpace(area_budget_mm2=budget) if budget else None)


def _study(out, budget=0.05):
    """A study whose one finished trial ran under ``budget`` (its stored space says so)."""
    study = tuning.create_study(out, seed=0)
    space = _space(budget)
    attrs = {"accuracy": 0.5, "latency_ms": 0.01, "cycles": 10.0, "utilization": 0.5, "area_mm2": 0.04, "array": "8x8",
             "dataflow": "ws"}
    if budget:
        attrs[tuning.AREA_CONSTRAINT] = 0.04 - budget
    study.add_trial(optuna.trial.create_trial(params={"latency_weight": 1.0, "temperature": 10.0, "rows": 8, "cols": 8},
                                              distributions=space.distributions(), values=[0.5, 0.01], user_attrs=attrs))
    study.set_user_attr("uboost_base", BASE.to_dict())
    study.set_user_attr("uboost_space", space.for_cost_mode(BASE.cost_mode).to_dict())  # as run_study stores it
    return study


@pytest.mark.parametrize("budget,fragments", [
    (None, ["was searched under an area budget of 0.05 mm² (this command: no --area-budget-mm2)", "repeat --area-budget-mm2 0.05"]),
    (0.2, ["was searched under an area budget of 0.05 mm² (this command: --area-budget-mm2 0.2)", "repeat --area-budget-mm2 0.05"]),
])
def test_a_continuation_that_drops_or_changes_the_area_budget_is_refused(tmp_path, budget, fragments):
    study = _study(tmp_path / "t")
    for call in (lambda: _space(budget).check_compatible(study),
                 lambda: tuning.run_study(base=BASE, tune_space=_space(budget), out_root=tmp_path / "t", n_trials=0, study=study)):
        with pytest.raises(ConfigError) as info:
            call()
        assert all(f in str(info.value) for f in fragments), str(info.value)
    assert study.user_attrs["uboost_space"]["accelerator"]["area_budget_mm2"] == 0.05  # left as it was
    _space(0.05).check_compatible(study)  # the same budget continues


def test_a_budget_added_to_a_study_searched_without_one_is_refused(tmp_path):
    study = _study(tmp_path / "t", budget=None)
    with pytest.raises(ConfigError, match="was searched without an area budget .this command: --area-budget-mm2 0.05.; .* drop --area-budget-mm2"):
        _space(0.05).check_compatible(study)
    _space(None).check_compatible(study)
    fresh = tuning.create_study(tmp_path / "u", seed=0)
    fresh.set_user_attr("uboost_space", _space(None).to_dict())
    _space(0.05).check_compatible(fresh)  # no trial ran yet: nothing was judged on it


def test_the_different_base_warning_names_the_settings(tmp_path, caplog):
    study = _study(tmp_path / "t")
    with caplog.at_level(logging.WARNING, logger="uboost.tuning.study"):
        tuning.run_study(base=BASE.replace(dram_bw_words=8.0, epochs=2), tune_space=_space(0.05), out_root=tmp_path / "t", n_trials=0, study=study)
    text = caplog.text
    assert "continues with a different base than it started with: dram_bw_words 4.0 -> 8.0; epochs 1 -> 2" in text, text
    assert "different space" not in text


def test_the_cli_refuses_it_in_one_line_and_writes_nothing(cli, tmp_path):  # noqa: F811
    out = tmp_path / "t"
    _study(out)
    journal = (out / "study.journal").read_bytes()
    result = cli("tune", *TINY, "--trials", "1", "--out", out, "--sram-kb", "64")
    one_line_error(result, "study 'uboost' was searched under an area budget of 0.05 mm²", "repeat --area-budget-mm2 0.05")
    assert "uboost tune" not in result.out  # no header for a study that does not continue
    assert (out / "study.journal").read_bytes() == journal
