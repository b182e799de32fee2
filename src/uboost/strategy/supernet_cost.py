"""Expected hardware cost of an NNI differentiable supernet, as one tensor expression.

:func:`build_supernet_cost` traces the supernet once (one forward pass with hooks) and reads
the structure NNI actually trains -- per-edge cell alphas (with their extra "none" entry),
``LayerChoice`` alphas, width/kernel choices of mixed operations and ``Repeat`` depths. Every
costed layer (``Conv2d``/``Linear``) becomes one or more *rows*:

* a row is one concrete layer shape, active with probability ``prod_d p[index[row, d]]``,
  where the indices point into a flat vector of all choice probabilities (softmax of each
  alpha, plus ``P(depth >= i)`` for repeats and a constant 1 for padding). Rows of the same
  label with different values are impossible and dropped; repeated equal ones are merged.
* ``cost_mode="expected"``: rows enumerate *all* choices of the layer (channels included)
  and their cycles are precomputed with the exact cost model, so the cost is the **exact
  expectation** of the cycle-exact cost over the independent categorical choices.
* ``cost_mode="smooth"``: rows enumerate only the non-channel choices (kernel, stride...);
  channels enter as **expected channel counts** through the smooth ceiling at ``temperature``,
  the U-Boost paper's relaxation.

Each training step then costs a gather, a product and a sum (no Python loop over layers, no
host sync): :class:`SupernetCost` is an ``nn.Module`` whose tables are buffers.
"""

from __future__ import annotations

import itertools
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from uboost.exceptions import ConfigError
from uboost.hardware import CostModel, LayerShape, LayerTable
from uboost.hardware.layers import _shape_of, conv_kind

logger = logging.getLogger(__name__)

COST_MODES = ("expected", "smooth")
CHANNEL_ARGUMENTS = ("in_channels", "out_channels", "groups", "in_features", "out_features")


@dataclass(frozen=True)
class HardwareCost:
    """Expected cost of the current architecture distribution (0-d tensors)."""

    cycles: torch.Tensor
    macs: torch.Tensor
    latency_ms: torch.Tensor
    utilization: torch.Tensor


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

    handles = [m.register_forward_hook(hook) for m in supernet.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
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
                if not isinstance(module, MixedOperation):
                    shape = _shape_of(module, name, inp, out)
                    merged = _merge(path)
                    if shape is not None and merged is not None:
                        rows.append(_Row(shape, merged))
                    continue
                rows += _mixed_rows(module, name, inp, path, choices, mode)
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


class SupernetCost(nn.Module):
    """Differentiable expected cost of a supernet; call it to get a :class:`HardwareCost`."""

    def __init__(self, cost_model: CostModel, rows: list[_Row], choices: _Choices, mode: str, temperature: float | None):
        super().__init__()
        if mode not in COST_MODES:
            raise ConfigError(f"unknown cost mode {mode!r}; expected one of: {', '.join(COST_MODES)}")
        if mode == "smooth" and (temperature is None or not temperature > 0):
            raise ConfigError(f"smooth cost mode needs a positive temperature, got {temperature!r}")
        self.cost_model = cost_model
        self.mode = mode
        self.temperature = temperature
        self.shapes = [r.shape for r in rows]
        self._alphas = choices.alphas  # not registered: they belong to the supernet
        offsets, self._groups, n_flat = choices.layout()
        self._layout = (offsets, self._groups, n_flat)  # read by the projection's integer program
        self._derived_members = [(a, list(m)) for a, m in choices.derived]
        self._cell_inputs: list = []  # cell nodes priced as exportable cells (see select_cell_inputs)

        def flat(spec) -> int:
            if spec[0] == "alpha":
                return offsets[spec[1]] + spec[2]
            return n_flat + spec[1]

        derived = torch.zeros(len(choices.derived), n_flat, dtype=torch.float64)
        for j, (alpha_idx, members) in enumerate(choices.derived):
            for k in members:
                derived[j, offsets[alpha_idx] + k] = 1.0
        self.register_buffer("derived", derived, persistent=False)

        def index_matrix(lists: list[list[int]]) -> torch.Tensor:
            width = max([len(l) for l in lists] + [1])
            return torch.tensor([l + [0] * (width - len(l)) for l in lists], dtype=torch.long).reshape(len(lists), width)

        self.register_buffer("gate_index", index_matrix([[flat(s) for _, s in r.choices] for r in rows]), persistent=False)
        table = LayerTable.from_shapes(self.shapes)
        self.table = table
        if mode == "expected":
            with torch.no_grad():
                self.register_buffer("row_cycles", cost_model.cycles(table), persistent=False)
                self.register_buffer("row_macs", cost_model.macs(table), persistent=False)
        else:
            self._register_soft("in", [r.soft_in for r in rows], table.in_channels, flat)
            self._register_soft("out", [r.soft_out for r in rows], table.out_channels, flat)
        for name, value in (("table_" + f, getattr(table, f)) for f in table.__dataclass_fields__ if f != "names"):
            self.register_buffer(name, value, persistent=False)

    def _register_soft(self, which: str, options, fixed: torch.Tensor, flat) -> None:
        width_a = max([len(o) for o in options if o] + [1])
        width_d = max([len(c) for o in options if o for _, c in o] + [1])
        values = torch.zeros(len(options), width_a, dtype=torch.float64)
        index = torch.zeros(len(options), width_a, width_d, dtype=torch.long)
        for r, opts in enumerate(options):
            if not opts:
                values[r, 0] = fixed[r]
                continue
            for a, (value, combo) in enumerate(opts):
                values[r, a] = value
                for d, (_, spec) in enumerate(combo):
                    index[r, a, d] = flat(spec)
        self.register_buffer(f"soft_{which}_values", values, persistent=False)
        self.register_buffer(f"soft_{which}_index", index, persistent=False)

    def _table(self) -> LayerTable:
        return LayerTable(**{f: getattr(self, "table_" + f) for f in LayerTable.__dataclass_fields__ if f != "names"})

    @property
    def alphas(self) -> list[torch.Tensor]:
        """The architecture parameters this cost reads, in the order of the flat vector's layout."""
        return list(self._alphas)

    def select_cell_inputs(self, nodes) -> None:
        """Price cell edges as NNI exports cells: each node keeps exactly ``n_chosen`` inputs
        (:mod:`uboost.strategy.cell_inputs`); ``nodes`` from
        :func:`~uboost.strategy.architecture.choice_groups`. One-hot ``distributions`` are
        priced as given (they already are one concrete network)."""
        from uboost.strategy.cell_inputs import EdgeSlot, NodeInputs

        offsets = self._layout[0]
        where = {id(a): i for i, a in enumerate(self._alphas)}
        self._cell_inputs = [
            NodeInputs(node.n_chosen, tuple(
                EdgeSlot(e.alpha, offsets[where[id(e.alpha)]] if id(e.alpha) in where else None,
                         has_none=e.values[-1] is None) for e in node.edges))
            for node in nodes]

    def probabilities(self, uniform: bool = False, distributions: Mapping[int, torch.Tensor] | None = None,
                      tau: float = 1.0) -> torch.Tensor:
        """The flat probability vector: [1, softmax(alpha / tau) of every alpha..., derived sums...].

        ``distributions`` maps ``id(alpha)`` to a probability vector that replaces
        ``softmax(alpha / tau)`` (one-hot vectors price one concrete path exactly).
        """
        ref = self.gate_index
        parts = [torch.ones(1, dtype=torch.float64, device=ref.device)]
        for group in self._groups:
            stacked = torch.stack([self._alphas[i] for i in group]).to(device=ref.device, dtype=torch.float64)
            if uniform:
                stacked = torch.zeros_like(stacked)
            probs = torch.softmax(stacked / tau if tau != 1.0 else stacked, dim=-1)
            if distributions:
                replaced = [j for j, i in enumerate(group) if id(self._alphas[i]) in distributions]
                if replaced:
                    rows = [distributions[id(self._alphas[group[j]])].to(device=ref.device, dtype=torch.float64).reshape(-1) for j in replaced]
                    probs = probs.index_put((torch.tensor(replaced, device=ref.device),), torch.stack(rows))
            parts.append(probs.reshape(-1))
        flat = torch.cat(parts)
        if self._cell_inputs and not distributions:
            from uboost.strategy.cell_inputs import edge_probabilities

            edges = edge_probabilities(self._cell_inputs, tau, uniform, flat.dtype, flat.device)
            if edges is not None:
                flat = flat.index_put((edges[0],), edges[1])
        if self.derived.shape[0]:
            flat = torch.cat([flat, self.derived @ flat])
        return flat

    def forward(self, uniform: bool = False, *, distributions: Mapping[int, torch.Tensor] | None = None,
                tau: float = 1.0) -> HardwareCost:
        """Expected cost under ``softmax(alpha / tau)`` (or under uniform choices with ``uniform=True``);
        ``distributions`` overrides some alphas' probabilities (see :meth:`probabilities`)."""
        p = self.probabilities(uniform, distributions, tau)
        gate = p[self.gate_index].prod(-1)
        if self.mode == "expected":
            cycles, macs = self.row_cycles, self.row_macs
        else:
            cin = (self.soft_in_values * p[self.soft_in_index].prod(-1)).sum(-1)
            cout = (self.soft_out_values * p[self.soft_out_index].prod(-1)).sum(-1)
            table = self._table()
            cycles = self.cost_model.cycles(table, in_channels=cin, out_channels=cout, temperature=self.temperature)
            macs = self.cost_model.macs(table, in_channels=cin, out_channels=cout)
        total_cycles = (gate * cycles).sum()
        total_macs = (gate * macs).sum()
        return HardwareCost(
            cycles=total_cycles,
            macs=total_macs,
            latency_ms=self.cost_model.latency_ms(total_cycles),
            utilization=total_macs / (self.cost_model.spec.pes * total_cycles).clamp_min(1e-12),
        )


def build_supernet_cost(
    supernet: nn.Module,
    cost_model: CostModel,
    example: torch.Tensor,
    *,
    mode: str = "expected",
    temperature: float | None = None,
) -> SupernetCost:
    """Trace a (DARTS-mutated) supernet on ``example`` (a batch of 1) and build its cost expression."""
    if mode not in COST_MODES:
        raise ConfigError(f"unknown cost mode {mode!r}; expected one of: {', '.join(COST_MODES)}")
    choices = _Choices()
    rows = _rows(supernet, example, choices, mode)
    if not rows:
        raise ConfigError("the model has no Conv2d or Linear layer to cost")
    logger.debug("supernet cost: %d rows over %d choice parameters (%s)", len(rows), len(choices.alphas), mode)
    return SupernetCost(cost_model, rows, choices, mode, temperature).to(example.device)


def set_architecture(supernet: nn.Module, arch: dict, *, logit: float = 30.0) -> None:
    """Pin every alpha of a DARTS-mutated supernet to the one-hot distribution of ``arch``
    (an exported dict); cell edges not chosen by ``arch`` are pinned to "none".

    Useful to price one concrete architecture with the supernet's cost expression (without
    touching the alphas, pass ``distributions=one_hot(...)`` to :class:`SupernetCost` instead).
    """
    from uboost.strategy.architecture import arch_to_indices, choice_groups

    choices, nodes = choice_groups(supernet)
    indices = arch_to_indices(choices, nodes, arch)
    with torch.no_grad():
        for choice in choices:
            choice.alpha.fill_(-logit)
            choice.alpha[indices[id(choice.alpha)]] = logit
