"""``lenet``: the DmaskingNAS toy -- LeNet with kernel-size and width choices per layer.

Widths are searched FBNetV2-style (NNI's weighted channel masks on the conv/BN/linear layers,
the chosen width flowing to the consumer's input); kernels from ``kernels``.
"""

from __future__ import annotations

from typing import Any, Sequence

import nni
from nni.nas.nn.pytorch import ModelSpace, MutableBatchNorm2d, MutableConv2d, MutableLinear
from torch import nn

from uboost.exceptions import ConfigError
from uboost.search_spaces.registry import register


class LeNetSpace(ModelSpace):
    default_init = True  # torch's default initialization: a retrain redraws the weights from its seed alone

    def __init__(
        self,
        *,
        widths: Sequence[int] = (4, 8, 16, 24, 32),
        kernels: Sequence[int] = (3, 5),
        hidden: Sequence[int] = (32, 64, 128),
        num_classes: int = 10,
        input_shape: tuple[int, int, int] = (1, 28, 28),
    ):
        super().__init__()
        for what, values in (("widths", widths), ("kernels", kernels), ("hidden", hidden)):
            values = list(values) if isinstance(values, (list, tuple)) else [values]
            if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
                raise ConfigError(f"lenet {what} must be a non-empty list of positive whole numbers, got {values!r}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ConfigError(f"num_classes must be a positive whole number, got {num_classes!r}")
        if any(k % 2 == 0 for k in kernels):
            raise ConfigError(f"kernels must be odd (same padding), got {list(kernels)}")
        self.options = dict(widths=list(widths), kernels=list(kernels), hidden=list(hidden),
                            num_classes=num_classes, input_shape=tuple(input_shape))
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        c_in = input_shape[0]
        w1, w2 = nni.choice("conv1_width", list(widths)), nni.choice("conv2_width", list(widths))
        k1, k2 = nni.choice("conv1_kernel", list(kernels)), nni.choice("conv2_kernel", list(kernels))
        h = nni.choice("fc1_width", list(hidden))
        self.conv1 = MutableConv2d(c_in, w1, k1, padding=k1 // 2, bias=False)
        self.bn1 = MutableBatchNorm2d(w1)
        self.conv2 = MutableConv2d(w1, w2, k2, padding=k2 // 2, bias=False)
        self.bn2 = MutableBatchNorm2d(w2)
        self.pool = nn.MaxPool2d(2)
        self.gap = nn.AdaptiveAvgPool2d(2)
        self.fc1 = MutableLinear(w2 * 4, h)
        self.fc2 = MutableLinear(h, num_classes)

    def forward(self, x):
        x = self.pool(self.bn1(self.conv1(x)).relu())
        x = self.gap(self.bn2(self.conv2(x)).relu())
        return self.fc2(self.fc1(x.view(x.size(0), -1)).relu())


@register("lenet", description="DmaskingNAS toy: LeNet with per-layer kernel and width choices")
def lenet(**options: Any) -> LeNetSpace:
    if "input_shape" in options:
        options["input_shape"] = tuple(options["input_shape"])
    return LeNetSpace(**options)


lenet.input_channels = 1
