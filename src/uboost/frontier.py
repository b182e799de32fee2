"""Budget-exact export and accuracy-latency frontiers from one finished search.

A search leaves its final alphas in ``alphas.json``. :func:`load_projector` rebuilds the
supernet of the run's space, loads those alphas and builds the integer program of
:mod:`uboost.strategy.projection` once; :func:`export_projection` writes the best architecture
under one budget as a run directory that ``uboost retrain`` accepts, and :func:`frontier` does
that for many budgets between the cheapest and the unconstrained network.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uboost import runs
from uboost.exceptions import ConfigError, RunDirError
from uboost.io import write_json

logger = logging.getLogger(__name__)


@dataclass
class RunProjector:
    """A finished search ready to be projected onto budgets."""

    root: Path
    config: Any  # SearchConfig
    projector: Any  # uboost.strategy.projection.Projector
    cost_model: Any
    input_shape: tuple[int, ...]
    argmax_arch: dict
    supernet: Any = None  # with the run's alphas: the bits of a projection (strategy/precision.py)


def load_projector(run: str | os.PathLike) -> RunProjector:
    """Rebuild a run's supernet with its final alphas (``alphas.json``) and its cost rows."""
    import torch

    from uboost.search import SearchConfig, build_cost_model, build_space
    from uboost.strategy import UBoost, build_supernet_cost
    from uboost.strategy.architecture import argmax_indices, choice_groups, indices_to_arch, load_alphas, preferences
    from uboost.strategy.projection import Projector

    root = Path(run)
    if not root.is_dir():
        raise RunDirError(f"expected a search run directory, got {root}")
    if not (root / runs.CONFIG).is_file():
        raise RunDirError(f"{root} has no {runs.CONFIG}: not a uboost search run")
    if not (root / runs.ALPHAS).is_file():
        raise RunDirError(f"{root} has no {runs.ALPHAS}: the search did not finish, or it was made by an older uboost (search again)")
    config = SearchConfig.from_dict(runs.read_json(root / runs.CONFIG, "run config"))
    alphas = runs.read_json(root / runs.ALPHAS, "alphas")
    if not isinstance(alphas, dict):
        raise RunDirError(f"{root / runs.ALPHAS} must hold a JSON object (label -> list of numbers)")
    space, input_shape, _ = build_space(config)
    cost_model = build_cost_model(config)
    supernet = UBoost(cost_model=cost_model, **(config.bits_options() or {})).mutate_model(space)
    load_alphas(supernet, alphas)
    cost = build_supernet_cost(supernet, cost_model, torch.zeros(1, *input_shape), mode="expected")
    choices, nodes = choice_groups(supernet)
    argmax = indices_to_arch(choices, nodes, argmax_indices(choices, nodes), preferences(choices, nodes))
    return RunProjector(root, config, Projector(cost, choices, nodes), cost_model, tuple(input_shape), argmax, supernet)


def distinct_choices(arch: dict, reference: dict) -> int:
    """How many labels of ``arch`` differ from ``reference`` (the search's own argmax)."""
    return sum(1 for k, v in arch.items() if reference.get(k) != v)


def export_projection(source: RunProjector, projection, out: str | os.PathLike, *, target_ms: float, force: bool = False) -> dict:
    """Write ``projection`` as a run directory (config, arch, hardware, result) at ``out``."""
    from uboost.search import build_space
    from uboost._lock import run_lock

    out = Path(out)
    if out.resolve() == source.root.resolve():
        raise RunDirError(f"--out must not be the search run itself ({out})")
    space, _, _ = build_space(source.config)
    arch, precision = projection.arch, None
    if source.config.bits_options() is not None:  # the bits labels go to precision.json
        from uboost.quant import apply_precision
        from uboost.strategy.precision import split_precision

        arch, precision = split_precision(source.supernet, projection.arch)
    network = runs.freeze_arch(space, arch)
    if precision is not None:
        apply_precision(network, precision)
    report = source.cost_model.evaluate(network, source.input_shape)
    if report.latency_ms > target_ms * (1 + 1e-9):  # the row table and the network disagree: a bug, never written
        raise ConfigError(f"projected network costs {report.latency_ms:.6g} ms, over the budget {target_ms:g} ms")
    runs.check_run_dir(out, force=force)
    with run_lock(out):
        runs.prepare_run_dir(out, force=force)
        write_json(out / runs.CONFIG, source.config.to_dict())
        write_json(out / runs.ARCH, arch)
        if precision is not None:
            from uboost.quant import precision_dict

            write_json(out / runs.PRECISION, precision_dict(precision))
        write_json(out / runs.HARDWARE, report.to_dict())
        result = {
            "latency_ms": report.latency_ms,
            "cycles": report.cycles,
            "utilization": report.utilization,
            "macs": report.macs,
            "target_latency_ms": target_ms,
            "preference": projection.preference,
            "distinct_choices": distinct_choices(projection.arch, source.argmax_arch),
            "projected_from": str(source.root),
        }
        write_json(out / runs.RESULT, result)
        runs.write_layer_table(out / "hardware.txt", report, source.config.space)
    return {**result, "run_dir": out, "report": report}


def frontier_targets(source: RunProjector, *, points: int | None = None, targets: list[float] | None = None) -> list[float]:
    """Budgets: ``targets`` as given (sorted), or ``points`` evenly spaced from the cheapest to the
    unconstrained (argmax) network, both included."""
    from uboost.strategy.projection import check_budget

    if targets:
        return sorted(check_budget(t) for t in targets)
    if points is None or isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise ConfigError(f"points must be an integer >= 2, got {points!r}")
    low = source.projector.cheapest().latency_ms
    high = source.projector.unconstrained().latency_ms
    if math.isclose(low, high):
        return [high]
    return [low + (high - low) * i / (points - 1) for i in range(points)]


def frontier(source: RunProjector, targets: list[float], out_root: str | os.PathLike, *, force: bool = False,
             floor: float = 0.9) -> list[dict]:
    """One projected run directory per budget under ``out_root`` (``p00``, ``p01``...).

    Each point is the most preferred network in ``[floor * target, target]`` that costs at least
    the previous point (so the frontier is monotone in latency). Every projection is solved
    before anything is written; an infeasible budget fails the whole call with the cheapest
    reachable latency."""
    out_root = Path(out_root)
    projections = []
    for target in targets:  # sorted ascending
        previous = projections[-1][1].cycles if projections else 0.0
        projection = source.projector.project(target, floor=floor, min_cycles=previous)
        projections.append((target, projection))
    rows = []
    for i, (target, projection) in enumerate(projections):
        rows.append(export_projection(source, projection, out_root / f"p{i:02d}", target_ms=target, force=force))
    return rows
