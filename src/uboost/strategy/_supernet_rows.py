"""Tracing an NNI differentiable supernet into cost *rows* (one concrete layer shape each).

:func:`_rows` runs the supernet once with hooks and reads the structure NNI actually trains:
per-edge cell alphas (with their extra "none" entry), ``LayerChoice`` alphas, width/kernel
choices of mixed operations and ``Repeat`` depths. Every costed layer (``Conv2d``/``Linear``, the
GEMMs of a ``MultiheadAttention``) becomes one or more rows, each gated by the choices on its
path (:class:`_Choices` numbers them into one flat probability vector). :mod:`uboost.strategy.supernet_cost` turns the rows
into one tensor expression.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from uboost.exceptions import ConfigError
from uboost.hardware import LayerShape
from uboost.hardware.attention import attention_inputs, attention_shapes
from uboost.hardware.layers import _shape_of, conv_kind

CHANNEL_ARGUMENTS = ("in_channels", "out_channels", "groups", "in_features", "out_features")


class _Choices:
    """Layout of the flat probability vector: [1, softmax(alpha_0), softmax(alpha_1), ..., derived]."""

    def __init__(self) -> None:
        self.alphas: list[nn.Parameter] = []
        self._index: dict[int, int] = {}
        self.derived: list[list[int]] = []  # each: flat indices summed (e.g. P(depth >= i))
        self._derived_key: dict[tuple, int] = {}

    def alpha(self, alpha: torch.Tensor) -> int:
        key = id(alpha)
        if key not in self._index:
            self._index[key] = len(self.alphas)
            self.alphas.append(alpha)
        return self._index[key]

    def tail(self, alpha: torch.Tensor, members: Sequence[int]) -> tuple:
        """A derived probability: the sum of ``alpha``'s entries ``members``."""
        key = (self.alpha(alpha), tuple(members))
        if key not in self._derived_key:
            self._derived_key[key] = len(self.derived)
            self.derived.append(list(key))
        return ("derived", self._derived_key[key])

    def layout(self) -> tuple[dict[int, int], list[list[int]], list[torch.Tensor]]:
        """Offsets of every alpha in the flat vector (grouped by length for one softmax per group)."""
        groups: dict[int, list[int]] = defaultdict(list)
        for i, a in enumerate(self.alphas):
            groups[a.numel()].append(i)
        offsets, order, cursor = {}, [], 1
        for length in sorted(groups):
            for i in groups[length]:
                offsets[i] = cursor
                cursor += length
            order.append(groups[length])
        return offsets, order, cursor


# A row's choices: list of (label_key, flat-index-spec); spec = ("alpha", alpha_idx, k) or ("derived", j)
Choice = tuple[Any, tuple]


@dataclass
class _Row:
    shape: LayerShape
    choices: list[Choice]
    soft_in: list[tuple[float, list[Choice]]] | None = None  # smooth mode: (value, its choices) options
    soft_out: list[tuple[float, list[Choice]]] | None = None


def _merge(choices: Sequence[Choice]) -> list[Choice] | None:
    """Combine the choices on one path: equal ones merge, conflicting ones make the row impossible."""
    seen: dict[Any, tuple] = {}
    for key, spec in choices:
        if key in seen:
            if seen[key] != spec:
                return None
            continue
        seen[key] = spec
    return list(seen.items())


def _nni():
    from nni.nas.oneshot.pytorch.supermodule.differentiable import (
        DifferentiableMixedCell,
        DifferentiableMixedLayer,
        DifferentiableMixedRepeat,
    )
    from nni.nas.oneshot.pytorch.supermodule.operation import MixedOperation

    return DifferentiableMixedLayer, DifferentiableMixedCell, DifferentiableMixedRepeat, MixedOperation


def _gates(root: nn.Module, choices: _Choices) -> dict[nn.Module, list[list[Choice]]]:
    """For every module, the choice paths under which it runs (a module shared by two paths has two)."""
    MixedLayer, MixedCell, MixedRepeat, _ = _nni()
    gates: dict[nn.Module, list[list[Choice]]] = defaultdict(list)

    def visit(module: nn.Module, path: list[Choice]) -> None:
        gates[module].append(path)
        if isinstance(module, MixedLayer):
            a = choices.alpha(module._arch_alpha)
            for k, name in enumerate(module.names):
                visit(module[name], path + [(("alpha", a), ("alpha", a, k))])
            return
        if isinstance(module, MixedCell):
            for name, child in module.named_children():
                if name != "ops":
                    visit(child, path)
            for i, node_ops in enumerate(module.ops, start=module.num_predecessors):
                for j, edge in enumerate(node_ops):
                    a = choices.alpha(module._arch_alpha[f"{module.label}/{i}_{j}"])
                    for k, op in enumerate(edge.values()):
                        visit(op, path + [(("alpha", a), ("alpha", a, k))])
            return
        if isinstance(module, MixedRepeat):
            labels = module.depth_choice.simplify()
            if len(labels) != 1:
                raise ConfigError(f"Repeat depth must depend on one choice for hardware costing, got {list(labels)}")
            (label, categorical), = labels.items()
            alpha = module._arch_alpha[label]
            depths = [module.depth_choice.freeze({label: v}) for v in categorical.values]
            for name, child in module.named_children():
                if name != "blocks":
                    visit(child, path)
            for i, block in enumerate(module.blocks, start=1):
                members = [k for k, d in enumerate(depths) if d >= i]
                if not members:
                    continue
                spec = choices.tail(alpha, members) if len(members) < len(depths) else None
                visit(block, path + ([(("depth", id(alpha), i), spec)] if spec else []))
            return
        for child in module.children():
            visit(child, path)

    visit(root, [])
    return gates


def _trace(supernet: nn.Module, example: torch.Tensor) -> dict[nn.Module, list[tuple[torch.Size, torch.Size]]]:
    calls: dict[nn.Module, list] = defaultdict(list)

    def hook(module, args, output):
        if args and isinstance(args[0], torch.Tensor) and isinstance(output, torch.Tensor):
            calls[module].append((args[0], output))

    def attention_hook(module, args, kwargs, output):
        inputs = attention_inputs(args, kwargs)
        if inputs is not None:
            calls[module].append((inputs, output))

    handles = [m.register_forward_hook(hook) for m in supernet.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    handles += [m.register_forward_hook(attention_hook, with_kwargs=True) for m in supernet.modules()
                if isinstance(m, nn.MultiheadAttention)]
    was_training = supernet.training
    try:
        supernet.eval()
        with torch.no_grad():
            supernet(example)
    finally:
        supernet.train(was_training)
        for h in handles:
            h.remove()
    return calls


def _pair(v) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _mixed_shape(module, name: str, args: dict, inp: torch.Tensor) -> LayerShape:
    if isinstance(module, nn.Conv2d):
        kh, kw = _pair(args["kernel_size"])
        sh, sw = _pair(args.get("stride", 1))
        ph, pw = _pair(args.get("padding", 0)) if not isinstance(args.get("padding"), str) else (kh // 2, kw // 2)
        dh, dw = _pair(args.get("dilation", 1))
        h, w = inp.shape[-2], inp.shape[-1]
        oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        cin, cout, groups = int(args["in_channels"]), int(args["out_channels"]), int(args.get("groups", 1))
        return LayerShape(
            name=name, kind=conv_kind(cin, groups, kh, kw), in_channels=cin, out_channels=cout, groups=groups,
            kernel_h=kh, kernel_w=kw, stride=sh, in_h=h, in_w=w, out_h=oh, out_w=ow,
        )
    positions = inp.numel() // (inp.shape[0] * inp.shape[-1]) if inp.dim() > 1 else 1
    return LayerShape(
        name=name, kind="linear", in_channels=int(args["in_features"]), out_channels=int(args["out_features"]),
        in_h=positions, out_h=positions,
    )


def _label_choices(module, choices: _Choices, labels: Sequence[str]) -> list[tuple[dict, list[Choice]]]:
    """Every combination of ``labels`` of a mixed operation: (sample, its choices)."""
    space = module.simplify()
    per_label = []
    for label in labels:
        a = choices.alpha(module._arch_alpha[label])
        per_label.append([(label, v, (("alpha", a), ("alpha", a, k))) for k, v in enumerate(space[label].values)])
    combos = []
    for combo in itertools.product(*per_label):
        combos.append(({label: v for label, v, _ in combo}, [c for _, _, c in combo]))
    return combos


def _rows(supernet: nn.Module, example: torch.Tensor, choices: _Choices, mode: str) -> list[_Row]:
    from uboost.strategy.precision import expand_rows  # a layer's bits: one row per searched width

    _, _, _, MixedOperation = _nni()
    gates = _gates(supernet, choices)
    calls = _trace(supernet, example)
    names = {m: n for n, m in supernet.named_modules()}
    rows: list[_Row] = []
    for module, module_calls in calls.items():
        name = names.get(module, type(module).__name__)
        paths = gates.get(module, [[]])
        for inp, out in module_calls:
            for path in paths:
                if isinstance(module, nn.MultiheadAttention):  # inp: (query, key, value)
                    rows += _attention_rows(module, name, inp, path, choices, isinstance(module, MixedOperation))
                    continue
                if not isinstance(module, MixedOperation):
                    shape = _shape_of(module, name, inp, out)
                    merged = _merge(path)
                    if shape is not None and merged is not None:
                        rows += expand_rows(module, [_Row(shape, merged)], choices)
                    continue
                rows += expand_rows(module, _mixed_rows(module, name, inp, path, choices, mode), choices)
    return rows


def _attention_rows(module, name, inputs, path, choices: _Choices, mixed: bool) -> list[_Row]:
    """An attention's rows (:mod:`uboost.hardware.attention`), one set per combination of a mixed
    one's labels (in either cost mode: its widths are exact, not expected channel counts)."""
    from uboost.strategy.precision import expand_rows

    rows = []
    for sample, combo in _label_choices(module, choices, list(module.simplify())) if mixed else [({}, [])]:
        merged = _merge(path + combo)
        if merged is None:
            continue
        args = {**module.init_arguments, **{k: e.freeze(sample) for k, e in module.mutable_arguments.items()}} if mixed else {}
        dims = {k: args[k] for k in ("embed_dim", "num_heads", "kdim", "vdim") if k in args}
        for shape in attention_shapes(module, name, *inputs, **dims):
            owner = module.out_proj if shape.name.endswith(".out_proj") else module  # out_proj has its own bits
            rows += expand_rows(owner, [_Row(shape, merged)], choices)
    return rows


def _mixed_rows(module, name, inp, path, choices: _Choices, mode: str) -> list[_Row]:
    mutable = module.mutable_arguments
    all_labels = list(module.simplify())
    channel_labels = {
        label for arg in CHANNEL_ARGUMENTS if arg in mutable for label in mutable[arg].simplify()
    }
    structural = [l for l in all_labels if l not in channel_labels]
    rows = []
    if mode == "expected":
        for sample, combo in _label_choices(module, choices, all_labels):
            merged = _merge(path + combo)
            if merged is None:
                continue
            args = {**module.init_arguments, **{k: e.freeze(sample) for k, e in mutable.items()}}
            rows.append(_Row(_mixed_shape(module, name, args, inp), merged))
        return rows
    # smooth: exact over structural labels, expected values over channel labels
    in_arg = "in_channels" if isinstance(module, nn.Conv2d) else "in_features"
    out_arg = "out_channels" if isinstance(module, nn.Conv2d) else "out_features"

    def options(arg):
        expr = mutable.get(arg)
        if expr is None:
            return None
        return [
            (float(expr.freeze(sample)), combo)
            for sample, combo in _label_choices(module, choices, list(expr.simplify()))
        ]

    channel_combos = _label_choices(module, choices, sorted(channel_labels))
    if isinstance(module, nn.Conv2d) and "groups" in mutable:
        depthwise = all(
            mutable["groups"].freeze(s) == (mutable[in_arg].freeze(s) if in_arg in mutable else module.init_arguments[in_arg])
            for s, _ in channel_combos
        )
        if not depthwise:
            raise ConfigError(f"{name}: smooth cost mode supports searched groups only for depthwise convs")
    representative = channel_combos[0][0]  # any valid channel sample; the soft values replace it
    for sample, combo in _label_choices(module, choices, structural):
        merged = _merge(path + combo)
        if merged is None:
            continue
        full = {**representative, **sample}
        args = {**module.init_arguments, **{k: e.freeze(full) for k, e in mutable.items()}}
        rows.append(_Row(_mixed_shape(module, name, args, inp), merged, options(in_arg), options(out_arg)))
    return rows
