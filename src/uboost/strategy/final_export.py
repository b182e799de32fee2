"""The network a budgeted search exports: NNI's argmax, projected onto the budgets exactly.

Shared by the CLI's run directory (:func:`uboost.search.run_search`) and NNI's own export of a
:class:`~uboost.strategy.UBoost` experiment (``export_top_models``, ``run_experiment``), so a
Python user gets the same network under the same guarantee (README, "Latency budgets").
"""

from __future__ import annotations

from typing import Any


def project_export(hardware_loss, arch: dict) -> tuple[dict, dict[str, Any]]:
    """``(architecture, facts)``: ``arch`` (the full architecture, bits labels included) projected onto
    the search's latency/energy budgets -- and with ``operating_point="auto"`` the most preferred
    (network, point) pair within them -- or ``arch`` itself with no budget. ``facts`` says what the
    projection did (``projected``, and the chosen ``operating_point``)."""
    from uboost.strategy.projection import budgets_for, project_over_points

    loss = hardware_loss
    budgets = budgets_for(loss.target_latency_ms, loss.target_energy_uj, loss.budget_floor)
    if not loss.attached or not (budgets or loss.auto_point):
        return arch, {}
    facts: dict[str, Any] = {}
    if loss.auto_point:
        projected = project_over_points(loss.point_projectors(), budgets)
        point = loss.cost_model.spec.operating_points.points[projected.point]
        facts["operating_point"] = {"index": projected.point, "freq_hz": point.freq_hz, "voltage_v": point.voltage_v}
    else:
        projected = loss.projector().project_budgets(budgets)
    facts["projected"] = projected.arch != arch
    facts["projected_latency_ms"] = projected.latency_ms
    return projected.arch, facts


def priced_facts(hardware_loss, point: int | None = None) -> dict[str, float]:
    """result.json's expected (the priced distribution) and argmax latency and energy: at the spec's own point,
    or at operating point ``point`` (the one an ``operating_point="auto"`` export chose, where metrics.csv prices
    the derived network too; they were priced at the table's fastest clock beside a slower chosen one)."""
    import torch

    from uboost.strategy.architecture import argmax_one_hot

    loss = hardware_loss
    if point is None:
        with torch.no_grad():
            expected, derived = loss.expected_cost(), loss.derived_cost()
        expected, derived = (expected.latency_ms, expected.energy_uj), (derived.latency_ms, derived.energy_uj)
    else:
        expected, derived = loss.values_at_point(point), loss.values_at_point(point, argmax_one_hot(loss.choices, loss.nodes))
    values = (expected[0], derived[0], expected[1], derived[1])
    names = ("expected_latency_ms", "argmax_latency_ms", "expected_energy_uj", "argmax_energy_uj")
    return {name: float(value) for name, value in zip(names, values) if value is not None}


def exported_model(strategy, sample: dict):
    """What NNI exports for a UBoost search: ``sample`` (NNI's argmax) with the argmax bits, projected
    (:func:`project_export`) and frozen. A bits search's widths per frozen layer go to
    ``strategy.exported_precision`` (NNI's architecture has no place for them; apply them to the
    frozen network with :func:`uboost.quant.apply_precision`, as ``uboost retrain`` does)."""
    from uboost.strategy.precision import split_precision

    loss = strategy.hardware_loss
    argmax = dict(sample)
    if strategy.bits_space is not None:  # NNI's export has no bits: the argmax network's are added
        from uboost.strategy.precision import argmax_bits

        argmax.update(argmax_bits(loss.choices))
    arch, facts = project_export(loss, argmax)
    strategy.exported_projection = (argmax, arch, facts)  # what the CLI's result.json reports (uboost.search)
    strategy.exported_operating_point = facts.get("operating_point")  # operating_point="auto": the chosen (f, V)
    precision = None
    if strategy.bits_space is not None:
        arch, precision = split_precision(strategy.supernet, arch)
    strategy.exported_precision = precision
    return strategy.model_space.freeze(arch)
