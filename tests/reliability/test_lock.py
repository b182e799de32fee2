"""Issue 13, item 4: one process at a time per run directory."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.conftest import TINY, one_line_error, tree


def test_second_search_on_a_locked_directory_is_one_line(cli, tmp_path, lock_holder):
    out = tmp_path / "run"
    holder = lock_holder(out)
    one_line_error(cli("search", *TINY, "--out", out), f"in use by PID {holder.pid}")
    one_line_error(cli("search", *TINY, "--out", out, "--force"), f"in use by PID {holder.pid}")
    assert set(tree(out)) == {".lock"}, "the refused search wrote nothing"


def test_retrain_and_export_wait_for_no_one(cli, run_copy, tmp_path, lock_holder):
    holder = lock_holder(run_copy)
    before = tree(run_copy)
    one_line_error(cli("retrain", run_copy, "--epochs", "1"), f"in use by PID {holder.pid}")
    one_line_error(cli("export", run_copy, "--format", "torchscript"), f"in use by PID {holder.pid}")
    assert tree(run_copy) == before
    # an export written elsewhere does not touch the run directory: allowed
    assert cli("export", run_copy, "--out", tmp_path / "arch.json").code == 0


def test_a_killed_holder_leaves_no_stale_lock(cli, tmp_path, lock_holder):
    from uboost.runs import run_lock

    out = tmp_path / "run"
    holder = lock_holder(out)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert (out / ".lock").is_file()  # left behind by kill -9, but not held
    with run_lock(out):
        assert (out / ".lock").read_text().strip() == str(os.getpid())
        with run_lock(out):  # re-entrant in one process
            pass
    assert list(out.iterdir()) == []
    fresh = tmp_path / "fresh"
    with run_lock(fresh):
        assert fresh.is_dir()
    assert not fresh.exists(), "an unused directory the lock created is removed again"


def test_tune_export_to_a_locked_directory(cli, tmp_path, lock_holder):
    from tests.reliability.test_force import _study

    _study(tmp_path / "study")
    target = tmp_path / "export"
    holder = lock_holder(target)
    one_line_error(cli("tune", "--export", "0", "--out", tmp_path / "study", "--export-to", target), f"PID {holder.pid}")


@pytest.mark.slow
def test_two_real_search_processes_on_one_out(tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", PYTHONWARNINGS="ignore",
               PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "uboost", "search", *TINY, "--epochs", "3", "--out", str(out)]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(r[0] for r in results)
    assert codes == [0, 1], results
    loser = next(r for r in results if r[0] == 1)
    assert "in use by PID" in loser[2] and "Traceback" not in loser[2] and len(loser[2].strip().splitlines()) == 1
    assert {p.pid for p in procs} >= {int(loser[2].split("PID ")[1].split(";")[0])}
    assert (out / "arch.json").is_file() and (out / "result.json").is_file()


def test_a_running_search_or_retrain_is_named_as_running_not_as_interrupted(cli, run_copy, tmp_path, lock_holder):
    """A second command on a run whose search or retrain is still running was told to `--resume` an interrupted one
    (and `exits` to run `uboost retrain` first)."""
    import shutil

    running = tmp_path / "running"
    running.mkdir()
    shutil.copy(run_copy / "config.json", running / "config.json")  # a search under way: its config, no arch.json yet
    holder = lock_holder(running)
    for argv in (["profile", running], ["frontier", running, "--points", "2", "--out", tmp_path / "fr"]):
        one_line_error(cli(*argv), f"still running ({running} is in use by PID {holder.pid})")
    trained = tmp_path / "trained"
    shutil.copytree(run_copy, trained)
    shutil.rmtree(trained / "retrain", ignore_errors=True)
    (trained / "retrain" / "checkpoints").mkdir(parents=True)
    shutil.copy(next((run_copy / "checkpoints").glob("*.ckpt")), trained / "retrain" / "checkpoints" / "last.ckpt")
    holder = lock_holder(trained)  # a retrain locks its run while it trains into RUN/retrain
    one_line_error(cli("retrain", trained), f"is in use by PID {holder.pid}")
    one_line_error(cli("exits", trained), f"in use by PID {holder.pid}")
    exported = cli("export", trained, "--format", "torchscript", "--out", tmp_path / "m.pt")  # elsewhere: allowed, and said
    assert exported.code == 0 and f"a retrain of {trained} is running, PID {holder.pid}" in exported.out.replace("\n", "")
