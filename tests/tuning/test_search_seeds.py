"""`uboost tune --search-seeds N`: each trial also draws its search seed (an Optuna parameter, an offset from
the base seed), so a study is not limited to one network per sampled point."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from tests.cli.conftest import cli, one_line_error  # noqa: F401 - `cli` is a fixture
from tests.tuning.test_cosearch import BASE, TINY
from uboost.exceptions import ConfigError
from uboost.tuning import TuneSpace, create_study, run_study
from uboost.tuning.space import SEED_OFFSET
from uboost.tuning.warm_start import enqueue_from, params_for

SPACE = TuneSpace(rows=(8,), cols=(8,), temperature=None, latency_weight=(0.01, 3.0))
SEEDS = TuneSpace(rows=(8,), cols=(8,), temperature=None, latency_weight=(0.01, 3.0), search_seeds=3)


def test_the_drawn_offset_is_the_trial_seed_and_one_seed_draws_nothing():
    base = BASE.replace(seed=5, array="8x8")
    drawn = SEEDS.suggest(optuna.trial.FixedTrial({"latency_weight": 0.1, "rows": 8, "cols": 8, SEED_OFFSET: 2}))
    assert drawn[SEED_OFFSET] == 2 and SEEDS.apply(base, drawn).seed == 7
    assert SEEDS.apply(base, {**drawn, SEED_OFFSET: 0}).seed == 5
    assert SEEDS.distributions()[SEED_OFFSET].choices == (0, 1, 2)
    one = SPACE.suggest(optuna.trial.FixedTrial({"latency_weight": 0.1, "rows": 8, "cols": 8}))
    assert SEED_OFFSET not in one and SPACE.apply(base, one).seed == 5
    assert SEED_OFFSET not in SPACE.distributions()
    assert "search_seeds" not in SPACE.to_dict() and SEEDS.to_dict()["search_seeds"] == 3  # older studies' stored space unchanged
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="search_seeds must be a positive integer"):
            TuneSpace(search_seeds=bad)


def test_a_warm_started_trial_keeps_its_own_seed_as_this_space_names_it():
    config = BASE.replace(array="8x8", latency_weight=0.2, seed=12)
    assert params_for(config, SEEDS, base_seed=10)[0][SEED_OFFSET] == 2
    assert params_for(config, SEEDS, base_seed=12)[0][SEED_OFFSET] == 0
    assert params_for(config, SEEDS, base_seed=5) == (None, "search_seed = 7 is not in this study's space")
    assert SEED_OFFSET not in params_for(config, SPACE, base_seed=5)[0]  # a space without seeds ignores them


def test_a_trial_with_offset_k_searches_what_the_base_seed_plus_k_searches(tmp_path):
    base = BASE.replace(array="8x8", seed=3)
    point = {"latency_weight": 0.05, "rows": 8, "cols": 8}
    drawn = create_study(tmp_path / "drawn", objectives="accuracy,latency", seed=0)
    for offset in (0, 2):
        drawn.enqueue_trial({**point, SEED_OFFSET: offset})
    run_study(base=base, tune_space=SEEDS, out_root=tmp_path / "drawn", n_trials=2, study=drawn, seed=0,
              objectives="accuracy,latency", population_size=2)
    plain = create_study(tmp_path / "plain", objectives="accuracy,latency", seed=0)
    plain.enqueue_trial(point)
    run_study(base=base.replace(seed=5), tune_space=SPACE, out_root=tmp_path / "plain", n_trials=1, study=plain, seed=0,
              objectives="accuracy,latency", population_size=2)

    first, second = sorted(drawn.get_trials(), key=lambda t: t.number)
    assert (first.user_attrs["config"]["seed"], second.user_attrs["config"]["seed"]) == (3, 5)
    arch = lambda t: json.loads((Path(t.user_attrs["run_dir"]) / "arch.json").read_text())  # noqa: E731
    assert arch(second) == arch(plain.get_trials()[0])  # offset 2 on seed 3 is exactly a seed-5 search
    assert second.user_attrs["accuracy"] == plain.get_trials()[0].user_attrs["accuracy"]

    again = create_study(tmp_path / "again", objectives="accuracy,latency", seed=1)
    assert enqueue_from(again, tmp_path / "drawn", SEEDS, base_seed=3) == (2, [])
    assert [t.system_attrs["fixed_params"][SEED_OFFSET] for t in again.get_trials()] == [0, 2]  # each keeps its seed


def test_a_bad_search_seeds_is_one_red_line_and_writes_nothing(cli, tmp_path):
    one_line_error(cli("tune", *TINY, "--trials", "1", "--out", tmp_path / "t", "--search-seeds", "0"),
                   "--search-seeds must be a positive integer")
    assert not (tmp_path / "t").exists()
