"""Results kept on disk (``.pending-result.json``) are recorded once, and only for trials no live worker will tell:
a dead worker's finished trial is neither run again nor recorded twice; a live worker's is left to it."""

from __future__ import annotations

import socket
import subprocess
import sys

import optuna
import pytest

import uboost.tuning.study as study_module
from tests.cli.conftest import cli  # noqa: F401 - `cli` is a fixture
from tests.reliability.test_tune_storage import BASE
from tests.reliability.test_tune_workers import _env
from uboost.tuning import TuneSpace, create_study, fail_dead_trials, load_study, record_pending, run_study
from uboost.tuning.recovery import PENDING, hold_worker_lock, write_pending
from uboost.tuning.storage import trial_dir

LAMBDA = {"latency_weight": optuna.distributions.FloatDistribution(0.01, 10, log=True)}


def _dead_worker_finished(study, out) -> optuna.Trial:
    """Worker A ran a trial to its end and wrote its result to disk, then died before telling the storage."""
    trial = study.ask(LAMBDA)
    trial.set_user_attr("worker_lock", f"{socket.gethostname()}-99999-dead.lock")  # its lock file is gone: A is dead
    run_dir = trial_dir(out, study.study_name, trial.number)
    run_dir.mkdir(parents=True)
    write_pending(run_dir, trial, [0.9, 1.0], {"accuracy": 0.9, "latency_ms": 1.0, "arch": {"a": 1}})
    return trial


def test_a_dead_workers_result_is_not_recorded_again_after_its_retry_completed(tmp_path):
    study = create_study(tmp_path, seed=0)
    dead = _dead_worker_finished(study, tmp_path)
    assert fail_dead_trials(study) == [dead.number]  # an older uboost failed it and queued a retry...
    retry = study.ask()
    retry.set_user_attr("accuracy", 0.9)
    study.tell(retry, [0.9, 1.0])  # ...which ran to its end
    assert record_pending(study, tmp_path) == []  # a copy of the same point would be a second result of it
    assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE"]
    assert not (trial_dir(tmp_path, study.study_name, dead.number) / PENDING).exists()


def test_a_live_worker_records_a_dead_workers_result_instead_of_running_that_trial_again(tmp_path, monkeypatch):
    study = create_study(tmp_path, seed=0)
    died: list[int] = []

    def search(trial, **_):  # worker B's trial; worker A dies meanwhile with its result on disk
        trial.suggest_float("latency_weight", 0.01, 10, log=True)
        died.append(_dead_worker_finished(study, tmp_path).number)
        return 0.5, 2.0

    monkeypatch.setattr(study_module, "objective", search)
    run_study(base=BASE, tune_space=TuneSpace(rows=(8,), cols=(8,)), out_root=tmp_path, n_trials=1, study=study)
    trials = load_study(tmp_path).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]  # no FAIL, no retry queued to run it again
    assert trials[died[0]].user_attrs["recorded_late"] is True and trials[died[0]].values == [0.9, 1.0]


_OTHER_WORKER = ("import sys; from uboost.tuning import load_study, record_pending; "
                 "print(record_pending(load_study(sys.argv[1]), sys.argv[1]))")


def test_a_live_workers_result_on_disk_is_left_for_it_to_tell(tmp_path):
    """Another worker starting between a trial's result on disk and its worker's own tell: it used to tell the
    trial itself, and the worker's tell then failed with "Cannot tell a COMPLETE trial" (a traceback)."""
    study = create_study(tmp_path, seed=0)
    seen = []

    def search(trial):
        trial.set_user_attr("worker_lock", hold_worker_lock(trial.study))
        trial.suggest_float("latency_weight", 0.01, 10, log=True)
        run_dir = trial_dir(tmp_path, study.study_name, trial.number)
        run_dir.mkdir(parents=True)
        write_pending(run_dir, trial, [0.5, 1.0], {"accuracy": 0.5, "latency_ms": 1.0})
        seen.append(subprocess.run([sys.executable, "-c", _OTHER_WORKER, str(tmp_path)], env=_env(), check=True,
                                   capture_output=True, text=True).stdout.strip())
        return 0.5, 1.0

    study.optimize(search, n_trials=1)
    assert seen == ["[]"] and [t.state.name for t in study.trials] == ["COMPLETE"]
    assert (trial_dir(tmp_path, study.study_name, 0) / PENDING).is_file()  # left in place (its worker drops it)
    assert record_pending(study, tmp_path) == [] and not (trial_dir(tmp_path, study.study_name, 0) / PENDING).exists()


@pytest.mark.parametrize("running_retry", [True, False])
def test_a_failed_trials_result_waits_for_a_running_retry_and_is_copied_when_none_ran(tmp_path, running_retry):
    study = create_study(tmp_path, seed=0)
    dead = _dead_worker_finished(study, tmp_path)
    fail_dead_trials(study)
    if running_retry:
        study.ask()  # the retry, run by a live worker now: its end decides
        assert record_pending(study, tmp_path) == [] and (trial_dir(tmp_path, study.study_name, dead.number) / PENDING).is_file()
        return
    assert record_pending(study, tmp_path) == [dead.number]
    states = sorted(t.state.name for t in study.trials)
    assert states == ["COMPLETE", "FAIL", "FAIL"]  # the copy; the dead trial and its dropped retry


def _interrupted(study, lam: float, **attrs) -> int:
    """A trial as a Ctrl-C leaves it: FAIL with the interrupted reason and its run's attributes."""
    from uboost.tuning.recovery import INTERRUPTED_REASON

    study.enqueue_trial({"latency_weight": lam}, user_attrs=attrs)
    trial = study.ask(LAMBDA)
    trial.set_user_attr("run_dir", "somewhere/0000")
    trial.set_user_attr("fail_reason", INTERRUPTED_REASON)
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    return trial.number


def test_a_trial_a_ctrl_c_stopped_runs_again_with_its_parameters_and_only_once(tmp_path, monkeypatch):
    """It used to stay FAIL and the next `uboost tune` sampled a new point: the stopped one was never searched."""
    study = create_study(tmp_path, seed=0)
    stopped = _interrupted(study, 0.123)
    seen = []

    def search(trial, **_):
        seen.append((trial.number, trial.suggest_float("latency_weight", 0.01, 10, log=True), dict(trial.user_attrs)))
        return 0.5, 2.0

    monkeypatch.setattr(study_module, "objective", search)
    run_study(base=BASE, tune_space=TuneSpace(rows=(8,), cols=(8,)), out_root=tmp_path, n_trials=1, study=study)
    assert seen == [(1, pytest.approx(0.123), {})]  # the stopped point, without the stopped run's attributes
    retry = load_study(tmp_path).trials[1]
    assert retry.state.name == "COMPLETE" and retry.system_attrs["failed_trial"] == stopped
    assert retry.system_attrs["retry_history"] == [stopped]
    run_study(base=BASE, tune_space=TuneSpace(rows=(8,), cols=(8,)), out_root=tmp_path, n_trials=1, study=study)
    assert len(seen) == 2 and seen[1][0] == 2 and "failed_trial" not in load_study(tmp_path).trials[2].system_attrs


def test_an_interrupted_retry_is_queued_again_and_a_warm_start_trial_keeps_its_source(tmp_path):
    from uboost.tuning import requeue_interrupted
    from uboost.tuning.warm_start import SOURCE_ATTR

    study = create_study(tmp_path, seed=0)
    first = _interrupted(study, 0.5, **{SOURCE_ATTR: "base#3"})
    assert requeue_interrupted(study) == [first] and requeue_interrupted(study) == []
    retry = study.ask(LAMBDA)  # the queued copy, stopped by a Ctrl-C too
    assert retry.params == {"latency_weight": 0.5} and retry.user_attrs == {SOURCE_ATTR: "base#3"}
    retry.set_user_attr("fail_reason", "interrupted (Ctrl-C)")
    study.tell(retry, state=optuna.trial.TrialState.FAIL)
    assert requeue_interrupted(study) == [retry.number]
    again = study.trials[-1]
    assert again.state.name == "WAITING" and again.system_attrs == {"failed_trial": first, "retry_history": [first, retry.number]}
    other = study.ask(LAMBDA)  # a trial that failed for another reason is not the user's to run again
    other.set_user_attr("fail_reason", "the search raised")
    study.tell(other, state=optuna.trial.TrialState.FAIL)
    assert requeue_interrupted(study) == []


def test_a_dead_workers_trial_is_queued_once_even_when_its_retry_dies_too(tmp_path):
    study = create_study(tmp_path, seed=0)
    dead = _dead_worker_finished(study, tmp_path)
    assert fail_dead_trials(study) == [dead.number]
    retry = study.ask(LAMBDA)
    assert retry.params == dead.params and "fail_reason" not in retry.user_attrs  # not the dead run's attributes
    retry.set_user_attr("worker_lock", f"{socket.gethostname()}-99998-dead.lock")  # it kills its worker again
    assert fail_dead_trials(study) == [retry.number]
    assert [t.state.name for t in study.trials] == ["FAIL", "FAIL"]  # not a third time: it could be the trial's doing



def test_the_cli_reports_a_dead_workers_trial_once(tmp_path, cli, caplog):
    """QA: `uboost tune` printed a dead worker's trial twice, the library's warning and the command's own line."""
    study = create_study(tmp_path, seed=0)
    trial = study.ask(LAMBDA)
    trial.set_user_attr("worker_lock", f"{socket.gethostname()}-99999-dead.lock")  # its lock file is gone: dead
    result = cli("tune", "--out", tmp_path, "--trials", "0")
    text = result.out + result.err
    shown = text + "".join(r.getMessage() for r in caplog.records)  # (a library warning goes to logging)
    assert result.code == 0 and shown.count("queued again") == 1, shown
    assert load_study(tmp_path).trials[trial.number].state.name == "FAIL"
