"""Single-path sampling for the U-Boost strategy (``UBoost(sampling="single-path")``).

Every search step draws **one** candidate per choice -- each cell edge (its extra "none"
entry included), ``LayerChoice``, ``InputChoice``, width/kernel choice of a mixed operation and
``Repeat`` depth -- from the hard Gumbel-softmax and executes only that candidate (GDAS,
Dong & Yang 2019). The straight-through estimator keeps the alphas trainable: the sampled
candidate's output is multiplied by its entry of ``one_hot - soft.detach() + soft``, which is
1 in the forward pass and carries the gradient of the soft sample. Unsampled candidates do
not run, so their weights get no gradient. A sampled width or kernel is one mask of the
super-kernel (NNI's weighted-mask machinery with a single entry), not a mixture; a layer norm or
attention whose width is searched runs sliced to the sampled width, its output scaled by the
straight-through weight (:mod:`uboost.strategy.sliced_ops`).

One :class:`PathSampler` per supernet is shared by all its supermodules (as their
``_softmax``): it draws every alpha's sample at once, on first use after each ``resample()``,
with its own ``torch.Generator``, so the same label gets the same sample wherever it is used.
Its RNG state is part of the supernet's ``state_dict`` (a resumed search continues the noise
sequence). Being a ``GumbelSoftmax``, it is annealed by the strategy's per-step temperature
hook; called as a function (``export_probs``, the eval-mode mixture) it is a plain softmax.

In eval mode the supermodules compute NNI's mixture (the expectation under ``softmax(alpha)``):
tracing the supernet for the hardware cost needs every candidate to run once.

The sampled path is priced exactly by :func:`sampled_cost` (one-hot distributions into
:class:`~uboost.strategy.supernet_cost.SupernetCost`), logged as ``hw/sampled_latency_ms``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from nni.nas.oneshot.pytorch.supermodule._expression_utils import weighted_sum
from nni.nas.oneshot.pytorch.supermodule.differentiable import (
    DifferentiableMixedCell,
    DifferentiableMixedInput,
    DifferentiableMixedLayer,
    DifferentiableMixedRepeat,
    GumbelSoftmax,
    MixedOpDifferentiablePolicy,
)
from nni.nas.nn.pytorch.cell import preprocess_cell_inputs
from torch import nn

from uboost.strategy.host_mirror import HostMirror

SAMPLING_MODES = ("mixture", "single-path")


class PathSampler(GumbelSoftmax):
    """Draws one candidate per architecture parameter per step (hard Gumbel-softmax, ST).

    ``sample(alpha)`` returns ``(index, weights)``: the sampled index and the straight-through
    vector (one-hot in value, soft-sample gradient). Call :meth:`invalidate` to start a new step.
    """

    def __init__(self, seed: int = 0, tau: float = 1.0) -> None:
        super().__init__(dim=-1)
        self.tau = tau
        self.hard = True
        self.generator = torch.Generator().manual_seed(int(seed))
        self._alphas: list[torch.Tensor] = []  # registration order: fixes the RNG consumption
        self._known: set[int] = set()
        self._fresh = False
        self._index: dict[int, int] = {}  # id(alpha) -> sampled index
        # this draw on the alphas' device: [noise, one-hot] in the alphas' dtype (straight-through) and in
        # float64 (pricing), flat; an alpha's slices are taken when it is sampled (a draw uses ~20% of them)
        self._typed: torch.Tensor | None = None
        self._packed: torch.Tensor | None = None
        self._hard: dict[int, torch.Tensor] | None = None  # id(alpha) -> its float64 one-hot, made on demand
        self._layout: tuple | None = None  # sizes, starts and same-size groups of the flat vector (see _groups)
        self._st: dict[int, torch.Tensor] = {}  # id(alpha) -> straight-through weights (this step)
        self._asked: set[int] = set()  # id(alpha) of the samples this draw's forward passes used
        self._st_grad = False
        self.learn_alphas = True  # False inside constant_alphas()
        self._mirror: HostMirror | None = None  # the alphas the draws read (host copy)
        self._together: dict[tuple, list[torch.Tensor]] = {}  # alphas whose straight-through weights are made at once
        self._together_of: dict[int, tuple] = {}
        # a placeholder so the RNG state is in the state_dict (filled on save, read on load)
        self.register_buffer("rng_state", self.generator.get_state(), persistent=True)

    # -- registration -----------------------------------------------------------------------
    def register(self, *alphas: torch.Tensor) -> None:
        for alpha in alphas:
            if id(alpha) not in self._known:
                self._known.add(id(alpha))
                self._alphas.append(alpha)
                self._fresh = False
                self._layout = None

    def together(self, *alphas: torch.Tensor) -> None:
        """Make the straight-through weights of these alphas in one computation per size, the first
        time one of them is sampled in a forward pass (a supernet with bits samples ~10^2 per pass).
        Only for alphas that get a gradient in every architecture step anyway: the unused ones get
        zeros through the shared computation (the bits choices' alphas do, from the hardware term)."""
        self.register(*alphas)
        for alpha in alphas:
            if id(alpha) not in self._together_of:
                key = (alpha.numel(), alpha.dtype, alpha.device)
                self._together.setdefault(key, []).append(alpha)
                self._together_of[id(alpha)] = key

    @property
    def alphas(self) -> list[torch.Tensor]:
        return list(self._alphas)

    # -- as a softmax (export_probs, the eval-mode mixture) ----------------------------------
    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.softmax(inputs, dim=self.dim)

    # -- sampling ---------------------------------------------------------------------------
    def invalidate(self) -> None:
        """The next :meth:`sample` draws a new path (called by every supermodule's ``resample``)."""
        if self._fresh:  # a plain write: nn.Module.__setattr__ costs ~7 us, and ~10^3 supermodules call this twice a step
            object.__setattr__(self, "_fresh", False)

    def use(self, mirror: HostMirror | None) -> None:
        """Draw from ``mirror`` (a host copy of the alphas, :mod:`uboost.strategy.host_mirror`) until
        the next call; ``None``: from the live alphas at every draw (a copy to the host each time).
        The search's training step passes the alphas of the step's start, taken a step earlier."""
        self._mirror = mirror

    def _logits(self) -> torch.Tensor:
        """Every alpha's values, flat in registration order, as float64 on the host."""
        mirror = self._mirror
        if mirror is None or not mirror.covers(self._alphas):
            mirror = HostMirror(self._alphas)
        # one gather from the mirror's flat buffer (~10^3 alphas with bits), its index made once per alpha order
        order = self.__dict__.get("_mirror_order")
        if order is None or order[2] is not self._layout or order[0] != mirror.ids:
            same = mirror.ids == self._layout[4]
            order = (list(mirror.ids), None if same else mirror.positions(self._alphas), self._layout)
            self.__dict__["_mirror_order"] = order
        values = mirror.flat()
        return values if order[1] is None else values[order[1]]

    def _groups(self) -> tuple[list[int], torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]], dict[int, tuple[int, int]]]:
        """Every alpha's size and start in the flat vector (registration order), per size
        ``(alpha positions, flat positions [k, size])`` (the argmax of every alpha of one size is one
        kernel) and ``id(alpha) -> (start, end)``. Made once per set of alphas."""
        if self._layout is None:
            sizes = [alpha.numel() for alpha in self._alphas]
            n_each = torch.tensor(sizes, dtype=torch.long)
            starts = n_each.cumsum(0) - n_each
            by_size: dict[int, list[int]] = {}
            for k, n in enumerate(sizes):
                by_size.setdefault(n, []).append(k)
            groups = [(torch.tensor(ks), starts[ks].unsqueeze(1) + torch.arange(n)) for n, ks in by_size.items()]
            where = {id(a): (start, start + n) for a, start, n in zip(self._alphas, starts.tolist(), sizes)}
            self._layout = (sizes, starts, groups, where, [id(a) for a in self._alphas])
        return self._layout

    def _draw(self) -> None:
        """One draw for every registered alpha: noise from the generator, indices on the host, from
        the host mirror of the alphas (the training step passes the one of the step's start);
        the argmax is vectorized per alpha size (a supernet with bits has ~10^3 alphas)."""
        sizes, starts, groups, *_ = self._groups()
        total = sum(sizes)
        uniform = torch.rand(total, generator=self.generator, dtype=torch.float64)
        gumbel = -torch.log(-torch.log(uniform.clamp(1e-20, 1.0 - 1e-12)))
        perturbed = self._logits() + gumbel  # argmax of (alpha + g) / tau = argmax of alpha + g
        index = torch.zeros(len(self._alphas), dtype=torch.long)
        for positions, flat in groups:  # host tensors: no device read
            index[positions] = perturbed[flat].argmax(1)
        # the noise and the one-hot samples go to the device in one copy that does not wait (pinned on a GPU)
        alpha = self._alphas[0]
        packed = torch.zeros(2 * total, dtype=torch.float64, pin_memory=alpha.device.type == "cuda")
        packed[:total] = gumbel
        packed[total + starts + index] = 1.0
        packed = packed.to(alpha.device, non_blocking=True)
        typed = packed.to(alpha.dtype)  # one conversion on the device for every alpha
        # plain writes (nn.Module.__setattr__ is slow), no per-alpha views until an alpha is sampled
        self.__dict__.update(_index=dict(zip(map(id, self._alphas), index.tolist())), _typed=typed, _packed=packed,
                             _hard=None, _st={}, _asked=set(), _fresh=True)

    def _straight_through(self, alpha: torch.Tensor, graph: bool = True) -> torch.Tensor:
        """``one_hot - soft.detach() + soft`` for ``alpha``'s current sample (``graph``: with a graph to ``alpha``)."""
        start, end = self._layout[3][id(alpha)]
        if not graph:
            alpha = alpha.detach()
        total = self._typed.numel() // 2
        noise, hard = self._typed[start:end], self._typed[total + start:total + end]
        soft = torch.softmax((alpha + noise.to(alpha.dtype)) / self.tau, dim=-1)
        return hard.to(soft.dtype) - soft.detach() + soft

    def sample(self, alpha: torch.Tensor) -> tuple[int, torch.Tensor]:
        if id(alpha) not in self._known:
            self.register(alpha)
        if not self._fresh:
            self._draw()
        self._asked.add(id(alpha))
        graph = self.learn_alphas and torch.is_grad_enabled()
        if self._st_grad != graph:  # built without a graph: rebuild with one (or the reverse)
            self._st, self._st_grad = {}, graph
        st = self._st.get(id(alpha))
        if st is None:
            key = self._together_of.get(id(alpha))
            if key is not None:
                self._straight_through_together(key, graph)
                st = self._st[id(alpha)]
            else:
                st = self._st[id(alpha)] = self._straight_through(alpha, graph)
        return self._index[id(alpha)], st

    def _straight_through_together(self, key: tuple, graph: bool) -> None:
        """:meth:`_straight_through` of every alpha joined under ``key`` (:meth:`together`): the same
        operations, row by row, on their stack."""
        members = self._together[key]
        cache = self.__dict__.get("_together_index")
        if cache is None or cache[0] is not self._layout:  # flat positions per group, made once per layout
            cache = self.__dict__["_together_index"] = (self._layout, {})
        rows = cache[1].get(key)
        if rows is None:
            where = self._layout[3]
            rows = cache[1][key] = torch.stack([torch.arange(*where[id(a)]) for a in members]).to(members[0].device)
        total = self._typed.numel() // 2
        noise, hard = self._typed[rows], self._typed[rows + total]
        with torch.set_grad_enabled(graph and torch.is_grad_enabled()):
            stacked = torch.stack(members)
        soft = torch.softmax((stacked + noise.to(stacked.dtype)) / self.tau, dim=-1)
        st = hard.to(soft.dtype) - soft.detach() + soft
        self._st.update(zip(map(id, members), st.unbind(0)))

    @contextlib.contextmanager
    def constant_alphas(self) -> Iterator[None]:
        """Within: the straight-through weights are the same numbers without a graph to the alphas.
        The search's weight step runs in it: its gradients of the alphas are never read (the next
        architecture step zeroes them first), and each sampled choice (~10^2 per step with bits)
        then costs no softmax backward nor the reduction of a product's gradient w.r.t. its weight."""
        object.__setattr__(self, "learn_alphas", False)
        try:
            yield
        finally:
            object.__setattr__(self, "learn_alphas", True)

    def index(self, alpha: torch.Tensor) -> int:
        """The sampled index of ``alpha`` this step (draws if needed; no graph)."""
        if id(alpha) not in self._known:
            self.register(alpha)
        if not self._fresh:
            self._draw()
        return self._index[id(alpha)]

    def sampled(self) -> list[tuple[torch.Tensor, int]]:
        """``(alpha, index)`` of every alpha whose sample the forward pass since the last draw used, with a graph
        to it (this step's path; a choice inside a candidate that did not run is not on it)."""
        if not self._st_grad or not self._fresh:
            return []
        asked = self._asked
        return [(alpha, self._index[id(alpha)]) for alpha in self._alphas if id(alpha) in asked]

    def one_hots(self) -> dict[int, torch.Tensor]:
        """``id(alpha) -> one-hot`` of the current sample (the last drawn path), for pricing."""
        if self._hard is None and self._packed is not None and self._layout is not None:
            sizes = self._layout[0]
            self._hard = dict(zip(map(id, self._alphas), self._packed[sum(sizes):].split(sizes)))
        return dict(self._hard or {})

    # -- the RNG state travels with the supernet's state_dict -------------------------------
    def _save_to_state_dict(self, destination, prefix, keep_vars):
        self.rng_state = self.generator.get_state()
        super()._save_to_state_dict(destination, prefix, keep_vars)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)
        key = prefix + "rng_state"
        if key in state_dict:
            self.generator.set_state(state_dict[key].detach().to("cpu", torch.uint8).clone())
            self._fresh = False
        self._mirror = None  # the alphas may have been loaded too


def _scale(output: Any, weight: torch.Tensor) -> Any:
    return weighted_sum([output], [weight])


# -- supermodules -----------------------------------------------------------------------------
class SinglePathMixedLayer(DifferentiableMixedLayer):
    """``LayerChoice``: runs the sampled candidate only, scaled by its straight-through weight."""

    def __init__(self, paths, alpha, softmax, label):
        super().__init__(paths, alpha, softmax, label)
        softmax.register(alpha)

    def resample(self, memo):
        self._softmax.invalidate()
        return {}

    def forward(self, *args, **kwargs):
        if not self.training:
            return super().forward(*args, **kwargs)
        index, weights = self._softmax.sample(self._arch_alpha)
        return _scale(self[self.names[index]](*args, **kwargs), weights[index])


class SinglePathMixedInput(DifferentiableMixedInput):
    """``InputChoice`` (one chosen input): returns the sampled input, scaled."""

    def __init__(self, n_candidates, n_chosen, alpha, softmax, label):
        super().__init__(n_candidates, n_chosen, alpha, softmax, label)
        softmax.register(alpha)

    def resample(self, memo):
        self._softmax.invalidate()
        return {}

    def forward(self, inputs):
        if not self.training:
            return super().forward(inputs)
        index, weights = self._softmax.sample(self._arch_alpha)
        return _scale(inputs[index], weights[index])


class SinglePathMixedRepeat(DifferentiableMixedRepeat):
    """``Repeat``: runs the blocks up to the sampled depth only; the output is scaled by the
    product of the straight-through weights of the depth's labels."""

    def __init__(self, blocks, depth, softmax, alphas):
        super().__init__(blocks, depth, softmax, alphas)
        self._labels = {label: list(spec.values) for label, spec in self.depth_choice.simplify().items()}
        softmax.register(*self._arch_alpha.values())

    def resample(self, memo):
        self._softmax.invalidate()
        return {}

    def forward(self, x):
        if not self.training:
            return super().forward(x)
        sample, weight = {}, None
        for label, values in self._labels.items():
            alpha = self._arch_alpha[label]
            index, weights = self._softmax.sample(alpha)
            sample[label] = values[index]
            weight = weights[index] if weight is None else weight * weights[index]
        depth = int(self.depth_choice.freeze(sample))
        for block in self.blocks[:depth]:
            x = block(x)
        return _scale(x, weight)


class SinglePathMixedCell(DifferentiableMixedCell):
    """A cell whose every edge runs its sampled op only (or nothing, for "none")."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._softmax.register(*self._arch_alpha.values())
        self._node_shapes: dict[tuple, torch.Size] = {}

    def resample(self, memo):
        self._softmax.invalidate()
        return {}

    def forward(self, *inputs):
        if not self.training:
            return super().forward(*inputs)
        processed_inputs = preprocess_cell_inputs(self.num_predecessors, *inputs)
        states: list[torch.Tensor] = self.preprocessor(processed_inputs)
        key = tuple(tuple(s.shape) for s in states[: self.num_predecessors])
        for i, ops in enumerate(self.ops, start=self.num_predecessors):
            current = []
            for j in range(i):
                index, weights = self._softmax.sample(self._arch_alpha[f"{self.label}/{i}_{j}"])
                candidates = list(ops[j].values())
                if index < len(candidates):  # else the extra "none" entry: the edge adds nothing
                    current.append(candidates[index](states[j]) * weights[index])
            if current:
                node = sum(current[1:], current[0])
                self._node_shapes[(key, i)] = node.shape
            else:
                node = states[0].new_zeros(self._node_shape(key, i, ops, states))
            states.append(node)
        this_cell = torch.cat(states[self.num_predecessors:], self.concat_dim)
        return self.postprocessor(this_cell, processed_inputs)

    def _node_shape(self, key, i, ops, states) -> torch.Size:
        """Shape of node ``i`` when all its edges sampled "none" (rare): remembered, or found once."""
        shape = self._node_shapes.get((key, i))
        if shape is None:
            with torch.no_grad():
                shape = next(iter(ops[0].values()))(states[0]).shape
            self._node_shapes[(key, i)] = shape
        return shape


class MixedOpSinglePathPolicy(MixedOpDifferentiablePolicy):
    """Width/kernel choices of a mixed operation: one sampled value per label, given to NNI's
    weighted-mask slicing as a one-entry distribution ``{value: st_weight}`` (one mask). The
    operations whose function at a width is not a mask of the widest one (layer norm, attention)
    take the plain values of :meth:`sampled_arguments` instead (:mod:`uboost.strategy.sliced_ops`)."""

    def __init__(self, operation, memo, mutate_kwargs) -> None:
        super().__init__(operation, memo, mutate_kwargs)
        sampler: PathSampler = operation._softmax
        sampler.register(*operation._arch_alpha.values())
        self._labels: dict[str, list[tuple[str, list]]] = {
            name: [(str(label), list(spec.values)) for label, spec in expr.simplify().items()]
            for name, expr in operation.mutable_arguments.items()
        }

    def resample(self, operation, memo):
        operation._softmax.invalidate()
        return {}

    def forward_argument(self, operation, name: str):
        if not operation.training or name not in operation.mutable_arguments:
            return super().forward_argument(operation, name)
        sample, weight = self._draw(operation, self._labels[name])
        return {operation.mutable_arguments[name].freeze(sample): weight}

    def sampled_arguments(self, operation) -> tuple[dict[str, Any], torch.Tensor | None]:
        """Every mutable argument's sampled value (plain, not a distribution) and the product of the
        straight-through weights of their labels, each label counted once."""
        labels = dict(pair for name in operation.mutable_arguments for pair in self._labels[name])
        sample, weight = self._draw(operation, labels.items())
        return {name: expr.freeze(sample) for name, expr in operation.mutable_arguments.items()}, weight

    @staticmethod
    def _draw(operation, labels) -> tuple[dict[str, Any], torch.Tensor | None]:
        """``(label -> sampled value, product of their straight-through weights)``."""
        sample, weight = {}, None
        for label, values in labels:
            index, weights = operation._softmax.sample(operation._arch_alpha[label])
            sample[label] = values[index]
            weight = weights[index] if weight is None else weight * weights[index]
        return sample, weight


SUPERMODULES = (SinglePathMixedLayer, SinglePathMixedInput, SinglePathMixedCell, SinglePathMixedRepeat)


def mutation_hooks() -> list:
    """The strategy's default mutation hooks in single-path mode (NNI's DARTS order)."""
    from nni.nas.oneshot.pytorch.strategy import no_default_hook
    from nni.nas.oneshot.pytorch.supermodule.operation import NATIVE_MIXED_OPERATIONS

    from uboost.strategy.sliced_ops import SLICED

    hooks = [cls.mutate for cls in SUPERMODULES]
    hooks += [SLICED.get(operation, operation).mutate for operation in NATIVE_MIXED_OPERATIONS]
    hooks.append(no_default_hook)
    return hooks


def hook_kwargs(sampler: PathSampler) -> dict[str, Any]:
    """What the mutation hooks get: the shared sampler as ``softmax`` and the mixed-op policy."""
    return {"mixed_op_sampling": MixedOpSinglePathPolicy, "softmax": sampler}


# -- the sampled path's cost ----------------------------------------------------------------
def find_sampler(module: nn.Module) -> PathSampler | None:
    """The supernet's :class:`PathSampler` (cached on ``module``), or ``None`` in mixture mode."""
    cache = module.__dict__.get("_uboost_path_sampler", ())
    if cache == ():
        cache = next((m for m in module.modules() if isinstance(m, PathSampler)), None)
        module.__dict__["_uboost_path_sampler"] = cache
    return cache


def sampled_cost(supernet_cost, sampler: PathSampler):
    """The exact cost of the last sampled path (a :class:`HardwareCost`, no gradient)."""
    with torch.no_grad():
        return supernet_cost(distributions=sampler.one_hots())


def log_sampled_cost(pl_module) -> None:
    """Log ``hw/sampled_latency_ms`` (and ``hw/sampled_energy_uj``) when the supernet samples single paths (else nothing)."""
    sampler = find_sampler(pl_module)
    supernet_cost = getattr(getattr(pl_module, "hardware_loss", None), "supernet_cost", None)
    one_hots = sampler.one_hots() if sampler is not None and supernet_cost is not None else {}
    if not one_hots:
        return
    with torch.no_grad():
        cost = supernet_cost(distributions=one_hots)
    pl_module.log("hw/sampled_latency_ms", cost.latency_ms.detach().float())
    if cost.energy_uj is not None:
        pl_module.log("hw/sampled_energy_uj", cost.energy_uj.detach().float())
