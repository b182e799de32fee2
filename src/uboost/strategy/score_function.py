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

``scope="blind"`` keeps the straight-through estimate alone wherever it works and adds the score
function only to the choices it is blind to. :class:`BlindChoices` measures, in the first
architecture steps, the straight-through task gradient each sampled alpha gets (one extra
``autograd.grad`` of the task loss per probed step, until every alpha has ``PROBES`` readings):
behind a batch norm it is ~1e-6 (the norm's eps), elsewhere 1e-3-1e-1 (lenet's conv1 width and
kernel and conv2's kernel: 2e-7-2e-6; its conv2 width and fc1 width 2e-2; every darts-cifar edge
6e-3-1e-1, so none is blind there). An alpha is blind when its mean reading is below
``TOLERANCE`` times the mean task loss of those steps (the gradient scales with the loss).
Until an alpha is judged it gets no score-function term.
"""

from __future__ import annotations

import torch

DECAY = 0.9  # of the baseline's moving average (per architecture step)
SCOPES = ("all", "blind")  # which sampled choices get the score function
PROBES = 4  # straight-through readings per alpha before it is judged blind or not
PROBE_STEPS = 64  # architecture steps after which alphas read fewer times are judged on what they have
TOLERANCE = 1e-4  # blind: mean |straight-through task gradient| below this times the mean task loss


class ScoreFunction:
    """The surrogate ``weight * (L - b) * log p(path)`` and its baseline ``b`` (state for checkpoints)."""

    def __init__(self, weight: float, decay: float = DECAY, scope: str = "all") -> None:
        if scope not in SCOPES:
            raise ValueError(f"score function scope must be one of {', '.join(SCOPES)}, got {scope!r}")
        self.weight = float(weight)
        self.decay = float(decay)
        self.baseline: torch.Tensor | None = None  # on the task loss's device: reading it would sync
        self.blind = BlindChoices() if scope == "blind" else None

    def surrogate(self, task: torch.Tensor, sampled: list[tuple[torch.Tensor, int]],
                  alphas: list[torch.Tensor] | None = None) -> torch.Tensor | None:
        """The term for this step's task loss ``task`` and drawn path ``sampled`` (``PathSampler.sampled()``);
        None when nothing was sampled. Updates the baseline (after using it). ``alphas``: every alpha in
        the sampler's order (``scope="blind"`` keys its readings by position, so they survive a checkpoint)."""
        loss = task.detach().float()
        baseline = loss if self.baseline is None else self.baseline
        self.baseline = self.decay * baseline + (1.0 - self.decay) * loss
        if self.blind is not None:
            if alphas is None:  # positions in the drawn path move from step to step: readings would mix alphas
                raise ValueError("scope='blind' keys its readings by position among every alpha: pass alphas")
            sampled = self.blind.select(task, sampled, alphas)
        if not sampled:
            return None
        advantage = loss - baseline
        return self.weight * advantage.to(task.dtype) * log_prob(sampled).to(task.dtype)

    def state_dict(self) -> dict:
        state = {"baseline": None if self.baseline is None else self.baseline.detach().cpu()}
        if self.blind is not None:
            state["blind"] = self.blind.state_dict()
        return state

    def load_state_dict(self, state: dict, device: torch.device | str = "cpu") -> None:
        baseline = state.get("baseline")
        self.baseline = None if baseline is None else baseline.to(device)
        if self.blind is not None and "blind" in state:
            self.blind.load_state_dict(state["blind"])


class BlindChoices:
    """Which alphas single path's straight-through estimate gives no task gradient (module docstring).

    Readings are kept per alpha position in the sampler's registration order (stable across a
    resume); ``verdict[position]`` is True (blind), False, or absent (not judged yet)."""

    def __init__(self, probes: int = PROBES, probe_steps: int = PROBE_STEPS, tolerance: float = TOLERANCE) -> None:
        self.probes, self.probe_steps, self.tolerance = int(probes), int(probe_steps), float(tolerance)
        self.sums: dict[int, float] = {}  # position -> sum of max |straight-through task gradient|
        self.counts: dict[int, int] = {}
        self.loss_sum, self.steps = 0.0, 0  # over the probed steps
        self.verdict: dict[int, bool] = {}
        self._positions: tuple[list[int], dict[int, int]] | None = None

    def _position(self, alphas: list[torch.Tensor]) -> dict[int, int]:
        ids = [id(a) for a in alphas]
        if self._positions is None or self._positions[0] != ids:
            self._positions = (ids, {i: k for k, i in enumerate(ids)})
        return self._positions[1]

    def select(self, task: torch.Tensor, sampled: list[tuple[torch.Tensor, int]],
               alphas: list[torch.Tensor]) -> list[tuple[torch.Tensor, int]]:
        """The sampled alphas judged blind, after reading this step's straight-through gradients of the
        ones not judged yet (needs ``task``'s graph: read before the step's backward pass)."""
        position = self._position(alphas)
        unjudged = [(a, position[id(a)]) for a, _ in sampled if position[id(a)] not in self.verdict]
        if unjudged and task.requires_grad:
            self._read(task, unjudged)
        return [(a, i) for a, i in sampled if self.verdict.get(position[id(a)], False)]

    def _read(self, task: torch.Tensor, unjudged: list[tuple[torch.Tensor, int]]) -> None:
        grads = torch.autograd.grad(task, [a for a, _ in unjudged], retain_graph=True, allow_unused=True)
        *reads, loss = torch.stack([torch.zeros((), device=task.device) if g is None else g.detach().abs().max().float()
                                    for g in grads] + [task.detach().float()]).tolist()  # one device read per probed step
        self.loss_sum += loss
        self.steps += 1
        for (_, k), value in zip(unjudged, reads):
            self.sums[k] = self.sums.get(k, 0.0) + value
            self.counts[k] = self.counts.get(k, 0) + 1
        last = self.steps >= self.probe_steps
        for k in list(self.counts):
            if k not in self.verdict and (self.counts[k] >= self.probes or last):
                self.verdict[k] = self.sums[k] / self.counts[k] < self.tolerance * self.loss_sum / self.steps

    def blind_positions(self) -> list[int]:
        return sorted(k for k, blind in self.verdict.items() if blind)

    def state_dict(self) -> dict:
        return {"sums": dict(self.sums), "counts": dict(self.counts), "loss_sum": self.loss_sum,
                "steps": self.steps, "verdict": dict(self.verdict)}

    def load_state_dict(self, state: dict) -> None:
        self.sums = {int(k): float(v) for k, v in state.get("sums", {}).items()}
        self.counts = {int(k): int(v) for k, v in state.get("counts", {}).items()}
        self.loss_sum, self.steps = float(state.get("loss_sum", 0.0)), int(state.get("steps", 0))
        self.verdict = {int(k): bool(v) for k, v in state.get("verdict", {}).items()}


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
