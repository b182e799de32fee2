"""The data-parallel side of the search's Lightning module (see :mod:`uboost.distributed`).

Mixed into :class:`~uboost.strategy.lightning.UBoostLightningModule`: with more than one rank the
module averages, after each of its two backward passes, exactly the gradients that pass's
optimizer steps (the training step sets ``_average_next_backward`` to the architecture or the
weight parameters before it calls backward), copies rank 0's state to every rank when training
starts, reduces the task metrics over the ranks before they are logged, and records the number
of ranks in its checkpoints so that a run resumes on another number of devices. With one
process none of this does anything.
"""

from __future__ import annotations

from uboost.exceptions import ConfigError


class DataParallelSearch:
    """Hooks of a one-shot search module that keep every rank on the same alphas, weights and draws."""

    _average_next_backward: list | None = None  # set by the training step right before a backward
    _parallel_params: dict | None = None
    _finish_restored_epoch = False  # resumed on another number of ranks after an epoch's last batch

    def setup(self, stage=None):
        result = super().setup(stage)
        from uboost.distributed.collectives import world

        if world()[1] > 1:  # the task metrics differ per shard: mean over the ranks before logging
            log = self.log

            def synced_log(name, value, *args, **kwargs):
                kwargs.setdefault("sync_dist", True)
                return log(name, value, *args, **kwargs)

            self.training_module.log = synced_log
        return result

    def on_fit_start(self):
        from torch.nn.parallel import DistributedDataParallel

        from uboost.distributed.collectives import broadcast_state_

        if isinstance(self.trainer.strategy.model, DistributedDataParallel):
            raise ConfigError("UBoost averages its own gradients (two backward passes per step): give the trainer "
                              "strategy=uboost.distributed.lightning.SearchDDPStrategy() instead of a DDP-wrapping one")

        broadcast_state_(self)  # one copy of the weights and alphas, whatever each rank initialised
        return super().on_fit_start()

    def on_after_backward(self):
        if self._average_next_backward is not None:
            from uboost.distributed.collectives import average_gradients_

            average_gradients_(self._average_next_backward)
            self._average_next_backward = None
        return super().on_after_backward()

    def _averaged(self, kind: str) -> list | None:
        """With more than one rank: the ``"arch"`` or ``"weights"`` parameters (found once) whose
        gradients the next backward averages; ``None`` in a one-process search."""
        from uboost.distributed.collectives import world

        if world()[1] == 1:
            return None
        if self._parallel_params is None:
            arch = self.arch_parameters()
            ids = {id(p) for p in arch}
            self._parallel_params = {"arch": arch, "weights": [p for p in self.parameters() if id(p) not in ids]}
        return self._parallel_params[kind]

    # -- the number of ranks travels with the checkpoint --------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        from uboost.distributed.collectives import world
        from uboost.distributed.lightning import WORLD_KEY

        from uboost.resumable_loader import save_passes

        checkpoint[WORLD_KEY] = world()[1]
        save_passes(checkpoint, getattr(self, "_loaders", {}), world_size=world()[1])  # the epoch's order and place
        super().on_save_checkpoint(checkpoint)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        from uboost.distributed.collectives import world
        from uboost.distributed.lightning import WORLD_KEY, rescale_progress

        from uboost.resumable_loader import restore_epoch_place

        done = restore_epoch_place(checkpoint, getattr(self, "_loaders", {}), world_size=world()[1])
        saved = checkpoint.get(WORLD_KEY, 1)
        if saved != world()[1] or done is not None:  # another number of devices, or counted as the loaders resume
            self._finish_restored_epoch = rescale_progress(checkpoint, saved, world()[1], done=done)
        super().on_load_checkpoint(checkpoint)

    def on_train_start(self):
        if self._finish_restored_epoch:  # the loaders are set up now: the new epoch's length is known
            from uboost.distributed.lightning import finish_epoch_progress

            finish_epoch_progress(self.trainer)
            self._finish_restored_epoch = False
        return super().on_train_start()
