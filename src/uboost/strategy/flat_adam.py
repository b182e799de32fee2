"""The architecture optimizer: torch's Adam over many small alphas as one flat vector.

A supernet with bits has ~500 alphas of 2-8 entries each. ``torch.optim.Adam(foreach=True)`` on a
CPU runs its ``_foreach_*`` ops as a C++ loop over the tensors (the "slow path"): ~10 kernel calls
and two host reads of the step count per alpha, ~5-10 ms per step for ~1,500 numbers.
:class:`FlatAdam` does the same update as **one** vector: when every alpha has a gradient and all
have taken the same number of steps (the search's architecture step: every alpha gets a gradient
through the hardware term, every step), it concatenates parameters and gradients, runs the
foreach update's operations once on the flat vectors -- in the same order, with the same
scalars -- and copies the parameters back. The optimizer state stays per alpha in torch's own
format (``step``, ``exp_avg``, ``exp_avg_sq``; views into the flat buffers), so checkpoints load
either way. Any other case (an alpha without a gradient, unequal step counts, options other than
plain Adam with L2 weight decay) runs torch's own step.

Same numbers: elementwise, an alpha's entries see the same operations with the same scalars; the
only difference is that they run in the vectorized body of a kernel instead of its scalar tail,
which on every build tested gives identical floats (``tests/strategy/test_flat_adam.py`` compares
many steps with ``torch.equal``).
"""

from __future__ import annotations

import torch

_PLAIN = dict(amsgrad=False, maximize=False, capturable=False, differentiable=False, decoupled_weight_decay=False)


class FlatAdam(torch.optim.Adam):
    """``torch.optim.Adam(params, lr, betas, weight_decay, eps, foreach=True)``, updated as one vector."""

    def __init__(self, params, lr: float, *, betas: tuple[float, float], weight_decay: float = 0.0, eps: float = 1e-8):
        super().__init__(params, lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=True)
        self._flat: tuple | None = None  # (params, sizes, steps, exp_avg, exp_avg_sq, all vectors): the state as flat buffers

    def load_state_dict(self, state_dict) -> None:
        super().load_state_dict(state_dict)
        self._flat = None  # loaded state: separate tensors again (gathered at the next flat step)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:  # as torch's Adam does first (Lightning always passes one)
            with torch.enable_grad():
                loss = closure()
        if self._flat_step():
            return loss
        self._flat = self._flat if self._flat is not None and self._flat_state_intact() else None
        super().step()
        return loss

    # -- the flat update -------------------------------------------------------------------------
    def _flat_step(self) -> bool:
        if len(self.param_groups) != 1:
            return False
        group = self.param_groups[0]
        params = group["params"]
        if not params or any(group.get(k, False) != v for k, v in _PLAIN.items()) or group.get("fused"):
            return False
        if not all(isinstance(group[k], float) for k in ("lr", "eps", "weight_decay")) or \
                not all(isinstance(b, float) for b in group["betas"]):
            return False
        grads = [p.grad for p in params]
        if any(g is None or g.is_sparse for g in grads):
            return False
        first = params[0]
        if any(p.dtype != first.dtype or p.device != first.device or p.is_complex() for p in params):
            return False
        flat = self._flat_state(params)
        if flat is None:
            return False
        _, sizes, steps, exp_avg, exp_avg_sq = flat[:5]
        lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]

        vectors = flat[5]  # every alpha a vector (as the search's): no reshape/view per alpha (~500 with bits)
        param = torch.cat(params if vectors else [p.reshape(-1) for p in params])
        grad = torch.cat(grads if vectors else [g.reshape(-1) for g in grads])
        # torch.optim.adam._multi_tensor_adam (not capturable), one vector instead of a list
        steps.add_(torch.tensor(1.0), alpha=1.0)
        step = steps[0].item()  # every alpha's count (checked equal in _flat_state)
        if weight_decay != 0:
            grad = grad.add(param, alpha=weight_decay)
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2)
        exp_avg_sq.addcmul_(grad, grad, value=1 - beta2)
        del grad
        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        step_size = (lr / bias_correction1) * -1
        denom = exp_avg_sq.sqrt()
        denom.div_(bias_correction2 ** 0.5)
        denom.add_(eps)
        param.addcdiv_(exp_avg, denom, value=step_size)
        pieces = param.split(sizes)
        torch._foreach_copy_(params, pieces if vectors else [v.view_as(p) for v, p in zip(pieces, params)])
        return True

    def _flat_state(self, params) -> tuple | None:
        """The flat buffers (made, or gathered from per-alpha state, on first use); ``None`` when
        the alphas' states differ (some without state, unequal step counts)."""
        if self._flat is not None and len(self._flat[0]) == len(params) and \
                all(a is b for a, b in zip(self._flat[0], params)) and self._flat_state_intact():
            steps = self._flat[2]
            return self._flat if bool((steps == steps[0]).all()) else None
        states = [self.state.get(p) for p in params]
        sizes = [p.numel() for p in params]
        if all(not s for s in states):  # first step: zeros, as torch's _init_group makes them
            steps = torch.zeros(len(params), dtype=torch.float32)
            exp_avg = torch.zeros(sum(sizes), dtype=params[0].dtype, device=params[0].device)
            exp_avg_sq = torch.zeros_like(exp_avg)
        elif all(s and {"step", "exp_avg", "exp_avg_sq"} <= set(s) for s in states):
            if any(s["step"].device.type != "cpu" or s["step"].dtype != torch.float32 or s["step"].numel() != 1 for s in states):
                return None
            steps = torch.stack([s["step"].reshape(()) for s in states])
            if not bool((steps == steps[0]).all()):
                return None
            exp_avg = torch.cat([s["exp_avg"].reshape(-1) for s in states])
            exp_avg_sq = torch.cat([s["exp_avg_sq"].reshape(-1) for s in states])
        else:
            return None
        for i, (p, a, b) in enumerate(zip(params, exp_avg.split(sizes), exp_avg_sq.split(sizes))):
            self.state[p] = {"step": steps[i], "exp_avg": a.view_as(p), "exp_avg_sq": b.view_as(p)}
        self._flat = (list(params), sizes, steps, exp_avg, exp_avg_sq, all(p.dim() == 1 for p in params))
        return self._flat

    def _flat_state_intact(self) -> bool:
        """The per-alpha state still is the views of the flat buffers (nobody replaced an entry)."""
        params, _, steps, exp_avg, *_ = self._flat
        base = exp_avg.untyped_storage().data_ptr(), steps.untyped_storage().data_ptr()
        for p in (params[0], params[-1]):
            s = self.state.get(p)
            if not s or (s["exp_avg"].untyped_storage().data_ptr(), s["step"].untyped_storage().data_ptr()) != base:
                return False
        return True


__all__ = ["FlatAdam"]
