"""The Lightning side of data-parallel runs: the strategy objects handed to the trainer."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from datetime import timedelta
from pathlib import Path

from lightning_fabric.strategies.launchers.subprocess_script import _ChildProcessObserver
from lightning_fabric.utilities.distributed import _set_num_threads_if_needed
from pytorch_lightning.strategies import DDPStrategy
from pytorch_lightning.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

from uboost.distributed import collective_timeout_s, uses_ddp
from uboost.distributed.errors import rank_failure_text

logger = logging.getLogger(__name__)

GRACE_S = 15.0  # how long rank 0 may take to stop by itself once another rank died
STARTING_GRACE_S = 3.0  # the same after a Ctrl-C while rank 0 still waits for the other ranks to join
INTERRUPTED = (130, -signal.SIGINT)  # a rank's exit after Ctrl-C (uboost's code, or the signal itself)


class RankWatcher(_ChildProcessObserver):
    """Lightning's watcher of the ranks it started, made to let rank 0 speak first.

    Lightning polls the other ranks every 5 s and, when one died, SIGKILLs them all *and rank 0*:
    a user then sees exit code -9 and no word of what happened, or not, depending on whether the
    poll came before rank 0's failed collective raised (a race). Here the other ranks are killed
    as before, but rank 0 gets ``grace_s`` to end on its own (its collective fails at once on gloo:
    the one ``RankFailure`` line, exit 1). Only when it is still running after that (a collective
    that hangs, as NCCL's can) does the watcher print that same line and end the process with 1.
    Ranks that stopped after Ctrl-C (exit 130) end the watch: rank 0 got the signal too and is saving
    its checkpoint -- unless it has no process group yet: then it is blocked in the rendezvous (a C++
    wait no signal ends) for ranks that will not come, and the watcher ends it with exit 130 and one
    line instead of letting it wait out the collective timeout."""

    def __init__(self, main_pid: int, child_processes: list, *, grace_s: float, size: int, where=None) -> None:
        super().__init__(main_pid=main_pid, child_processes=child_processes)
        self.grace_s, self.size, self.where = grace_s, size, where

    def _terminate_all(self) -> None:
        dead = [(i + 1, p) for i, p in enumerate(self._child_processes) if p.returncode]
        for proc in self._child_processes:
            if proc.returncode is None:
                proc.send_signal(signal.SIGKILL)
        if dead and all(p.returncode in INTERRUPTED for _, p in dead):
            if self.joined():
                return  # Ctrl-C reached every rank: rank 0 is saving its checkpoint and stops by itself (exit 130)
            time.sleep(STARTING_GRACE_S)  # it may still stop by itself (then this daemon thread ends with it)
            if not self.joined():  # blocked in the rendezvous, waiting for ranks that will not come
                self.give_up(self.interrupted_text(), code=130)
            return
        time.sleep(self.grace_s)  # a daemon thread: it ends here when rank 0 has stopped by itself
        why = "; ".join(f"rank {rank} exited with code {proc.returncode}" for rank, proc in dead)
        self.give_up(rank_failure_text(0, self.size, why or "a rank exited", self.where))

    @staticmethod
    def joined() -> bool:
        """Whether this process (rank 0) has its process group: the ranks had all started."""
        import torch.distributed as dist

        return dist.is_available() and dist.is_initialized()

    def interrupted_text(self) -> str:
        """The line of a Ctrl-C that came while the ranks were starting (nothing was trained in this call)."""
        where = Path(self.where) if self.where is not None else None
        if where is not None and any(where.glob("*.ckpt")):
            then = f"the last checkpoint is in {where}, continue with --resume"
        else:
            then = "nothing was trained or saved: start over (with --force where the output exists)"
        return f"interrupted while the run's {self.size} processes were starting; {then}"

    def give_up(self, line: str, code: int = 1) -> None:
        sys.stderr.write(f"error: {line}\n")
        sys.stderr.flush()
        os._exit(code)


class WatchedLauncher(_SubprocessScriptLauncher):
    """Lightning's launcher of ``--devices N``, with :class:`RankWatcher` in place of its own watcher."""

    def launch(self, function, *args, trainer=None, **kwargs):
        self.cluster_environment.validate_settings(num_devices=self.num_processes, num_nodes=self.num_nodes)
        if not self.cluster_environment.creates_processes_externally:
            self._call_children_scripts()
            where = getattr(getattr(trainer, "checkpoint_callback", None), "dirpath", None)
            RankWatcher(os.getpid(), self.procs, grace_s=GRACE_S, size=self.num_processes * self.num_nodes,
                        where=where).start()
        _set_num_threads_if_needed(num_processes=self.num_processes)
        return function(*args, **kwargs)


class WatchedDDPStrategy(DDPStrategy):
    """Lightning's DDP whose launcher lets rank 0 report a dead rank in one line (:class:`RankWatcher`)."""

    def _configure_launcher(self) -> None:
        super()._configure_launcher()
        if type(self._launcher) is _SubprocessScriptLauncher:
            self._launcher = WatchedLauncher(self.cluster_environment, self.num_processes, self.num_nodes)


class SearchDDPStrategy(WatchedDDPStrategy):
    """Lightning's DDP (launch, process group, samplers, ``sync_dist``, rank-zero checkpoints)
    without the ``DistributedDataParallel`` wrapper: the search averages its gradients itself
    after each of its two backward passes (:mod:`uboost.distributed.collectives`)."""

    def _setup_model(self, model):
        return model


def trainer_kwargs(*, devices: int, num_nodes: int, strategy: str, precision: str, search: bool) -> dict:
    """Trainer arguments for these launch settings; a one-device ``auto`` run gets Lightning's defaults."""
    kwargs: dict = {"devices": devices}
    if precision != "32-true":
        kwargs["precision"] = precision
    if uses_ddp(devices=devices, num_nodes=num_nodes, strategy=strategy):
        kind = SearchDDPStrategy if search else WatchedDDPStrategy
        kwargs["strategy"] = kind(timeout=timedelta(seconds=collective_timeout_s()))
        kwargs["num_nodes"] = num_nodes
    return kwargs


def wait_for_children(trainer, timeout_s: float = 120.0) -> None:
    """Rank 0 of ``--devices N``: wait for the ranks Lightning started, so the command ends with them."""
    import subprocess

    for proc in getattr(getattr(trainer.strategy, "launcher", None), "procs", None) or []:
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            logger.warning("rank process %d did not exit within %.0f s", proc.pid, timeout_s)


WORLD_KEY = "uboost_world_size"


def rescale_progress(checkpoint: dict, saved_world: int, world: int, *, done: int | None = None) -> bool:
    """A checkpoint saved mid-epoch by ``saved_world`` ranks, resumed on ``world``: the batches done in the
    epoch count in the new shard size. ``done``: that count where the loaders resume past the samples the
    saved run trained (:func:`uboost.resumable_loader.resume_shards`: the epoch's length less the batches
    left on each rank, so Lightning fetches exactly those); otherwise ``done x saved_world / world``,
    rounded down (loaders that draw the epoch again: samples may be trained twice or not at all in it).
    Lightning restores its loops after the module's ``on_load_checkpoint``, which calls this. A checkpoint
    taken after the epoch's last batch (at its end, or interrupted during its validation) is left as it is
    and this returns True: the epoch's batches are all done on any number of ranks, and
    :func:`finish_epoch_progress` sets the count to the new epoch's length once that is known (any other
    count makes Lightning train another batch, or stop short of one, and skip that epoch's validation)."""
    progress = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_loop.batch_progress")
    if not isinstance(progress, dict) or not isinstance(progress.get("current"), dict):
        return False
    if progress.get("is_last_batch") is True:
        logger.info("checkpoint of %d ranks resumed on %d after its epoch's last batch", saved_world, world)
        return True
    current = progress["current"]
    for key, value in current.items():
        if isinstance(value, int):
            current[key] = done if done is not None else value * saved_world // world
    logger.info("checkpoint of %d ranks resumed on %d: %d batches of the epoch done", saved_world, world,
                current.get("completed", 0))
    return False


def finish_epoch_progress(trainer) -> None:
    """The restored epoch's batches counted as all done in this run's shard size (see
    :func:`rescale_progress`); called when training starts, once the loaders are set up."""
    batches = trainer.num_training_batches
    if batches == float("inf"):
        return
    current = trainer.fit_loop.epoch_loop.batch_progress.current
    current.ready = current.started = current.processed = current.completed = int(batches)
