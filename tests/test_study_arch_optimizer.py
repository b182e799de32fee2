"""benchmarks/study_arch_optimizer.py: the alphas' optimizer swapped inside the block only."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import study_arch_optimizer  # noqa: E402

from uboost.strategy.lightning import UBoostLightningModule  # noqa: E402


class _Alphas:
    def __init__(self):
        self.alpha = torch.nn.Parameter(torch.zeros(3))

    def arch_parameters(self):
        return [self.alpha]


def test_sgd_updates_the_alphas_inside_the_block_and_adam_comes_back():
    today = UBoostLightningModule.configure_architecture_optimizers
    with study_arch_optimizer.arch_optimizer("sgd", 10.0):
        optimizer = UBoostLightningModule.configure_architecture_optimizers(_Alphas())
        assert isinstance(optimizer, torch.optim.SGD)
        group = optimizer.param_groups[0]
        assert group["lr"] == 10.0 and group["momentum"] == 0.9 and group["weight_decay"] == 1e-3
        # a step scales with the gradient (Adam's would be the same size for both)
        fake = _Alphas()
        sgd = UBoostLightningModule.configure_architecture_optimizers(fake)
        fake.alpha.grad = torch.tensor([1e-3, 1e-2, 0.0])
        sgd.step()
        assert torch.allclose(fake.alpha.detach(), torch.tensor([-1e-2, -1e-1, 0.0]))
    assert UBoostLightningModule.configure_architecture_optimizers is today
    with study_arch_optimizer.arch_optimizer("adam", 10.0):  # today's search, untouched
        assert UBoostLightningModule.configure_architecture_optimizers is today


def test_hypervolume_of_a_sweep_uses_the_pairs_fixed_reference():
    # lenet-16x16's reference is (20 % error, 16 µs): one point at 2 % / 1.6 µs dominates 0.9 x 0.9 of the box
    points = [{"accuracy_pct": 98.0, "latency_us": 1.6}, {"accuracy_pct": 90.0, "latency_us": 8.0}]  # 2nd dominated
    assert abs(study_arch_optimizer.hypervolume(points) - 0.81) < 1e-9
