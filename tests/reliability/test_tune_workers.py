"""Issue 13 items 6 and 10: parallel tune workers never repeat each other's points; a killed
worker's trial does not stay RUNNING."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from uboost.tuning import TuneSpace, create_study, fail_dead_trials, load_study

SPACE = TuneSpace(rows=(8, 16), cols=(8, 16))


def _points(study, n: int) -> list[tuple]:
    found = []
    for _ in range(n):
        trial = study.ask()
        found.append(tuple(sorted(SPACE.suggest(trial).items())))
        study.tell(trial, [0.5, 0.01][: len(study.directions)])
    return found


@pytest.mark.parametrize("mode", ["pareto", "budget"])
def test_workers_with_different_seeds_never_share_a_stream(tmp_path, mode):
    """Worker B (seed 2) opens the study while it is empty; worker A (seed 1) continues it after one
    trial. On main, A was reseeded to 1 + 1 = 2 and proposed exactly B's points."""
    out = tmp_path / "tune"
    worker_b = create_study(out, mode=mode, seed=2)
    first = create_study(out, mode=mode, seed=1)
    _points(first, 1)
    worker_a = create_study(out, mode=mode, seed=1)  # a continued study, as a second `uboost tune --seed 1`
    a, b = _points(worker_a, 6), _points(worker_b, 6)
    assert not set(a) & set(b)


def test_same_seed_on_a_fresh_study_repeats_and_a_continued_study_moves_on(tmp_path):
    one, two = create_study(tmp_path / "one", seed=0), create_study(tmp_path / "two", seed=0)
    first = _points(one, 3)
    assert first == _points(two, 3)  # reproducible
    again = create_study(tmp_path / "one", seed=0)  # continuing with the same seed: no replay
    assert not set(first) & set(_points(again, 3))


# ----------------------------------------------------------------------------------- kill -9 (item 10)

def _env():
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", PYTHONWARNINGS="ignore")
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")])
    return env


TINY = ["--space", "lenet", "--dataset", "digits", "--image-size", "8", "--max-samples", "128", "--batch-size", "32"]


def _start_worker(out: Path, *extra: str) -> subprocess.Popen:
    args = [sys.executable, "-c", "import sys; from uboost.cli import main; sys.exit(main())", "tune", *TINY,
            "--rows", "8", "--cols", "8", "--out", str(out), *extra]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), start_new_session=True)


def _wait_running(out: Path, proc: subprocess.Popen, storage: str | None = None) -> optuna.trial.FrozenTrial:
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        if (out / "study.journal").exists() or storage:
            try:
                trials = load_study(out, storage=storage).trials
            except Exception:  # noqa: BLE001 - the study may not exist yet
                trials = []
            running = [t for t in trials if t.state.name == "RUNNING" and t.user_attrs.get("run_dir")]
            if running and (Path(running[0].user_attrs["run_dir"]) / "config.json").exists():
                return running[0]
        time.sleep(0.2)
    raise AssertionError(f"no trial started: {proc.communicate(timeout=30)}")


def test_kill_9_of_a_journal_worker_fails_its_trial_with_a_reason(tmp_path):
    out = tmp_path / "tune"
    proc = _start_worker(out, "--epochs", "200", "--trials", "1", "--seed", "0")
    try:
        running = _wait_running(out, proc)
        os.kill(proc.pid, signal.SIGKILL)  # the worker only: its search child follows it (parent watch)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert [t.state.name for t in load_study(out).trials] == ["RUNNING"]  # what the storage says right after
    study = load_study(out)
    assert fail_dead_trials(study) == [running.number]
    dead = study.trials[running.number]
    assert dead.state.name == "FAIL" and "died" in dead.user_attrs["fail_reason"]
    assert dead.user_attrs["worker"] in dead.user_attrs["fail_reason"]
    retry = [t for t in study.trials if t.state.name == "WAITING"]  # RetryFailedTrialCallback's copy
    assert len(retry) == 1 and retry[0].params == dead.params
    assert fail_dead_trials(study) == []  # once


def test_a_live_worker_is_never_judged_dead(tmp_path):
    out = tmp_path / "tune"
    proc = _start_worker(out, "--epochs", "200", "--trials", "1")
    try:
        running = _wait_running(out, proc)
        assert fail_dead_trials(load_study(out)) == []
        assert load_study(out).trials[running.number].state.name == "RUNNING"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@pytest.mark.slow
def test_kill_9_of_a_database_worker_fails_its_trial_after_the_heartbeat_grace(tmp_path):
    """SQLite (as PostgreSQL): Optuna's heartbeat. On main the trial stayed RUNNING for 180 s and
    then failed with no reason; now it fails after the grace period, says why, and is queued again."""
    from uboost.tuning.storage import GRACE_PERIOD_S

    out, url = tmp_path / "tune", f"sqlite:///{tmp_path / 'study.db'}"
    proc = _start_worker(out, "--epochs", "200", "--trials", "1", "--storage", url)
    try:
        running = _wait_running(out, proc, storage=url)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    study = load_study(out, storage=url)
    failed: list[int] = []
    deadline = time.time() + 10 * GRACE_PERIOD_S
    while not failed and time.time() < deadline:  # stale only once the grace period has passed
        failed = fail_dead_trials(study)
        time.sleep(1)
    assert failed == [running.number]
    dead = load_study(out, storage=url).trials[running.number]
    assert dead.state.name == "FAIL" and "stopped sending heartbeats" in dead.user_attrs["fail_reason"]
    assert [t.params for t in load_study(out, storage=url).trials if t.state.name == "WAITING"] == [dead.params]
