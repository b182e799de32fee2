"""Every concrete layer shape of a search space's supernet: what ``uboost hw tabulate`` prices.

In ``expected`` cost mode every supernet row is a concrete layer (each choice of op, kernel and
width), so pricing these rows once -- e.g. with the ``scalesim`` model, whose results land in its
disk cache -- makes every later search over the same space and hardware free of simulation.
"""

from __future__ import annotations

from dataclasses import dataclass

from uboost.hardware import CostModel, LayerShape, LayerTable
from uboost.search import SearchConfig, build_space


@dataclass(frozen=True)
class SpaceTable:
    config: SearchConfig
    input_shape: tuple[int, ...]
    shapes: tuple[LayerShape, ...]
    cycles: tuple[float, ...]


def tabulate_space(config: SearchConfig, cost_model: CostModel) -> SpaceTable:
    """Trace the supernet of ``config``'s space and price its rows with ``cost_model`` (exactly)."""
    import torch

    from uboost.strategy import UBoost, build_supernet_cost

    space, input_shape, _ = build_space(config)
    supernet = UBoost(cost_model=cost_model).mutate_model(space)
    cost = build_supernet_cost(supernet, cost_model, torch.zeros(1, *input_shape), mode="expected")
    table: LayerTable = cost.table
    shapes = tuple(table.shapes())
    cycles = tuple(float(c) for c in cost.row_cycles.tolist())
    return SpaceTable(config, tuple(input_shape), shapes, cycles)
