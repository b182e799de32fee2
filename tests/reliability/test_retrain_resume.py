"""Issue 13, item 11: retrain checkpoints every epoch; Ctrl-C is one line, exit 130, resumable."""

import json

import pytest

from tests.reliability.conftest import one_line_error


def _ctrl_c_at(step):
    import pytorch_lightning as pl

    class CtrlC(pl.Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == step:
                raise KeyboardInterrupt

    return CtrlC()


def test_interrupted_retrain_resumes_from_its_checkpoint(cli, run_copy, fits):
    from uboost.retrain import RetrainConfig, RetrainInterrupted, retrain

    config = RetrainConfig(epochs=3, max_samples=64, batch_size=32)
    with pytest.raises(RetrainInterrupted, match="--resume") as interrupted:
        retrain(run_copy, config, callbacks=[_ctrl_c_at(5)])  # 2 steps per epoch: in epoch 3
    # the command it names repeats the settings (the defaults' flags left out): run as printed, it resumes
    assert f"continue with: uboost retrain {run_copy} --epochs 3 --batch-size 32 --max-samples 64 --resume" in str(interrupted.value)
    ckpt = run_copy / "retrain" / "checkpoints"
    assert (ckpt / "last.ckpt").is_file() and (ckpt / "interrupted.ckpt").is_file()
    assert not (run_copy / "retrain" / "model.pt").exists()

    import torch

    resumed_from = torch.load(ckpt / "interrupted.ckpt", weights_only=True)["global_step"]
    assert resumed_from >= 4, "at most the epoch in progress is lost"
    cut = len(fits)
    result = cli("retrain", run_copy, "--epochs", "3", "--max-samples", "64", "--batch-size", "32", "--resume")
    assert result.code == 0, result.err
    resumed = fits[cut:]
    assert [entry["start"] for entry in resumed] == [resumed_from]  # from the checkpoint, not from step 0
    assert sum(entry["batches"] for entry in resumed) == 6 - resumed_from  # the 2 x 3 steps left
    assert (run_copy / "retrain" / "model.pt").is_file()
    assert json.loads((run_copy / "retrain" / "retrain.json").read_text())["test_acc"] >= 0


def test_ctrl_c_during_retrain_is_one_line_and_exit_130(cli, run_copy, monkeypatch):
    import uboost.retrain as module

    real = module._retrain

    def interrupted(*args, **kwargs):
        args[-1].append(_ctrl_c_at(1))  # extra callbacks
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "_retrain", interrupted)
    result = cli("retrain", run_copy, "--epochs", "2", "--max-samples", "64", "--batch-size", "32")
    assert result.code == 130, (result.code, result.err)
    lines = [l for l in result.err.splitlines() if l.strip()]
    assert len(lines) == 1 and "--resume" in lines[0] and "Traceback" not in result.err


def test_retrain_resume_without_a_checkpoint_is_one_line(cli, run_copy):
    one_line_error(cli("retrain", run_copy, "--epochs", "1", "--resume"), "no retrain checkpoint")


def test_search_force_removes_retrain_checkpoints(cli, run_copy):
    from uboost.retrain import RetrainConfig, RetrainInterrupted, retrain

    with pytest.raises(RetrainInterrupted):
        retrain(run_copy, RetrainConfig(epochs=2, max_samples=64, batch_size=32), callbacks=[_ctrl_c_at(1)])
    assert (run_copy / "retrain" / "checkpoints" / "interrupted.ckpt").is_file()
    from tests.reliability.conftest import TINY

    assert cli("search", *TINY, "--out", run_copy, "--force").code == 0
    assert not (run_copy / "retrain").exists()


def test_retrain_resume_refuses_changed_settings_in_one_line(cli, run_copy):
    from tests.reliability.conftest import tree

    first = cli("retrain", run_copy, "--epochs", "1", "--max-samples", "64", "--batch-size", "32")
    assert first.code == 0, first.err
    before = tree(run_copy)
    # a longer schedule or another learning rate would silently train with the checkpoint's schedule
    one_line_error(cli("retrain", run_copy, "--epochs", "3", "--max-samples", "64", "--batch-size", "32", "--resume"),
                   "epochs 1 -> 3", "without --resume")
    one_line_error(cli("retrain", run_copy, "--lr", "0.5", "--epochs", "1", "--max-samples", "64", "--batch-size", "32", "--resume"),
                   "learning_rate 0.05 -> 0.5")
    # the same settings: a finished retrain has nothing to resume, and its model.pt and result are not rewritten
    one_line_error(cli("retrain", run_copy, "--epochs", "1", "--max-samples", "64", "--batch-size", "32", "--resume"),
                   "holds a finished retrain", "nothing to resume", "--force")
    assert tree(run_copy) == before


def test_a_forced_retrain_stopped_midway_is_an_interrupted_retrain_not_the_old_one(cli, run_copy):
    """--force over a finished retrain, then Ctrl-C: the old retrain.json and model.pt stayed beside the new curves
    and checkpoints, so the folder read as the old retrain, finished, and the hint sent the user to --force again."""
    from uboost.retrain import RetrainConfig, RetrainInterrupted, retrain

    args = ("--epochs", "2", "--max-samples", "64", "--batch-size", "32")
    assert cli("retrain", run_copy, *args).code == 0
    out = run_copy / "retrain"
    with pytest.raises(RetrainInterrupted):
        retrain(run_copy, RetrainConfig(epochs=2, max_samples=64, batch_size=32, seed=1), callbacks=[_ctrl_c_at(1)])
    assert not (out / "retrain.json").exists() and not (out / "model.pt").exists()
    one_line_error(cli("retrain", run_copy, *args, "--seed", "1"), "interrupted retrain", "--resume")
    assert cli("retrain", run_copy, *args, "--seed", "1", "--resume").code == 0
    assert json.loads((out / "retrain.json").read_text())["config"]["seed"] == 1


def test_the_continue_command_repeats_another_array_and_dataflow(run_copy):
    """A retrain priced on --array/--dataflow other than the search's: the command it prints must say so, or the
    resumed retrain is priced on the search's array without a word (a checkpoint holds no pricing)."""
    from uboost.retrain import RetrainConfig, RetrainInterrupted, retrain
    from uboost.runs import load_run, network_config
    from uboost.search import SearchConfig

    own = SearchConfig.from_dict(network_config(load_run(run_copy)))
    other = own.replace(array="32x32", dataflow="os" if own.dataflow != "os" else "ws")
    config = RetrainConfig(epochs=3, max_samples=64, batch_size=32)
    with pytest.raises(RetrainInterrupted) as interrupted:
        retrain(run_copy, config, search_config=other, callbacks=[_ctrl_c_at(1)])
    assert f"--array 32x32 --dataflow {other.dataflow} --resume" in str(interrupted.value)
    with pytest.raises(RetrainInterrupted) as same:
        retrain(run_copy, config, callbacks=[_ctrl_c_at(1)], out=run_copy / "again")
    assert "--array" not in str(same.value) and "--dataflow" not in str(same.value)


def test_ctrl_c_in_the_closing_test_is_a_resumable_interruption(cli, run_copy, tmp_path):
    """A Ctrl-C during the test after the last epoch was Lightning's bare exit 1: no line, no model.pt, although
    training had finished. Now it is the retrain's one line, and --resume finishes it as the uninterrupted run."""
    import shutil

    import pytorch_lightning as pl

    from uboost.retrain import RetrainConfig, RetrainInterrupted, retrain

    class CtrlCInTest(pl.Callback):
        def on_validation_batch_end(self, trainer, *args):
            if trainer.state.fn == "validate":
                raise KeyboardInterrupt

    clean = tmp_path / "clean"
    shutil.copytree(run_copy, clean)
    config = RetrainConfig(epochs=2, max_samples=64, batch_size=32)
    with pytest.raises(RetrainInterrupted, match="--resume"):
        retrain(run_copy, config, callbacks=[CtrlCInTest()])
    assert not (run_copy / "retrain" / "model.pt").exists()
    result = cli("retrain", run_copy, "--epochs", "2", "--max-samples", "64", "--batch-size", "32", "--resume")
    assert result.code == 0, result.err
    uninterrupted = retrain(clean, config)
    resumed = json.loads((run_copy / "retrain" / "retrain.json").read_text())
    assert resumed["test_acc"] == uninterrupted.test_acc


def test_a_resume_past_a_torn_checkpoint_says_so(cli, run_copy):
    """QA: a torn interrupted.ckpt was passed over in silence; the resume took last.ckpt and the epoch in
    progress was lost without a word. It still resumes from the checkpoint that reads, and says which it passed over."""
    from uboost.retrain import RetrainConfig, RetrainInterrupted, retrain

    with pytest.raises(RetrainInterrupted):
        retrain(run_copy, RetrainConfig(epochs=3, max_samples=64, batch_size=32), callbacks=[_ctrl_c_at(3)])
    torn = run_copy / "retrain" / "checkpoints" / "interrupted.ckpt"
    assert (torn.parent / "last.ckpt").is_file()
    torn.write_bytes(b"torn")
    result = cli("retrain", run_copy, "--epochs", "3", "--max-samples", "64", "--batch-size", "32", "--resume")
    assert result.code == 0, result.err
    notes = [line for line in result.err.splitlines() if "unreadable" in line]
    assert len(notes) == 1 and "interrupted.ckpt" in notes[0] and "torn or corrupt" in notes[0], result.err
    assert (run_copy / "retrain" / "retrain.json").is_file()
