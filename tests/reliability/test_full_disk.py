"""Issue 27, data loss: a full disk mid-checkpoint keeps the previous checkpoint and ends in one line."""

import errno

import pytest

from tests.reliability.conftest import one_line_error


def _disk_full_from_epoch(monkeypatch, epoch):
    """From ``epoch`` on, every checkpoint write fills the disk after a few bytes."""
    import pytorch_lightning as pl

    import uboost.checkpointing as checkpointing

    real = checkpointing.torch_save
    state = {"full": False}

    def save(checkpoint, file):
        if not state["full"]:
            return real(checkpoint, file)
        file.write(b"PK\x03\x04 torn")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpointing, "torch_save", save)

    class FillDisk(pl.Callback):
        def on_train_epoch_start(self, trainer, *args):
            if trainer.current_epoch >= epoch:
                state["full"] = True

    return FillDisk()


def _loadable(path):
    import torch

    return torch.load(path, weights_only=True)


def test_full_disk_during_retrain_keeps_the_last_good_checkpoint(cli, run_copy, monkeypatch):
    from uboost.exceptions import RunDirError
    from uboost.retrain import RetrainConfig, retrain

    fill = _disk_full_from_epoch(monkeypatch, 1)
    with pytest.raises(RunDirError, match="No space left"):
        retrain(run_copy, RetrainConfig(epochs=2, max_samples=64, batch_size=32), callbacks=[fill])
    ckpt = run_copy / "retrain" / "checkpoints"
    assert _loadable(ckpt / "last.ckpt")["epoch"] == 0  # epoch 1's write failed: epoch 0's is intact
    assert not (ckpt / "interrupted.ckpt").exists()
    assert not [p for p in ckpt.iterdir() if p.name.startswith(".")], "no temporary files left behind"
    monkeypatch.undo()
    assert cli("retrain", run_copy, "--epochs", "2", "--max-samples", "64", "--batch-size", "32", "--resume").code == 0


def test_full_disk_during_search_is_one_line_and_resumable(cli, tmp_path, monkeypatch):
    from tests.cli.conftest import TINY
    import uboost.search as search

    fill = _disk_full_from_epoch(monkeypatch, 1)
    original = search.run_search

    def with_fill(config, out, *args, **kwargs):
        kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), fill]
        return original(config, out, *args, **kwargs)

    monkeypatch.setattr(search, "run_search", with_fill)
    out = tmp_path / "run"
    args = [a if a != "1" or TINY[i - 1] != "--epochs" else "2" for i, a in enumerate(TINY)]
    one_line_error(cli("search", *args, "--out", out), "No space left")
    ckpt = out / "checkpoints"
    assert _loadable(ckpt / "last.ckpt")["epoch"] == 0
    assert not (ckpt / "interrupted.ckpt").exists()
    monkeypatch.undo()
    assert cli("search", *args, "--out", out, "--resume").code == 0
