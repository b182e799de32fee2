"""Lightning checkpoints the way uboost writes every file: atomically.

Lightning's own writer streams into the final file, so a full disk (or a kill) mid-write leaves a
torn ``last.ckpt`` where a good one was, and an empty ``interrupted.ckpt`` beside it.
:func:`atomic_checkpoint_io` writes each checkpoint to a temporary file next to its target and
renames it over the target only once it is complete and synced; a failed write leaves the previous
checkpoint in place and ends in one line. Search and retrain share :func:`checkpoint_callbacks`.
"""

from __future__ import annotations

import os
from pathlib import Path

from uboost.exceptions import RunDirError
from uboost.io import atomic_path


def torch_save(checkpoint, file) -> None:
    import torch

    torch.save(checkpoint, file)


# how torch.save says that writing its zip container failed (inline_container.cc)
_TORCH_WRITE_FAILED = ("PytorchStreamWriter failed", "inline_container", "unexpected pos")


def save_atomically(checkpoint: dict, path: str | os.PathLike) -> None:
    """Write ``checkpoint`` to ``path``: the old file or the new one, never half of one."""
    try:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                torch_save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
    except OSError as exc:
        raise RunDirError(f"cannot write checkpoint {path}: {exc.strerror or exc}; {_kept(path)}") from None
    except RuntimeError as exc:  # torch's zip writer reports a failed write (a full disk, a file size limit) as one
        if not any(mark in str(exc) for mark in _TORCH_WRITE_FAILED):
            raise
        raise RunDirError(f"cannot write checkpoint {path}: the write failed (the disk may be full); {_kept(path)}") from None


def _kept(path: str | os.PathLike) -> str:
    """What a failed checkpoint write leaves to resume from (the atomic write left every file as it was)."""
    earlier = [f for f in Path(path).parent.glob("*.ckpt") if not f.name.startswith(".")]  # (dot files: temporaries)
    return "the earlier checkpoints are kept" if earlier else "no checkpoint was written yet"


def atomic_checkpoint_io():
    """A Lightning ``CheckpointIO`` plugin (``Trainer(plugins=[...])``) that saves atomically."""
    from pytorch_lightning.plugins.io import TorchCheckpointIO

    class AtomicCheckpointIO(TorchCheckpointIO):
        def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
            if storage_options is not None:
                raise TypeError("AtomicCheckpointIO takes no storage_options")
            save_atomically(checkpoint, path)

    return AtomicCheckpointIO()


def checkpoint_callbacks(ckpt_dir: str | os.PathLike) -> list:
    """``last.ckpt`` at every epoch end, ``interrupted.ckpt`` when training stops on an exception, and a Ctrl-C
    that stops between batches (:func:`stop_between_batches`)."""
    from pytorch_lightning.callbacks import ModelCheckpoint, OnExceptionCheckpoint

    ckpt_dir = Path(ckpt_dir)
    return [
        ModelCheckpoint(dirpath=ckpt_dir, filename="last", save_last=False, every_n_epochs=1, save_top_k=1,
                        enable_version_counter=False),
        OnExceptionCheckpoint(dirpath=ckpt_dir, filename="interrupted"),
        stop_between_batches(),
        keep_step_count(),
    ]


def restart_unstarted_epoch(checkpoint: dict) -> bool:
    """A checkpoint taken as an epoch was about to start (Ctrl-C in ``on_train_epoch_start``) holds the epoch
    counter of the new epoch but the finished batch counts of the one before: Lightning then takes the new
    epoch's batches as done and skips its training. Its batch counts are reset here, so the epoch runs whole.
    Returns whether it did (Lightning restores its loops after the module's ``on_load_checkpoint``)."""
    batches = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_loop.batch_progress")
    if not isinstance(batches, dict) or not isinstance(batches.get("current"), dict):
        return False
    if not _unstarted_epoch(checkpoint):  # the newest epoch started its batches (or none is ready)
        return False
    for key in batches["current"]:
        batches["current"][key] = 0
    batches["is_last_batch"] = False
    return True


def _unstarted_epoch(checkpoint: dict) -> bool:
    """Whether ``checkpoint`` was taken as an epoch was about to start (its counter ready, not started)."""
    epochs = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("current")
    return isinstance(epochs, dict) and epochs.get("ready", 0) > epochs.get("started", 0)


def keep_step_count():
    """A Lightning callback: after a resume from a checkpoint taken as an epoch began, the first batch logs at the
    step the checkpoint holds. Lightning adds one on a restart, taking every checkpoint to be saved inside a step
    (before that step is counted); this one was saved after it, so every later row of ``metrics.csv`` was one step
    ahead of the uninterrupted run's (the training itself was the same)."""
    from pytorch_lightning.callbacks import Callback

    class KeepStepCount(Callback):
        def __init__(self) -> None:
            self.expected: int | None = None

        def on_load_checkpoint(self, trainer, pl_module, checkpoint) -> None:
            state = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_loop.state_dict", {})
            stepped = state.get("_batches_that_stepped") if isinstance(state, dict) else None
            self.expected = stepped if _unstarted_epoch(checkpoint) and isinstance(stepped, int) else None

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            if self.expected is not None:
                trainer.fit_loop.epoch_loop._batches_that_stepped = self.expected
                self.expected = None

    return KeepStepCount()


def _last_batch(trainer, batch_idx: int) -> bool:
    """Whether ``batch_idx`` is the last training batch of its epoch."""
    progress = trainer.fit_loop.epoch_loop.batch_progress
    return bool(progress.is_last_batch) or batch_idx + 1 >= trainer.num_training_batches


def stop_between_batches():
    """A Lightning callback: the first Ctrl-C stops training at the next batch boundary (a second one stops at
    once). A checkpoint taken there holds the weights, optimizers, RNG and data order of whole batches, so the
    resume repeats the uninterrupted run (:mod:`uboost.resumable_loader`); one taken in the middle of a step
    holds half of one (e.g. the architecture updated, the weights not). Only where Ctrl-C is Python's default
    and one process trains (ranks of a multi-process run must stop at the same batch: they stop at once)."""
    import signal
    import sys
    import threading

    from pytorch_lightning.callbacks import Callback

    class StopBetweenBatches(Callback):
        def __init__(self) -> None:
            self.requested = False
            self._previous = None

        def _on_sigint(self, signum, frame):
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True
            print("Ctrl-C: stopping after this batch (after an epoch's last one: after its validation; Ctrl-C again to "
                  "stop now, mid-step: the resume is then close to, not identical with, the uninterrupted run)",
                  file=sys.stderr, flush=True)

        def on_train_start(self, trainer, pl_module) -> None:  # after Lightning noted the handlers it restores
            self.requested = False
            if trainer.world_size != 1 or threading.current_thread() is not threading.main_thread():
                return
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                self._previous = signal.signal(signal.SIGINT, self._on_sigint)

        def _restore(self) -> None:
            # only while ours is the handler: on a Ctrl-C Lightning ignores SIGINT until its checkpoint is written
            # (putting Python's back then let a third Ctrl-C lose interrupted.ckpt)
            if self._previous is not None and signal.getsignal(signal.SIGINT) == self._on_sigint:
                signal.signal(signal.SIGINT, self._previous)
            self._previous = None

        def _stop_if_asked(self) -> None:
            if self.requested:
                self.requested = False
                self._restore()
                raise KeyboardInterrupt

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            self._stop_if_asked()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if not self.requested or _last_batch(trainer, batch_idx):
                # after an epoch's last batch the stop waits for the next epoch's start: Lightning resumed from a
                # checkpoint of a finished epoch's batches with its epoch counters one behind, and a second stop
                # after that resumed differently from the uninterrupted run (the epoch's validation and last.ckpt
                # come first; a second Ctrl-C still stops at once)
                return
            connector = trainer._logger_connector  # Lightning logs the step's metrics after these hooks: now (its row was lost)
            connector.on_batch_end()
            connector.update_train_step_metrics()
            self._stop_if_asked()  # before the next batch is fetched: augmentation has not drawn for it yet

        def on_train_end(self, trainer, pl_module) -> None:  # asked after the last batch: still a Ctrl-C
            self._restore()
            self._stop_if_asked()

        def on_exception(self, trainer, pl_module, exception) -> None:
            self._restore()

        def teardown(self, trainer, pl_module, stage) -> None:
            self._restore()

    return StopBetweenBatches()


ELAPSED_KEY = "uboost_elapsed_s"  # in a checkpoint: the seconds the run had worked when it was saved


class Stopwatch:
    """The seconds a search or retrain has worked, over its resumes: what the checkpoint it resumed from had
    counted, plus this session's (``search_seconds`` counted only the resumed part)."""

    def __init__(self, checkpoint: dict | None = None) -> None:
        import time

        self._clock = time.perf_counter
        self.before = float((checkpoint or {}).get(ELAPSED_KEY, 0.0))
        self.started = self._clock()

    def seconds(self) -> float:
        return self.before + self._clock() - self.started

    def callback(self):
        """Stores :meth:`seconds` in every checkpoint."""
        from pytorch_lightning.callbacks import Callback

        watch = self

        class SaveElapsed(Callback):
            def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
                checkpoint[ELAPSED_KEY] = watch.seconds()

        return SaveElapsed()
