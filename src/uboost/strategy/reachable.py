"""Is a search's budget reachable at all? Asked before the run directory is written.

An unreachable ``--target-latency-ms`` / ``--target-energy-uj`` used to fail at the search's first
step (:meth:`~uboost.strategy.loss.HardwareLoss.attach`), after ``config.json`` and a checkpoint
were written: the corrected command was then refused ("exists") and ``--resume`` failed the same
way. :func:`check_budget_reachable` prices the same supernet the same way first, on a forked RNG
(the search draws exactly the numbers it would have drawn).
"""

from __future__ import annotations

import contextlib
import random


def check_budget_reachable(config, cost_model) -> None:
    """Raise :class:`~uboost.strategy.projection.InfeasibleBudget` (naming the cheapest reachable network)
    when no network of ``config``'s space meets its budgets on ``cost_model``; nothing without a budget."""
    if config.target_latency_ms is None and config.target_energy_uj is None:
        return
    import numpy as np
    import torch

    from uboost.search_config import build_space
    from uboost.strategy import UBoost

    state, np_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]), contextlib.redirect_stdout(None):
            space, input_shape, _ = build_space(config)
            strategy = UBoost(cost_model=cost_model, target_latency_ms=config.target_latency_ms,
                              target_energy_uj=config.target_energy_uj, operating_point=config.operating_point,
                              budget_floor=config.budget_floor, budget_commit=0.0, sampling=config.sampling,
                              cost_mode=config.cost_mode, temperature=config.temperature, seed=config.seed,
                              **(config.bits_options() or {}))
            supernet = strategy.mutate_model(space)
            strategy.hardware_loss.attach(supernet, torch.zeros(1, *input_shape))
    finally:
        random.setstate(state)
        np.random.set_state(np_state)
