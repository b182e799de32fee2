"""Tools to check a data-parallel search: a rank-consistency callback and a space without batch norm.

* :class:`RankConsistency` gathers, after every training step, the alphas, the weights, the budget
  multiplier and the single-path sampler's draw and generator state from every rank and records
  whether each is bitwise the same everywhere (it synchronises the host: a check, not for speed).
  It also times each epoch on the rank.
* ``no-norm`` (registered by :func:`register_no_norm`): a conv with width and kernel choices and a
  linear head, without batch norm, so a step's gradient is the mean over its samples and N ranks at
  batch b follow one ``strategy="ddp"`` process at batch N*b to floating-point rounding (batch norm
  would normalise each rank's shard with its own statistics).
"""

from __future__ import annotations

import time
from typing import Any

import nni
import pytorch_lightning as pl
import torch
from nni.nas.nn.pytorch import ModelSpace, MutableConv2d, MutableLinear
from torch import nn

from uboost.distributed.collectives import same_on_all_ranks, world


class NoNormSpace(ModelSpace):
    def __init__(self, *, num_classes: int = 10, input_shape: tuple[int, int, int] = (1, 8, 8)):
        super().__init__()
        w, k = nni.choice("conv_width", [4, 8]), nni.choice("conv_kernel", [1, 3])
        self.conv = MutableConv2d(input_shape[0], w, k, padding=k // 2)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = MutableLinear(w * 4, num_classes)

    def forward(self, x):
        x = self.pool(self.conv(x).relu())
        return self.fc(x.view(x.size(0), -1))


def register_no_norm() -> None:
    """Register the ``no-norm`` space (once per process; every rank must call it)."""
    from uboost.search_spaces import SPACES, register

    if "no-norm" in SPACES:
        return

    @register("no-norm", description="conv width/kernel choices without batch norm (DDP equivalence checks)")
    def no_norm(**options: Any) -> NoNormSpace:
        return NoNormSpace(num_classes=options["num_classes"], input_shape=tuple(options["input_shape"]))

    no_norm.input_channels = 1


def _flat(tensors) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1).double().cpu() for t in tensors]).to(_device_of(tensors))


def _device_of(tensors) -> torch.device:
    for t in tensors:
        return t.device
    return torch.device("cpu")


class RankConsistency(pl.Callback):
    """Per step: ``{"step", "epoch", "alphas", "weights", "multiplier", "path"}`` (True = same on
    every rank) in :attr:`records`; :attr:`epoch_seconds` per epoch; :attr:`rank`, :attr:`size`."""

    def __init__(self, *, check: bool = True) -> None:
        self.check = check  # False: time epochs and steps only (no gathers)
        self.records: list[dict] = []
        self.epoch_seconds: list[float] = []
        self.step_seconds: list[float] = []
        self.rank, self.size = 0, 1
        self._epoch_started = self._step_started = 0.0

    def on_fit_start(self, trainer, module) -> None:
        self.rank, self.size = world()

    def on_train_epoch_start(self, trainer, module) -> None:
        self._epoch_started = time.perf_counter()

    def on_train_epoch_end(self, trainer, module) -> None:
        self.epoch_seconds.append(time.perf_counter() - self._epoch_started)

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self._step_started = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        from uboost.strategy.single_path import find_sampler

        self.step_seconds.append(time.perf_counter() - self._step_started)
        if not self.check:
            return
        device = module.hardware_loss.multiplier.device
        sampler = find_sampler(module.model)
        if sampler is not None:
            drawn = [float(sampler._index[id(a)]) for a in sampler.alphas if id(a) in sampler._index]  # registration order
            path = drawn + sampler.generator.get_state().double().tolist()
        else:
            path = [0.0]
        self.records.append({
            "step": trainer.global_step, "epoch": trainer.current_epoch,
            "alphas": same_on_all_ranks(_flat(module.arch_parameters())),
            "weights": same_on_all_ranks(_flat(list(module.parameters()))),
            "multiplier": same_on_all_ranks(module.hardware_loss.multiplier.detach().double().reshape(1)),
            "path": same_on_all_ranks(torch.tensor(path, dtype=torch.float64, device=device)),
        })
