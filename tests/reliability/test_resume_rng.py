"""Issue 13, item 8: a resumed search repeats the uninterrupted one exactly."""

import csv
import json

import pytest
import pytorch_lightning as pl

from tests.reliability.conftest import assert_resumed_the_rest
from uboost.search import SearchConfig, run_search


class KilledAfterFirstEpoch(pl.Callback):
    """Dies as the second epoch starts: after the first epoch's checkpoint was written."""

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == 1:
            raise RuntimeError("killed")


@pytest.mark.parametrize("sampling,budget,score", [("mixture", False, 0.0), ("single-path", False, 0.0),
                                                   ("single-path", True, 0.0), ("single-path", False, 1.0),
                                                   ("single-path", False, "blind")],
                         ids=["mixture", "single-path", "single-path-budget-commit", "single-path-score-function",
                              "single-path-score-on-blind"])
def test_a_resumed_search_repeats_the_uninterrupted_one(tmp_path, fits, sampling, budget, score):
    # score: the score function's baseline (a moving average of the task losses) travels in the checkpoint; "blind":
    # so do the straight-through readings of score_on="blind" (2 steps an epoch: its 4 readings span the cut)
    on = "blind" if score == "blind" else "all"
    config = SearchConfig(space="lenet", space_options={}, dataset="digits", image_size=8, epochs=3,
                          max_samples=128, batch_size=32, sampling=sampling, seed=3,
                          score_weight=1.0 if score == "blind" else score, score_on=on)
    if budget:  # the commit phase (the last 2/3 of the steps) spans the cut: its projection is re-solved on resume
        from uboost.frontier import load_projector

        run_search(config, tmp_path / "free")
        cheapest = load_projector(tmp_path / "free").projector.cheapest().latency_ms
        config = config.replace(target_latency_ms=1.5 * cheapest, budget_commit=0.6)
    marks = [len(fits)]
    whole = run_search(config, tmp_path / "whole")
    marks.append(len(fits))
    with pytest.raises(Exception, match="killed"):
        run_search(config, tmp_path / "cut", callbacks=[KilledAfterFirstEpoch()])
    marks.append(len(fits))
    for ckpt in (tmp_path / "cut" / "checkpoints").glob("interrupted*.ckpt"):
        ckpt.unlink()  # a kill -9 writes no exception checkpoint: only last.ckpt of epoch 0 is left
    resumed = run_search(config, tmp_path / "cut", resume=True)
    assert_resumed_the_rest(fits, [*marks, len(fits)])  # epochs 1-2 only, from last.ckpt
    alphas = [json.loads((tmp_path / d / "alphas.json").read_text()) for d in ("whole", "cut")]
    assert alphas[0].keys() == alphas[1].keys()
    for label in alphas[0]:
        assert alphas[1][label] == pytest.approx(alphas[0][label], rel=1e-5, abs=1e-6), label
    assert resumed.arch == whole.arch
    if budget:  # the commit phase ran in both
        for d in ("whole", "cut"):
            with open(tmp_path / d / "metrics.csv") as f:
                assert any(row.get("hw/committed_latency_ms") for row in csv.DictReader(f)), d
