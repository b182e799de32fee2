"""What a dynamic network costs on the run's array, per exit and per operating point.

The backbone is cut at the exit positions into ``K + 1`` segments (segment ``k`` ends at exit
``k``; the last one ends at the final classifier). Every segment and every head is priced layer
by layer with the run's cost model on the run's array at each operating point ``(f, V)``
(:func:`uboost.hardware.operating.at_point`): cycles from the model, latency ``cycles / f``,
dynamic energy scaled by ``(V / V_ref)^2`` and leakage x time (:mod:`uboost.hardware.energy`).
Costs are per input (batch 1): exits decide per input.

For a policy keeping the exits ``kept``, the cumulative cost to exit ``k`` is the segments up to
``k`` plus every *kept* head up to and including ``k`` (a dropped head never runs). Expected
cost = sum over exits of (share leaving there) x (cumulative cost there) (MSDNet); the worst
case is the full backbone plus every kept head.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from torch import nn

from uboost.dynamic.segments import trace


@dataclass(frozen=True)
class ExitCosts:
    """Per operating point ``p`` (rows): cycles and energy (uJ) of each segment and each head."""

    positions: tuple[str, ...]
    freq_hz: np.ndarray  # (P,)
    voltage_v: np.ndarray  # (P,)
    segment_cycles: np.ndarray  # (P, K + 1)
    segment_energy_uj: np.ndarray  # (P, K + 1)
    head_cycles: np.ndarray  # (P, K)
    head_energy_uj: np.ndarray  # (P, K)

    @property
    def exits(self) -> int:
        return len(self.positions)

    def cumulative(self, kept: Sequence[bool], p: int) -> tuple[np.ndarray, np.ndarray]:
        """``(latency_ms, energy_uj)`` to each of the ``K + 1`` exits at operating point ``p``."""
        heads = np.asarray(kept, dtype=float)
        cycles = np.cumsum(self.segment_cycles[p]) + np.append(np.cumsum(heads * self.head_cycles[p]), (heads * self.head_cycles[p]).sum())
        energy = np.cumsum(self.segment_energy_uj[p]) + np.append(np.cumsum(heads * self.head_energy_uj[p]),
                                                                   (heads * self.head_energy_uj[p]).sum())
        return cycles / self.freq_hz[p] * 1e3, energy

    def expected(self, shares: Sequence[float], kept: Sequence[bool], p: int) -> tuple[float, float]:
        """Expected ``(latency_ms, energy_uj)`` per input: sum_k share_k x cumulative_k."""
        latency, energy = self.cumulative(kept, p)
        s = np.asarray(shares, dtype=float)
        return float(s @ latency), float(s @ energy)

    def worst(self, kept: Sequence[bool], p: int) -> tuple[float, float]:
        """``(latency_ms, energy_uj)`` of the full path with every kept head evaluated."""
        latency, energy = self.cumulative(kept, p)
        return float(latency[-1]), float(energy[-1])

    def to_dict(self) -> dict:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else list(v)) for k, v in self.__dict__.items()}


def segment_of_layers(module: nn.Module, positions: Sequence[str], layer_names: Sequence[str]) -> list[int]:
    """The segment (0..K) each costed layer (by module name, in call order) belongs to."""
    gm = trace(module, positions)
    segment, owner = 0, {}
    for node in gm.graph.nodes:
        if node.op == "call_module":
            owner.setdefault(node.target, segment)
            if node.target in positions:
                segment += 1
    out = []
    for name in layer_names:
        match = max((t for t in owner if name == t or name.startswith(t + ".")), key=len, default=None)
        out.append(owner[match] if match is not None else segment)
    return out


def price_exits(module: nn.Module, heads: nn.ModuleList, input_shape: Sequence[int], positions: Sequence[str],
                feature_shapes: Sequence[Sequence[int]], *, cost_model: str, spec, points) -> ExitCosts:
    """Price the segments of ``module`` cut at ``positions`` and the ``heads`` at every operating point
    of ``points`` (an :class:`~uboost.hardware.operating.OperatingPoints`) on ``spec`` at batch 1."""
    from uboost.hardware import create, extract_layers
    from uboost.hardware.operating import at_point

    was = module.training
    module.eval()
    warned: set[str] = set()  # an unpriced kind in the backbone and its heads is named once
    try:
        layers = extract_layers(module, input_shape, warned=warned)
    finally:
        module.train(was)
    segments = segment_of_layers(module, positions, [l.name for l in layers])
    head_layers = [extract_layers(h.eval(), shape, warned=warned) for h, shape in zip(heads, feature_shapes)]
    k = len(positions)
    shape = (len(points), k + 1)
    seg_c, seg_e = np.zeros(shape), np.zeros(shape)
    head_c, head_e = np.zeros((len(points), k)), np.zeros((len(points), k))
    base = replace(spec, batch_size=1)
    for p, point in enumerate(points):
        model = create(cost_model, spec=at_point(base, point))
        report = model.evaluate(layers)
        for seg, cost in zip(segments, report.layers):
            seg_c[p, seg] += cost.cycles
            seg_e[p, seg] += cost.total_energy_uj
        for j, hl in enumerate(head_layers):
            r = model.evaluate(hl)
            head_c[p, j], head_e[p, j] = r.cycles, r.energy_uj
    return ExitCosts(tuple(positions), np.array([pt.freq_hz for pt in points]), np.array([pt.voltage_v for pt in points]),
                     seg_c, seg_e, head_c, head_e)
