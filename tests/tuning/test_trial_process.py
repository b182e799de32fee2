"""Issue 12, tune items: pruning through Optuna's Lightning callback in the trial process (not by
polling its CSV), live progress per running trial, the Pareto plot from optuna.visualization."""

from __future__ import annotations

import io

import optuna
import pytest

from uboost import UBoostError
from uboost.search import SearchConfig
from uboost.tuning import TuneSpace, create_study, pareto_plot, run_study

BASE = SearchConfig(space="lenet", space_options={"widths": [4, 8], "hidden": [16]}, dataset="digits", image_size=8,
                    epochs=1, max_samples=128, batch_size=32)
ONE_ARRAY = TuneSpace(rows=(8,), cols=(8,))


class _Always(optuna.pruners.BasePruner):
    def prune(self, study, trial):
        return True


def test_the_child_uses_optunas_lightning_pruning_callback():
    import pytorch_lightning as pl
    from optuna_integration import PyTorchLightningPruningCallback

    from uboost.tuning.callbacks import PipeTrial, pruning_callback

    callback = pruning_callback(PipeTrial(conn=None, number=3))
    assert isinstance(callback, PyTorchLightningPruningCallback) and isinstance(callback, pl.Callback)
    assert callback.monitor == "val_acc"


def test_source_no_longer_polls_the_metrics_csv():
    import inspect

    import uboost.tuning.child as child

    assert "metrics" not in inspect.getsource(child._run_child).lower()


def test_pruning_works_for_a_study_in_memory(tmp_path):
    """The child reports through the pipe to the parent's trial: a study the child could never open
    (in memory) prunes at the first epoch, and the search stops there."""
    from uboost.tuning import objective

    study = optuna.create_study(direction="maximize", pruner=_Always())
    study.optimize(lambda t: objective(t, base=BASE.replace(epochs=30), tune_space=ONE_ARRAY, out_root=tmp_path,
                                       mode="budget", budget_ms=1.0), n_trials=1, catch=(UBoostError,))
    (trial,) = study.trials
    assert trial.state.name == "PRUNED", trial.user_attrs.get("fail_reason")
    assert list(trial.intermediate_values) == [0] and trial.user_attrs["pruned_at_epoch"] == 0
    assert 0 <= trial.intermediate_values[0] <= 1


def test_progress_reaches_the_parent_per_epoch(tmp_path):
    seen: list[tuple[int, dict]] = []
    run_study(base=BASE.replace(epochs=2), tune_space=ONE_ARRAY, out_root=tmp_path, n_trials=1, seed=0,
              progress=lambda number, info: seen.append((number, info)))
    assert {n for n, _ in seen} == {0}
    epochs = [info["epoch"] for _, info in seen]
    assert epochs == sorted(epochs) and set(epochs) == {0, 1}
    assert all(info["epochs"] == 2 for _, info in seen)
    last = seen[-1][1]
    assert last["val_acc"] is not None and 0 <= last["val_acc"] <= 1 and last["latency_ms"] > 0


def test_running_trials_status_line():
    from rich.console import Console

    from uboost.cli.tune import RunningTrials

    out = io.StringIO()
    running = RunningTrials(Console(file=out, force_terminal=True, width=120))
    running.update(4, {"epoch": 1, "epochs": 3, "val_acc": 0.5, "latency_ms": 0.0123})
    running.update(5, {"epoch": 0, "epochs": 3, "val_acc": None, "latency_ms": None})
    text = Console(file=io.StringIO(), width=120)
    with text.capture() as captured:
        text.print(running._render())
    lines = captured.get().splitlines()
    assert "trial 4: epoch 2/3  val acc 50.0%  expected latency 12.3 µs" in lines[0]
    assert "trial 5: epoch 1/3  val acc n/a  expected latency n/a" in lines[1]
    running.finished(None, optuna.trial.create_trial(values=[0.5, 0.1]))  # number 0: not running, nothing changes
    assert len(running.spinners) == 2


def test_pareto_plot_comes_from_optuna_visualization(tmp_path, monkeypatch):
    import optuna.visualization.matplotlib as vis

    calls = []
    original = vis.plot_pareto_front
    monkeypatch.setattr(vis, "plot_pareto_front", lambda *a, **k: calls.append(k) or original(*a, **k))
    study = create_study(tmp_path, mode="budget")
    space = TuneSpace()
    for i, (acc, lat) in enumerate([(0.5, 0.02), (0.7, 0.05), (0.6, 0.08), (0.9, 0.3)]):
        study.add_trial(optuna.trial.create_trial(
            params={"latency_weight": 1.0, "rows": 8, "cols": 8}, distributions={k: v for k, v in space.distributions().items() if k in ("latency_weight", "rows", "cols")},
            values=[acc], user_attrs={"accuracy": acc, "latency_ms": lat, "latency_over_budget_ms": lat - 0.1},
        ))
    png = pareto_plot(study, tmp_path / "pareto.png")
    assert png.stat().st_size > 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert calls and calls[0]["target_names"] == ["latency (ms)", "accuracy (%)"]


@pytest.mark.parametrize("mode", ["pareto", "budget"])
def test_pareto_plot_with_no_finished_trial_still_draws(tmp_path, mode):
    study = create_study(tmp_path, mode=mode)
    assert pareto_plot(study, tmp_path / "p.png").stat().st_size > 0


def test_a_trial_start_cut_short_by_ctrl_c_prints_no_traceback_in_the_forkserver():
    """The forkserver's forked child finds the tune process gone (EOFError before the trial was sent):
    silent. Any other start-up failure still prints its traceback."""
    import subprocess
    import sys

    from uboost.tuning import child

    assert "uboost.tuning._forkserver" in child._PRELOAD
    script = ("import sys, uboost.tuning._forkserver\n"
              "try:\n    raise EOFError('Ran out of input')\nexcept EOFError:\n    sys.excepthook(*sys.exc_info())\n"
              "try:\n    raise ValueError('boom')\nexcept ValueError:\n    sys.excepthook(*sys.exc_info())\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "EOFError" not in out.stderr
    assert "Traceback" in out.stderr and "ValueError: boom" in out.stderr


def test_the_config_check_says_nothing_when_its_parent_is_gone(monkeypatch):
    """QA: a Ctrl-C during tune's config check printed two BrokenPipeError tracebacks from the child (its answer,
    then its error report, sent to a closed pipe) after the one-line message."""
    import multiprocessing
    import signal
    import warnings

    from uboost.search import SearchConfig
    from uboost.tuning import child

    monkeypatch.setattr(signal, "signal", lambda *a: None)  # the child's own SIGINT setting: not in the test process
    monkeypatch.setattr(child, "_quiet_child", lambda: None)
    for config in (SearchConfig(space="lenet", dataset="digits").to_dict(), {"space": "no-such-space"}):
        receiver, sender = multiprocessing.Pipe(duplex=False)
        receiver.close()
        with warnings.catch_warnings():
            child._check_main(config, sender)  # raised BrokenPipeError
        assert sender.closed
