"""The accelerator column of `uboost tune`'s table: buffers not searched show the trial's own sizes (the
--hardware file's), not `-` (which reads as unbounded)."""

from __future__ import annotations

from types import SimpleNamespace

import optuna

from tests.cli.conftest import cli  # noqa: F401 - `cli` is a fixture
from uboost import tuning
from uboost.search import SearchConfig
from uboost.tuning import AcceleratorSpace, TuneSpace

BASE = SearchConfig(space="lenet", space_options={"widths": [4, 8], "hidden": [16]}, dataset="digits", image_size=8, epochs=1,
                    cost_model="systolic-mem", dram_bw_words=4.0,
                    hardware={"ifmap_sram_kb": 4, "filter_sram_kb": 4, "ofmap_sram_kb": 4})  # as a --hardware file gives them
SPACE = TuneSpace(rows=(8,), cols=(8,), accelerator=AcceleratorSpace(ifmap_sram_kb=[4, 8]))


def _trial(ifmap: int, **attrs):
    config = SPACE.apply(BASE, {"array": "8x8", "accelerator_point": {"ifmap_sram_kb": ifmap}}).to_dict()
    return SimpleNamespace(params={"latency_weight": 1.0, "ifmap_sram_kb": ifmap}, user_attrs={"config": config, **attrs})


def test_unsearched_buffers_show_the_trials_own_sizes():
    from uboost.cli.tune import _accelerator_cell

    assert _accelerator_cell(_trial(8)) == "8/4/4 kB"
    assert _accelerator_cell(_trial(4)) == "4/4/4 kB"
    unbounded = SimpleNamespace(params={"ifmap_sram_kb": 8}, user_attrs={"config": BASE.replace(hardware={}).to_dict()})
    assert _accelerator_cell(unbounded) == "8/-/- kB"  # unbounded buffers: `-` is right there
    assert _accelerator_cell(SimpleNamespace(params={"ifmap_sram_kb": 8}, user_attrs={})) == "8/-/- kB"  # no config stored


def test_the_table_shows_them(cli, tmp_path):  # noqa: F811
    out = tmp_path / "t"
    study = tuning.create_study(out, seed=0)
    trial = _trial(8)
    attrs = {**trial.user_attrs, "accuracy": 0.5, "latency_ms": 0.01, "cycles": 10.0, "utilization": 0.5, "array": "8x8",
             "dataflow": "ws"}
    study.add_trial(optuna.trial.create_trial(params={**trial.params, "rows": 8, "cols": 8, "temperature": 10.0},
                                              distributions=SPACE.distributions(), values=[0.5, 0.01], user_attrs=attrs))
    result = cli("tune", "--trials", "0", "--out", out)
    assert result.code == 0, result.err
    assert "8/4/4 kB" in result.out and "/-/-" not in result.out, result.out
