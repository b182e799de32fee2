"""Split a frozen network at exit positions so that it can stop early.

**How.** The network is traced with :mod:`torch.fx`, the exit positions kept as leaf modules,
so each position is one ``call_module`` node of the graph. :class:`SegmentedBackbone` runs the
graph node by node (an :class:`torch.fx.Interpreter` driven by hand) and, at every exit node,
asks a callback which samples leave. Their rows are then dropped from every live value that
depends on the input (tensors with the batch in dimension 0, tuples and lists of them), the batch size where the graph computed it
(``x.size(0)``, ``x.shape[0]``, the first entry of ``x.size()``) is set to the new row count,
and numbers computed only from such sizes (``h * w``, ``b * 4``) are computed again; other
numbers are never touched, whatever their value. When no sample is left the remaining nodes
never run. This covers any network whose forward torch.fx can trace: the
frozen ``lenet`` and ``darts-cifar`` networks (their cells are leaves, so their Python loops
never reach the tracer).

**Where it does not apply.** Data-dependent Python control flow in a forward that is not inside
a position module (fx cannot trace it: a one-line error names the cause); a position module
called more than once (weight sharing: its output is not one point of the computation); a
position whose output is not a feature map ``(N, C, H, W)`` (the heads are convolutional). A
DARTS cell returns ``(previous state, new state)``: a tuple output feeds the head its *last*
tensor.

**Positions** are module names as ``model.named_modules()`` prints them (``pool``,
``stages.1.0``) or indices into :func:`candidate_positions`, the "blocks" of the network:
top-level modules, containers (``ModuleList``/``Sequential``) opened down to their items, whose
output is a feature map. The default (:func:`default_positions`) is every cell and every pooling
layer after which at least two costed layers (conv or linear) still run: after each cell/stage,
not right before the classifier.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.fx as fx
from torch import nn

from uboost.exceptions import ConfigError

logger = logging.getLogger(__name__)

_CONTAINERS = (nn.ModuleList, nn.Sequential, nn.ModuleDict)
_STAGE_ENDS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
_COSTED = (nn.Conv2d, nn.Linear)


class _Tracer(fx.Tracer):
    def __init__(self, leaves: Sequence[str]) -> None:
        super().__init__()
        self.leaves = set(leaves)

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return qualname in self.leaves or super().is_leaf_module(m, qualname)


def trace(module: nn.Module, leaves: Sequence[str] = ()) -> fx.GraphModule:
    """``module`` as a GraphModule with ``leaves`` kept as single calls; untraceable -> ConfigError."""
    tracer = _Tracer(leaves)
    try:
        graph = tracer.trace(module)
    except Exception as exc:  # fx raises many types for dynamic control flow
        raise ConfigError(f"cannot split {type(module).__name__} for early exits: torch.fx cannot trace it "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    return fx.GraphModule(tracer.root, graph)


def feature_of(value):
    """The tensor a head reads from a position's output: the tensor itself, or a tuple's last tensor."""
    if isinstance(value, (tuple, list)):
        tensors = [v for v in value if isinstance(v, torch.Tensor)]
        return tensors[-1] if tensors else None
    return value if isinstance(value, torch.Tensor) else None


def _blocks(module: nn.Module, prefix: str = "") -> list[str]:
    names = []
    for name, child in module.named_children():
        full = f"{prefix}{name}"
        names.extend(_blocks(child, full + ".") if isinstance(child, _CONTAINERS) else [full])
    return names


@dataclass(frozen=True)
class Position:
    """A place an exit can be attached: a module name, its feature shape (C, H, W) and what follows it."""

    name: str
    kind: str  # the module's class name
    feature_shape: tuple[int, ...]
    costed_after: int  # conv/linear layers that still run after it

    @property
    def stage_end(self) -> bool:
        return "Cell" in self.kind or self.kind in {c.__name__ for c in _STAGE_ENDS}


def candidate_positions(module: nn.Module, input_shape: Sequence[int]) -> list[Position]:
    """Every block of ``module`` (see the module docstring) that outputs a feature map, called once, in call order."""
    blocks = _blocks(module)
    gm = trace(module, blocks)
    order = [n.target for n in gm.graph.nodes if n.op == "call_module"]
    modules = dict(module.named_modules())
    log: list[tuple[str, str, object]] = []  # ("block" | "costed", name, feature) in call order
    handles = [m.register_forward_hook(lambda _m, _a, _o, n=n: log.append(("costed", n, None)))
               for n, m in module.named_modules() if isinstance(m, _COSTED)]  # first: a conv block logs itself, then its call
    handles += [modules[n].register_forward_hook(lambda _m, _a, out, n=n: log.append(("block", n, feature_of(out)))) for n in blocks]
    was = module.training
    module.eval()
    try:
        with torch.no_grad():
            module(torch.zeros(2, *input_shape))
    finally:
        module.train(was)
        for h in handles:
            h.remove()
    found = []
    for name in dict.fromkeys(order):
        calls = [i for i, (kind, n, _) in enumerate(log) if kind == "block" and n == name]
        if len(calls) != 1 or order.count(name) != 1:
            continue
        feature = log[calls[0]][2]
        if not isinstance(feature, torch.Tensor) or feature.dim() != 4:
            continue
        after = sum(1 for kind, _, _ in log[calls[0] + 1:] if kind == "costed")
        found.append(Position(name, type(modules[name]).__name__, tuple(feature.shape[1:]), after))
    return found


def default_positions(positions: Sequence[Position]) -> list[str]:
    """Cells and pooling layers with at least two costed layers after them."""
    return [p.name for p in positions if p.stage_end and p.costed_after >= 2]


def resolve_positions(requested: Sequence[str] | None, candidates: Sequence[Position]) -> list[Position]:
    """Positions by name or index into ``candidates`` (``None``: :func:`default_positions`), in call order."""
    by_name = {p.name: p for p in candidates}
    listing = ", ".join(f"{i}:{p.name}" for i, p in enumerate(candidates))
    if requested is None:
        names = default_positions(candidates)
        if not names:
            raise ConfigError(f"no default exit position in this network; choose with --positions among {listing}")
    else:
        names = []
        for item in requested:
            text = str(item).strip()
            if text.isdigit():
                if int(text) >= len(candidates):
                    raise ConfigError(f"exit position index {text} does not exist; positions are {listing}")
                text = candidates[int(text)].name
            if text not in by_name:
                raise ConfigError(f"exit position {text!r} does not exist (or is not a feature map called once); "
                                  f"positions are {listing}")
            names.append(text)
        if not names:
            raise ConfigError(f"give at least one exit position; positions are {listing}")
    order = [p.name for p in candidates]
    return [by_name[n] for n in sorted(set(names), key=order.index)]


ExitCallback = Callable[[int, torch.Tensor], "torch.Tensor | None"]


class SegmentedBackbone(nn.Module):
    """A frozen network traced with its exit positions as leaves, runnable up to any exit.

    :meth:`run` calls ``on_exit(k, feature)`` at exit ``k``; the callback returns a boolean mask
    over the samples still running (``True``: leaves here) or ``None``. Returns the final logits of
    the samples that never left (``None`` when every sample left) and their original indices.
    """

    def __init__(self, module: nn.Module, positions: Sequence[str]) -> None:
        super().__init__()
        self.graph_module = trace(module, positions)
        self.positions = list(positions)
        nodes = list(self.graph_module.graph.nodes)
        calls = {name: [n for n in nodes if n.op == "call_module" and n.target == name] for name in self.positions}
        for name, found in calls.items():
            if len(found) != 1:
                raise ConfigError(f"exit position {name!r} is called {len(found)} times in the forward; it must be called once")
        self._exit_at = {calls[name][0]: k for k, name in enumerate(self.positions)}
        placeholders = [n for n in nodes if n.op == "placeholder"]
        if len(placeholders) != 1:
            raise ConfigError(f"early exits need a network with one input, this one takes {len(placeholders)}")
        batch = set(placeholders)  # nodes whose value carries the batch
        for n in nodes:
            if any(a in batch for a in n.all_input_nodes):
                batch.add(n)
        self._batch_nodes = batch
        # sizes of batch tensors (x.size(0) -> the batch size, x.size() / x.shape -> a Size whose entry 0 is),
        # keyed to the tensor they measure; and the numbers computed only from them, recomputed after an exit
        self._sizes = {n: n.args[0] for n in nodes if _measures_batch(n, batch)}
        derived: set = set()
        for n in nodes:
            if (n not in self._sizes and n.op in ("call_function", "call_method") and n.all_input_nodes
                    and all(a in self._sizes or a in derived for a in n.all_input_nodes)):
                derived.add(n)
        self._from_sizes = derived

    def run(self, x: torch.Tensor, on_exit: ExitCallback):
        interp = fx.Interpreter(self.graph_module)
        interp.env = {}
        interp.args_iter = iter([x])
        rows = torch.arange(x.shape[0], device=x.device)
        for node in self.graph_module.graph.nodes:
            if node.op == "output":
                return interp.run_node(node), rows
            interp.env[node] = interp.run_node(node)
            k = self._exit_at.get(node)
            if k is None:
                continue
            leave = on_exit(k, feature_of(interp.env[node]))
            if leave is None or not bool(leave.any()):
                continue
            if bool(leave.all()):
                return None, rows[:0]
            keep = (~leave).nonzero().flatten()
            self._drop_rows(interp, keep, rows.shape[0])
            rows = rows[keep]
        raise AssertionError("graph without output")  # pragma: no cover

    def _drop_rows(self, interp: fx.Interpreter, keep: torch.Tensor, n: int) -> None:
        """Keep rows ``keep`` of every computed value that carries the batch of ``n`` samples. The env is in
        execution order, so a tensor is cut before its sizes are set and those before what is computed from them."""
        cut, m = set(), int(keep.shape[0])
        for node, value in list(interp.env.items()):
            if node in self._sizes:  # the batch size as the graph computed it: only where the tensor it measured was cut
                if self._sizes[node] in cut:
                    interp.env[node] = m if isinstance(value, int) else torch.Size((m, *value[1:]))
            elif node in self._from_sizes and not _holds_tensor(value):
                interp.env[node] = interp.run_node(node)  # h * w, b * 4, ...: computed again from the sizes now
            elif node in self._batch_nodes:
                interp.env[node] = _take(value, keep, n)
                if isinstance(value, torch.Tensor) and interp.env[node] is not value:
                    cut.add(node)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.graph_module(x)


def _measures_batch(node: fx.Node, batch: set) -> bool:
    """``node`` is ``t.size(0)``, ``t.size()`` or ``t.shape`` of a tensor ``t`` that carries the batch."""
    if not node.args or node.args[0] not in batch:
        return False
    if node.op == "call_method" and node.target == "size":
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        return dim is None or (isinstance(dim, int) and not isinstance(dim, bool) and dim == 0)
    return node.op == "call_function" and node.target is getattr and node.args[1:] == ("shape",)


def _holds_tensor(value) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    return isinstance(value, (tuple, list)) and any(_holds_tensor(v) for v in value)


def _take(value, keep: torch.Tensor, n: int):
    """Rows ``keep`` of a tensor whose dimension 0 is the batch of ``n`` samples (tuples and lists item by item);
    anything else as it is: numbers are never matched by value (the batch size is set in :meth:`SegmentedBackbone.run`)."""
    if isinstance(value, torch.Tensor):
        return value[keep] if value.dim() >= 1 and value.shape[0] == n else value
    if isinstance(value, (tuple, list)) and not isinstance(value, torch.Size):
        return type(value)(_take(v, keep, n) for v in value)
    return value
