"""Issue 25: ``uboost retrain --devices 2``; the test accuracy is over the whole test set, each sample once."""

import json
import subprocess
import sys

import pytest

from tests.cli.conftest import tiny_run  # noqa: F401 - fixture
from tests.distributed.conftest import ROOT, environment


def test_two_rank_retrain_reports_the_accuracy_of_the_saved_model_on_the_whole_test_set(tiny_run, tmp_path):  # noqa: F811
    import torch

    from uboost import runs
    from uboost.data import load_datasets
    from uboost.search import SearchConfig, build_space

    out = tmp_path / "retrain"
    argv = [sys.executable, "-m", "uboost", "retrain", str(tiny_run), "--devices", "2", "--accelerator", "cpu",
            "--epochs", "1", "--max-samples", "128", "--batch-size", "16", "--out", str(out)]
    done = subprocess.run(argv, cwd=ROOT, env=environment(), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("retrained:") == 1  # rank 1 prints nothing
    reported = json.loads((out / "retrain.json").read_text())["test_acc"]

    config = SearchConfig.from_dict(json.loads((tiny_run / "config.json").read_text()))
    space, shape, _ = build_space(config)
    network = runs.freeze_arch(space, json.loads((tiny_run / "arch.json").read_text()))
    network.load_state_dict(torch.load(out / "model.pt", weights_only=True))
    _, test = load_datasets(config.dataset, image_size=shape[-1], channels=shape[0], seed=0)
    x = torch.stack([test[i][0] for i in range(len(test))])
    y = torch.tensor([int(test[i][1]) for i in range(len(test))])
    with torch.no_grad():
        expected = (network.eval()(x).argmax(1) == y).float().mean().item()
    assert reported == pytest.approx(expected, abs=1e-6)  # float32 mean; one sample is 1/360
