"""Metrics through real Lightning loggers; the first search shows latency in µs and utilization in %."""

import csv

import pytest

from tests.cli.conftest import TINY, one_line_error


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_search_metrics_come_from_lightning_csv_logger(cli, tmp_path):
    out = tmp_path / "run"
    assert cli("search", *TINY, "--epochs", "2", "--out", out, "--logger", "csv").code == 0
    rows = _rows(out / "metrics.csv")
    assert rows and all(r["epoch"].isdigit() and r["step"].isdigit() for r in rows)  # integers, not 0.0
    assert {r["epoch"] for r in rows} == {"0", "1"}
    assert any(r.get("hw/latency_ms") for r in rows) and any(r.get("val_acc") for r in rows)
    hparams = (out / "hparams.yaml").read_text()
    assert "space: lenet" in hparams and "latency_weight:" in hparams


def test_unknown_or_missing_logger_is_one_line_and_writes_nothing(cli, tmp_path):
    out = tmp_path / "run"
    one_line_error(cli("search", *TINY, "--out", out, "--logger", "nope"), "unknown logger 'nope'", "tensorboard")
    assert not out.exists()
    import importlib.util

    if importlib.util.find_spec("mlflow") is None:
        one_line_error(cli("search", *TINY, "--out", out, "--logger", "mlflow"), "--logger mlflow needs the mlflow package")
        assert not out.exists()


def test_run_search_accepts_any_lightning_logger(tmp_path):
    from pytorch_lightning.loggers.logger import Logger

    from uboost.search import SearchConfig, run_search

    class Recording(Logger):
        name, version = "recording", "0"
        metrics: list = []
        hparams: dict = {}

        def log_metrics(self, metrics, step=None):
            self.metrics.append(dict(metrics))

        def log_hyperparams(self, params, *args, **kwargs):
            self.hparams.update(params)

    recording = Recording()
    config = SearchConfig(space="lenet", image_size=8, epochs=1, max_samples=64, batch_size=32)
    run_search(config, tmp_path / "run", logger=recording)
    assert any("hw/latency_ms" in m for m in recording.metrics) and any("val_acc" in m for m in recording.metrics)
    assert recording.hparams["space"] == "lenet"
    assert (tmp_path / "run" / "metrics.csv").is_file()  # the run's own record is still written


def test_progress_bar_shows_microseconds_and_percent():
    from uboost.search import progress_metrics

    shown = progress_metrics({"hw/latency_ms": 0.0016, "hw/derived_latency_ms": 0.00123, "hw/derived_utilization": 0.00265,
                              "train_acc": 0.5, "v_num": 0, "train_loss": 1.0})
    # the utilization beside the derived latency is the derived network's, as the search's result (a QA report:
    # the expected one, 13.8 %, sat next to the derived µs of a network whose result said 16.9 %)
    assert shown["expected µs"] == "1.600" and shown["derived µs"] == "1.230" and shown["derived util %"] == "0.27"
    assert shown["acc %"] == "50.0" and "v_num" not in shown and shown["train_loss"] == 1.0


def test_search_plot_curves_have_units_val_accuracy_and_epoch_boundaries():
    from uboost.search import search_curves

    rows = [
        {"epoch": "0", "step": "0", "hw/latency_ms": "0.002", "hw/utilization": "0.2", "train_acc": "0.5"},
        {"epoch": "0", "step": "1", "hw/latency_ms": "0.001", "hw/utilization": "0.3", "train_acc": "0.6"},
        {"epoch": "0", "step": "2", "val_acc": "0.7"},
        {"epoch": "1", "step": "2", "hw/latency_ms": "0.001", "hw/utilization": "0.4"},
    ]
    panels, boundaries = search_curves(rows)
    assert set(panels) == {"latency (µs)", "utilization (%)", "accuracy (%)"}
    assert panels["latency (µs)"]["expected (supernet)"][1] == pytest.approx([2.0, 1.0, 1.0])
    assert panels["utilization (%)"]["expected (supernet)"][1] == pytest.approx([20.0, 30.0, 40.0])
    assert panels["accuracy (%)"]["validation (per epoch)"] == ([2.0], [pytest.approx(70.0)])
    assert boundaries == [2.0]


def test_the_demo_network_uses_the_default_array_meaningfully():
    """The README's first search (darts-cifar on digits, default options and array): utilization
    must be large enough to read and move, not 0.3%."""
    import torch

    from uboost.search import SearchConfig, build_cost_model, build_space

    config = SearchConfig()
    space, shape, _ = build_space(config)
    torch.manual_seed(0)
    frozen = space.freeze({label: mutable.default() for label, mutable in space.simplify().items()})
    report = build_cost_model(config).evaluate(frozen, shape)
    assert report.utilization > 0.05, f"{report.utilization:.2%} of {config.array}"


LIGHTNING_CHATTER = ("GPU available", "TPU available", "Tip:", "litlogger", "log_every_n_steps", "`Trainer.fit` stopped")


def test_retrain_prints_no_lightning_chatter(tiny_run, tmp_path):
    """Lightning's import sets its loggers to INFO (device lines, a product tip) after the CLI quieted
    them; and 2 batches an epoch under log_every_n_steps=10 warned. A real process: Lightning's log
    handler holds the stderr of the process it was imported in."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONWARNINGS", None)
    done = subprocess.run([sys.executable, "-m", "uboost", "retrain", str(tiny_run), "--epochs", "1", "--max-samples", "64",
                           "--batch-size", "32", "--out", str(tmp_path / "retrain")], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    said = done.stdout + done.stderr
    assert "test accuracy" in said
    assert not [chatter for chatter in LIGHTNING_CHATTER if chatter in said], said[-3000:]
