"""Issue 13 item 5 and the PostgreSQL driver: a storage that stops answering mid-trial loses no
result and ends the worker with one line; a missing database driver is named."""

from __future__ import annotations

import json
import sys

import optuna
import pytest

from tests.cli.conftest import cli, one_line_error  # noqa: F401 - `cli` is a fixture
from uboost.exceptions import ConfigError
from uboost.search import SearchConfig
from uboost.tuning import StorageUnavailable, TuneSpace, create_study, load_study, run_study
from uboost.tuning.recovery import PENDING
from uboost.tuning.storage import retrying

BASE = SearchConfig(space="lenet", space_options={"widths": [4, 8], "hidden": [16]}, dataset="digits", image_size=8,
                    epochs=1, max_samples=128, batch_size=32)
TINY = ["--space", "lenet", "--dataset", "digits", "--image-size", "8", "--epochs", "1", "--max-samples", "128",
        "--batch-size", "32", "--rows", "8", "--cols", "8"]


class OperationalError(Exception):
    """Named like SQLAlchemy's: what a dropped database connection raises."""


class Flaky:
    """A storage that goes down the moment a trial's result is written (``breaks_on``), or for the
    first ``fail_first`` calls."""

    def __init__(self, inner, *, breaks_on: str | None = None, fail_first: int = 0, error=None) -> None:
        self.inner, self.breaks_on, self.fail_first, self.down, self.calls = inner, breaks_on, fail_first, False, 0
        self.error = error or OperationalError("connection refused")

    def __getattr__(self, name):
        target = getattr(self.inner, name)
        if not callable(target) or name.startswith("_backend"):
            return target

        def call(*args, **kwargs):
            self.calls += 1
            if self.fail_first > 0:
                self.fail_first -= 1
                raise OperationalError("server closed the connection unexpectedly")
            if name == "set_trial_user_attr" and self.breaks_on in args:
                self.down = True
            if self.down:
                raise self.error
            return target(*args, **kwargs)

        return call


def _journal(path):
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def test_retries_ride_out_a_short_outage_and_give_up_in_one_line(tmp_path):
    flaky = Flaky(_journal(tmp_path / "s.journal"), fail_first=3)
    storage = retrying(flaky, "db", delays=(0, 0, 0, 0))
    study = optuna.create_study(storage=storage, study_name="s")  # three dropped connections, then fine
    assert study.study_name == "s"
    flaky.down = True
    before = flaky.calls
    with pytest.raises(StorageUnavailable, match=r"^storage db is unavailable \(OperationalError: connection refused\)$"):
        study.set_user_attr("x", 1)
    assert flaky.calls - before == 5  # the first try and four retries
    with pytest.raises(StorageUnavailable):
        study.set_user_attr("x", 1)
    assert flaky.calls - before == 6  # known to be down: one try, no more waiting
    storage.record_heartbeat(0)  # heartbeats never raise (they run in Optuna's thread)


def test_storage_lost_after_the_search_keeps_the_result_and_a_later_run_records_it(tmp_path):
    out = tmp_path / "tune"
    flaky = Flaky(_journal(out / "study.journal"), breaks_on="arch")
    storage = retrying(flaky, "db", delays=(0,))
    study = create_study(out, storage=storage, seed=0)
    with pytest.raises(StorageUnavailable) as caught:
        run_study(base=BASE, tune_space=TuneSpace(rows=(8,), cols=(8,)), out_root=out, n_trials=2, study=study)
    message = str(caught.value)
    assert "storage db is unavailable" in message and "the result of trial 0 is kept in" in message, message
    assert "\n" not in message
    pending = out / "trials" / "uboost" / "0000" / PENDING
    kept = json.loads(pending.read_text())
    assert kept["number"] == 0 and kept["user_attrs"]["arch"] and len(kept["values"]) == 2
    (trial,) = load_study(out).trials  # the storage itself: the trial never got its result, no second trial ran
    assert trial.state.name == "RUNNING" and "arch" not in trial.user_attrs

    flaky.down = flaky.breaks_on = None  # the database is back; the next `uboost tune` records it
    run_study(base=BASE, tune_space=TuneSpace(rows=(8,), cols=(8,)), out_root=out, n_trials=0,
              study=create_study(out, storage=storage))
    (trial,) = load_study(out).trials
    assert trial.state.name == "COMPLETE" and trial.values == kept["values"]
    assert trial.user_attrs["arch"] == kept["user_attrs"]["arch"] and trial.user_attrs["recorded_late"] is True
    assert not pending.exists()


def test_cli_storage_lost_mid_trial_is_one_line(cli, tmp_path, monkeypatch):
    import uboost.tuning.study as study_module

    out = tmp_path / "tune"
    flaky = Flaky(_journal(out / "study.journal"), breaks_on="arch")
    monkeypatch.setattr(study_module, "resolve_storage", lambda storage, out_root: retrying(flaky, "db", delays=(0,)))
    result = cli("tune", *TINY, "--trials", "2", "--out", out)
    one_line_error(result, "storage db is unavailable", "the result of trial 0 is kept in", "again to record it")
    assert (out / "trials" / "uboost" / "0000" / PENDING).is_file()


def test_missing_postgres_driver_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # what an environment without psycopg looks like
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    with pytest.raises(ConfigError, match=r"needs the Python package 'psycopg': pip install 'uboost\[postgres\]'"):
        create_study(tmp_path, storage="postgresql://user:secret@127.0.0.1:1/db")


def test_cli_missing_driver_is_one_line_without_the_password(cli, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "psycopg", None)
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    result = cli("tune", *TINY, "--trials", "1", "--out", tmp_path, "--storage", "postgresql://user:secret@127.0.0.1:1/db")
    one_line_error(result, "psycopg", "uboost[postgres]")
    assert "secret" not in result.err


def test_default_journal_file_that_fails_mid_trial_keeps_the_result(tmp_path):
    """The default storage, a journal file: a disk that fills up after the search is a lost storage
    too (one line naming the error, the result kept), not a traceback."""
    import errno

    from uboost.tuning import resolve_storage

    out = tmp_path / "tune"
    storage = resolve_storage(None, out)
    storage.inner = Flaky(storage.inner, breaks_on="arch", error=OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(StorageUnavailable, match=r"No space left on device.*the result of trial 0 is kept in"):
        run_study(base=BASE, tune_space=TuneSpace(rows=(8,), cols=(8,)), out_root=out, n_trials=1,
                  study=create_study(out, storage=storage, seed=0))
    assert (out / "trials" / "uboost" / "0000" / PENDING).is_file()
    storage.inner.down = storage.inner.breaks_on = None  # space freed: the next run records it
    run_study(base=BASE, tune_space=TuneSpace(rows=(8,), cols=(8,)), out_root=out, n_trials=0, study=create_study(out))
    (trial,) = load_study(out).trials
    assert trial.state.name == "COMPLETE" and trial.user_attrs["recorded_late"] is True


def test_a_search_run_is_not_a_tune_study_folder(cli, tiny_run, tmp_path):
    """`tune --out RUN` wrote study.journal, trials/ and pareto.png into a search run; every other command refuses a
    search run as its output."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    before = sorted(p.name for p in run.iterdir())
    one_line_error(cli("tune", "--space", "lenet", "--trials", "1", "--out", run), "is a search run", "folder of its own")
    assert sorted(p.name for p in run.iterdir()) == before


def test_a_storage_file_given_with_a_tilde_is_in_the_home_folder(tmp_path, monkeypatch):
    """`--storage '~/study.journal'` (quoted: no shell expands it) made a folder named ~ in the working directory."""
    from uboost.tuning.storage import check_storage, resolve_storage

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert check_storage("~/s.journal", tmp_path / "out") == tmp_path / "home" / "s.journal"
    resolve_storage("~/s.journal", tmp_path / "out")
    assert (tmp_path / "home" / "s.journal").is_file() and not (tmp_path / "~").exists()


def test_a_ctrl_c_while_reporting_finished_searches_says_to_report_not_to_search_again(cli, tmp_path, monkeypatch):
    """QA: a tune stopped after its last trial, while drawing its plots, said "run the same command again", which ran a
    whole new batch of trials."""
    from uboost import tuning
    from uboost.cli import tune as tune_cli

    def report(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tuning, "run_study", lambda **kwargs: None)  # the searches: done (none here)
    monkeypatch.setattr(tune_cli, "_report", report)
    out = tmp_path / "study"
    result = cli("tune", "--space", "lenet", "--trials", "2", "--out", out, "--study-name", "mine")
    assert result.code == 130
    assert "the 2 searches asked are done" in result.err
    assert f"uboost tune --out {out} --study-name mine --trials 0 reports them again" in " ".join(result.err.split())
    assert "run the same command again" not in result.err
