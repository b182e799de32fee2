"""The in-search energy budget (dual ascent on the derived network's energy), alone and with a
latency budget, on a space whose task cannot tell the ops apart (only the budgets decide)."""

import torch

from uboost.hardware import create
from uboost.strategy import UBoost, run_experiment

from tests.strategy.spaces import TaskNeutralSpace
from tests.strategy.test_uboost import evaluator


def recorded_evaluator(epochs, committed=None):
    """An evaluator whose every step appends (derived energy, energy multiplier) to the returned list
    (and, with ``committed``, the committed network's latency or None to that list)."""
    import pytorch_lightning as pl

    ev, seen = evaluator(epochs=epochs), []

    class Record(pl.Callback):
        def on_train_batch_start(self, trainer, *args):
            trainer.callback_metrics.pop("hw/committed_latency_ms", None)  # logged only on commit steps

        def on_train_batch_end(self, trainer, *args):
            metrics = trainer.callback_metrics
            seen.append((float(metrics["hw/derived_energy_uj"]), float(metrics["hw/energy_multiplier"])))
            if committed is not None:
                value = metrics.get("hw/committed_latency_ms")
                committed.append(None if value is None else float(value))

    ev.trainer.callbacks.append(Record())
    return ev, seen


def costs(model, n_expensive):
    """Latency (ms) and energy (µJ) of the network with ``n_expensive`` of six expensive ops, priced on the frozen network."""
    report = model.evaluate(TaskNeutralSpace().freeze({f"op{i}": int(i >= n_expensive) for i in range(6)}), (1, 8, 8))
    return report.latency_ms, report.energy_uj


def test_energy_budget_binds_the_derived_network(tmp_path):
    model = create("systolic", rows=8, cols=8)
    cheap, expensive = costs(model, 0)[1], costs(model, 6)[1]
    target = cheap + 0.2 * (expensive - cheap)  # room for one expensive op of six
    torch.manual_seed(0)
    strategy = UBoost(cost_model=model, target_energy_uj=target, latency_weight=0.0, utilization_weight=0.0,
                      budget_floor=0.0, arch_lr=0.05, budget_lr=1.0, budget_commit=0.0)  # the multiplier alone
    ev, seen = recorded_evaluator(epochs=3)
    arch = run_experiment(TaskNeutralSpace(), ev, strategy, workdir=tmp_path)
    metrics = ev.trainer.callback_metrics
    final = model.evaluate(TaskNeutralSpace().freeze(arch), (1, 8, 8)).energy_uj
    assert final <= target * (1 + 1e-9) and seen[-1][0] <= target * (1 + 1e-6)
    assert seen[0][0] > target  # the random start was over the energy budget ...
    assert max(m for _, m in seen) > 0  # ... so its multiplier rose and pulled the derived network down
    assert "hw/budget_multiplier" not in metrics  # no latency budget, no latency multiplier


def test_latency_and_energy_budgets_at_once_with_the_commit_phase(tmp_path):
    model = create("systolic", rows=8, cols=8)
    (lat1, en1), (lat2, en2) = costs(model, 1), costs(model, 2)
    # one expensive op fits both; two break both
    target_ms, target_uj = lat1 * 1.01, en1 * 1.01
    assert lat2 > target_ms and en2 > target_uj
    torch.manual_seed(0)
    strategy = UBoost(cost_model=model, target_latency_ms=target_ms, target_energy_uj=target_uj, utilization_weight=0.0,
                      budget_floor=0.9, arch_lr=0.05, budget_lr=1.0, budget_commit=0.6)
    committed = []
    ev, seen = recorded_evaluator(epochs=3, committed=committed)
    arch = run_experiment(TaskNeutralSpace(), ev, strategy, workdir=tmp_path)
    report = model.evaluate(TaskNeutralSpace().freeze(arch), (1, 8, 8))
    assert report.latency_ms <= target_ms and report.energy_uj <= target_uj  # the search's own argmax meets both
    assert report.latency_ms >= 0.9 * target_ms  # and sits in the latency window (one expensive op)
    assert any(c is not None for c in committed) and all(0.9 * target_ms <= c <= target_ms for c in committed if c is not None)
    assert all(e <= target_uj for e, _ in seen[-3:])  # the derived network stays within the energy budget at the end
    metrics = ev.trainer.callback_metrics
    assert {"hw/budget_multiplier", "hw/energy_multiplier", "hw/committed_energy_uj"} <= set(metrics)
