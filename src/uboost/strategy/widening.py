"""Free capacity at export: the widest channel counts and bitwidths that cost the exported network
nothing more.

A search that prices hardware can end in a corner where a layer is narrow only because another
layer's choice makes it dear: on a BitFusion array, ``lenet`` seed 1 kept conv2 at 4 channels
because fc1 sat at 8 bits (fc1's input grows with conv2's width), and fc1 sat at 8 bits because
with conv2 narrow that cost nothing. Both moves together -- conv2 16 channels, fc1 4 bits -- cost
the same cycles and give the network 3.3x the MACs (benchmarks/RESULTS.md, "the front with K
retrains per network"). A one-layer-at-a-time widening (:func:`uboost.strategy.precision.widen_bits`)
cannot see it; this one solves it exactly.

:func:`widen_free` keeps every other choice (ops, kernels, edges, depths) and solves, over the
channel-count choices (``out_channels`` / ``out_features`` of NNI's mixed ops) and the bits choices,

    maximize   sum of log2(value) over those choices  (each doubling of a width or a bitwidth counts one)
    subject to latency <= the exported network's latency  (and energy <= its energy, when priced)

with the projection's exact integer program (:class:`~uboost.strategy.projection.Projector`, HiGHS),
ties broken toward the search's own preference. Channel counts only grow; a layer's bits may fall
only where a channel count its own shape depends on grows (the seed-1 corner above: conv2 4 -> 2 and
fc1 8 -> 4 bits for conv2 4 -> 16 channels), never to buy bits elsewhere. Budgets met before are met after. What is traded
is the search's word on these choices: a width it preferred narrow comes back wide when that costs
nothing, which is U-Boost's premise (channels that fill the array are free) applied at export.
``SearchConfig.widen = "all"`` (``uboost search --widen all``): the default of a search with bitwidths; without
them the default widens bits only (nothing then: the search's own argmax).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import torch
from torch import nn

from uboost.exceptions import SearchError

logger = logging.getLogger(__name__)

WIDTH_ARGUMENTS = ("out_channels", "out_features")
SHAPE_ARGUMENTS = ("in_channels", "in_features")


def _width_leaves(module: nn.Module, arguments) -> set[str]:
    """Labels of the numeric, positive choices behind ``module``'s ``arguments`` (a mixed op's; none
    for a fixed layer); a width given as an expression (``w * 2``) counts by its leaves."""
    labels: set[str] = set()
    for name in arguments:
        mutable = getattr(module, "mutable_arguments", {}).get(name)
        if mutable is None:
            continue
        for label, leaf in mutable.simplify().items():
            values = getattr(leaf, "values", ())
            if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in values):
                labels.add(label)
    return labels


def width_labels(supernet: nn.Module) -> set[str]:
    """Labels of the choices that set a channel count (``out_channels`` / ``out_features`` of a mixed op)."""
    from uboost.strategy._supernet_rows import _nni

    MixedOperation = _nni()[3]
    return {label for m in supernet.modules() if isinstance(m, MixedOperation) for label in _width_leaves(m, WIDTH_ARGUMENTS)}


def layer_widths(supernet: nn.Module) -> dict[int, set[str]]:
    """``id(bits alpha) -> labels of the channel counts its layer's shape depends on`` (its input and
    output channels / features): where a layer's bits may fall to buy width."""
    from uboost.quant import ATTR
    from uboost.strategy.precision import BitsChoice

    out: dict[int, set[str]] = {}
    for module in supernet.modules():
        quantizer = getattr(module, ATTR, None)
        if isinstance(quantizer, BitsChoice):
            shape = _width_leaves(module, WIDTH_ARGUMENTS + SHAPE_ARGUMENTS)
            for alpha in quantizer.alphas.values():
                out[id(alpha)] = shape
    return out


def _scores(choices, widen: set[int], prefs) -> dict[int, torch.Tensor]:
    """The objective per entry: log2(value) for the widened choices, plus a tie-break toward the
    search's preference; 0 for the others (held at their entry by :func:`_held`)."""
    scores = {}
    for c in choices:
        key = id(c.alpha)
        if key in widen:
            pref = prefs[key].detach().double().cpu()
            spread = float(pref.max() - pref.min()) or 1.0
            scores[key] = torch.tensor([math.log2(v) for v in c.values], dtype=torch.float64) + 1e-4 * (pref - pref.max()) / spread
        else:
            scores[key] = torch.zeros(c.alpha.numel(), dtype=torch.float64)
    return scores


def _held(program, choices, indices: Mapping[int, int], widen: set[int], widths: set[int]) -> list:
    """Rows that keep every other choice at its entry and every channel count at or above its own:
    ``sum(x[forbidden entries]) <= 0`` per choice."""
    rows = []
    for c in choices:
        key = id(c.alpha)
        if key in widths:
            current = c.values[indices[key]]
            forbidden = [k for k, v in enumerate(c.values) if v < current]
        elif key not in widen:
            forbidden = [k for k in range(c.alpha.numel()) if k != indices[key]]
        else:
            continue
        if forbidden:
            rows.append(({program.variable(c.alpha, k): 1.0 for k in forbidden}, 0.0))
    return rows


def _trades(program, choices, indices: Mapping[int, int], widen: set[int], shapes: Mapping[int, set[str]]) -> list:
    """A layer's bits fall only where one of the channel counts its shape depends on grows:
    ``sum(x[bits below the current]) <= sum(x[those widths above their current])`` per bits choice
    (no widths: its bits never fall). Without it the objective would trade a sensitive layer's bits
    (the stem's, the classifier's) for more bits elsewhere: on darts-cifar it took the stem 8 -> 4
    bits to raise eight late layers 4 -> 8, 0.46 points less accurate on average over 3 retrains."""
    by_label = {c.label: c for c in choices}
    rows = []
    for c in choices:
        key = id(c.alpha)
        if c.kind != "bits" or key not in widen:
            continue
        current = c.values[indices[key]]
        lower = {program.variable(c.alpha, k): 1.0 for k, v in enumerate(c.values) if v < current}
        if not lower:
            continue
        grow = {}
        for label in shapes.get(key, ()):
            w = by_label.get(label)
            if w is None or id(w.alpha) not in widen:
                continue
            now = w.values[indices[id(w.alpha)]]
            grow.update({program.variable(w.alpha, k): -1.0 for k, v in enumerate(w.values) if v > now})
        rows.append(({**lower, **grow}, 0.0))
    return rows


def widen_free(projector, supernet: nn.Module, arch: Mapping, *, with_energy: bool = False) -> dict:
    """``arch`` with its channel counts and bitwidths raised as far as they go at no extra latency
    (and energy ``with_energy``) on ``projector``'s cost rows (the search's exact
    :class:`~uboost.strategy.projection.Projector`); every other choice unchanged."""
    from uboost.strategy._milp import LinearBudget
    from uboost.strategy.architecture import arch_to_indices, preferences
    from uboost.strategy.projection import Projector

    program = projector.program
    choices, nodes = program.choices, program.nodes
    widths = width_labels(supernet)
    width_ids = {id(c.alpha) for c in choices if c.kind == "argument" and c.label in widths and len(c.values) > 1}
    widen = width_ids | {id(c.alpha) for c in choices if c.kind == "bits" and len(c.values) > 1}
    if not widen:
        return dict(arch)
    indices = arch_to_indices(choices, nodes, arch)
    solver = Projector(projector.cost, choices, nodes, cost_model=projector.cost_model,
                       objective=_scores(choices, widen, preferences(choices, nodes)))
    # the exported network's own totals in row units (not a budget in ms, whose whole-cycle floor would cut
    # below a total with a fractional part: memory stalls, roofline), with the solver's tolerance on top
    base = solver._price(indices)
    metrics = ["latency"] + (["energy"] if with_energy and "energy" in base else [])
    rows = [LinearBudget(solver._values(m), base[m] * (1 + 1e-9) + 1e-6) for m in metrics]
    held = _held(program, choices, indices, widen, width_ids)
    widened = solver._solve(rows, choice_rows=held + _trades(program, choices, indices, widen, layer_widths(supernet)))
    if widened is None:  # the network itself is feasible: the solver failed
        raise SearchError("widening found no network as cheap as the exported one (a solver failure)")
    changed = {c.label: (c.values[indices[id(c.alpha)]], c.values[widened.indices[id(c.alpha)]])
               for c in choices if id(c.alpha) in widen and widened.indices[id(c.alpha)] != indices[id(c.alpha)]}
    if changed:
        logger.info("widened at no extra cost on the exported network: %s",
                    ", ".join(f"{label} {a} -> {b}" for label, (a, b) in sorted(changed.items())))
    out = dict(arch)
    for c in choices:
        if id(c.alpha) in widen:
            out[c.label] = c.values[widened.indices[id(c.alpha)]]
    return out


def widen_export(mode: str, projector, supernet: nn.Module, arch: Mapping, *, bits: bool,
                 with_energy: bool = False) -> dict:
    """The architecture a run exports (the search's, or a ``frontier`` / ``export --target-*`` projection),
    widened as ``mode`` (``SearchConfig.widen``) says, on ``projector``'s cycle-exact rows: ``"all"``, the
    channel counts and bits jointly (:func:`widen_free`); ``"bits"``, each searched layer's bits alone
    (:func:`~uboost.strategy.precision.widen_bits`) when the space searches bits (``bits``); otherwise
    ``arch`` as it is. One rule for every export, so a run and its projections widen alike."""
    if mode == "all":
        return widen_free(projector, supernet, arch, with_energy=with_energy)
    if not bits:
        return dict(arch)
    from uboost.strategy.precision import widen_bits

    program = projector.program
    return widen_bits(projector.cost, program.choices, program.nodes, arch, with_energy=with_energy)
