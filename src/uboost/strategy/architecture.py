"""The choices of a DARTS-mutated NNI supernet, by label: alphas, one-hot architectures, preferences.

NNI's differentiable supermodules keep one architecture parameter (``alpha``) per choice:

* ``LayerChoice`` -> one alpha over its candidate names;
* a mutable argument of a ``MixedOperation`` (width, kernel...) and a ``Repeat`` depth -> one
  alpha per label over the label's values;
* a cell -> one alpha per *edge* ``"{cell}/{i}_{j}"`` over the cell's op names plus a last
  "none" entry (NNI-NOTES trap 2);
* a searched precision (:mod:`uboost.strategy.precision`) -> one alpha per layer (``bits:<layer>``)
  or per operand (``wbits:``/``abits:``) over its bitwidths, kind ``"bits"``. The exported architecture names, for every node ``i``,
  ``n_chosen`` distinct inputs and their ops (``"{cell}/input_{i}_{k}"``, ``"{cell}/op_{i}_{k}"``).

:func:`choice_groups` lists these with what the export of each entry means, so the rest of
uboost can turn alphas into NNI architecture dicts and back without knowing NNI's classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from uboost.exceptions import ArchitectureError
from uboost.strategy.host_mirror import as_vector


@dataclass
class Choice:
    """One alpha: ``values[k]`` is what entry ``k`` means in NNI's architecture dict."""

    label: str
    alpha: torch.Tensor
    values: list[Any]
    kind: str  # "layer" | "argument" | "depth" | "edge" | "bits"
    cell: str | None = None  # edges: the cell label, the node, its input and how many inputs a node takes
    node: int | None = None
    input: int | None = None
    n_chosen: int | None = None


@dataclass
class Node:
    """A cell node: ``n_chosen`` of its incoming ``edges`` are kept (the rest are "none")."""

    cell: str
    node: int
    n_chosen: int
    edges: list[Choice] = field(default_factory=list)


def choice_groups(supernet: nn.Module) -> tuple[list[Choice], list[Node]]:
    """Every alpha of ``supernet`` once (shared labels are one choice), and the cells' nodes."""
    from uboost.strategy._supernet_rows import _nni
    from uboost.strategy.precision import BitsChoice

    MixedLayer, MixedCell, MixedRepeat, MixedOperation = _nni()
    choices: dict[int, Choice] = {}
    nodes: list[Node] = []

    def add(choice: Choice) -> None:
        choices.setdefault(id(choice.alpha), choice)

    for module in supernet.modules():
        if isinstance(module, MixedLayer):
            add(Choice(module.label, module._arch_alpha, list(module.names), "layer"))
        elif isinstance(module, MixedCell):
            for i in range(module.num_predecessors, module.num_predecessors + module.num_nodes):
                node = Node(module.label, i, module.num_ops_per_node)
                for j in range(i):
                    label = f"{module.label}/{i}_{j}"
                    alpha = module._arch_alpha[label]
                    edge = Choice(label, alpha, [*module.op_names, None][: alpha.numel()], "edge",
                                  cell=module.label, node=i, input=j, n_chosen=module.num_ops_per_node)
                    add(edge)
                    node.edges.append(choices[id(alpha)])
                nodes.append(node)
        elif isinstance(module, BitsChoice):
            for key, alpha in module.alphas.items():
                add(Choice(module.labels[key], alpha, list(module.values["act" if key == "act" else "weight"]), "bits"))
        elif isinstance(module, (MixedOperation, MixedRepeat)):
            space = (module.depth_choice if isinstance(module, MixedRepeat) else module).simplify()
            kind = "depth" if isinstance(module, MixedRepeat) else "argument"
            for label, alpha in module._arch_alpha.items():
                add(Choice(label, alpha, list(space[label].values), kind))
    return list(choices.values()), nodes


def named_alphas(supernet: nn.Module) -> dict[str, torch.Tensor]:
    return {c.label: c.alpha for c in choice_groups(supernet)[0]}


def alphas_to_dict(supernet: nn.Module) -> dict[str, list[float]]:
    """The raw alphas by label (JSON-safe), e.g. for ``alphas.json`` in a run directory."""
    return {label: [float(v) for v in alpha.detach().cpu().reshape(-1)] for label, alpha in named_alphas(supernet).items()}


MAX_ALPHA = 1e6
"""Largest logit :func:`load_alphas` accepts. A search moves its alphas by about ``arch_lr`` a step
(hundreds at most); beyond this, float32 and the log-probabilities the projection's integer program
weighs choices with lose their meaning (1e308 became inf, and softmax NaN)."""


def load_alphas(supernet: nn.Module, values: dict[str, list[float]]) -> None:
    """Set ``supernet``'s alphas from :func:`alphas_to_dict` output; one-line error on a mismatch."""
    alphas = named_alphas(supernet)
    missing, extra = sorted(set(alphas) - set(values)), sorted(set(values) - set(alphas))
    if missing or extra:
        raise ArchitectureError(f"saved alphas do not match the search space (missing {missing[:3]}, unexpected {extra[:3]})")
    for label, alpha in alphas.items():
        data = values[label]
        if not isinstance(data, list) or len(data) != alpha.numel() or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) <= MAX_ALPHA for v in data
        ):
            raise ArchitectureError(f"saved alphas for {label!r} must be {alpha.numel()} numbers within +-{MAX_ALPHA:g}")
        with torch.no_grad():
            alpha.copy_(torch.tensor(data, dtype=alpha.dtype).reshape(alpha.shape))


def preferences(choices: list[Choice], nodes: list[Node], *, grad: bool = False,
                alphas: dict[int, torch.Tensor] | None = None) -> dict[int, torch.Tensor]:
    """The search's preference (a log-probability) of every entry of every alpha.

    Plain choices: ``log softmax(alpha)``. A cell node's kept (input, op) pairs: the log of the
    softmax over all non-"none" logits of the node's incoming edges -- the order NNI's export
    ranks them by, so the unconstrained optimum of :func:`score` is NNI's own export. "none"
    entries score 0 (they are decided by which inputs are kept). ``grad=True`` keeps the graph to
    the alphas (the budget commitment of :mod:`uboost.strategy.loss` is a loss on them).
    ``alphas`` (``id(alpha) -> values``, e.g. a :class:`~uboost.strategy.host_mirror.HostMirror`'s)
    replaces the live alphas' values.
    """

    def logits(alpha: torch.Tensor) -> torch.Tensor:
        if alphas is not None:
            return alphas[id(alpha)].double().reshape(-1)
        return (alpha if grad else alpha.detach()).double().reshape(-1)

    prefs: dict[int, torch.Tensor] = {}
    for choice in choices:
        if choice.kind != "edge":
            prefs[id(choice.alpha)] = torch.log_softmax(logits(choice.alpha), -1)
    for node in nodes:
        kept = [logits(e.alpha)[: len(e.values) - 1] for e in node.edges]
        norm = torch.logsumexp(torch.cat(kept), 0)
        for edge, values in zip(node.edges, kept):
            prefs[id(edge.alpha)] = torch.cat([values - norm, values.new_zeros(1)])  # where the alphas are
    return prefs


def arch_to_indices(choices: list[Choice], nodes: list[Node], arch: dict) -> dict[int, int]:
    """The entry of every alpha that ``arch`` (NNI's dict) selects; unused cell edges select "none"."""

    def lookup(label: str):
        if label not in arch:
            raise ArchitectureError(f"architecture lacks a value for {label!r}")
        return arch[label]

    indices: dict[int, int] = {}
    for choice in choices:
        if choice.kind == "edge":
            continue
        value = lookup(choice.label)
        if value not in choice.values:
            raise ArchitectureError(f"{choice.label}={value!r} is not one of {choice.values}")
        indices[id(choice.alpha)] = choice.values.index(value)
    for node in nodes:
        chosen = {}
        for k in range(node.n_chosen):
            inputs = lookup(f"{node.cell}/input_{node.node}_{k}")
            j = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
            chosen[j] = lookup(f"{node.cell}/op_{node.node}_{k}")
        for edge in node.edges:
            indices[id(edge.alpha)] = edge.values.index(chosen[edge.input]) if edge.input in chosen else len(edge.values) - 1
    return indices


def indices_to_arch(choices: list[Choice], nodes: list[Node], indices: dict[int, int], prefs: dict[int, torch.Tensor] | None = None) -> dict:
    """NNI's architecture dict from one entry per alpha; a node's kept inputs are listed in order
    of preference (as NNI's export does), which needs ``prefs`` (default: input order)."""
    arch: dict[str, Any] = {}
    for choice in choices:
        if choice.kind != "edge":
            arch[choice.label] = choice.values[indices[id(choice.alpha)]]
    for node in nodes:
        kept = [e for e in node.edges if indices[id(e.alpha)] != len(e.values) - 1]
        if len(kept) != node.n_chosen:
            raise ArchitectureError(f"{node.cell} node {node.node} keeps {len(kept)} inputs, expected {node.n_chosen}")
        if prefs is not None:
            kept.sort(key=lambda e: -float(prefs[id(e.alpha)][indices[id(e.alpha)]]))
        for k, edge in enumerate(kept):
            arch[f"{node.cell}/op_{node.node}_{k}"] = edge.values[indices[id(edge.alpha)]]
            arch[f"{node.cell}/input_{node.node}_{k}"] = [edge.input]
    return arch


def one_hot(choices: list[Choice], indices: dict[int, int], device=None) -> dict[int, torch.Tensor]:
    """``SupernetCost(distributions=...)`` input pricing exactly the architecture ``indices``
    (on the alphas' device, or on ``device``): rows of one identity matrix per size, made on the
    host and moved in one copy per size (~10^3 choices with bits, every step)."""
    out = {}
    for (n, at), group in _by_size(choices).items():
        where = torch.device(at if device is None else device)
        rows = torch.eye(n, dtype=torch.float64)[torch.tensor([indices[id(c.alpha)] for c in group])]
        if where.type != "cpu":
            rows = rows.pin_memory().to(where, non_blocking=True) if where.type == "cuda" else rows.to(where)
        out.update(zip((id(c.alpha) for c in group), rows.unbind(0)))
    return out


def _by_size(choices: list[Choice]) -> dict[tuple, list[Choice]]:
    groups: dict[tuple, list[Choice]] = {}
    for choice in choices:
        groups.setdefault((choice.alpha.numel(), choice.alpha.device), []).append(choice)
    return groups


def argmax_indices(choices: list[Choice], nodes: list[Node]) -> dict[int, int]:
    """The architecture NNI's export derives from the current alphas, as entries per alpha."""
    indices: dict[int, int] = {}
    with torch.no_grad():  # one argmax per alpha size (torch.argmax: the first maximum, as before)
        for group in _by_size([c for c in choices if c.kind != "edge"]).values():
            best = torch.stack([as_vector(c.alpha) for c in group]).argmax(1).tolist()
            indices.update(zip((id(c.alpha) for c in group), best))
    for node in nodes:
        best = []
        for edge in node.edges:
            logits = edge.alpha.detach().reshape(-1)[: len(edge.values) - 1]
            k = int(torch.argmax(logits))
            best.append((float(logits[k]), edge, k))
        best.sort(key=lambda t: -t[0])
        keep = {id(e.alpha): k for _, e, k in best[: node.n_chosen]}
        for edge in node.edges:
            indices[id(edge.alpha)] = keep.get(id(edge.alpha), len(edge.values) - 1)
    return indices


@torch.no_grad()
def argmax_one_hot(choices: list[Choice], nodes: list[Node]) -> dict[int, torch.Tensor]:
    """:func:`one_hot` of :func:`argmax_indices`, computed where the alphas are, with no value read
    on the host: the same architecture (first maximum wins, a node keeps its inputs in order of
    their best op's logit, ties in input order), as float64 vectors for ``SupernetCost``."""
    out = {}
    for (n, _), group in _by_size([c for c in choices if c.kind != "edge"]).items():  # one argmax per alpha size
        best = torch.stack([as_vector(c.alpha) for c in group]).argmax(1)  # (~10^3 choices with bits; no grad here)
        out.update(zip((id(c.alpha) for c in group), torch.nn.functional.one_hot(best, n).double().unbind(0)))
    for node in nodes:
        best = [edge.alpha.detach().reshape(-1)[: len(edge.values) - 1].max(0) for edge in node.edges]
        values = torch.stack([b.values for b in best])
        order = torch.sort(values, descending=True, stable=True).indices
        kept = torch.zeros_like(values, dtype=torch.bool).scatter(0, order[: node.n_chosen], True)
        for edge, b, keep in zip(node.edges, best, kept):
            n = edge.alpha.numel()
            index = torch.where(keep, b.indices, torch.full_like(b.indices, n - 1))
            out[id(edge.alpha)] = torch.nn.functional.one_hot(index, n).double()
    return out


def probabilities_dict(choices: list[Choice], tau: float = 1.0) -> dict[str, dict[str, float]]:
    """NNI's ``export_probs`` format: label -> value -> probability (cell edges: per-edge softmax,
    the "none" entry left out as NNI does), of ``softmax(alpha / tau)``. Values become JSON keys."""
    out = {}
    for choice in choices:
        probs = torch.softmax(choice.alpha.detach().double().reshape(-1) / tau, -1).tolist()
        out[choice.label] = {str(v): p for v, p in zip(choice.values, probs) if not (choice.kind == "edge" and v is None)}
    return out
