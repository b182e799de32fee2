"""Issue 25: a rank killed with -9, Ctrl-C on every rank, and resuming on another number of devices."""

import json
import os
import signal
import time

import pytest

from tests.distributed.conftest import TINY, error_lines


def test_a_killed_rank_stops_the_others_in_bounded_time_with_one_line(tmp_path, launch):
    config = {**TINY, "epochs": 2, "batch_size": 16, "devices": 2}
    run = launch(tmp_path / "run", tmp_path / "report", config, env={"UBOOST_TEST_PAUSE_EPOCH": 0, "UBOOST_TEST_PAUSE_RANK": 1})
    pid = int(run.wait_for("paused1", timeout=300).read_text())  # rank 1 sleeps; rank 0 waits in an all-reduce
    os.kill(pid, signal.SIGKILL)
    started = time.monotonic()
    code, _, err = run.wait(timeout=60)
    assert time.monotonic() - started < 45
    assert code == 1, err[-3000:]
    lines = error_lines(err)
    assert len(lines) == 1 and "Traceback" not in err, err[-3000:]
    assert "rank 0 of 2: another process of the run stopped" in lines[0] and "--resume" in lines[0]


def _interrupt_at_epoch_1(launch, tmp_path, name, devices):
    config = {**TINY, "epochs": 2, "batch_size": 16, "devices": devices}
    run = launch(tmp_path / "run", tmp_path / name, config, env={"UBOOST_TEST_PAUSE_EPOCH": 1})
    for rank in range(devices):
        run.wait_for(f"paused{rank}", timeout=300)
    os.killpg(run.proc.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole process group
    code, _, err = run.wait(timeout=60)
    assert code == 130, err[-3000:]
    lines = error_lines(err)
    if devices == 1:  # one process stops at the batch's end, and says so as the Ctrl-C lands
        assert lines[0].startswith("Ctrl-C: stopping after this batch"), err[-3000:]
        lines = lines[1:]
    assert len(lines) == 1 and "interrupted" in lines[0] and "--resume" in lines[0], err[-3000:]
    assert (run.out / "checkpoints" / "interrupted.ckpt").is_file()
    assert not (run.out / "arch.json").exists()
    return config


@pytest.mark.slow
@pytest.mark.parametrize("before, after", [(2, 1), (1, 2)])
def test_ctrl_c_stops_every_rank_and_the_run_resumes_on_another_number_of_devices(tmp_path, launch, before, after):
    config = _interrupt_at_epoch_1(launch, tmp_path, "first", before)
    resumed = launch(tmp_path / "run", tmp_path / "second", {**config, "devices": after}, resume=True)
    code, _, err = resumed.wait(timeout=180)
    assert code == 0, err[-3000:]
    records = resumed.rank(0)["records"]
    assert records and {r["epoch"] for r in records} == {1}  # epoch 0 is not repeated
    # one step of epoch 1 was done on `before` devices (two on one process: its Ctrl-C lets the paused batch finish):
    # that share of the epoch is done on `after` too
    steps_before, steps_after = 128 // 16 // before, 128 // 16 // after
    done = 1 if before > 1 else 2
    assert len(records) == steps_after - done * steps_after // steps_before
    assert all(r["alphas"] and r["weights"] and r["path"] for r in records)
    assert json.loads((resumed.out / "config.json").read_text())["devices"] == before  # the stored settings stay
    assert (resumed.out / "arch.json").is_file() and not (resumed.out / ".lock").exists()


@pytest.mark.slow
def test_a_run_resumed_inside_an_epoch_on_as_many_devices_trains_the_batches_the_uninterrupted_run_had_left(
        tmp_path, launch):
    """Lightning restarted the epoch's loader: each rank trained batches 0, 1, 2 of its shard again, not 1, 2, 3."""
    config = {**TINY, "epochs": 1, "batch_size": 16, "devices": 2}
    run = launch(tmp_path / "run", tmp_path / "first", config, env={"UBOOST_TEST_PAUSE_EPOCH": 0})
    for rank in (0, 1):
        run.wait_for(f"paused{rank}", timeout=300)  # each rank trained batch 0
    os.killpg(run.proc.pid, signal.SIGINT)
    assert run.wait(timeout=60)[0] == 130
    resumed = launch(tmp_path / "run", tmp_path / "second", config, resume=True)
    code, _, err = resumed.wait(timeout=180)
    assert code == 0, err[-3000:]
    whole = launch(tmp_path / "whole", tmp_path / "whole-report", config)  # after it: 2 cores are enough
    code, _, err = whole.wait(timeout=180)
    assert code == 0, err[-3000:]
    for rank in (0, 1):
        left = whole.rank(rank)["batches"][1:]
        assert len(left) == 3 and resumed.rank(rank)["batches"] == left  # same samples, same batches, same order


def test_ctrl_c_while_the_ranks_start_ends_rank_0_waiting_in_the_rendezvous_with_one_line(tmp_path, launch):
    """Rank 0 waits for rank 1 in a C++ call no signal ends; it used to wait out the collective timeout."""
    config = {**TINY, "epochs": 2, "batch_size": 16, "devices": 2}
    run = launch(tmp_path / "run", tmp_path / "report", config,
                 env={"UBOOST_TEST_PAUSE_START_RANK": 1, "UBOOST_DDP_TIMEOUT_S": 300})
    run.wait_for("starting1", timeout=300)
    time.sleep(3)  # rank 0 is in the rendezvous by now
    os.killpg(run.proc.pid, signal.SIGINT)
    started = time.monotonic()
    code, _, err = run.wait(timeout=120)
    assert time.monotonic() - started < 30  # the watcher's poll (5 s) and its grace (3 s), not 300 s
    assert code == 130, err[-3000:]
    lines = error_lines(err)
    assert len(lines) == 1 and "Traceback" not in err, err[-3000:]
    assert "interrupted while the run's 2 processes were starting" in lines[0] and "nothing was trained" in lines[0]


@pytest.mark.slow
def test_a_search_interrupted_in_validation_resumes_on_fewer_devices_without_training_that_epoch_again(tmp_path, launch):
    """128 weight samples at batch 48: 2 batches per rank on 2 ranks, 3 on one. The checkpoint counts 2 batches
    done after the epoch's last one; scaled to 4 (past one rank's 3) Lightning trained an extra batch of epoch 0."""
    config = {**TINY, "epochs": 2, "batch_size": 48, "devices": 2}
    run = launch(tmp_path / "run", tmp_path / "first", config, env={"UBOOST_TEST_PAUSE_VALIDATION": 0})
    for rank in range(2):
        run.wait_for(f"paused{rank}", timeout=300)
    os.killpg(run.proc.pid, signal.SIGINT)
    assert run.wait(timeout=60)[0] == 130
    resumed = launch(tmp_path / "run", tmp_path / "second", {**config, "devices": 1}, resume=True)
    code, _, err = resumed.wait(timeout=180)
    assert code == 0, err[-3000:]
    records = resumed.rank(0)["records"]
    assert [r["epoch"] for r in records] == [1, 1, 1]  # epoch 1's three batches, none of epoch 0
    rows = (resumed.out / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    epoch, loss, val = header.index("epoch"), header.index("train_loss"), header.index("val_loss")
    table = [row.split(",") for row in rows[1:]]
    assert [r[epoch] for r in table if r[loss]] == ["0", "0", "1", "1", "1"]
    assert [r[epoch] for r in table if r[val]][-1] == "1"


def test_progress_is_rescaled_mid_epoch_and_set_to_the_new_epochs_length_after_its_last_batch():
    from types import SimpleNamespace

    from uboost.distributed.lightning import finish_epoch_progress, rescale_progress

    def checkpoint(done, last):
        counts = dict.fromkeys(("ready", "started", "processed", "completed"), done)
        return {"loops": {"fit_loop": {"epoch_loop.batch_progress": {"current": counts, "total": dict(counts),
                                                                     "is_last_batch": last}}}}

    mid = checkpoint(3, False)
    assert rescale_progress(mid, 2, 4) is False
    assert mid["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]["completed"] == 1
    end = checkpoint(2, True)
    assert rescale_progress(end, 2, 1) is True
    assert end["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]["completed"] == 2  # not 4
    current = SimpleNamespace(ready=2, started=2, processed=2, completed=2)
    loop = SimpleNamespace(epoch_loop=SimpleNamespace(batch_progress=SimpleNamespace(current=current)))
    finish_epoch_progress(SimpleNamespace(num_training_batches=3, fit_loop=loop))
    assert (current.ready, current.started, current.processed, current.completed) == (3, 3, 3, 3)


def test_the_rank_watcher_kills_the_other_ranks_and_lets_rank_0_speak_before_it_gives_up(tmp_path):
    """Lightning's watcher SIGKILLs rank 0 too, racing its one-line error (CI saw exit -9); ours waits."""
    import subprocess
    import sys

    import torch

    from uboost.distributed.lightning import RankWatcher

    dead = subprocess.Popen([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"])
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead.wait(timeout=30)
    said = []

    class Recorded(RankWatcher):
        def give_up(self, line):
            said.append((time.monotonic(), line))

    (tmp_path / "checkpoints").mkdir()
    torch.save({"global_step": 3}, tmp_path / "checkpoints" / "last.ckpt")
    watcher = Recorded(os.getpid(), [dead, alive], grace_s=0.5, size=3, where=tmp_path / "checkpoints")
    started = time.monotonic()
    assert watcher._run() is True  # one poll: a rank died
    assert alive.wait(timeout=10) == -signal.SIGKILL  # the other rank is stopped at once
    assert len(said) == 1 and said[0][0] - started >= 0.5  # rank 0 had its grace before the watcher spoke
    line = said[0][1]
    assert line.startswith("rank 0 of 3: another process of the run stopped (rank 1 exited with code -9)")
    assert f"the last checkpoint is in {tmp_path / 'checkpoints'}, continue with --resume" in line


def test_a_failed_rendezvous_names_the_master_and_the_launched_size_and_says_resume_only_after_training(
        tmp_path, monkeypatch):
    """It said "rank 0 of 1: another process of the run stopped ...; continue with --resume" with nothing to resume."""
    import torch
    import torch.distributed as dist

    from uboost.distributed.errors import as_rank_failure

    monkeypatch.setenv("MASTER_ADDR", "10.0.0.7")
    monkeypatch.setenv("MASTER_PORT", "29511")
    failed = dist.DistNetworkError("The client socket has timed out after 30s while trying to connect to (10.0.0.7, 29511).")
    ckpts = tmp_path / "checkpoints"
    lines = []
    for step in (None, 0, 4):  # no checkpoint, one of step 0, one that trained
        if step is not None:
            ckpts.mkdir(exist_ok=True)
            torch.save({"global_step": step}, ckpts / "interrupted.ckpt")
        lines.append(str(as_rank_failure(failed, ckpts, rank=1, size=4)))
    for line in lines:
        assert line.startswith("rank 1 of 4: could not reach the master at 10.0.0.7:29511") and "timed out" in line
    assert ["--resume" in line for line in lines] == [False, False, True]
    assert "start over" in lines[0] and f"the last checkpoint is in {ckpts}, continue with --resume" in lines[2]


def test_the_launcher_of_a_multi_device_run_uses_the_rank_watcher():
    import torch
    from lightning_fabric.plugins.environments import LightningEnvironment

    from uboost.distributed.lightning import WatchedLauncher, trainer_kwargs

    for search in (True, False):
        strategy = trainer_kwargs(devices=2, num_nodes=1, strategy="ddp", precision="32-true", search=search)["strategy"]
        strategy.cluster_environment = LightningEnvironment()  # what the trainer sets before it launches
        strategy.parallel_devices = [torch.device("cpu")] * 2
        strategy._configure_launcher()
        assert type(strategy.launcher) is WatchedLauncher and strategy.launcher.num_processes == 2


def test_after_ctrl_c_the_rank_watcher_lets_rank_0_finish_its_checkpoint(tmp_path):
    """Every rank got SIGINT: the others exit 130 while rank 0 saves interrupted.ckpt, which may take longer than
    the grace; the watcher must not end it with "another process stopped"."""
    import subprocess
    import sys

    from uboost.distributed.lightning import RankWatcher

    interrupted = subprocess.Popen([sys.executable, "-c", "raise SystemExit(130)"])
    interrupted.wait(timeout=30)
    said = []

    class Recorded(RankWatcher):
        def give_up(self, line, code=1):
            said.append((line, code))

        @staticmethod
        def joined():
            return True  # rank 0 has its process group: training was under way

    assert Recorded(os.getpid(), [interrupted], grace_s=0.1, size=2)._run() is True
    time.sleep(0.3)
    assert said == []


def test_after_ctrl_c_while_rank_0_waits_for_the_others_to_join_the_watcher_ends_it_with_130(tmp_path, monkeypatch):
    import subprocess
    import sys

    import uboost.distributed.lightning as lightning

    monkeypatch.setattr(lightning, "STARTING_GRACE_S", 0.1)
    interrupted = subprocess.Popen([sys.executable, "-c", "raise SystemExit(130)"])
    interrupted.wait(timeout=30)
    said = []

    class Recorded(lightning.RankWatcher):
        def give_up(self, line, code=1):
            said.append((line, code))

        @staticmethod
        def joined():
            return False  # still in the rendezvous

    (tmp_path / "last.ckpt").write_bytes(b"x")
    assert Recorded(os.getpid(), [interrupted], grace_s=30, size=2, where=tmp_path)._run() is True
    assert said == [(f"interrupted while the run's 2 processes were starting; the last checkpoint is in {tmp_path}, "
                     "continue with --resume", 130)]
