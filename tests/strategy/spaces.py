"""Small NNI model spaces defined here, not in uboost: the strategy must work on users' spaces."""

import nni
import torch
from nni.nas.nn.pytorch import Cell, LayerChoice, ModelSpace, MutableBatchNorm2d, MutableConv2d, MutableLinear, Repeat
from torch import nn


class MixedSpace(ModelSpace):
    """LayerChoice + width choice flowing to the consumer + kernel choice + Repeat depth."""

    def __init__(self):
        super().__init__()
        w = nni.choice("w", [8, 16, 24])
        k = nni.choice("k", [1, 3])
        self.stem = MutableConv2d(1, w, 3, padding=1)
        self.bn = MutableBatchNorm2d(w)
        self.mid = MutableConv2d(w, 16, k, padding=k // 2)
        self.op = LayerChoice([nn.Conv2d(16, 16, 3, padding=1), nn.Conv2d(16, 16, 1), nn.Identity()], label="op")
        self.rep = Repeat(lambda i: nn.Conv2d(16, 16, 3, padding=1), (1, 3), label="depth")
        self.fc = MutableLinear(16, 10)

    def forward(self, x):
        x = torch.relu(self.bn(self.stem(x)))
        x = self.rep(self.op(self.mid(x)))
        return self.fc(x.mean((2, 3)))


class _SameOutput(nn.Module):
    """An op whose output does not depend on its (costly) conv: the task cannot tell ops apart."""

    def __init__(self, conv: nn.Module):
        super().__init__()
        self.conv = conv

    def forward(self, x):
        return x + 0.0 * self.conv(x)


class TaskNeutralSpace(ModelSpace):
    """Six independent choices between an expensive and a cheap op with identical outputs."""

    def __init__(self, n: int = 6):
        super().__init__()
        self.stem = nn.Conv2d(1, 16, 3, padding=1)
        self.choices = nn.ModuleList(
            LayerChoice(
                [_SameOutput(nn.Conv2d(16, 16, 5, padding=2)), _SameOutput(nn.Conv2d(16, 16, 1))], label=f"op{i}"
            )
            for i in range(n)
        )
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.stem(x)
        for choice in self.choices:
            x = choice(x)
        return self.fc(x.mean((2, 3)))


def _cell_ops(channels: int) -> dict:
    return {
        "conv3": lambda node, op, inp: nn.Conv2d(channels, channels, 3, padding=1),
        "conv1": lambda node, op, inp: nn.Conv2d(channels, channels, 1),
        "pool": lambda node, op, inp: nn.MaxPool2d(3, 1, 1),
    }


class CellSpace(ModelSpace):
    """An NNI ``Cell`` (op factories, per-edge alphas) + width choice + LayerChoice + Repeat depth."""

    def __init__(self):
        super().__init__()
        w = nni.choice("cw", [4, 8])
        self.stem = MutableConv2d(1, w, 3, padding=1)
        self.bn = MutableBatchNorm2d(w)
        self.pre = MutableConv2d(w, 8, 1)
        self.cell = Cell(_cell_ops(8), num_nodes=2, num_ops_per_node=1, num_predecessors=1, label="cell")
        self.op = LayerChoice([nn.Conv2d(16, 16, 3, padding=1), nn.Identity()], label="cop")
        self.rep = Repeat(lambda i: nn.Conv2d(16, 16, 1), (1, 2), label="cdepth")
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.pre(torch.relu(self.bn(self.stem(x))))
        x = self.rep(self.op(self.cell(x)))
        return self.fc(x.mean((2, 3)))
