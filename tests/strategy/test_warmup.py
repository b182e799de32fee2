"""Weights-only warm-up epochs (``warmup_epochs``): the architecture, its multiplier and the
Gumbel schedule start after them."""

import pytest
import torch
from lightning.pytorch import Callback

from uboost.exceptions import ConfigError
from uboost.search import SearchConfig
from uboost.strategy import UBoost, run_experiment

from tests.strategy.spaces import MixedSpace
from tests.strategy.test_sharpen import attached_hook
from tests.strategy.test_uboost import evaluator


class Recorder(Callback):
    """Per step: epoch, the Gumbel temperature, the budget multiplier and a copy of the alphas."""

    def __init__(self):
        self.rows = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        alphas = torch.cat([p.detach().reshape(-1).clone() for p in pl_module.arch_parameters()])
        tau = pl_module.current_gumbel_tau(trainer.fit_loop.total_batch_idx)  # this step's index
        self.rows.append((trainer.current_epoch, tau, float(pl_module.hardware_loss.multiplier), alphas))


@pytest.mark.parametrize("sampling", ["mixture", "single-path"])
def test_warmup_epochs_freeze_the_architecture_then_the_schedule_runs_in_full(tmp_path, sampling):
    torch.manual_seed(0)
    recorder = Recorder()
    ev = evaluator(epochs=3, callbacks=[recorder])
    # the cheapest network's latency as the budget: after the warm-up the multiplier must rise
    target = float(attached_hook().projector().cheapest().latency_ms)
    strategy = UBoost(cost_model="systolic", hardware=dict(rows=8, cols=8), warmup_epochs=2, sampling=sampling,
                      target_latency_ms=target, budget_floor=0.0)
    run_experiment(MixedSpace(), ev, strategy, workdir=tmp_path)
    warm = [r for r in recorder.rows if r[0] < 2]
    searching = [r for r in recorder.rows if r[0] == 2]
    assert warm and searching
    first = warm[0][3]
    for _, tau, multiplier, alphas in warm:
        assert tau == 1.0  # the schedule has not started
        assert multiplier == 0.0  # no wind-up while the alphas cannot move
        assert torch.equal(alphas, first)  # the architecture does not train
    assert not torch.equal(searching[-1][3], first)
    assert searching[-1][2] > 0.0
    assert searching[-1][1] == pytest.approx(0.1)  # annealed over the architecture's steps only
    assert searching[0][1] == pytest.approx(1.0)


@pytest.mark.parametrize("bad", [-1, 6, 7, 1.5, True])
def test_warmup_epochs_must_leave_epochs_to_search(bad):
    with pytest.raises(ConfigError, match="warmup_epochs"):
        SearchConfig(space="lenet", epochs=6, warmup_epochs=bad)


def test_warmup_epochs_defaults_to_none_and_round_trips():
    assert SearchConfig(space="lenet").warmup_epochs == 0
    config = SearchConfig(space="lenet", epochs=4, warmup_epochs=3)
    assert SearchConfig.from_dict(config.to_dict()).warmup_epochs == 3


@pytest.mark.parametrize("bad", [(0.1, 1.0), (1.0, 0.0), (1.0,), (1.0, float("inf")), "1,0.1", (True, 0.1)])
def test_gumbel_tau_must_be_a_falling_positive_pair(bad):
    with pytest.raises(ConfigError, match="gumbel_tau"):
        SearchConfig(space="lenet", gumbel_tau=bad)
    with pytest.raises(ConfigError, match="gumbel_temperature"):
        UBoost(gumbel_temperature=bad)


def test_gumbel_tau_defaults_to_one_to_a_tenth_and_round_trips():
    assert SearchConfig(space="lenet").gumbel_tau == (1.0, 0.1)
    config = SearchConfig(space="lenet", gumbel_tau=[3, 0.1])  # as read back from JSON: a list of numbers
    assert config.gumbel_tau == (3.0, 0.1)
    assert SearchConfig.from_dict(config.to_dict()).gumbel_tau == (3.0, 0.1)
