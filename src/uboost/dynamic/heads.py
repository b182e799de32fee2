"""Exit heads: small classifiers attached to a backbone's feature maps.

The head is HADAS's (REFERENCES section 6): a 3x3 convolution, batch norm, LeakyReLU, global
average pooling and a linear classifier. HADAS widens to 224 channels; here the width is a
parameter (default 16) so a head stays cheap next to the small networks uboost searches and
trains on a CPU; ``width=0`` drops the convolution. ``pool`` is the side of the grid the feature
map is average-pooled to before the linear layer: 1 is HADAS's global pooling; ``pool=2`` keeps
a 2x2 grid (SDN's internal classifiers likewise reduce a feature map to a fixed small grid, not
to one value per channel), which a narrow early feature map needs: after lenet's first conv,
4 channels pooled to 4 numbers cannot separate 10 digits. Convolution and linear layer are
priced on the array like the backbone's.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from uboost.exceptions import ConfigError

DEFAULT_HEAD_WIDTH = 16


class ExitHead(nn.Sequential):
    """conv3x3(in -> width) - BN - LeakyReLU - average pool to pool x pool - linear(width * pool^2 -> classes);
    ``width=0``: average pool - linear(in * pool^2 -> classes) alone (the cheapest head)."""

    def __init__(self, in_channels: int, num_classes: int, *, width: int = DEFAULT_HEAD_WIDTH, pool: int = 1) -> None:
        for name, value in (("in_channels", in_channels), ("num_classes", num_classes), ("head width", width), ("head pool", pool)):
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "head width" else 1):
                raise ConfigError(f"{name} must be a positive integer (head width: 0 for no convolution), got {value!r}")
        reduce = [nn.AdaptiveAvgPool2d(pool), nn.Flatten()]
        if width == 0:
            super().__init__(*reduce, nn.Linear(in_channels * pool * pool, num_classes))
            return
        super().__init__(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.LeakyReLU(0.1),
            *reduce,
            nn.Linear(width * pool * pool, num_classes),
        )


def build_heads(feature_shapes: Sequence[Sequence[int]], num_classes: int, *, width: int = DEFAULT_HEAD_WIDTH,
                pool: int = 1) -> nn.ModuleList:
    """One head per exit, for features of shape ``(C, H, W)``; the grid is at most the feature map's."""
    return nn.ModuleList(ExitHead(int(shape[0]), num_classes, width=width, pool=min(pool, int(shape[1]), int(shape[2])))
                         for shape in feature_shapes)
