"""Budget-exact export and accuracy-latency frontiers from one finished search.

A search leaves its final alphas in ``alphas.json``. :func:`load_projector` rebuilds the
supernet of the run's space, loads those alphas and builds the integer program of
:mod:`uboost.strategy.projection` once; :func:`export_projection` writes the best architecture
under the budgets (latency, energy or both) as a run directory that ``uboost retrain``
accepts, and :func:`frontier` does that for many budgets of one metric between the cheapest and
the unconstrained network. With ``auto_point`` the operating point of the run's table is chosen
together with the network (:func:`~uboost.strategy.projection.project_over_points`) and the
exported run directory's config runs at it.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uboost import _manifest, runs
from uboost._owners import EXPORT_RUN, refuse_others
from uboost.exceptions import ConfigError, RunDirError
from uboost.io import write_json

logger = logging.getLogger(__name__)

MAX_POINTS = 100
"""Most budgets in one frontier. Each point is an integer program and a run directory (``p00`` to
``p99``, which sort by budget); a plot shows no more, and more took minutes of silence first."""


@dataclass
class RunProjector:
    """A finished search ready to be projected onto budgets."""

    root: Path
    config: Any  # SearchConfig
    projector: Any  # uboost.strategy.projection.Projector
    cost_model: Any
    input_shape: tuple[int, ...]
    argmax_arch: dict
    predictor: Any = None  # with objective "predicted-accuracy": the run's uboost.predict.Predictor
    supernet: Any = None  # with the run's alphas: the bits of a projection (strategy/precision.py)

    def point_projectors(self) -> list:
        """One projector per operating point of the run's table (sharing one program)."""
        from uboost.strategy.projection import models_at_points

        return [self.projector.at(m, i) for i, m in enumerate(models_at_points(self.cost_model))]

    def project(self, budgets: list, *, auto_point: bool = False):
        """The most preferred network within ``budgets`` (and, with ``auto_point``, operating point)."""
        from uboost.strategy.projection import project_over_points

        if auto_point:
            return project_over_points(self.point_projectors(), budgets)
        return self.projector.project_budgets(budgets)

    def model_at(self, projection):
        """The cost model at the projection's operating point (the run's own without one)."""
        if projection.point is None:
            return self.cost_model
        from uboost.strategy.projection import models_at_points

        return models_at_points(self.cost_model)[projection.point]


OBJECTIVES = ("preference", "predicted-accuracy")  # what a projection maximizes


def load_projector(run: str | os.PathLike, hardware: str | os.PathLike | None = None,
                   objective: str = "preference") -> RunProjector:
    """Rebuild a run's supernet with its final alphas (``alphas.json``) and its cost rows: on the
    run's own accelerator, or on the one the ``hardware`` file describes.

    ``objective`` is what projections maximize: the search's ``preference`` (sum of
    log-probabilities) or the ``predicted-accuracy`` of the run's saved predictor
    (``uboost predict RUN`` builds it)."""
    if objective not in OBJECTIVES:
        raise ConfigError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    import torch

    from uboost.search import SearchConfig, build_cost_model, build_space
    from uboost.strategy import UBoost, build_supernet_cost
    from uboost.strategy.architecture import argmax_indices, choice_groups, indices_to_arch, load_alphas, preferences
    from uboost.strategy.projection import Projector

    root = Path(run)
    stored = runs.searched_config(root)
    if objective == "predicted-accuracy":
        from uboost.predict.supernet import check_no_bits

        check_no_bits(root, stored)
    # an --operating-point auto search chose a point with its network: the run's clock is that point's (as
    # profile and retrain price it); --operating-point auto here chooses each point's again from the table
    config = SearchConfig.from_dict(runs.network_config(runs.RunArtifacts(config=stored, arch={}, root=root)))
    if hardware is not None:
        from uboost.accelerator import config_changes
        from uboost.hardware.files import read_hardware_file

        config = config.replace(**config_changes(read_hardware_file(hardware)))
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
    predictor = _predictor(root) if objective == "predicted-accuracy" else None
    scores = None if predictor is None else predictor.objective(choices, nodes)
    return RunProjector(root, config, Projector(cost, choices, nodes, objective=scores), cost_model, tuple(input_shape),
                        argmax, predictor, supernet)


def _predictor(root: Path):
    from uboost.predict import load_predictor

    predictor = load_predictor(root)
    if predictor is None:
        raise RunDirError(f"{root} has no accuracy predictor yet: build it with `uboost predict {root}` "
                          "(it measures sub-networks of the trained supernet, CPU minutes), then project")
    return predictor


def distinct_choices(arch: dict, reference: dict, supernet=None) -> int:
    """How many labels of ``arch`` differ from ``reference`` (the search's own argmax). With the search's
    ``supernet`` and searched bits, a bits label counts only where ``arch``'s network has the layer: the
    bits of candidates it does not keep are free values that describe nothing."""
    free: set = set()
    if supernet is not None:
        from uboost.strategy.precision import free_bits_labels

        free = free_bits_labels(supernet, arch)
    return sum(1 for k, v in arch.items() if k not in free and reference.get(k) != v)


def export_projection(source: RunProjector, projection, out: str | os.PathLike, *, target_ms: float | None = None,
                      target_uj: float | None = None, force: bool = False) -> dict:
    """Write ``projection`` as a run directory (config, arch, hardware, result) at ``out``."""
    from uboost.search import build_space
    from uboost._lock import run_lock

    out = Path(out)
    if out.resolve() == source.root.resolve():
        raise RunDirError(f"--out must not be the search run itself ({out})")
    refuse_others(out, EXPORT_RUN, directory=True)  # another search, retrain or study: never replaced, --force or not
    space, _, _ = build_space(source.config)
    from uboost.strategy.widening import widen_export

    arch, precision = projection.arch, None  # widened as the search exported (the same rule)
    arch = widen_export(source.config.widen, source.projector, source.supernet, arch,
                        bits=source.config.bits_options() is not None, with_energy=target_uj is not None)
    if source.config.bits_options() is not None:  # the bits labels go to precision.json
        from uboost.quant import apply_precision
        from uboost.strategy.precision import split_precision

        arch, precision = split_precision(source.supernet, arch)
    network = runs.freeze_arch(space, arch)
    if precision is not None:
        apply_precision(network, precision)
    model = source.model_at(projection)
    report = model.evaluate(network, source.input_shape)
    # the row table and the network disagree: a bug, never written
    if target_ms is not None and report.latency_ms > target_ms * (1 + 1e-9):
        raise ConfigError(f"projected network costs {report.latency_ms:.6g} ms, over the budget {target_ms:g} ms")
    if target_uj is not None and report.energy_uj > target_uj * (1 + 1e-9):
        raise ConfigError(f"projected network costs {report.energy_uj:.6g} µJ, over the budget {target_uj:g} µJ")
    config = source.config
    if projection.point is not None:  # the exported network runs at the point chosen with it
        config = config.replace(clock_hz=model.spec.clock_hz, voltage_v=model.spec.voltage_v, operating_point=None)
    runs.check_run_dir(out, force=force, resumable=False)
    with run_lock(out):
        refuse_others(out, EXPORT_RUN, directory=True)  # again, under the lock
        runs.prepare_run_dir(out, force=force, owner=EXPORT_RUN)
        write_json(out / runs.CONFIG, config.to_dict())
        if precision is not None:
            from uboost.quant import precision_dict

            write_json(out / runs.PRECISION, precision_dict(precision))
        write_json(out / runs.HARDWARE, report.to_dict())
        result = {
            "latency_ms": report.latency_ms,
            "cycles": report.cycles,
            "utilization": report.utilization,
            "macs": report.macs,
            "energy_uj": report.energy_uj,
            "energy_breakdown_uj": report.energy_breakdown_uj,
            "target_latency_ms": target_ms,
            "target_energy_uj": target_uj,
            "preference": projection.preference,
            **_predicted(source, projection.arch),
            "distinct_choices": distinct_choices(projection.arch, source.argmax_arch, source.supernet),
            "projected_from": str(source.root),
        }
        if projection.point is not None:
            result["operating_point"] = {"index": projection.point, "freq_hz": model.spec.clock_hz, "voltage_v": model.spec.voltage_v}
        write_json(out / runs.RESULT, result)
        runs.write_layer_table(out / "hardware.txt", report, source.config.space)
        write_json(out / runs.ARCH, arch)  # last: a directory with it is read as a finished network
    return {**result, "run_dir": out, "report": report}


def _predicted(source: RunProjector, arch: dict) -> dict:
    """``predicted_accuracy`` (and its uncertainty) of a projected network, with a predictor."""
    if source.predictor is None:
        return {}
    from uboost.predict.network import network_indices

    program = source.projector.program
    prediction = source.predictor.predict(network_indices(program.choices, program.nodes, arch))
    return {"objective": "predicted-accuracy", "predicted_accuracy": prediction.accuracy,
            "predicted_accuracy_uncertainty": prediction.uncertainty, "predicted_accuracy_unclipped": prediction.raw}


SPANS = ("search", "space")
"""What ``points`` budgets span: ``search``, evenly from the cheapest to the network the projection's objective
ranks first unconstrained (the search's argmax; with the predicted-accuracy objective, the predictor's best); ``space``,
geometrically from the cheapest to the costliest network of the space (the whole trade-off, as the lambda sweep
spans it: on lenet with bounded memory one search projected so is within 0.005 of the best lambda-sweep front)."""


def geometric_budgets(low: float, high: float, points: int) -> list[float]:
    """``points`` budgets from ``low`` to ``high`` (both included), each the same factor above the last."""
    return [low * (high / low) ** (i / (points - 1)) for i in range(points)]


def frontier_targets(source: RunProjector, *, points: int | None = None, targets: list[float] | None = None,
                     metric: str = "latency", span: str = "search") -> list[float]:
    """Budgets of ``metric`` (ms or µJ): ``targets`` as given (sorted), or ``points`` budgets over ``span``
    (:data:`SPANS`), both ends included."""
    from uboost.strategy.projection import UNITS, check_budget

    if metric not in UNITS:
        raise ConfigError(f"unknown frontier metric {metric!r}; expected one of: {', '.join(UNITS)}")
    if span not in SPANS:
        raise ConfigError(f"unknown frontier span {span!r}; expected one of: {', '.join(SPANS)}")
    if targets and span != "search":
        raise ConfigError("give the budgets once: a span of --points, or explicit --targets, not both")
    if targets:
        if len(targets) > MAX_POINTS:
            raise ConfigError(f"at most {MAX_POINTS} budgets per frontier, got {len(targets)} (each is a run directory)")
        return sorted({check_budget(t, f"target {metric}", UNITS[metric]) for t in targets})  # a repeated budget: one point
    if points is None or isinstance(points, bool) or not isinstance(points, int) or not 2 <= points <= MAX_POINTS:
        raise ConfigError(f"points must be an integer from 2 to {MAX_POINTS} (each is a run directory), got {points!r}")
    low = source.projector.cheapest(metric).value(metric)
    if span == "space":  # the costliest network (a lower bound of it after the solver's time limit on cell spaces)
        high = source.projector.highest_under(metric=metric).value(metric)
        if math.isclose(low, high) or low <= 0:
            return [high]
        return geometric_budgets(low, high, points)
    high = source.projector.unconstrained().value(metric)
    if math.isclose(low, high):
        return [high]
    return [low + (high - low) * i / (points - 1) for i in range(points)]


def frontier(source: RunProjector, targets: list[float], out_root: str | os.PathLike, *, force: bool = False,
             floor: float = 0.9, metric: str = "latency", target_ms: float | None = None, target_uj: float | None = None,
             auto_point: bool = False) -> list[dict]:
    """One projected run directory per budget of ``metric`` under ``out_root`` (``p00``, ``p01``...),
    each also within the fixed budget of the other metric (``target_ms`` / ``target_uj``) when given.

    Each point is the most preferred network in ``[floor * target, target]`` that costs at least
    the previous point (so the frontier is monotone in ``metric``; with ``auto_point`` the points
    may run at different operating points, and only the window holds). Every projection is
    solved before anything is written; an infeasible budget fails the whole call with the
    cheapest reachable cost."""
    from uboost.strategy.projection import Budget

    out_root = Path(out_root)
    if any((out_root / name).is_file() for name in (runs.CONFIG, runs.ARCH)):  # a search's (or a point's) own directory
        raise RunDirError(f"{out_root} holds a run ({runs.CONFIG}/{runs.ARCH}); a frontier writes its points into a "
                          "directory of its own: give another --out")
    projections = []
    for target in targets:  # sorted ascending
        previous = projections[-1][1] if projections and not auto_point else None
        minimum = 0.0 if previous is None else (previous.cycles if metric == "latency" else previous.energy_uj * 1e6)
        budgets = [Budget(metric, target, floor, minimum)]
        fixed = {"latency": target_ms, "energy": target_uj}
        budgets += [Budget(m, v) for m, v in fixed.items() if m != metric and v is not None]
        projections.append((target, source.project(budgets, auto_point=auto_point)))
    points = [out_root / f"p{i:02d}" for i in range(len(projections))]
    from uboost._lock import run_lock

    # a retrain's output or a study folder is not an earlier frontier: its files are never cleared, --force or not;
    # nor a retrain the user ran in one of its points (those --retrain-epochs ran are the frontier's: they go)
    refuse_others(out_root, EXPORT_RUN, directory=True)
    with run_lock(out_root):
        if force:  # the earlier frontier's points go, also those past the new number of points
            _manifest.clear(out_root, source.root)
        for point in points:
            runs.check_run_dir(point, force=force, resumable=False)
        runs.record(out_root, dirs=[p.resolve() for p in points])  # each point an output of its own, listed for the next --force
        if out_root.resolve().is_relative_to(source.root.resolve()) and out_root.resolve() != source.root.resolve():
            # RUN/frontier is derived from the search: its --force (or a tune --export over it) takes it along
            runs.record(source.root, dirs=[out_root.resolve()])
        rows = []
        with runs.writing(out_root, "uboost frontier", owner=EXPORT_RUN):  # a kill here leaves some points: marked
            for point, (target, projection) in zip(points, projections):
                budget = {"latency": target_ms, "energy": target_uj, metric: target}
                rows.append(export_projection(source, projection, point, target_ms=budget["latency"],
                                              target_uj=budget["energy"], force=force))
        return rows
