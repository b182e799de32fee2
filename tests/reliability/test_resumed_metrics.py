"""Issue 27, wrong results: after a resumed search or retrain, metrics.csv holds each logged row
once: the rows logged after the checkpoint being resumed are dropped, since those steps run again."""

import json

import pytest

from tests.cli.conftest import TINY
from tests.reliability.conftest import assert_resumed_the_rest


def _epochs(n):
    args = list(TINY)
    args[args.index("--epochs") + 1] = str(n)
    return args


def _rows(path):
    from uboost.loggers import read_metrics

    return [(row.get("epoch"), row.get("step"), tuple(sorted(k for k in row if k not in ("epoch", "step"))))
            for row in read_metrics(path)]


def test_resumed_search_logs_each_row_once(cli, tmp_path):
    import torch

    whole = tmp_path / "whole"
    assert cli("search", *_epochs(2), "--out", whole).code == 0
    first = tmp_path / "first"
    assert cli("search", *_epochs(1), "--out", first).code == 0
    # the 2-epoch run killed in its second epoch: its metrics so far, the checkpoint of its first epoch
    run = tmp_path / "run"
    assert cli("search", *_epochs(2), "--out", run).code == 0
    epoch_one = torch.load(first / "checkpoints" / "last.ckpt", weights_only=True)
    assert 0 < epoch_one["uboost_metrics_rows"] < len(_rows(run / "metrics.csv"))
    torch.save(epoch_one, run / "checkpoints" / "last.ckpt")
    (run / "checkpoints" / "interrupted.ckpt").unlink(missing_ok=True)
    for name in ("arch.json", "result.json"):
        (run / name).unlink()
    assert cli("search", "--out", run, "--resume").code == 0
    rows = _rows(run / "metrics.csv")
    assert len(rows) == len(set(rows)), "a step was logged twice"
    assert [r[:2] for r in rows] == [r[:2] for r in _rows(whole / "metrics.csv")]  # every (epoch, step) row, once


def test_retrain_checkpoints_count_their_rows_and_a_resume_keeps_only_those(cli, run_copy):
    import torch

    from uboost.loggers import read_metrics, run_csv_logger

    assert cli("retrain", run_copy, "--epochs", "2", "--max-samples", "64", "--batch-size", "32").code == 0
    out = run_copy / "retrain"
    rows = _rows(out / "metrics.csv")
    state = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    # every epoch's rows are in it; the final test evaluation after training is logged after it (and again on a resume)
    assert state["uboost_metrics_rows"] == len(rows) - 1 and rows[-1][0] == 2

    logger = run_csv_logger(out, resume=True, keep_rows=1)  # what a resume from an earlier checkpoint keeps
    logger.experiment.save()
    assert _rows(out / "metrics.csv") == rows[:1]
    logger = run_csv_logger(out, resume=True, keep_rows=0)  # a checkpoint saved before the first row: none kept
    logger.experiment.log_metrics({"epoch": 0, "train_loss": 1.0}, step=0)
    logger.experiment.save()
    assert [row["train_loss"] for row in read_metrics(out / "metrics.csv")] == [1.0]


def test_a_damaged_metrics_file_on_resume_is_one_line(cli, run_copy):
    from tests.reliability.conftest import one_line_error

    for name in ("arch.json", "result.json"):
        (run_copy / name).unlink()
    (run_copy / "metrics.csv").write_bytes(b"epoch,step\n\xff\xfe,\x00\n")
    one_line_error(cli("search", "--out", run_copy, "--resume"), "metrics.csv is damaged")


def test_a_retrain_resumed_on_another_number_of_processes_is_refused_and_keeps_its_checkpoint(cli, run_copy):
    """Its LR schedule counts the steps of its process count: resumed on fewer, a cosine climbed back to
    the peak (onecycle: a traceback that also overwrote the checkpoint)."""
    import torch

    from tests.reliability.conftest import one_line_error
    from uboost.distributed.lightning import WORLD_KEY

    args = ["retrain", run_copy, "--epochs", "2", "--max-samples", "64", "--batch-size", "32"]
    assert cli(*args).code == 0
    ckpt = run_copy / "retrain" / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, weights_only=True)
    assert state[WORLD_KEY] == 1
    state[WORLD_KEY] = 2  # as a 2-device retrain leaves it
    torch.save(state, ckpt)
    before = ckpt.read_bytes()
    one_line_error(cli(*args, "--resume"), "trained by 2 processes", "--devices/--num-nodes giving 2")
    assert ckpt.read_bytes() == before


def _retrain_rows(out):
    import csv

    return list(csv.DictReader(open(out / "metrics.csv")))


@pytest.mark.parametrize("augment", [False, True])
def test_a_retrain_resumed_after_an_epoch_repeats_the_uninterrupted_one(run_copy, tmp_path, fits, augment):
    """Retrain checkpoints held no RNG state: the next epoch's shuffling (and augmentation) differed, and with it
    every later row and the model (96.1 vs 96.9 % measured)."""
    import os

    import pytorch_lightning as pl
    import torch

    from uboost.exceptions import SearchError
    from uboost.retrain import RetrainConfig, retrain

    config = RetrainConfig(epochs=3, batch_size=16, max_samples=96, accelerator="cpu", augment=augment)
    marks = [len(fits)]
    whole = retrain(run_copy, config, out=tmp_path / "whole")
    marks.append(len(fits))

    class Stop(pl.Callback):
        def on_train_epoch_start(self, trainer, module):
            if trainer.current_epoch == 2:
                raise KeyboardInterrupt

    with pytest.raises((KeyboardInterrupt, SearchError)):
        retrain(run_copy, config, out=tmp_path / "cut", callbacks=[Stop()])
    marks.append(len(fits))
    os.remove(tmp_path / "cut" / "checkpoints" / "interrupted.ckpt")  # as a kill after epoch 1: its last.ckpt
    resumed = retrain(run_copy, config, out=tmp_path / "cut", resume=True)
    assert_resumed_the_rest(fits, [*marks, len(fits)])  # epoch 2 only
    assert resumed.test_acc == whole.test_acc
    a = torch.load(tmp_path / "whole" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "cut" / "model.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)



def test_a_ctrl_c_as_an_epoch_begins_resumes_that_epoch_not_the_next(run_copy, tmp_path, fits):
    """The checkpoint held the new epoch's counter with the old epoch's finished batches: the resume skipped the
    epoch's training (three epochs asked, two trained)."""
    import json

    import pytorch_lightning as pl
    import torch

    from uboost.exceptions import SearchError
    from uboost.retrain import RetrainConfig, retrain
    from uboost.search import SearchConfig, run_search

    class Stop(pl.Callback):
        def on_train_epoch_start(self, trainer, module):
            if trainer.current_epoch == 1:
                raise KeyboardInterrupt

    config = RetrainConfig(epochs=3, batch_size=16, max_samples=96, accelerator="cpu", augment=False)
    marks = [len(fits)]
    whole = retrain(run_copy, config, out=tmp_path / "whole")
    marks.append(len(fits))
    with pytest.raises((KeyboardInterrupt, SearchError)):
        retrain(run_copy, config, out=tmp_path / "cut", callbacks=[Stop()])
    marks.append(len(fits))
    assert retrain(run_copy, config, out=tmp_path / "cut", resume=True).test_acc == whole.test_acc
    assert_resumed_the_rest(fits, [*marks, len(fits)])  # epochs 1 and 2, neither skipped nor epoch 0 again
    a = torch.load(tmp_path / "whole" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "cut" / "model.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)

    search = SearchConfig(space="lenet", dataset="digits", image_size=8, max_samples=96, epochs=3, batch_size=16,
                          accelerator="cpu")
    marks = [len(fits)]
    run_search(search, tmp_path / "s-whole")
    marks.append(len(fits))
    with pytest.raises((KeyboardInterrupt, SearchError)):
        run_search(search, tmp_path / "s-cut", callbacks=[Stop()])
    marks.append(len(fits))
    run_search(search, tmp_path / "s-cut", resume=True)
    assert_resumed_the_rest(fits, [*marks, len(fits)])
    assert json.loads((tmp_path / "s-cut" / "alphas.json").read_text()) == json.loads((tmp_path / "s-whole" / "alphas.json").read_text())


def test_a_torn_last_row_of_metrics_is_left_out(tmp_path):
    """A kill or a full disk mid-append leaves part of a row (``...,0.2187`` of 0.21875): not read as a value."""
    from uboost.loggers import read_metrics

    path = tmp_path / "metrics.csv"
    path.write_text("epoch,step,train_loss\r\n0,1,0.5\r\n0,2,0.21875\r\n0,3,0.2187")
    assert read_metrics(path) == [{"epoch": 0, "step": 1, "train_loss": 0.5}, {"epoch": 0, "step": 2, "train_loss": 0.21875}]


def test_a_resumed_run_counts_the_time_of_its_earlier_sessions(run_copy, tmp_path):
    """search_seconds / retrain_seconds counted only the session that finished the run."""
    import pytorch_lightning as pl
    import torch

    from uboost.checkpointing import ELAPSED_KEY
    from uboost.exceptions import SearchError
    from uboost.retrain import RetrainConfig, retrain
    from uboost.search import SearchConfig, run_search

    class Stop(pl.Callback):
        def on_train_epoch_start(self, trainer, module):
            if trainer.current_epoch == 1:
                raise KeyboardInterrupt

    def as_if_it_took_an_hour(ckpt):
        state = torch.load(ckpt, weights_only=True)
        assert state[ELAPSED_KEY] > 0
        state[ELAPSED_KEY] = 3600.0
        torch.save(state, ckpt)

    search = SearchConfig(space="lenet", dataset="digits", image_size=8, max_samples=64, epochs=2, batch_size=32)
    with pytest.raises((KeyboardInterrupt, SearchError)):
        run_search(search, tmp_path / "s", callbacks=[Stop()])
    as_if_it_took_an_hour(tmp_path / "s" / "checkpoints" / "interrupted.ckpt")
    assert 3600 < run_search(search, tmp_path / "s", resume=True).seconds < 3700
    assert 3600 < json.loads((tmp_path / "s" / "result.json").read_text())["search_seconds"] < 3700

    config = RetrainConfig(epochs=2, batch_size=32, max_samples=64, accelerator="cpu")
    with pytest.raises((KeyboardInterrupt, SearchError)):
        retrain(run_copy, config, out=tmp_path / "r", callbacks=[Stop()])
    as_if_it_took_an_hour(tmp_path / "r" / "checkpoints" / "interrupted.ckpt")
    assert 3600 < retrain(run_copy, config, out=tmp_path / "r", resume=True).seconds < 3700
