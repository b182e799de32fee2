"""A Ctrl-C inside an epoch stops at the next batch boundary, and the resume trains the rest of that epoch in the
order it had: Lightning restarted a part-done epoch with a new shuffled order (some samples twice, others not at
all), so a resumed retrain or search did not repeat the one it continued."""

import json
import os
import signal

import pytest

from tests.reliability.conftest import assert_resumed_the_rest


def _ctrl_c_at(epoch, batch, where="train"):
    import pytorch_lightning as pl

    class CtrlC(pl.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch_, batch_idx):
            last = batch == -1 and batch_idx + 1 == trainer.num_training_batches  # -1: the epoch's last batch
            if where == "train" and trainer.current_epoch == epoch and (batch_idx == batch or last):
                os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C: it lands mid-step, the stop waits for the boundary

        def on_validation_batch_end(self, trainer, module, outputs, batch_, batch_idx, dataloader_idx=0):
            if where == "val" and not trainer.sanity_checking and trainer.current_epoch == epoch and batch_idx == batch:
                os.kill(os.getpid(), signal.SIGINT)  # during the epoch's validation

    return CtrlC()


def _same_weights(a, b):
    import torch

    a, b = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("augment, at", [(False, (1, 2, "train")), (True, (1, 2, "train")), (True, (0, 5, "train")),
                                         (True, (0, 0, "val"))])
def test_a_retrain_ctrl_c_inside_an_epoch_resumes_it_bit_for_bit(run_copy, tmp_path, fits, augment, at):
    """With augmentation too: the stop comes before the next batch is fetched (and augmented). At the epoch's last
    batch and in its validation the stop waits for the next epoch's start (after the validation and last.ckpt):
    Lightning resumed a checkpoint of a finished epoch's batches with its epoch counter one behind (a second stop
    then resumed differently; test below), and dropped that validation's row."""
    from uboost.exceptions import SearchError
    from uboost.retrain import RetrainConfig, retrain

    config = RetrainConfig(epochs=3, batch_size=16, max_samples=96, accelerator="cpu", augment=augment)
    marks = [len(fits)]
    whole = retrain(run_copy, config, out=tmp_path / "whole")
    marks.append(len(fits))
    with pytest.raises((KeyboardInterrupt, SearchError)):
        retrain(run_copy, config, out=tmp_path / "cut", callbacks=[_ctrl_c_at(*at)])
    marks.append(len(fits))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl-C is Python's again
    resumed = retrain(run_copy, config, out=tmp_path / "cut", resume=True)
    assert_resumed_the_rest(fits, [*marks, len(fits)])  # the rest only, not again from the start
    assert resumed.test_acc == whole.test_acc
    assert _logged_steps(tmp_path / "cut") == _logged_steps(tmp_path / "whole")  # every row, the validation's too
    assert _same_weights(tmp_path / "whole" / "model.pt", tmp_path / "cut" / "model.pt")


@pytest.mark.parametrize("stops", [((0, 5, "train"), (1, 2, "train")), ((0, 0, "val"), (2, 3, "train")),
                                   ((0, 5, "train"), (1, 5, "train"), (2, 1, "train"))])
def test_two_ctrl_cs_the_first_at_an_epochs_end_resume_bit_for_bit(run_copy, tmp_path, stops):
    """A QA report: a Ctrl-C at an epoch's last batch, a resume, a second Ctrl-C inside a later epoch and a resume
    ended 0.3 points away from the uninterrupted retrain (weights up to 0.09 apart), and a search with other
    alphas and epoch 3's first steps logged twice: the second checkpoint held an epoch counter one behind."""
    from uboost.exceptions import SearchError
    from uboost.retrain import RetrainConfig, retrain

    config = RetrainConfig(epochs=3, batch_size=16, max_samples=96, accelerator="cpu", augment=True)
    whole = retrain(run_copy, config, out=tmp_path / "whole")
    for i, at in enumerate(stops):
        with pytest.raises((KeyboardInterrupt, SearchError)):
            retrain(run_copy, config, out=tmp_path / "cut", resume=i > 0, callbacks=[_ctrl_c_at(*at)])
    assert retrain(run_copy, config, out=tmp_path / "cut", resume=True).test_acc == whole.test_acc
    assert _logged_steps(tmp_path / "cut") == _logged_steps(tmp_path / "whole")
    assert _same_weights(tmp_path / "whole" / "model.pt", tmp_path / "cut" / "model.pt")


def test_a_search_stopped_at_an_epochs_end_then_inside_one_resumes_bit_for_bit(tmp_path):
    from uboost.exceptions import SearchError
    from uboost.search import SearchConfig, run_search

    # all of digits (the weights' and the architecture's loaders of unequal length): epoch 2's first steps were
    # logged twice and every later step one ahead
    config = SearchConfig(space="lenet", dataset="digits", image_size=8, epochs=3, latency_weight=0.1, accelerator="cpu")
    run_search(config, tmp_path / "whole")
    for i, at in enumerate([(0, -1), (2, 6)]):  # the first stop at epoch 0's last batch
        with pytest.raises((KeyboardInterrupt, SearchError)):
            run_search(config, tmp_path / "cut", resume=i > 0, callbacks=[_ctrl_c_at(*at)])
    run_search(config, tmp_path / "cut", resume=True)
    alphas = [json.loads((tmp_path / run / "alphas.json").read_text()) for run in ("whole", "cut")]
    assert alphas[0] == alphas[1]
    assert _logged_steps(tmp_path / "cut") == _logged_steps(tmp_path / "whole")  # no step logged twice or shifted
    from uboost.loggers import read_metrics

    refs = [[(r.get("epoch"), r.get("hw/latency_ref_ms")) for r in read_metrics(tmp_path / run / "metrics.csv")]
            for run in ("whole", "cut")]
    assert refs[0] == refs[1]  # the reference latency in epoch 0's rows only, not again in the resumed epoch's


@pytest.mark.parametrize("sampling, data_split, batch", [("single-path", 0.5, 1), ("mixture", 0.5, 1),
                                                         ("single-path", 0.375, 2)])
def test_a_search_ctrl_c_inside_an_epoch_resumes_it_bit_for_bit(tmp_path, fits, sampling, data_split, batch):
    """0.375 of 128 samples: 3 weight batches and 5 architecture batches per epoch; stopped after the weights'
    loader began its second pass of the epoch."""
    from uboost.exceptions import SearchError
    from uboost.search import SearchConfig, run_search

    config = SearchConfig(space="lenet", dataset="digits", image_size=8, max_samples=128, epochs=3, batch_size=16,
                          accelerator="cpu", sampling=sampling, data_split=data_split)
    run_search(config, tmp_path / "whole")
    with pytest.raises((KeyboardInterrupt, SearchError)):
        run_search(config, tmp_path / "cut", callbacks=[_ctrl_c_at(1, batch)])
    run_search(config, tmp_path / "cut", resume=True)
    assert_resumed_the_rest(fits, [0, 1, 2, 3])
    alphas = [json.loads((tmp_path / run / "alphas.json").read_text()) for run in ("whole", "cut")]
    assert alphas[0] == alphas[1]
    assert _logged_steps(tmp_path / "cut") == _logged_steps(tmp_path / "whole")  # the stopped batch's row too
    # QA: the rows after the stop lacked the prob/* values logged at the epoch's first step (Lightning carries them)
    assert _logged_probs(tmp_path / "cut") == _logged_probs(tmp_path / "whole")


def _logged_probs(run):
    from uboost.loggers import read_metrics

    rows = [{k: v for k, v in row.items() if k.startswith("prob/")} for row in read_metrics(run / "metrics.csv")]
    assert any(any(row.values()) for row in rows)  # (logged at all)
    return rows


def _logged_steps(run):
    from uboost.loggers import read_metrics

    return [(row.get("epoch"), row.get("step")) for row in read_metrics(run / "metrics.csv")]


@pytest.mark.parametrize("stop_at, at_batch_end", [(1, False), (3, False), (5, False), (4, True), (2, True)])
def test_loaders_of_unequal_length_resume_their_own_passes(stop_at, at_batch_end):
    """Two loaders iterated as a search's are (Lightning's max_size_cycle: the shorter one starts a new pass
    mid-epoch; a sized epoch is fetched batch by batch up to its length), stopped after ``stop_at`` trained batches:
    fresh loaders resumed from the saved history yield exactly the batches the uninterrupted epoch had left, and
    leave their generators where the uninterrupted epoch did (the next epoch's order)."""
    import torch
    from pytorch_lightning.utilities.combined_loader import CombinedLoader

    from uboost.resumable_loader import ResumableLoader, resume_passes, save_passes

    def loaders():
        return {name: ResumableLoader(torch.arange(n), batch_size=2, shuffle=True,
                                      generator=torch.Generator().manual_seed(seed))
                for name, n, seed in (("train", 14, 1), ("val", 8, 2))}

    def progress(done):
        if at_batch_end:  # stopped in on_train_batch_end of batch done - 1: Lightning counts that batch as done
            current = {"ready": done, "started": done, "processed": done, "completed": done - 1}
        else:  # stopped before batch done started, batch done fetched
            current = {"ready": done + 1, "started": done, "processed": done, "completed": done}
        return {"loops": {"fit_loop": {"epoch_loop.batch_progress": {"current": current, "total": dict(current)}}}}

    def batches(combined, n):
        it = iter(combined)
        return [tuple(tuple(b.tolist()) for b in next(it)[0].values()) for _ in range(n)]

    uninterrupted = loaders()
    whole = batches(CombinedLoader(uninterrupted, "max_size_cycle"), 7)
    first = loaders()
    fetched = stop_at if at_batch_end else stop_at + 1
    assert batches(CombinedLoader(first, "max_size_cycle"), fetched) == whole[:fetched]
    checkpoint = progress(stop_at)
    save_passes(checkpoint, first, world_size=1)
    assert checkpoint["uboost_loader_passes"]["pending"] == fetched - stop_at

    again = loaders()
    for g in (again["train"].generator, again["val"].generator):
        g.manual_seed(99)  # the generators' own state moved on: the history, not it, must give the order
    assert resume_passes(checkpoint, again, world_size=1)
    resumed = CombinedLoader(again, "max_size_cycle")
    iter(resumed)  # a pass begun and dropped before its first batch keeps the resume for the next
    assert whole[:stop_at] + batches(resumed, 7 - stop_at) == whole
    assert all(torch.equal(again[k].generator.get_state(), uninterrupted[k].generator.get_state()) for k in again)
    assert not resume_passes(checkpoint, again, world_size=2)  # sharded runs resume as Lightning does


def test_a_third_ctrl_c_while_the_checkpoint_is_written_is_ignored(run_copy, tmp_path):
    """Ctrl-C twice stops at once; Lightning then ignores SIGINT until interrupted.ckpt is written, but the stop-between-
    batches handler put Python's back first: a third Ctrl-C lost the checkpoint the error message pointed to."""
    import pytorch_lightning as pl

    from uboost.exceptions import SearchError
    from uboost.retrain import RetrainConfig, retrain

    class Twice(pl.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if trainer.current_epoch == 0 and batch_idx == 1:
                os.kill(os.getpid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGINT)  # "again to stop now"

        def on_exception(self, trainer, module, exception):
            os.kill(os.getpid(), signal.SIGINT)  # impatient: a third while it shuts down

    config = RetrainConfig(epochs=2, batch_size=16, max_samples=96, accelerator="cpu", augment=False)
    with pytest.raises((KeyboardInterrupt, SearchError)):
        retrain(run_copy, config, out=tmp_path / "cut", callbacks=[Twice()])
    assert (tmp_path / "cut" / "checkpoints" / "interrupted.ckpt").is_file()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
