"""The accuracy side of a bitwidth choice: the training loss each width's quantization noise adds.

A search prices bitwidths on the hardware exactly, but its task gradient cannot see what narrow bits
cost in accuracy. Quantization noise is zero-mean, so the loss it adds is second order: a gradient
(a first-order estimate, in the mixture or at a sampled path) moves the bits at random, and a
single-path straight-through weight that only scales a layer followed by batch norm gives none at
all (``benchmarks/RESULTS.md``, "the bits' task gradient"). This module estimates that second-order
loss per searched layer and candidate width ``b``, with the empirical Fisher standing in for the
Hessian (the sensitivity of HAWQ and of Fisher-based mixed-precision criteria):

* weights: ``dL_W(b) = 1/2 * B * sum_j g_j^2 * (Q_b(W)_j - W_j)^2`` -- the exact quantization errors;
* activations: ``dL_x(b) = 1/2 * B * sum_i g_i^2 * Delta_b^2 / 12`` -- uniform noise of the step
  ``Delta_b = (max - min) / (2^b - 1)`` of the layer's observed input range;

``g`` the gradient of the batch-mean training loss at the drawn path and ``B`` the batch size (the
square of a batch-mean gradient is ``1/B`` of the per-sample Fisher). They are measured by gradient
hooks on every ``every``-th weight step, kept as an exponential average per candidate (buffers of
the choice: checkpointed), and the architecture loss gains ``weight * sum_b p_b dL(b)`` with ``p =
softmax(alpha)``: in nats, as the task loss, so ``weight = 1`` weighs them alike.
"""

from __future__ import annotations

import torch

MOMENTUM = 0.1  # of the exponential average (the first measurements are averaged plainly)
EVERY = 8  # measured on every EVERY-th weight step: a few tensor operations per layer and candidate
WEIGHT_HOOK = "_noise_weight_hook"  # the handle of a probe's weight hook, in the choice's __dict__


def buffer_name(key: str) -> str:
    return f"noise_{key}"


def watch_activation(choice, x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``q`` (``x`` quantized), watched: after its backward pass each candidate's activation noise loss is
    added. An input without a gradient (the network's images) gets one here, so the first layer is priced too."""
    key = choice.keys.get("act")
    if key is None or not torch.is_grad_enabled():
        return q
    if not q.requires_grad:
        q = q.detach().requires_grad_()
    batch = x.shape[0] if x.dim() > 1 else 1
    levels = torch.tensor([2.0 ** b - 1 for b in choice.values["act"]], device=q.device)
    noise = ((choice.act_max - choice.act_min).float() / levels).pow(2) / 12  # on the device: no host read

    def hook(grad: torch.Tensor) -> None:
        _add(choice, key, 0.5 * batch * grad.detach().float().pow(2).sum() * noise)

    q.register_hook(hook)
    return q


def watch_weight(choice, weight: torch.Tensor, batch: int) -> None:
    """After the backward pass of ``weight``, add each candidate's weight noise loss."""
    key = choice.keys.get("weight")
    if key is None or not weight.requires_grad or WEIGHT_HOOK in choice.__dict__:
        return  # (a layer called twice in one pass: its weight's one hook gets the gradient of both uses)
    w = weight.detach().float()  # (a mixed layer's: at the scales of the part of its super-kernel the path uses)
    errors = torch.stack([(choice.weight_at(w, b) - w).pow(2) for b in choice.values["weight"]])

    def hook(grad: torch.Tensor) -> None:
        _add(choice, key, 0.5 * batch * (grad.detach().float().pow(2) * errors).flatten(1).sum(1))

    # the weight is a leaf (the parameter behind the quantizer's parametrization): its hook stays until removed,
    # by settle() after this backward pass
    choice.__dict__[WEIGHT_HOOK] = weight.register_hook(hook)


def _add(choice, key: str, losses: torch.Tensor) -> None:
    """One measurement of ``key``'s candidates into their average (summed with the other operand's
    measurement of the same step when one choice sets both)."""
    pending = choice.__dict__.setdefault("_noise_pending", {})
    pending[key] = pending[key] + losses if key in pending else losses


def release(choices) -> None:
    """Remove the weight hooks of this probe (a leaf's hook would run on every later backward pass)."""
    for choice in choices:
        choice.probing = False
        handle = choice.__dict__.pop(WEIGHT_HOOK, None)
        if handle is not None:
            handle.remove()


def settle(choices) -> None:
    """Fold this step's measurements into each choice's average (after the weight step's backward) and
    remove its hooks."""
    release(choices)
    for choice in choices:
        pending = choice.__dict__.pop("_noise_pending", None)
        if not pending:
            continue
        seen = choice.__dict__.get("_noise_count")
        if seen is None:  # one host read per choice and process (a resumed average continues)
            seen = int(choice.noise_seen)
        rate = max(MOMENTUM, 1.0 / (seen + 1))
        for key, losses in pending.items():
            average = choice.get_buffer(buffer_name(key))
            average.lerp_(losses.to(average.device, average.dtype), rate)
        choice.noise_seen.add_(1)
        choice.__dict__["_noise_count"] = seen + 1


def expected_loss(choices) -> torch.Tensor | None:
    """``sum over choices and their alphas of softmax(alpha) . average``: the noise loss the current
    distribution expects (0 for a choice not measured yet; ``None`` without choices). The alphas of one
    size are stacked: one softmax for all of them (a darts-cifar supernet with bits has ~10^2)."""
    groups: dict[tuple, tuple[list, list]] = {}
    for choice in choices:
        for key, alpha in choice.alphas.items():
            alphas, averages = groups.setdefault((alpha.numel(), alpha.dtype, alpha.device), ([], []))
            alphas.append(alpha)
            averages.append(choice.get_buffer(buffer_name(key)))
    total = None
    for alphas, averages in groups.values():
        stacked = torch.stack(alphas)
        term = (torch.softmax(stacked, -1) * torch.stack(averages).to(stacked.device, stacked.dtype)).sum()
        total = term if total is None else total + term
    return total
