"""Issue 13, item 3: no file a user hands uboost can run code when loaded."""

import json

import pytest

from tests.reliability.conftest import TINY, one_line_error, write_evil


def _resumable(out):
    (out / "checkpoints").mkdir(parents=True)
    (out / "config.json").write_text(json.dumps({"space": "lenet", "space_options": {}, "image_size": 8, "epochs": 1,
                                                 "max_samples": 64, "batch_size": 32}))
    return out


def test_resume_refuses_a_malicious_checkpoint(cli, tmp_path):
    out = _resumable(tmp_path / "run")
    marker = tmp_path / "PWNED"
    write_evil(out / "checkpoints" / "last.ckpt", marker)
    one_line_error(cli("search", "--out", out, "--resume"), "refusing checkpoint", "would run code")
    assert not marker.exists()


def test_lightning_resume_itself_loads_weights_only(tmp_path, monkeypatch):
    """Even past uboost's own check (a file swapped in between), Lightning's load runs no code."""
    from uboost import runs
    from uboost.search import run_search

    out = _resumable(tmp_path / "run")
    marker = tmp_path / "PWNED"
    write_evil(out / "checkpoints" / "last.ckpt", marker)
    monkeypatch.setattr(runs, "check_checkpoint", lambda path: None)
    with pytest.raises(Exception, match="(?i)weights.only|unpickl|global"):
        run_search(None, out, resume=True)
    assert not marker.exists()


def test_a_real_checkpoint_loads_without_any_allow_listed_global(tiny_run):
    from uboost import runs

    state = runs.check_checkpoint(runs.latest_checkpoint(tiny_run))
    assert "state_dict" in state and state["epoch"] == 0


def test_export_refuses_malicious_retrained_weights(cli, run_copy, tmp_path):
    marker = tmp_path / "PWNED"
    write_evil(run_copy / "retrain" / "model.pt", marker, wrap=False)
    one_line_error(cli("export", run_copy, "--format", "torchscript", "--out", tmp_path / "m.pt"), "refusing", "model.pt")
    assert not marker.exists() and not (tmp_path / "m.pt").exists()


def test_export_with_stale_or_corrupt_weights_is_one_line(cli, run_copy, tmp_path):
    import torch

    weights = run_copy / "retrain" / "model.pt"
    weights.parent.mkdir()
    torch.save({"conv1.weight": torch.zeros(3, 3)}, weights)  # from another architecture
    one_line_error(cli("export", run_copy, "--format", "torchscript", "--out", tmp_path / "a.pt"), "does not fit", "retrain")
    weights.write_bytes(b"garbage")
    one_line_error(cli("export", run_copy, "--format", "torchscript", "--out", tmp_path / "b.pt"), "corrupt")


def test_cifar_pickles_are_checked_before_they_are_unpickled(cli, tmp_path):
    """torchvision's CIFAR reader unpickles its batches: it must refuse files that fail the checksum."""
    import pickle

    from tests.reliability.conftest import Evil

    marker = tmp_path / "PWNED"
    folder = tmp_path / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch", "batches.meta"):
        (folder / name).write_bytes(pickle.dumps(Evil(marker)))
    result = cli("search", *TINY[:2], "--dataset", "cifar10", "--data-dir", tmp_path / "data", "--epochs", "1",
                 "--out", tmp_path / "run")
    one_line_error(result, "cifar")
    assert not marker.exists()
    assert not (tmp_path / "run").exists(), "a refused command leaves no folder behind"
