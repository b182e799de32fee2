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
