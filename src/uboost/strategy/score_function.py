"""The score-function (REINFORCE) estimate of the task's gradient for single-path sampling.

Single-path sampling (:mod:`uboost.strategy.single_path`) gives an alpha the straight-through
gradient ``<dL/dy, y>``: how scaling the drawn candidate's output would change the loss. A choice
whose output feeds a batch norm gets none (the norm undoes any scale), so on spaces like
``lenet`` its alphas move by the hardware term alone and the task never compares its candidates
(benchmarks/RESULTS.md, "why the lenet sweep is hardware-decided").

The score function compares them through the losses the drawn paths reach: with ``p(s)`` the
probability of this step's path under ``softmax(alpha)`` (the Gumbel-max draw samples exactly
that distribution, whatever the temperature), ``E[(L - b) grad log p(s)]`` is the gradient of the
expected task loss for any baseline ``b`` independent of the draw (Williams 1992; ProxylessNAS
uses it for latency). The baseline is a moving average of the architecture steps' task losses, as
of the step before, which keeps the estimate unbiased and cuts its variance. The surrogate
``weight * (L - b) * log p(s)`` is added to the architecture loss beside the straight-through
term; its value is ~0 and only its gradient counts. It costs one log-softmax per sampled alpha:
nothing runs that the step did not run already.
"""

from __future__ import annotations

import torch

DECAY = 0.9  # of the baseline's moving average (per architecture step)


class ScoreFunction:
    """The surrogate ``weight * (L - b) * log p(path)`` and its baseline ``b`` (state for checkpoints)."""

    def __init__(self, weight: float, decay: float = DECAY) -> None:
        self.weight = float(weight)
        self.decay = float(decay)
        self.baseline: torch.Tensor | None = None  # on the task loss's device: reading it would sync

    def surrogate(self, task: torch.Tensor, sampled: list[tuple[torch.Tensor, int]]) -> torch.Tensor | None:
        """The term for this step's task loss ``task`` and drawn path ``sampled`` (``PathSampler.sampled()``);
        None when nothing was sampled. Updates the baseline (after using it)."""
        loss = task.detach().float()
        baseline = loss if self.baseline is None else self.baseline
        self.baseline = self.decay * baseline + (1.0 - self.decay) * loss
        if not sampled:
            return None
        advantage = loss - baseline
        return self.weight * advantage.to(task.dtype) * log_prob(sampled).to(task.dtype)

    def state_dict(self) -> dict:
        return {"baseline": None if self.baseline is None else self.baseline.detach().cpu()}

    def load_state_dict(self, state: dict, device: torch.device | str = "cpu") -> None:
        baseline = state.get("baseline")
        self.baseline = None if baseline is None else baseline.to(device)


def log_prob(sampled: list[tuple[torch.Tensor, int]]) -> torch.Tensor:
    """``sum_alpha log softmax(alpha)[index]``: the log-probability of the drawn path, one log-softmax per
    alpha size (a supernet with bits samples ~10^2 alphas per step)."""
    by_size: dict[int, list[tuple[torch.Tensor, int]]] = {}
    for alpha, index in sampled:
        by_size.setdefault(alpha.numel(), []).append((alpha, index))
    total = None
    for items in by_size.values():
        stacked = torch.stack([alpha.reshape(-1) for alpha, _ in items])
        picks = torch.tensor([index for _, index in items], device=stacked.device)
        part = torch.log_softmax(stacked, dim=-1).gather(1, picks.unsqueeze(1)).sum()
        total = part if total is None else total + part
    return total
