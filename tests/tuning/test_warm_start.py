"""`uboost tune --warm-start DIR`: another study's trials enqueued first, with the values they were searched with,
so a co-search sees the networks a designer already has (and, with the inner choice, on their best accelerators)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import cli, one_line_error  # noqa: F401 - `cli` is a fixture
from tests.tuning.test_cosearch import BASE, KB_MM2, PE_MM2
from uboost.tuning import AcceleratorSpace, TuneSpace, create_study, run_study
from uboost.tuning.warm_start import SOURCE_ATTR, enqueue_from, params_for

BASE_PTS = BASE.replace(operating_points="rk3576-npu", clock_hz=900e6, latency_weight=0.2)
COSPACE = TuneSpace(rows=(4, 8), cols=(4, 8), dataflows=("ws", "os"), temperature=None, latency_weight=(0.01, 3.0),
                    accelerator=AcceleratorSpace(ifmap_sram_kb=(2, 4), filter_sram_kb=(2, 4), ofmap_sram_kb=(2,),
                                                 clock_hz=(600e6, 900e6), area_budget_mm2=64 * PE_MM2 + 12 * KB_MM2))


def test_a_trial_maps_onto_the_values_this_space_names_or_is_left_out_with_the_reason():
    config = BASE_PTS.replace(array="8x8", dataflow="ws", clock_hz=900e6)
    params, why = params_for(config, COSPACE)
    assert why == "" and params == {"latency_weight": 0.2, "rows": 8, "cols": 8, "dataflow": "ws", "ifmap_sram_kb": 2,
                                    "filter_sram_kb": 2, "ofmap_sram_kb": 2, "clock_hz": 900e6}
    assert params_for(config.replace(array="16x8"), COSPACE) == (None, "rows = 16 is not in this study's space")
    assert params_for(config.replace(latency_weight=5.0), COSPACE)[0] is None  # outside the lambda range
    assert params_for(config.replace(dataflow="is"), COSPACE)[1] == "dataflow = 'is' is not in this study's space"


def test_warm_started_trials_search_the_source_networks_again_and_are_not_enqueued_twice(tmp_path, monkeypatch):
    source_space = TuneSpace(rows=(8,), cols=(8,), temperature=None, latency_weight=(0.01, 3.0))
    base = BASE_PTS.replace(array="8x8", clock_hz=900e6)
    source = run_study(base=base, tune_space=source_space, out_root=tmp_path / "base", n_trials=2, seed=0,
                       objectives="accuracy,latency", population_size=2)
    ran = [t for t in source.trials if "arch" in t.user_attrs]
    assert len(ran) == 2

    co = create_study(tmp_path / "co", objectives="accuracy,latency,energy", seed=1)
    assert enqueue_from(co, tmp_path / "base", COSPACE) == (2, [])
    run_study(base=base, tune_space=COSPACE, out_root=tmp_path / "co", n_trials=2, study=co, seed=1,
              objectives="accuracy,latency,energy", population_size=2, inner_accelerator="exhaustive")
    done = sorted(co.get_trials(), key=lambda t: t.number)
    assert [t.user_attrs[SOURCE_ATTR] for t in done] == [f"{(tmp_path / 'base').resolve()}#{t.number}" for t in ran]
    for mine, theirs in zip(done, ran):
        assert mine.params["latency_weight"] == pytest.approx(theirs.params["latency_weight"])
        assert (mine.params["rows"], mine.params["cols"], mine.params["dataflow"]) == (8, 8, "ws")
        same = [json.loads((Path(t.user_attrs["run_dir"]) / "arch.json").read_text()) for t in (mine, theirs)]
        assert same[0] == same[1]  # the same network, searched again on the same accelerator
        assert mine.user_attrs["inner_accelerator"]["within_budget"] > 0  # then priced on its best one
    assert enqueue_from(co, tmp_path / "base", COSPACE) == (0, [])  # a continued study: nothing again
    monkeypatch.chdir(tmp_path)  # nor when the same source is spelled another way
    assert enqueue_from(co, "base", COSPACE) == (0, []) and enqueue_from(co, "./co/../base/", COSPACE) == (0, [])
    # a source trial Ctrl-C stopped runs again with the same command (it was taken as done: lost for good)
    from optuna.trial import TrialState

    from uboost.tuning.objective import INTERRUPTED_REASON

    again = create_study(tmp_path / "again", objectives="accuracy,latency,energy", seed=1)
    assert enqueue_from(again, tmp_path / "base", COSPACE) == (2, [])
    stopped = again.ask()  # the first enqueued trial, as a Ctrl-C leaves it
    stopped.set_user_attr("fail_reason", INTERRUPTED_REASON)
    again.tell(stopped, state=TrialState.FAIL)
    assert enqueue_from(again, tmp_path / "base", COSPACE) == (1, [])  # that one; the other still waits
    assert enqueue_from(again, tmp_path / "base", COSPACE) == (0, [])


def test_a_missing_or_empty_warm_start_is_one_red_line_and_writes_nothing(cli, tmp_path):
    from tests.tuning.test_cosearch import TINY

    one_line_error(cli("tune", *TINY, "--trials", "1", "--out", tmp_path / "t", "--warm-start", tmp_path / "nowhere"),
                   "no study in")
    assert not (tmp_path / "t").exists()
    create_study(tmp_path / "empty", objectives="accuracy,latency", seed=0)  # a study without a finished trial
    one_line_error(cli("tune", *TINY, "--trials", "1", "--out", tmp_path / "t", "--warm-start", tmp_path / "empty"),
                   "has no finished trial to start from")
    assert not (tmp_path / "t").exists()
