"""Exit heads: small classifiers attached to a backbone's feature maps.

The head is HADAS's (REFERENCES section 6): a 3x3 convolution, batch norm, LeakyReLU, global
average pooling and a linear classifier. HADAS widens to 224 channels; here the width is a
parameter (default 16) so a head stays cheap next to the small networks uboost searches and
trains on a CPU. Its convolution and linear layer are priced on the array like the backbone's.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from uboost.exceptions import ConfigError

DEFAULT_HEAD_WIDTH = 16


class ExitHead(nn.Sequential):
    """conv3x3(in -> width) - BN - LeakyReLU - global average pool - linear(width -> classes);
    ``width=0``: global average pool - linear(in -> classes) alone (the cheapest head)."""

    def __init__(self, in_channels: int, num_classes: int, *, width: int = DEFAULT_HEAD_WIDTH) -> None:
        for name, value in (("in_channels", in_channels), ("num_classes", num_classes), ("head width", width)):
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "head width" else 1):
                raise ConfigError(f"{name} must be a positive integer (head width: 0 for no convolution), got {value!r}")
        if width == 0:
            super().__init__(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_channels, num_classes))
            return
        super().__init__(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.LeakyReLU(0.1),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(width, num_classes),
        )


def build_heads(feature_shapes: Sequence[Sequence[int]], num_classes: int, *, width: int = DEFAULT_HEAD_WIDTH) -> nn.ModuleList:
    """One head per exit, for features of shape ``(C, H, W)``."""
    return nn.ModuleList(ExitHead(int(shape[0]), num_classes, width=width) for shape in feature_shapes)
