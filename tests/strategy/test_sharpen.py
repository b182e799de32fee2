"""The priced distribution sharpens with the Gumbel temperature (issue 9, item 5: a search that commits)."""

import pytest
import torch

from uboost.hardware import create
from uboost.strategy import HardwareLoss, UBoost, run_experiment
from uboost.strategy.architecture import probabilities_dict

from tests.strategy.spaces import MixedSpace
from tests.strategy.test_uboost import evaluator


def attached_hook(seed=0, space=MixedSpace, draw=lambda shape: torch.rand(shape) - 0.5):
    """A hardware loss attached to ``space()`` with alphas from ``draw`` (default: within +-0.5,
    a distribution that has not decided)."""
    torch.manual_seed(seed)
    supernet = UBoost(cost_model="systolic", hardware=dict(rows=8, cols=8)).mutate_model(space())
    hook = HardwareLoss(create("systolic", rows=8, cols=8))
    hook.attach(supernet, torch.randn(1, 1, 8, 8))
    with torch.no_grad():
        for choice in hook.choices:
            choice.alpha.copy_(draw(choice.alpha.shape))
    return hook


def test_expected_cost_at_a_low_temperature_is_the_derived_networks():
    hook = attached_hook()
    derived = float(hook.derived_cost().latency_ms)
    with torch.no_grad():
        soft = float(hook.expected_cost().latency_ms)  # tau = 1: softmax(alpha), as NNI's DARTS
        plain = float(hook.supernet_cost().latency_ms)
        hook.distribution_tau = 1e-4  # near-ties (here 0.007 apart) need a low tau to be decided
        sharp = float(hook.expected_cost().latency_ms)
    assert soft == plain
    assert abs(soft / derived - 1) > 0.1  # undecided alphas: the expectation is far from the argmax network
    assert sharp == pytest.approx(derived, rel=1e-3)


def test_the_hardware_term_gradient_follows_the_sharpened_distribution():
    hook = attached_hook()
    hook.distribution_tau = 0.5
    terms = hook()
    alphas = [c.alpha for c in hook.choices]
    grads = torch.autograd.grad(terms.loss, alphas, allow_unused=True)
    # the same loss as pricing softmax(2 * alpha) at tau = 1
    hook.distribution_tau = 1.0
    with torch.no_grad():
        saved = [a.clone() for a in alphas]
        for a in alphas:
            a.mul_(2.0)
    doubled = hook()
    assert float(doubled.loss) == pytest.approx(float(terms.loss), rel=1e-9)
    with torch.no_grad():
        for a, s in zip(alphas, saved):
            a.copy_(s)
    assert any(g is not None and float(g.abs().sum()) > 0 for g in grads)


def test_probabilities_dict_at_a_temperature():
    hook = attached_hook()
    plain, sharp = probabilities_dict(hook.choices), probabilities_dict(hook.choices, tau=0.25)
    for choice in hook.choices:
        expected = torch.softmax(choice.alpha.detach().double().reshape(-1) / 0.25, -1).tolist()
        assert list(sharp[choice.label].values()) == pytest.approx(expected)
        assert max(sharp[choice.label].values()) >= max(plain[choice.label].values())


@pytest.mark.parametrize("sharpen", [True, False])
def test_a_search_prices_the_annealed_distribution_only_when_sharpening(tmp_path, sharpen):
    torch.manual_seed(0)
    ev = evaluator(epochs=2)
    strategy = UBoost(cost_model="systolic", hardware=dict(rows=8, cols=8), sharpen=sharpen)
    run_experiment(MixedSpace(), ev, strategy, workdir=tmp_path)
    hook = strategy.hardware_loss
    assert hook.distribution_tau == (pytest.approx(0.1, abs=1e-6) if sharpen else 1.0)
    logged = float(ev.trainer.callback_metrics["hw/latency_ms"])  # the last step's expected latency
    with torch.no_grad():
        # the logged value was priced before the last architecture update: compare the distributions' tau, not values
        at_tau = float(hook.expected_cost().latency_ms)
    assert logged > 0 and at_tau > 0
    if sharpen:  # at tau = 0.1 the priced expectation has converged on the exported network
        assert at_tau == pytest.approx(float(hook.derived_cost().latency_ms), rel=0.1)
