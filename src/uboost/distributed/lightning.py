"""The Lightning side of data-parallel runs: the strategy objects handed to the trainer."""

from __future__ import annotations

import logging
from datetime import timedelta

from pytorch_lightning.strategies import DDPStrategy

from uboost.distributed import collective_timeout_s, uses_ddp

logger = logging.getLogger(__name__)


class SearchDDPStrategy(DDPStrategy):
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
        kind = SearchDDPStrategy if search else DDPStrategy
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


def rescale_progress(checkpoint: dict, saved_world: int, world: int) -> None:
    """A checkpoint saved mid-epoch by ``saved_world`` ranks, resumed on ``world``: the batches
    done in the epoch count in the new shard size (``done x saved_world / world``, rounded down:
    a few samples seen again, none skipped). Lightning restores its loops after the module's
    ``on_load_checkpoint``, which calls this."""
    progress = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_loop.batch_progress")
    if not isinstance(progress, dict) or not isinstance(progress.get("current"), dict):
        return
    current = progress["current"]
    for key, value in current.items():
        if isinstance(value, int):
            current[key] = value * saved_world // world
    logger.info("checkpoint of %d ranks resumed on %d: %d batches of the epoch done", saved_world, world,
                current.get("completed", 0))
