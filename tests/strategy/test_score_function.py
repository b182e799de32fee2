"""The score-function estimate of single-path's task gradient (``UBoost(score_weight=...)``)."""

import json

import nni
import pytest
import torch
from nni.nas.nn.pytorch import LayerChoice, ModelSpace, MutableConv2d
from torch import nn

from uboost.exceptions import ConfigError
from uboost.search import SearchConfig, run_search
from uboost.strategy import UBoost
from uboost.strategy.score_function import ScoreFunction, log_prob

from tests.strategy.spaces import MixedSpace
from tests.strategy.test_single_path import MODEL, resample, supernet


def test_log_prob_is_the_sum_of_each_sampled_alpha_s_log_softmax():
    a, b, c = (torch.randn(n, requires_grad=True) for n in (3, 2, 3))
    sampled = [(a, 2), (b, 0), (c, 1)]
    expected = torch.log_softmax(a, 0)[2] + torch.log_softmax(b, 0)[0] + torch.log_softmax(c, 0)[1]
    assert float(log_prob(sampled)) == pytest.approx(float(expected), rel=1e-6)
    log_prob(sampled).backward()
    assert torch.allclose(a.grad, torch.eye(3)[2] - torch.softmax(a.detach(), 0))  # one-hot - p


def test_the_baseline_is_a_moving_average_and_the_first_step_has_no_advantage():
    alpha = torch.zeros(2, requires_grad=True)
    score = ScoreFunction(2.0, decay=0.5)
    first = score.surrogate(torch.tensor(3.0), [(alpha, 0)])
    first.backward()
    assert torch.all(alpha.grad == 0) and float(score.baseline) == 3.0  # advantage 0: no gradient
    alpha.grad = None
    score.surrogate(torch.tensor(5.0), [(alpha, 0)]).backward()  # advantage 5 - 3 = 2, then baseline (3 + 5) / 2
    assert torch.allclose(alpha.grad, 2.0 * 2.0 * torch.tensor([0.5, -0.5]))
    assert float(score.baseline) == 4.0
    assert score.surrogate(torch.tensor(1.0), []) is None and float(score.baseline) == 2.5
    restored = ScoreFunction(2.0)
    restored.load_state_dict(score.state_dict())
    assert float(restored.baseline) == 2.5


def test_a_choice_before_a_batch_norm_gets_a_task_gradient_only_from_the_score_function():
    """MixedSpace's width ``w`` feeds a batch norm, which undoes the straight-through weight's scale: its task
    gradient is ~0. The score function gives it ``weight * (L - b) * (one_hot - p)``."""
    torch.manual_seed(0)
    strategy, net = supernet(MixedSpace(), seed=1, score_weight=1.0)
    sampler = strategy._sampler
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    resample(net)
    task = torch.nn.functional.cross_entropy(net(x), y)
    width = dict(net.named_parameters())
    alpha = next(p for name, p in width.items() if name.endswith("w"))
    task.backward(retain_graph=True)
    straight_through = alpha.grad.clone()
    assert straight_through.abs().max() < 1e-3  # the batch norm undoes the scale (up to its eps)
    alpha.grad = None
    score = ScoreFunction(1.0)
    score.baseline = task.detach() + 0.5  # this path did 0.5 better than the baseline
    sampled = dict((id(a), i) for a, i in sampler.sampled())
    assert id(alpha) in sampled
    score.surrogate(task, sampler.sampled()).backward()
    one_hot = torch.eye(alpha.numel())[sampled[id(alpha)]]
    expected = -0.5 * (one_hot - torch.softmax(alpha.detach(), 0))
    assert torch.allclose(alpha.grad, expected, atol=1e-6)
    assert alpha.grad.abs().max() > 100 * straight_through.abs().max()


def test_the_score_weight_needs_single_path_and_a_non_negative_number():
    with pytest.raises(ConfigError, match="single-path"):
        UBoost(**MODEL, sampling="mixture", score_weight=1.0)
    with pytest.raises(ConfigError, match="score_weight"):
        UBoost(**MODEL, sampling="single-path", score_weight=-1.0)
    with pytest.raises(ConfigError, match="single-path"):
        SearchConfig(space="lenet", sampling="mixture", score_weight=1.0)
    with pytest.raises(ConfigError, match="score_weight"):
        SearchConfig(space="lenet", score_weight=float("nan"))


def _spread(run) -> float:
    alphas = json.loads((run / "alphas.json").read_text())["conv1_width"]
    return max(alphas) - min(alphas)


def test_a_task_only_lenet_search_moves_conv1_only_with_the_score_function(tmp_path):
    """lenet's conv1 feeds a batch norm: searched by the task alone, its width's alphas stay near uniform with the
    straight-through gradient and move with the score function (RESULTS: "a score-function task gradient")."""
    config = SearchConfig(space="lenet", image_size=8, epochs=2, max_samples=512, latency_weight=0.0,
                          utilization_weight=0.0, seed=0)
    run_search(config, tmp_path / "st")
    run_search(config.replace(score_weight=1.0), tmp_path / "score")
    assert _spread(tmp_path / "st") < 0.1
    assert _spread(tmp_path / "score") > 5 * _spread(tmp_path / "st")


def test_the_sampled_path_is_the_alphas_the_last_forward_pass_used_with_a_graph():
    strategy, net = supernet(MixedSpace(), seed=2, score_weight=1.0)
    sampler = strategy._sampler
    x = torch.randn(2, 1, 8, 8)
    resample(net)
    assert sampler.sampled() == []  # nothing ran since the draw
    with torch.no_grad():
        net(x)
    assert sampler.sampled() == []  # no graph to the alphas: nothing to estimate
    resample(net)
    net(x)
    used = sampler.sampled()
    assert {id(a) for a, _ in used} == {id(a) for a in sampler.alphas}  # every MixedSpace choice runs
    assert all(index == sampler.index(a) for a, index in used)
    resample(net)
    assert sampler.sampled() == []  # a new draw starts a new path


# -- score_on="blind": the score function only where the straight-through estimate is blind ----------------

class NormedSpace(ModelSpace):
    """A kernel choice ``k`` whose output feeds a batch norm (blind) and an op choice feeding the head (not)."""

    def __init__(self):
        super().__init__()
        k = nni.choice("k", [1, 3])
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.mid = MutableConv2d(8, 8, k, padding=k // 2)
        self.bn = nn.BatchNorm2d(8)
        self.op = LayerChoice([nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 1)], label="op")
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = torch.relu(self.bn(self.mid(torch.relu(self.stem(x)))))
        return self.fc(torch.relu(self.op(x)).mean((2, 3)))


def test_blind_choices_are_the_ones_whose_straight_through_gradient_vanishes():
    """After PROBES readings the surrogate with ``scope="blind"`` reaches the kernel's alpha (before the batch
    norm) only; the op's keeps exactly its straight-through gradient."""
    from uboost.strategy.score_function import PROBES

    torch.manual_seed(0)
    strategy, net = supernet(NormedSpace(), seed=1, score_weight=1.0)
    sampler = strategy._sampler
    named = {id(p): name for name, p in net.named_parameters()}
    kernel, op = (next(a for a in sampler.alphas if named[id(a)] == name) for name in ("mid._arch_alpha.k", "op._arch_alpha"))
    score = ScoreFunction(1.0, scope="blind")
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    for step in range(PROBES):
        resample(net)
        task = torch.nn.functional.cross_entropy(net(x), y)
        term = score.surrogate(task, sampler.sampled(), sampler.alphas)
        assert (term is None) == (step < PROBES - 1)  # nothing is judged before its PROBES-th reading
    assert [sampler.alphas[k] for k in score.blind.blind_positions()] == [kernel]
    resample(net)
    task = torch.nn.functional.cross_entropy(net(x), y)
    task.backward(retain_graph=True)
    straight = {id(a): a.grad.clone() for a in (kernel, op)}
    kernel.grad = op.grad = None
    score.baseline = task.detach() + 0.5
    (task + score.surrogate(task, sampler.sampled(), sampler.alphas)).backward()
    assert kernel.grad.abs().max() > 100 * straight[id(kernel)].abs().max()  # the score function's term
    assert torch.equal(op.grad, straight[id(op)])  # untouched


def test_blind_readings_survive_a_checkpoint_and_judge_late_samples_at_the_step_limit():
    from uboost.strategy.score_function import BlindChoices

    blind = BlindChoices(probes=2, probe_steps=3, tolerance=1e-4)
    a, b, c = (torch.zeros(2, requires_grad=True) for _ in range(3))
    alphas = [a, b, c]
    for step in range(3):
        task = (a * 0).sum() + 1e-9 * b[0] + (step + 1.0) * c[0] + 2.0  # a: no gradient at all, b: tiny, c: large
        sampled = [(a, 0), (c, 0)] + ([(b, 0)] if step == 2 else [])
        chosen = blind.select(task, sampled, alphas)
        if step == 0:
            assert chosen == []
    assert blind.verdict == {0: True, 1: True, 2: False}  # b read once, judged at the step limit (3)
    assert [id(x) for x, _ in chosen] == [id(a), id(b)]  # b is judged (and used) in the step of its reading
    restored = BlindChoices(probes=2, probe_steps=3)
    restored.load_state_dict(blind.state_dict())
    task = (a * 0).sum() + b[0] * 0 + c[0]
    assert [id(x) for x, _ in restored.select(task, [(a, 1), (b, 1), (c, 1)], alphas)] == [id(a), id(b)]
    assert restored.steps == 3  # judged alphas are not read again
    with pytest.raises(ValueError, match="pass alphas"):  # positions within the drawn path would mix alphas' readings
        ScoreFunction(1.0, scope="blind").surrogate(task, [(a, 1)])


def test_score_on_is_all_or_blind_everywhere():
    from uboost.search_config import SCORE_SCOPES
    from uboost.strategy.score_function import SCOPES

    assert SCORE_SCOPES == SCOPES
    with pytest.raises(ConfigError, match="score_on"):
        UBoost(**MODEL, sampling="single-path", score_weight=1.0, score_on="some")
    with pytest.raises(ConfigError, match="score_on"):
        SearchConfig(space="lenet", score_weight=1.0, score_on="every")
    with pytest.raises(ConfigError, match="needs a score_weight"):
        SearchConfig(space="lenet", score_on="blind")
    with pytest.raises(ConfigError, match="needs a score_weight"):
        UBoost(**MODEL, sampling="single-path", score_on="blind")


def test_a_task_only_lenet_search_with_score_on_blind_moves_conv1_and_judges_its_choices_blind(tmp_path):
    """lenet's conv1 width and kernel and conv2's kernel feed a batch norm: judged blind, they get the score function
    and conv1's alphas move as with ``score_on="all"``; conv2's width and fc1's are not blind."""
    config = SearchConfig(space="lenet", image_size=8, epochs=2, max_samples=512, latency_weight=0.0,
                          utilization_weight=0.0, seed=0, score_weight=1.0, score_on="blind")
    run_search(config, tmp_path / "blind")
    run_search(config.replace(score_weight=0.0, score_on="all"), tmp_path / "st")
    assert _spread(tmp_path / "blind") > 5 * _spread(tmp_path / "st")
    state = torch.load(tmp_path / "blind" / "checkpoints" / "last.ckpt", weights_only=False)["uboost_score_function"]
    names = list(json.loads((tmp_path / "blind" / "alphas.json").read_text()))
    verdict = state["blind"]["verdict"]
    assert {names[k] for k, v in verdict.items() if v} == {"conv1_width", "conv1_kernel", "conv2_kernel"}
    assert {names[k] for k, v in verdict.items() if not v} == {"conv2_width", "fc1_width"}


def test_score_on_blind_leaves_a_search_without_blind_choices_as_it_was(tmp_path):
    """darts-cifar's edges are summed at every node, so no edge choice is blind: with ``score_on="blind"`` the search
    reads its straight-through gradients, judges none blind and runs exactly today's straight-through search."""
    config = SearchConfig(space="darts-cifar", space_options={"width": 4, "cells": 3}, dataset="digits", image_size=8,
                          epochs=2, max_samples=256, batch_size=32, seed=0)
    run_search(config, tmp_path / "st")
    run_search(config.replace(score_weight=1.0, score_on="blind"), tmp_path / "blind")
    state = torch.load(tmp_path / "blind" / "checkpoints" / "last.ckpt", weights_only=False)["uboost_score_function"]
    verdict = state["blind"]["verdict"]
    assert len(verdict) == len(json.loads((tmp_path / "st" / "alphas.json").read_text())) and not any(verdict.values())
    for name in ("alphas.json", "arch.json"):
        assert (tmp_path / "st" / name).read_text() == (tmp_path / "blind" / name).read_text()
