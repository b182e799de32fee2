"""Issue 13, item 8: a resumed search repeats the uninterrupted one exactly."""

import json

import pytest
import pytorch_lightning as pl

from uboost.search import SearchConfig, run_search


class KilledAfterFirstEpoch(pl.Callback):
    """Dies as the second epoch starts: after the first epoch's checkpoint was written."""

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == 1:
            raise RuntimeError("killed")


@pytest.mark.parametrize("sampling", ["mixture", "single-path"])
def test_a_resumed_search_repeats_the_uninterrupted_one(tmp_path, sampling):
    config = SearchConfig(space="lenet", space_options={}, dataset="digits", image_size=8, epochs=3,
                          max_samples=128, batch_size=32, sampling=sampling, seed=3)
    whole = run_search(config, tmp_path / "whole")
    with pytest.raises(Exception, match="killed"):
        run_search(config, tmp_path / "cut", callbacks=[KilledAfterFirstEpoch()])
    for ckpt in (tmp_path / "cut" / "checkpoints").glob("interrupted*.ckpt"):
        ckpt.unlink()  # a kill -9 writes no exception checkpoint: only last.ckpt of epoch 0 is left
    resumed = run_search(config, tmp_path / "cut", resume=True)
    alphas = [json.loads((tmp_path / d / "alphas.json").read_text()) for d in ("whole", "cut")]
    assert alphas[0].keys() == alphas[1].keys()
    for label in alphas[0]:
        assert alphas[1][label] == pytest.approx(alphas[0][label], rel=1e-5, abs=1e-6), label
    assert resumed.arch == whole.arch
