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


def _search_stopped_after_epoch_0(out, epochs=2):
    import pytorch_lightning as pl

    from uboost.exceptions import SearchError
    from uboost.search import SearchConfig, run_search

    class Stop(pl.Callback):
        def on_train_epoch_start(self, trainer, module):
            if trainer.current_epoch == 1:
                raise KeyboardInterrupt

    config = SearchConfig(space="lenet", dataset="digits", image_size=8, epochs=epochs, max_samples=128, batch_size=16)
    with pytest.raises((KeyboardInterrupt, SearchError)):
        run_search(config, out, callbacks=[Stop()])


def _resume_under_file_size_limit(out, limit):
    """``uboost search --out OUT --resume`` in a process that cannot write a file past ``limit`` bytes (a full disk
    at that size: Python ignores SIGXFSZ, so writes fail with EFBIG)."""
    import resource
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "uboost", "search", "--out", str(out), "--resume"],
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)),
                          capture_output=True, text=True, timeout=300)


def test_a_resume_that_cannot_write_its_metrics_keeps_them(cli, tmp_path):
    """Lightning removed metrics.csv and wrote the kept rows again in place: a full disk there left half of them."""
    out = tmp_path / "run"
    _search_stopped_after_epoch_0(out)
    before = (out / "metrics.csv").read_bytes()
    proc = _resume_under_file_size_limit(out, len(before) // 2)
    assert proc.returncode == 1 and "File too large" in proc.stderr, proc.stderr[-2000:]
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr[-2000:]
    assert (out / "metrics.csv").read_bytes() == before
    assert cli("search", "--out", out, "--resume").code == 0


def test_a_checkpoint_that_hits_a_full_disk_is_one_line_and_keeps_the_last(cli, tmp_path):
    """The disk fills as the resumed epoch logs its first rows; then the checkpoint written on that exception fails
    too, and torch.save reports it as a RuntimeError of its zip writer: a page of tracebacks."""
    out = tmp_path / "run"
    _search_stopped_after_epoch_0(out, epochs=3)
    proc = _resume_under_file_size_limit(out, len((out / "metrics.csv").read_bytes()) + 200)
    assert proc.returncode == 1 and "earlier checkpoints are kept" in proc.stderr, proc.stderr[-2000:]
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr[-2000:]
    assert _loadable(out / "checkpoints" / "last.ckpt")["epoch"] == 0
    assert cli("search", "--out", out, "--resume").code == 0
