"""Bitwidths searched with the architecture: a precision choice on every ``Conv2d``/``Linear``.

``UBoost(bits=(2, 4, 8))`` gives every searchable layer of **any** NNI model space one choice
that sets its weight and activation bits together (Auto-NBA); ``weight_bits=`` / ``act_bits=``
give two independent choices (EdMIPS). The user's space is not changed: after NNI has turned it
into a supernet, :func:`attach_bits` puts a :class:`BitsChoice` -- a
:class:`~uboost.quant.LayerQuantizer` that is also an NNI supernet module with its own alphas --
on every ``Conv2d``/``Linear`` it finds (NNI's mixed convs, hub spaces and first and last layers
included). ``pin={"stem.*": 8}`` fixes the layers whose supernet names match to one width.

* **Mixture** (DARTS): the layer computes ``conv(sum_j q_j Q_j(x), sum_i p_i Q_i(W))`` -- one
  convolution, which by bilinearity equals ``sum_ij p_i q_j conv(Q_j(x), Q_i(W))``, the mixture of
  all ``N_w x N_a`` parallel convolutions (EdMIPS), at the memory of one. With one shared choice
  (``bits=``) both factors use the same ``p``: the one convolution is then the mixture of the
  ``N^2`` (weight, activation) pairs with weights ``p_i p_j`` (the diagonal pairs are the coupled
  candidates; running only them would take ``N`` convolutions).
* **Single path**: the strategy's :class:`~uboost.strategy.single_path.PathSampler` draws one
  bitwidth per choice per step; only that quantization runs, scaled by its straight-through weight,
  and the layer's bias is int32 at the drawn widths (as the frozen layer's). In the mixture the
  bias of a searched layer stays float (its scale would be a mixture of widths).
* **Width and kernel choices**: NNI's mixed conv/linear read the whole super-kernel (the quantizer
  runs there) and slice it afterwards; each output channel's weight scale is taken over the part the
  path uses (:mod:`uboost.strategy._sliced`), the frozen layer's slice: a single path (or pinned
  alphas) computes the exported layer's weights; the mixture mixes every candidate quantized at its
  own scales (exact per candidate).
* **Cost**: every (layer, bits) candidate is a constant cost row (:func:`expand_rows`), so the
  hardware term, budgets, the commit phase, the exact projection and ``frontier`` price bits like
  any other choice. The choices are listed by :func:`~uboost.strategy.architecture.choice_groups`
  with kind ``"bits"`` under labels ``bits:<layer>`` (or ``wbits:``/``abits:``); they stay out of
  NNI's exported architecture (``arch.json``) and go to ``precision.json``, keyed by the
  **frozen** network's layer names (:func:`frozen_precision`).
"""

from __future__ import annotations

import fnmatch
import itertools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import torch
from nni.nas.oneshot.pytorch.supermodule.base import BaseSuperNetModule
from torch import nn

from uboost.exceptions import ArchitectureError, ConfigError
from uboost.quant import ATTR, LayerQuantizer, attach, check_bits, quantized_layers
from uboost.strategy import bits_noise
from uboost.strategy._sliced import track

logger = logging.getLogger(__name__)

PREFIXES = {"bits": "bits:", "weight": "wbits:", "act": "abits:"}


def is_bits_label(label: str) -> bool:
    return isinstance(label, str) and label.startswith(tuple(PREFIXES.values()))


def split_arch(arch: Mapping) -> tuple[dict, dict]:
    """``(NNI's architecture, the bits labels)`` of a full architecture dict."""
    return ({k: v for k, v in arch.items() if not is_bits_label(k)}, {k: v for k, v in arch.items() if is_bits_label(k)})


@dataclass(frozen=True, kw_only=True)
class BitsSpace:
    """Which bitwidths a search chooses from: ``bits`` (one choice per layer for both operands) or
    ``weight_bits`` / ``act_bits`` (two choices; an operand not given stays at 8). ``pin`` maps
    layer-name patterns (``fnmatch``, supernet names) to a fixed width for both operands."""

    bits: tuple[int, ...] | None = None
    weight_bits: tuple[int, ...] | None = None
    act_bits: tuple[int, ...] | None = None
    pin: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.bits is not None and (self.weight_bits is not None or self.act_bits is not None):
            raise ConfigError("give either bits (weights and activations together) or weight_bits/act_bits, not both")
        if self.bits is None and self.weight_bits is None and self.act_bits is None:
            raise ConfigError("a bits space needs bits, weight_bits or act_bits")
        for name in ("bits", "weight_bits", "act_bits"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, check_bits(getattr(self, name), name))
        if not isinstance(self.pin, Mapping):
            raise ConfigError(f"pin must map layer names to bits, got {self.pin!r}")
        object.__setattr__(self, "pin", {str(k): check_bits(v, f"pin[{k!r}]")[0] for k, v in self.pin.items()})

    @property
    def coupled(self) -> bool:
        return self.bits is not None

    @property
    def values(self) -> dict[str, tuple[int, ...]]:
        """Candidate widths of each operand."""
        if self.coupled:
            return {"weight": self.bits, "act": self.bits}
        return {"weight": self.weight_bits or (8,), "act": self.act_bits or (8,)}

    @property
    def all_bits(self) -> tuple[int, ...]:
        return tuple(sorted({*self.values["weight"], *self.values["act"], *self.pin.values()}))

    def pinned(self, name: str) -> int | None:
        for pattern, bits in self.pin.items():
            if fnmatch.fnmatchcase(name, pattern):
                return bits
        return None


class BitsChoice(LayerQuantizer, BaseSuperNetModule):
    """The precision choice of one supernet layer: alphas over its bitwidths, and the quantizer
    that mixes (or samples) them in the forward pass."""

    def __init__(self, layer: str, space: BitsSpace, softmax: nn.Module):
        values = space.values
        LayerQuantizer.__init__(self, max(values["weight"]), max(values["act"]))
        self.layer = layer
        self.values = values
        self.coupled = space.coupled
        self._softmax = softmax
        # operand -> key of its alpha ("bits" shared when coupled); operands with one value have none
        self.keys = {op: ("bits" if self.coupled else op) for op, v in values.items() if len(v) > 1}
        self.alphas = nn.ParameterDict({key: nn.Parameter(torch.randn(len(values[op])) * 1e-3) for op, key in self.keys.items()})
        self.labels = {key: PREFIXES[key] + layer for key in self.alphas}
        for op, key in self.keys.items():  # the loss each width's quantization noise adds (strategy/bits_noise.py)
            self.register_buffer(bits_noise.buffer_name(key), torch.zeros(len(values[op])))
        self.register_buffer("noise_seen", torch.zeros((), dtype=torch.long))
        self.probing = False  # measure it in this forward/backward pass (set by the search's weight steps)
        register = getattr(softmax, "together", None)  # the single-path sampler draws every alpha at once and
        if register is not None:  # makes the bits' straight-through weights together (each gets a gradient anyway)
            register(*self.alphas.values())
        self._shared_p: torch.Tensor | None = None

    # -- NNI supernet module -------------------------------------------------------------------
    def arch_parameters(self):
        return list(self.alphas.values())

    def resample(self, memo):
        invalidate = self.resample_action()
        if invalidate is not None:
            invalidate()
        return {}

    def resample_action(self):
        """All :meth:`resample` does, as a callable shared by every choice on the same sampler (or
        ``None``): the search's resample calls each distinct one once instead of once per layer."""
        return getattr(self._softmax, "invalidate", None)

    def export(self, memo):
        return {}  # bits go to precision.json, not to NNI's architecture (see the module docstring)

    def export_probs(self, memo):
        # not logged as NNI's prob/<label>/<value> metrics (3 columns per layer in metrics.csv, every
        # 10 steps); the final probabilities of the bits are in probabilities.json like every choice's
        return {}

    # -- the quantizer's mixture ---------------------------------------------------------------
    def mixture(self, operand: str):
        values = self.values[operand]
        key = self.keys.get(operand)
        if key is None:
            return [(values[0], None)]
        alpha = self.alphas[key]
        sample = getattr(self._softmax, "sample", None)
        if self.training and sample is not None:  # single path: one width, straight-through weight
            index, weights = sample(alpha)
            shared_again = self.coupled and operand == "weight"  # the activation already carries it
            return [(values[index], None if shared_again else weights[index])]
        if self.coupled and operand == "weight" and self._shared_p is not None:
            p, self._shared_p = self._shared_p, None  # the activation's draw of this forward pass
        else:
            p = self._softmax(alpha) if self.training else torch.softmax(alpha, -1)
            if self.coupled and operand == "act":
                self._shared_p = p
        return list(zip(values, p))

    def bias_precision(self):
        """The sampled widths in single path (the bias is int32 at them, as the frozen layer's); ``None``
        in the mixture (the bias stays float)."""
        index = getattr(self._softmax, "index", None)
        if not self.training or index is None:
            return None
        return tuple(int(values[0] if key is None else values[index(self.alphas[key])])
                     for op in ("weight", "act") for values, key in [(self.values[op], self.keys.get(op))])

    def quantize_input(self, x: torch.Tensor) -> torch.Tensor:
        q = super().quantize_input(x)
        if self.probing and self.training:
            self.__dict__["_batch"] = x.shape[0] if x.dim() > 1 else 1
            q = bits_noise.watch_activation(self, x, q)
        return q

    def quantize_weight(self, weight: torch.Tensor) -> torch.Tensor:
        if self.probing and self.training:
            bits_noise.watch_weight(self, weight, self.__dict__.get("_batch", 1))
        return super().quantize_weight(weight)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in [n for n in self._buffers if n.startswith("noise_")]:  # a checkpoint made before they existed
            state_dict.setdefault(prefix + name, self._buffers[name].clone())
        self.__dict__.pop("_noise_count", None)
        return super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def combos(self, choices) -> list[tuple[int, int, list]]:
        """``(weight_bits, act_bits, their choices)`` of every candidate, for the cost rows."""
        per_operand = []
        for op in ("weight", "act"):
            key = self.keys.get(op)
            if key is None:
                per_operand.append([(self.values[op][0], [])])
                continue
            a = choices.alpha(self.alphas[key])
            per_operand.append([(v, [(("alpha", a), ("alpha", a, k))]) for k, v in enumerate(self.values[op])])
        out = []
        for (w, cw), (b, ca) in itertools.product(*per_operand):
            if self.coupled and w != b:
                continue
            out.append((w, b, cw + ca))
        return out


def attach_bits(supernet: nn.Module, space: BitsSpace, softmax_factory) -> list[BitsChoice]:
    """Put a precision choice on every ``Conv2d``/``Linear`` of ``supernet`` (pinned layers get a
    fixed quantizer). ``softmax_factory()`` gives the module turning alphas into weights (the
    strategy's softmax, or its shared single-path sampler). A pin matching no layer is an error."""
    choices, used = [], set()
    for name, module in list(quantized_layers(supernet)):
        if hasattr(module, ATTR):
            continue
        bits = space.pinned(name)
        if bits is not None:
            used.update(p for p in space.pin if fnmatch.fnmatchcase(name, p))
            attach(module, LayerQuantizer(bits, bits))
        else:
            choices.append(attach(module, BitsChoice(name, space, softmax_factory())))
        track(module)  # a mixed Conv2d/Linear: quantized over the part of its super-kernel the path uses
    unused = sorted(set(space.pin) - used)
    if unused:
        raise ConfigError(f"pinned layer pattern {unused[0]!r} matches no Conv2d/Linear of the space")
    return choices


def expand_rows(module: nn.Module, rows: list, choices) -> list:
    """Cost rows of ``module`` at its bits: one row per (row, bits candidate) for a searched layer."""
    from uboost.strategy._supernet_rows import _merge

    quantizer = getattr(module, ATTR, None)
    if quantizer is None:
        return rows
    if not isinstance(quantizer, BitsChoice):
        w, a = quantizer.precision
        return [replace(r, shape=replace(r.shape, weight_bits=w, act_bits=a)) for r in rows]
    out = []
    for row in rows:
        for w, a, extra in quantizer.combos(choices):
            merged = _merge(row.choices + extra)
            if merged is not None:
                out.append(replace(row, shape=replace(row.shape, weight_bits=w, act_bits=a), choices=merged))
    return out


def bits_on_derived(supernet_cost, choices, indices: Mapping[int, int], tau: float = 1.0, *, utilization: bool = True):
    """The expected cost (its value unchanged) whose gradient prices each layer's bits on the op
    the search would export now.

    In the plain expectation a layer's bits alpha gets the cost difference of its widths averaged
    over *every* candidate of its op (every width and kernel of a mixed conv, every op of an
    edge). On ``fixed`` PEs with a small SRAM the wide candidates stall at 8 bits and narrower
    bits remove those stalls, so every bits alpha is pushed down -- while the op the search keeps
    may be compute-bound, where the narrow bits buy nothing and only lose accuracy. Here the bits
    alphas get the gradient of the cost with every other choice one-hot at ``indices`` (the
    derived network: what the bits buy on it), the other alphas the gradient of the expectation
    with the bits' probabilities held: ``E(p, sg(q)) + C(d, q) - sg(C(d, q))``.

    ``utilization=False``: the utilization gives the bits no gradient (``E(p, sg(q))`` alone; see
    :func:`blind_utilization`)."""
    from uboost.strategy.architecture import one_hot

    bits = {id(c.alpha) for c in choices if c.kind == "bits"}
    full = supernet_cost(tau=tau, detach=bits)
    if not bits:
        return full
    derived = supernet_cost(distributions=one_hot([c for c in choices if c.kind != "bits"], indices), tau=tau)

    def mix(a, b):
        return None if a is None else a + (b - b.detach())

    mixed = {f: mix(getattr(full, f), getattr(derived, f)) for f in full.__dataclass_fields__}
    if not utilization:
        mixed["utilization"] = full.utilization
    return type(full)(**mixed)


def blind_utilization(cost, supernet_cost, choices, tau: float = 1.0):
    """``cost`` with its utilization's gradient kept from the bits choices (its value unchanged).

    Utilization counts effective MACs over effective PEs (:meth:`uboost.hardware.CostModel.effective_macs`).
    On precision-aware PEs (``bitfusion``, ``bit-serial``) a narrower width multiplies the MACs a PE runs per
    cycle, so a layer too small to fill the widened array runs faster at a *lower* utilization: the term
    ``beta * (1 - utilization)`` then pushes such layers back to 8 bits against the latency term: on
    darts-cifar BitFusion 16x16 the stem and the cells' preprocessors ended at 8 bits with p ~ 0.99, at
    twice their 4-bit cycles, and the mixed search's network was slower than uniform 4-bit's in 4 of 6
    seeds (benchmarks/RESULTS.md, "the utilization term blind to the bits"). Blind to the bits, the
    utilization steers what it was made for -- channel counts and ops that fill the array -- and the bits
    are priced by latency and energy. The default on precision-aware PEs
    (:class:`~uboost.strategy.loss.HardwareLoss`, ``utilization_on_bits=None``); on ``fixed`` PEs a width
    changes only the stalls, where utilization and latency agree, and the term keeps its gradient."""
    bits = {id(c.alpha) for c in choices if c.kind == "bits"}
    if not bits:
        return cost
    return replace(cost, utilization=supernet_cost(tau=tau, detach=bits).utilization)


def widen_bits(cost, choices, nodes, arch: Mapping, *, with_energy: bool = False) -> dict:
    """``arch`` with every searched layer's bits raised to the widest width that makes the network
    cost no more on the cost rows ``cost`` (a :class:`~uboost.strategy.supernet_cost.SupernetCost`
    over ``choices``/``nodes`` from ``choice_groups``) -- latency, and energy ``with_energy`` (when
    the search or the projection optimizes or bounds it): a narrower width that buys nothing on the
    exported ops only loses accuracy (quantization error does not grow with the bits). On ``fixed``
    PEs a compute-bound layer gets its widest width back; on ``bitfusion`` a narrow layer keeps its
    width wherever it is faster. Each layer is tried once, in order, with the others as already
    decided (the cost rows are per layer, so the order does not matter); budgets met before are met after."""
    from uboost.strategy.architecture import arch_to_indices, one_hot

    every = choices
    choices = [c for c in every if c.kind == "bits"]
    if not choices:
        return dict(arch)
    indices = arch_to_indices(every, nodes, arch)

    @torch.no_grad()
    def price(trial) -> tuple[float, ...]:
        priced = cost(distributions=one_hot(every, trial))
        return (float(priced.latency_ms),) + ((float(priced.energy_uj),) if with_energy and priced.energy_uj is not None else ())

    def no_dearer(new, old) -> bool:
        return all(a <= b * (1 + 1e-9) for a, b in zip(new, old))

    base = price(indices)
    widest = {**indices, **{id(c.alpha): max(range(len(c.values)), key=c.values.__getitem__) for c in choices}}
    if no_dearer(price(widest), base):  # every layer at its widest costs nothing more (fixed PEs, compute-bound)
        indices = widest
    else:
        for choice in choices:
            current = choice.values[indices[id(choice.alpha)]]
            for j in sorted(range(len(choice.values)), key=lambda j: -choice.values[j]):
                if choice.values[j] <= current:
                    break
                trial = {**indices, id(choice.alpha): j}
                priced = price(trial)
                if no_dearer(priced, base):
                    indices, base = trial, priced
                    break
    widened = {c.label: c.values[indices[id(c.alpha)]] for c in choices}
    changed = sum(arch.get(label) != value for label, value in widened.items())
    if changed:
        logger.info("bits: %d searched layers widened at no extra cost on the exported network", changed)
    return {**arch, **widened}


def argmax_bits(choices) -> dict:
    """The bits labels the current alphas prefer (``choices`` from ``choice_groups``)."""
    return {c.label: c.values[int(torch.argmax(c.alpha.detach()))] for c in choices if c.kind == "bits"}


def split_precision(supernet: nn.Module, arch: Mapping, choices=None) -> tuple[dict, dict | None]:
    """``(NNI's architecture, bits per frozen layer)`` of a full architecture; the bits are
    ``None`` when the supernet has no quantized layer. Bits labels missing from ``arch`` are
    the alphas' argmax (NNI's export has none)."""
    nni_arch, bits = split_arch(arch)
    if not any(hasattr(m, ATTR) for m in supernet.modules()):
        return nni_arch, None
    if choices is None:
        from uboost.strategy.architecture import choice_groups

        choices = choice_groups(supernet)[0]
    return nni_arch, frozen_precision(supernet, {**nni_arch, **argmax_bits(choices), **bits})


def bits_labels_used(supernet: nn.Module, arch: Mapping) -> set[str]:
    """The bits labels the network ``arch`` describes reads: those of its own layers. A search's (or a
    projection's) architecture also holds the bits of every candidate it did not keep, whose values
    change nothing (the integer program sets them freely)."""
    class Reading(dict):
        def __getitem__(self, key):
            read.add(key)
            return super().__getitem__(key)

    read: set[str] = set()
    frozen_precision(supernet, Reading(arch))
    return {label for label in read if is_bits_label(label)}


def free_bits_labels(supernet: nn.Module, arch: Mapping) -> set[str]:
    """The bits labels of ``arch`` that describe nothing in its network (:func:`bits_labels_used`'s complement)."""
    bits = {label for label in arch if is_bits_label(label)}
    return bits - bits_labels_used(supernet, arch) if bits else set()


# -- precision.json: the chosen bits, by the frozen network's layer names ---------------------
def frozen_precision(supernet: nn.Module, arch: Mapping) -> dict[str, tuple[int, int]]:
    """``{frozen layer name: (weight_bits, act_bits)}`` of the network ``space.freeze(arch)``
    builds, from a full architecture (NNI's labels and the bits labels).

    Walks the supernet as NNI freezes it: a ``LayerChoice`` becomes its chosen candidate at its own
    path, a cell node's ``k``-th kept input is ``ops.<node>.<k>``, a ``Repeat`` keeps its first
    ``depth`` blocks as ``<i>``. :func:`uboost.quant.apply_precision` checks the names against the
    frozen network."""
    from uboost.strategy._supernet_rows import _nni

    from nni.nas.nn.pytorch import Repeat

    MixedLayer, MixedCell, MixedRepeat, _ = _nni()
    out: dict[str, tuple[int, int]] = {}

    def value(label):
        if label not in arch:
            raise ArchitectureError(f"architecture lacks a value for {label!r}")
        return arch[label]

    def visit(module: nn.Module, path: str) -> None:
        join = (lambda name: f"{path}.{name}" if path else name)
        quantizer = getattr(module, ATTR, None)
        if isinstance(module, (nn.Conv2d, nn.Linear)) and quantizer is not None:
            if isinstance(quantizer, BitsChoice):
                bits = {op: (value(quantizer.labels[key]) if key else quantizer.values[op][0])
                        for op in ("weight", "act") for key in [quantizer.keys.get(op)]}
                out[path] = (int(bits["weight"]), int(bits["act"]))
            else:
                out[path] = quantizer.precision
            return
        if isinstance(module, MixedLayer):
            visit(module[value(module.label)], path)
            return
        if isinstance(module, MixedCell):
            for name, child in module.named_children():
                if name != "ops":
                    visit(child, join(name))
            for n, node_ops in enumerate(module.ops):
                i = n + module.num_predecessors
                for k in range(module.num_ops_per_node):
                    inputs = value(f"{module.label}/input_{i}_{k}")
                    j = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
                    visit(node_ops[j][value(f"{module.label}/op_{i}_{k}")], join(f"ops.{n}.{k}"))
            return
        if isinstance(module, (MixedRepeat, Repeat)):  # frozen: nn.Sequential of the first `depth` blocks
            depth = module.depth_choice
            if not isinstance(depth, int):
                depth = int(depth.freeze({k: value(k) for k in depth.simplify()}))
            for i, block in enumerate(module.blocks[:depth]):
                visit(block, join(str(i)))
            return
        for name, child in module.named_children():
            visit(child, join(name))

    visit(supernet, "")
    return out
