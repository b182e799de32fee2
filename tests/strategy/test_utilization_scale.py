"""``utilization_scale``: the utilization term weighed by lambda too (issue 26 item 3)."""

import csv

import pytest
import torch

from uboost.exceptions import ConfigError
from uboost.hardware import create
from uboost.strategy import HardwareLoss, UBoost

from tests.strategy.spaces import MixedSpace


def _attached(**kwargs):
    model = create("systolic", rows=8, cols=8)
    torch.manual_seed(0)  # the same alphas in every call
    supernet = UBoost(cost_model=model).mutate_model(MixedSpace())
    hook = HardwareLoss(model, **kwargs)
    hook.attach(supernet, torch.zeros(1, 1, 8, 8))
    return hook, supernet


def _alpha_grads(hook, supernet):
    alphas = [m._arch_alpha for m in supernet.modules() if isinstance(getattr(m, "_arch_alpha", None), torch.nn.Parameter)]
    assert alphas
    for a in alphas:
        a.grad = None
    hook().loss.backward()
    return torch.cat([a.grad.reshape(-1) for a in alphas])


def test_at_lambda_zero_the_scaled_hardware_term_is_zero_and_moves_no_alpha():
    hook, supernet = _attached(latency_weight=0.0, utilization_weight=1.0, utilization_scale="lambda")
    assert float(hook().loss) == 0.0
    assert _alpha_grads(hook, supernet).abs().max() == 0.0
    fixed, supernet = _attached(latency_weight=0.0, utilization_weight=1.0)  # today's default: beta * (1 - U) alone
    cost = fixed().cost
    assert 0 < float(cost.utilization) < 1
    assert float(fixed().loss) == pytest.approx(1.0 - float(cost.utilization))
    assert _alpha_grads(fixed, supernet).abs().max() > 1e-6


def test_scaled_term_is_lambda_times_latency_and_utilization():
    hook, _ = _attached(latency_weight=2.0, utilization_weight=0.5, utilization_scale="lambda")
    terms = hook()
    latency, utilization = float(terms.cost.latency_ms), float(terms.cost.utilization)
    expected = 2.0 * (latency / hook.latency_ref_ms + 0.5 * (1.0 - utilization))
    assert float(terms.loss) == pytest.approx(expected, rel=1e-9)
    fixed, _ = _attached(latency_weight=2.0, utilization_weight=0.5)  # today's: only the latency term is scaled
    terms = fixed()
    latency, utilization = float(terms.cost.latency_ms), float(terms.cost.utilization)
    assert float(terms.loss) == pytest.approx(2.0 * latency / fixed.latency_ref_ms + 0.5 * (1.0 - utilization), rel=1e-9)


def test_with_a_latency_target_the_utilization_term_is_not_scaled():
    losses = []
    for scale in ("fixed", "lambda"):
        hook, _ = _attached(latency_weight=0.0, utilization_weight=1.0, utilization_scale=scale, target_latency_ms=1.0,
                            budget_floor=0.0)
        hook.update_multiplier(3.0)  # mu = 1
        terms = hook()
        assert float(terms.loss) == pytest.approx(1.0 - float(terms.cost.utilization) + float(terms.cost.latency_ms))
        losses.append(float(terms.loss))
    assert losses[0] == losses[1]


def test_unknown_scale_is_a_config_error():
    from uboost.search import SearchConfig

    with pytest.raises(ConfigError, match="utilization_scale must be one of fixed, lambda"):
        HardwareLoss(create("systolic", rows=8, cols=8), utilization_scale="sqrt")
    with pytest.raises(ConfigError, match="utilization_scale must be one of fixed, lambda, got 'sqrt'"):
        SearchConfig(utilization_scale="sqrt")
    assert SearchConfig().utilization_scale == "fixed"  # the default is unchanged


def test_search_records_the_scale_in_hparams_and_logs_a_zero_hardware_loss_at_lambda_zero(tmp_path):
    from uboost.search import SearchConfig, run_search

    config = SearchConfig(space="lenet", image_size=8, epochs=1, max_samples=64, batch_size=32, latency_weight=0.0,
                          utilization_scale="lambda")
    run_search(config, tmp_path / "run")
    assert "utilization_scale: lambda" in (tmp_path / "run" / "hparams.yaml").read_text()
    with open(tmp_path / "run" / "metrics.csv", newline="") as f:
        losses = [float(r["hw/loss"]) for r in csv.DictReader(f) if r.get("hw/loss")]
    assert losses and all(v == 0.0 for v in losses)
