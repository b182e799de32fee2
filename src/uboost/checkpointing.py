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


def save_atomically(checkpoint: dict, path: str | os.PathLike) -> None:
    """Write ``checkpoint`` to ``path``: the old file or the new one, never half of one."""
    try:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                torch_save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
    except OSError as exc:
        raise RunDirError(f"cannot write checkpoint {path}: {exc.strerror or exc}; the previous checkpoint is kept") from None


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
    """``last.ckpt`` at every epoch end and ``interrupted.ckpt`` when training stops on an exception."""
    from pytorch_lightning.callbacks import ModelCheckpoint, OnExceptionCheckpoint

    ckpt_dir = Path(ckpt_dir)
    return [
        ModelCheckpoint(dirpath=ckpt_dir, filename="last", save_last=False, every_n_epochs=1, save_top_k=1,
                        enable_version_counter=False),
        OnExceptionCheckpoint(dirpath=ckpt_dir, filename="interrupted"),
    ]
