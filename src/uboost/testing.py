"""Reusable test suites for plug-in authors (as ``optuna.testing`` ships sampler suites).

Check a new cost model in three lines::

    from uboost.testing import CostModelContract

    class TestMyModel(CostModelContract):
        model_name = "my-model"            # or override make_model(spec)

Every registered model also runs through this suite in uboost's own tests.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from uboost.hardware import HardwareSpec, LayerShape, LayerTable, create
from uboost.hardware.base import CostModel

CONTRACT_LAYERS: tuple[LayerShape, ...] = (
    LayerShape(name="stem", kind="conv", in_channels=3, out_channels=16, kernel_h=3, kernel_w=3, in_h=32, in_w=32, out_h=32, out_w=32),
    LayerShape(name="conv", kind="conv", in_channels=32, out_channels=64, kernel_h=3, kernel_w=3, stride=2, in_h=16, in_w=16, out_h=8, out_w=8),
    LayerShape(name="dw", kind="depthwise", in_channels=64, out_channels=64, groups=64, kernel_h=5, kernel_w=5, in_h=8, in_w=8, out_h=8, out_w=8),
    LayerShape(name="pw", kind="pointwise", in_channels=64, out_channels=128, in_h=8, in_w=8, out_h=8, out_w=8),
    LayerShape(name="fc", kind="linear", in_channels=128, out_channels=10),
)

CONTRACT_SPECS: tuple[HardwareSpec, ...] = (
    HardwareSpec(rows=16, cols=16, dataflow="ws"),
    HardwareSpec(rows=8, cols=32, dataflow="os", batch_size=4),
    HardwareSpec(rows=32, cols=8, dataflow="is"),
)


class CostModelContract:
    """Properties every cost model must have: finite, non-negative, monotone in channels,
    differentiable in soft channels, consistent between ``cycles`` and ``evaluate``."""

    model_name: ClassVar[str] = ""
    temperatures: ClassVar[tuple[float | None, ...]] = (None, 2.0, 20.0)

    def make_model(self, spec: HardwareSpec) -> CostModel:
        from uboost.hardware import COST_MODELS

        factory = COST_MODELS.get(self.model_name)
        example = getattr(factory, "example", None)
        if example is not None:
            try:
                return example(spec, CONTRACT_LAYERS)
            except TypeError:
                return example(spec)
        return create(self.model_name, spec=spec)

    def _models(self):
        return [self.make_model(spec) for spec in CONTRACT_SPECS]

    def test_cycles_finite_and_non_negative(self) -> None:
        table = LayerTable.from_shapes(CONTRACT_LAYERS)
        for model in self._models():
            for t in self.temperatures:
                cycles = model.cycles(table, temperature=t)
                assert cycles.shape == (len(CONTRACT_LAYERS),)
                assert torch.isfinite(cycles).all(), f"{model!r} T={t}: {cycles}"
                assert (cycles >= 0).all(), f"{model!r} T={t}: {cycles}"

    def test_monotone_in_channels(self) -> None:
        table = LayerTable.from_shapes(CONTRACT_LAYERS)
        steps = torch.arange(1.0, 257.0, dtype=torch.float64)
        n = len(CONTRACT_LAYERS)
        for model in self._models():
            for t in self.temperatures:
                for which in ("in_channels", "out_channels"):
                    previous = None
                    for c in steps[:: 5 if t is None else 17]:
                        chans = torch.full((n,), float(c), dtype=torch.float64)
                        kwargs = {which: chans}
                        if which == "in_channels":  # depthwise layers keep their multiplier
                            kwargs["out_channels"] = torch.where(table.depthwise, chans, table.out_channels)
                        cycles = model.cycles(table, temperature=t, **kwargs)
                        if previous is not None:
                            assert (cycles >= previous - 1e-6 * previous.abs().clamp_min(1)).all(), (
                                f"{model!r} T={t}: cycles fell when {which} grew to {int(c)}"
                            )
                        previous = cycles

    def test_gradient_reaches_soft_channels(self) -> None:
        table = LayerTable.from_shapes(CONTRACT_LAYERS)
        for model in self._models():
            for t in (2.0,):
                cin = (table.in_channels + 0.3).clone().requires_grad_(True)
                cout = (table.out_channels + 0.3).clone().requires_grad_(True)
                model.cycles(table, in_channels=cin, out_channels=cout, temperature=t).sum().backward()
                for grad in (cin.grad, cout.grad):
                    assert grad is not None and torch.isfinite(grad).all()
                    assert grad.abs().sum() > 0, f"{model!r}: no gradient reaches the channels"

    def test_evaluate_matches_cycles_and_totals(self) -> None:
        table = LayerTable.from_shapes(CONTRACT_LAYERS)
        for model in self._models():
            report = model.evaluate(CONTRACT_LAYERS)
            cycles = model.cycles(table)
            assert [l.cycles for l in report.layers] == cycles.tolist()
            assert math.isclose(report.cycles, float(cycles.sum()))
            assert math.isclose(report.latency_ms, report.cycles / model.spec.clock_hz * 1e3)
            expected_util = report.macs / (model.spec.pes * report.cycles)
            assert math.isclose(report.utilization, expected_util)
            assert 0 < report.utilization <= 1 + 1e-9

    def test_cycles_and_accesses_at_once_equal_apart(self) -> None:
        """A model may share work between the two (``systolic-mem`` traces its prefetches once): same numbers."""
        table = LayerTable.from_shapes(CONTRACT_LAYERS)
        for model in self._models():
            cycles, words = model.cycles_and_accesses(table)
            assert torch.equal(cycles, model.cycles(table)), f"{model!r}"
            apart = model.accesses(table)
            assert words.keys() == apart.keys() and all(torch.equal(words[k], apart[k]) for k in apart), f"{model!r}"

    def test_energy_is_positive_and_matches_the_report(self) -> None:
        table = LayerTable.from_shapes(CONTRACT_LAYERS)
        for model in self._models():
            parts = model.energy_breakdown_pj(table)
            assert set(parts) == {"mac", "sram", "dram", "leakage"}
            energy = model.energy_pj(table)
            assert torch.isfinite(energy).all() and (energy > 0).all(), f"{model!r}: energy must be positive"
            report = model.evaluate(CONTRACT_LAYERS)
            assert math.isclose(report.energy_uj, float(energy.sum()) * 1e-6, rel_tol=1e-9)
            assert math.isclose(report.power_mw, report.energy_uj / report.latency_ms)
