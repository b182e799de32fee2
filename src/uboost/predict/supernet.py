"""A finished search's trained supernet, and the accuracy of any of its sub-networks with the
weights they inherit from it.

:func:`load_trained_supernet` rebuilds the run's supernet (same space, same sampling mode),
loads the weights of its last checkpoint and the final alphas, and cuts the run's data exactly
as the search did: the weights' share of the training split, and the architecture's share --
the validation split the search never trained weights on. :meth:`TrainedSupernet.accuracy`
then measures one sub-network:

* its choices are *pinned*: every alpha becomes a one-hot logit vector (0 for the chosen entry,
  -1e4 elsewhere), so NNI's mixture, Gumbel softmax and the single-path sampler all run exactly
  that sub-network (single-path runs only its candidates: the other ops cost nothing);
* batch norm is recalibrated for it (one forward pass in training mode over a batch of the
  weights' data, momentum 1: the running statistics become this sub-network's), since the
  supernet's statistics mix every path;
* its accuracy on the validation split is measured with batch norm in evaluation mode.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from uboost import runs
from uboost.exceptions import ConfigError, RunDirError

logger = logging.getLogger(__name__)

PREFIX = "training_module._model."  # where the supernet's tensors sit in a search checkpoint
PINNED_LOGIT = -1e4  # every other entry of a pinned alpha: exp(-1e4) is 0 in any float type


@dataclass
class TrainedSupernet:
    root: Path
    config: Any  # SearchConfig
    supernet: nn.Module
    choices: list
    nodes: list
    input_shape: tuple[int, ...]
    val_x: torch.Tensor
    val_y: torch.Tensor
    recal_x: torch.Tensor
    batch_size: int
    weights_data: Any = None  # the weights' share of the training split (for fine_tune_uniform)

    def fine_tune_uniform(self, epochs: int, seed: int = 0) -> None:
        """Train the supernet's weights ``epochs`` more epochs on the weights' share, one uniformly
        drawn sub-network per batch (SPOS-style; the alphas stay as they are). The search trained
        mostly the paths its alphas preferred; this gives every sub-network some training first."""
        import numpy as np
        from torch.utils.data import DataLoader

        from uboost.predict.sampling import random_network

        if epochs <= 0:
            return
        alphas = {id(c.alpha) for c in self.choices}
        weights = [p for p in self.supernet.parameters() if id(p) not in alphas]
        optimizer = torch.optim.Adam(weights, lr=self.config.learning_rate, weight_decay=3e-4)
        loader = DataLoader(self.weights_data, batch_size=self.config.batch_size, shuffle=True,
                            generator=torch.Generator().manual_seed(seed))
        rng = np.random.default_rng(seed)
        for _ in range(epochs):
            for x, y in loader:
                with pinned(self.choices, random_network(self.choices, self.nodes, rng), self.supernet):
                    self.supernet.train()
                    loss = nn.functional.cross_entropy(self.supernet(x), y)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()

    def accuracy(self, network: dict[str, int]) -> float:
        """Top-1 accuracy on the validation split of the sub-network taking entry
        ``network[label]`` of every choice, with inherited weights and recalibrated batch norm."""
        with pinned(self.choices, network, self.supernet), torch.no_grad():
            self.supernet.train()
            self.supernet(self.recal_x)  # momentum 1: the running statistics become this network's
            _evaluation_mode(self.supernet)
            correct = 0
            for start in range(0, self.val_x.shape[0], self.batch_size):
                logits = self.supernet(self.val_x[start: start + self.batch_size])
                correct += int((logits.argmax(1) == self.val_y[start: start + self.batch_size]).sum())
        return correct / max(1, self.val_x.shape[0])


def _evaluation_mode(supernet: nn.Module) -> None:
    """Batch norm and dropout in evaluation mode; a single-path supernet's choice modules stay in
    training mode, where they run the sampled (pinned) candidate only."""
    from uboost.strategy.single_path import find_sampler

    if find_sampler(supernet) is None:
        supernet.eval()
        return
    supernet.train()
    for module in supernet.modules():
        if isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.Dropout)):
            module.eval()


@contextlib.contextmanager
def pinned(choices: list, network: dict[str, int], supernet: nn.Module):
    """Every alpha one-hot on ``network``'s entry while the block runs (then restored)."""
    from uboost.strategy.single_path import find_sampler

    saved = [c.alpha.detach().clone() for c in choices]
    sampler = find_sampler(supernet)
    try:
        with torch.no_grad():
            for c in choices:
                logits = torch.full_like(c.alpha, PINNED_LOGIT).reshape(-1)
                logits[int(network[c.label])] = 0.0
                c.alpha.copy_(logits.reshape(c.alpha.shape))
        if sampler is not None:
            sampler.invalidate()  # the next forward draws the pinned path
        yield
    finally:
        with torch.no_grad():
            for c, value in zip(choices, saved):
                c.alpha.copy_(value)
        if sampler is not None:
            sampler.invalidate()


def _batch_norm_momentum_one(supernet: nn.Module) -> None:
    """A recalibration pass replaces the running statistics instead of averaging into them."""
    from nni.nas.oneshot.pytorch.supermodule.operation import MixedOperation

    for module in supernet.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.momentum = 1.0
            if isinstance(module, MixedOperation) and "momentum" in module.init_arguments:
                module.init_arguments["momentum"] = 1.0  # NNI's mixed batch norm reads it from there


def check_no_bits(root: Path, config) -> None:
    """Refuse, in one line, a search with bitwidths (``config``: its ``config.json``): the predictor's table
    scores operation choices, not a precision per layer."""
    searched = {k: config.get(k) for k in ("bits", "weight_bits", "act_bits") if isinstance(config, dict) and config.get(k)}
    if searched:
        flags = " ".join(f"--{k.replace('_', '-')} {','.join(map(str, v))}" for k, v in searched.items())
        raise ConfigError(f"{root} searched bitwidths ({flags}); the predictor has no bits axis yet (its table scores "
                          "operation choices only): predict on a search without bits")


def check_search_run(root: Path) -> Path:
    """Refuse, in one line, what is not a finished search with a supernet checkpoint."""
    check_no_bits(root, runs.searched_config(root))
    checkpoint = runs.latest_checkpoint(root)
    if checkpoint is None:
        raise RunDirError(f"{root} has no supernet checkpoint in {runs.CHECKPOINTS}/: the predictor measures the trained "
                          "supernet's sub-networks (an exported or retrained run has none; predict on its search run)")
    return checkpoint


def _split(config, input_shape) -> tuple[Any, Any]:
    """``(weights' share, architecture's share)`` of the training data, exactly as the search cut it."""
    from torch.utils.data import DataLoader, Subset

    from uboost.data import load_datasets
    from uboost.strategy import UBoost

    train, _ = load_datasets(config.dataset, data_dir=config.data_dir, download=False, image_size=config.image_size,
                             channels=input_shape[0], seed=config.seed)
    if config.max_samples is not None and config.max_samples < len(train):
        train = Subset(train, range(config.max_samples))
    loaders = UBoost(data_split=config.data_split, seed=config.seed).train_dataloader(
        lambda: DataLoader(train, batch_size=config.batch_size), None)
    return loaders["train"].dataset, loaders["val"].dataset


def _stack(dataset, indices) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = zip(*(dataset[int(i)] for i in indices))
    return torch.stack(list(images)), torch.tensor([int(y) for y in labels])


def load_trained_supernet(run: str | os.PathLike, *, recalibration_images: int = 256, seed: int = 0) -> TrainedSupernet:
    """The run's supernet with its trained weights and final alphas, and its validation data."""
    from uboost.search_config import SearchConfig, build_space
    from uboost.strategy import UBoost
    from uboost.strategy.architecture import choice_groups, load_alphas

    root = Path(run)
    ckpt = check_search_run(root)
    config = SearchConfig.from_dict(runs.read_json(root / runs.CONFIG, "run config"))
    alphas = runs.read_json(root / runs.ALPHAS, "alphas")
    if not isinstance(alphas, dict):
        raise RunDirError(f"{root / runs.ALPHAS} must hold a JSON object (label -> list of numbers)")
    space, input_shape, _ = build_space(config)
    supernet = UBoost(sampling=config.sampling, seed=config.seed).mutate_model(space)
    state = runs.check_checkpoint(ckpt)["state_dict"]
    differ = runs.tensors_differ(supernet.state_dict(), {k[len(PREFIX):]: v for k, v in state.items() if k.startswith(PREFIX)})
    if differ:
        key, found, want = differ[0]
        raise RunDirError(f"checkpoint {ckpt} does not hold this run's {config.space} supernet ({len(differ)} tensors differ, "
                          f"e.g. {key}: {found} in the checkpoint, {want} expected)")
    supernet.load_state_dict({k[len(PREFIX):]: v for k, v in state.items() if k.startswith(PREFIX)})
    load_alphas(supernet, alphas)
    _batch_norm_momentum_one(supernet)
    choices, nodes = choice_groups(supernet)
    weights_part, val_part = _split(config, input_shape)
    order = torch.randperm(len(weights_part), generator=torch.Generator().manual_seed(seed))
    recal_x, _ = _stack(weights_part, order[:recalibration_images])
    val_x, val_y = _stack(val_part, range(len(val_part)))
    logger.info("supernet of %s: %d choices, %d validation images, %d recalibration images",
                root, len(choices), len(val_part), recal_x.shape[0])
    return TrainedSupernet(root, config, supernet, choices, nodes, tuple(input_shape), val_x, val_y, recal_x,
                           max(config.batch_size, 256), weights_part)
