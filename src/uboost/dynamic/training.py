"""Training the exit heads, and the validation split their thresholds are chosen on.

``distill`` (the default, HADAS): the backbone is frozen and stays in eval mode; each head learns
from cross-entropy on the labels plus distillation (KL at temperature ``T``, scaled by ``T^2``)
from the final classifier's output. The backbone's weights, and so the static network's accuracy,
are untouched, and the backbone's features are computed once and cached, so the heads train in
seconds. ``joint`` (SDN, Kaya et al. 2019): backbone and heads train together on
``sum_k tau_k(e) CE_k + CE_final``, ``tau_k`` growing linearly over the epochs to 0.15..0.9 with
depth; it may move the final accuracy either way.

The validation split is carved from the training data (:func:`split_validation`); thresholds
and the search only ever see it, never the test set.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from uboost.exceptions import ConfigError

logger = logging.getLogger(__name__)
MODES = ("distill", "joint")


def split_validation(train: Dataset, fraction: float, *, seed: int) -> tuple[Subset, Subset]:
    """``(train, validation)``: a seeded random ``fraction`` of the training data held out."""
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"validation fraction must be in (0, 1), got {fraction!r}")
    n = len(train)
    held = max(1, int(round(n * fraction)))
    if held >= n:
        raise ConfigError(f"{n} training samples are too few to hold out a validation split")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return Subset(train, sorted(order[held:])), Subset(train, sorted(order[:held]))


@torch.no_grad()
def collect(network, loader: DataLoader) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Every exit's logits (heads, then final) over ``loader`` and the labels, on the CPU."""
    network.eval()
    outs, labels = None, []
    for x, y in loader:
        logits = network.all_exits(x)
        outs = [[] for _ in logits] if outs is None else outs
        for bucket, l in zip(outs, logits):
            bucket.append(l.cpu())
        labels.append(y.cpu())
    return [torch.cat(b) for b in outs or []], torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long)


@torch.no_grad()
def _features(network, loader: DataLoader):
    feats, finals, labels = [[] for _ in network.heads], [], []
    network.backbone.eval()
    for x, y in loader:
        store = []
        final, _ = network.backbone.run(x, lambda k, f: store.append(f) or None)
        for bucket, f in zip(feats, store):
            bucket.append(f)
        finals.append(final)
        labels.append(y)
    return [torch.cat(f) for f in feats], torch.cat(finals), torch.cat(labels)


def _distill_loss(logits, y, teacher, temperature: float, alpha: float):
    ce = F.cross_entropy(logits, y)
    kd = F.kl_div(F.log_softmax(logits / temperature, -1), F.softmax(teacher / temperature, -1), reduction="batchmean")
    return (1 - alpha) * ce + alpha * kd * temperature**2


def train_heads(network, loader: DataLoader, *, mode: str = "distill", epochs: int = 20, learning_rate: float = 0.01,
                temperature: float = 3.0, alpha: float = 0.5, seed: int = 0) -> list[float]:
    """Train ``network``'s heads (``distill``) or heads and backbone (``joint``); returns the loss per epoch."""
    if mode not in MODES:
        raise ConfigError(f"unknown exit training {mode!r}; expected one of: {', '.join(MODES)}")
    if epochs < 1:
        raise ConfigError(f"head epochs must be positive, got {epochs}")
    torch.manual_seed(seed)
    return (_train_distill if mode == "distill" else _train_joint)(network, loader, epochs, learning_rate, temperature, alpha, seed)


def _train_distill(network, loader, epochs, lr, temperature, alpha, seed) -> list[float]:
    for p in network.backbone.parameters():
        p.requires_grad_(False)
    feats, teacher, labels = _features(network, loader)
    data = TensorDataset(*feats, teacher, labels)
    batches = DataLoader(data, batch_size=loader.batch_size or 64, shuffle=True, generator=torch.Generator().manual_seed(seed))
    opt = torch.optim.Adam(network.heads.parameters(), lr=lr, weight_decay=1e-4)
    network.heads.train()
    losses = []
    for _ in range(epochs):
        total = 0.0
        for *fs, t, y in batches:
            loss = sum(_distill_loss(h(f), y, t, temperature, alpha) for h, f in zip(network.heads, fs))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(y)
        losses.append(total / len(data))
        logger.info("exit heads epoch %d: loss %.4f", len(losses), losses[-1])
    network.eval()
    return losses


def _train_joint(network, loader, epochs, lr, temperature, alpha, seed) -> list[float]:
    k = len(network.heads)
    final_tau = [0.15 + (0.9 - 0.15) * j / max(1, k - 1) for j in range(k)]  # SDN: deeper heads weigh more
    opt = torch.optim.SGD(network.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    network.train()
    losses = []
    for epoch in range(epochs):
        scale = (epoch + 1) / epochs
        total, count = 0.0, 0
        for x, y in loader:
            *heads, final = network.all_exits(x)
            loss = F.cross_entropy(final, y) + sum(scale * tau * F.cross_entropy(h, y) for tau, h in zip(final_tau, heads))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, count = total + float(loss.detach()) * len(y), count + len(y)
        losses.append(total / max(1, count))
    network.eval()
    return losses
