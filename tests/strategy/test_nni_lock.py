"""NNI 3.0's experiment lock with a filelock it does not support: one clear line, not a search that never starts.

From filelock 3.12 on, NNI's ``SimplePreemptiveLock`` (a ``SoftFileLock`` that stores its descriptor where
filelock < 3.12 read it) never counts as taken, and ``acquire`` polls forever: seen on a GPU machine whose
image had a newer filelock. ``NeverTaken`` below is that lock: its ``_acquire`` opens the file but, like NNI's
under a new filelock, leaves the lock unmarked."""

import filelock
import pytest
from nni.tools.nnictl import common_utils

from tests.cli.conftest import TINY, cli, one_line_error  # noqa: F401 (cli: the fixture)
from uboost.exceptions import ConfigError
from uboost.strategy import experiment


class NeverTaken(filelock.SoftFileLock):
    def _acquire(self):
        return None


@pytest.fixture
def broken_lock(monkeypatch):
    monkeypatch.setattr(common_utils, "get_file_lock", lambda path, stale=-1: NeverTaken(path + ".lock", timeout=10))  # (a regression fails, not hangs)
    experiment._nni_lock_error.cache_clear()
    yield
    experiment._nni_lock_error.cache_clear()


def test_the_installed_filelock_works_with_nni():
    experiment._nni_lock_error.cache_clear()
    assert experiment._nni_lock_error() == ""  # the pinned filelock (< 3.12): NNI's own lock is taken and released
    experiment.check_nni_lock()


def test_a_lock_that_is_never_taken_is_one_error(broken_lock):
    with pytest.raises(ConfigError, match=r"filelock<3\.12"):
        experiment.check_nni_lock()
    with pytest.raises(ConfigError, match="wait forever"):  # before NNI builds anything
        experiment.run_experiment(None, None, None)


def test_search_says_so_in_one_line_and_writes_nothing(cli, tmp_path, broken_lock):
    out = tmp_path / "run"
    one_line_error(cli("search", *TINY, "--out", out), "experiment lock", "filelock<3.12")
    assert not out.exists()
