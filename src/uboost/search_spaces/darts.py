"""``darts-cifar``: the DARTS cell space with plain convolutions among the candidates.

Built from NNI's hub pieces (``Cell``, the NDS op table and stage builder), so NNI's
differentiable machinery trains it unchanged. U-Boost adds ``conv_3x3`` and ``conv_5x5``: a
depthwise convolution occupies one column of a systolic array, so depthwise-only op sets
cannot use the array well and the search needs dense options to trade with.

Channel search (DmaskingNAS / FBNetV2 style, NNI's weighted channel masks) is reachable in two
ways:

* ``channels=(start, stop, step)`` searches each stage's width jointly with the cells: stage
  ``s`` chooses ``c * 2**s`` for ``c`` in ``range(start, stop + 1, step)``;
* the U-Boost two-stage flow: search the cells first, then pass that result as
  ``cell_arch=`` together with ``channels=`` -- the cells are then fixed to the derived genotype
  and only the widths are searched.

A width choice keeps every tensor at the widest width with the channels past the chosen one
masked, and the next layer reads a *prefix* of its input. Where parts are joined side by side
(a cell's node outputs, a ``FactorizedReduce``'s two halves), a prefix of the widest layout is
not the narrow network's layout: the next layer would read node 2 and part of node 3 and never
the later nodes, and the supernet would train, price and measure (``uboost predict``) another
network than the one exported. With channel search the parts are therefore joined
channel-major (channel ``i`` of every part, then channel ``i + 1``...), in the supernet and in
the frozen network alike: width ``c``'s channels are then the first ``parts * c`` at any width,
so the supernet with every choice pinned computes the frozen network with the supernet's
weights sliced into it, single-path or mixture, searched or derived cells (tested); a soft
width mixes nested masks (FBNetV2). Without channel search the layout is NNI's (node-major).
"""

from __future__ import annotations

from typing import Any, Sequence

import nni
import torch
from nni.nas.hub.pytorch.nasnet import OPS, CellBuilder, CellPostprocessor, CellPreprocessor, FactorizedReduce, NDSStage
from nni.nas.nn.pytorch import ModelSpace, MutableBatchNorm2d, MutableConv2d, MutableLinear
from nni.nas.space import model_context
from torch import nn

from uboost.exceptions import ArchitectureError, ConfigError
from uboost.search_spaces.registry import register

# NNI's table has conv_1x1 and conv_3x3; U-Boost's op set also has a plain 5x5 (idempotent).
OPS.setdefault(
    "conv_5x5",
    lambda C, stride, affine: nn.Sequential(
        nn.ReLU(inplace=False),
        MutableConv2d(C, C, 5, stride=stride, padding=2, bias=False),
        MutableBatchNorm2d(C, affine=affine),
    ),
)

OP_SETS: dict[str, tuple[str, ...]] = {
    "uboost": ("max_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "conv_3x3", "conv_5x5"),
    "darts": ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"),
    "dense": ("skip_connect", "conv_1x1", "conv_3x3", "conv_5x5"),
}


def channel_major(x: torch.Tensor, parts: int) -> torch.Tensor:
    """``parts`` equal blocks side by side on dim 1 -> interleaved: channel ``i`` of every block, then ``i + 1``."""
    return x.unflatten(1, (parts, -1)).transpose(1, 2).flatten(1, 2)


class ChannelMajorConcat(CellPostprocessor):
    """A cell's output with its ``nodes`` node outputs joined channel-major (see the module docstring)."""

    def __init__(self, nodes: int) -> None:
        super().__init__()
        self.nodes = nodes
        # a marker in the state dict: weights trained with node-major cells (channel searches before 2026-12-06) have
        # the same tensors and would load silently into another function; without it they are refused in one line
        self.register_buffer("channel_major", torch.ones((), dtype=torch.bool))

    def forward(self, this_cell, previous_cells):
        return super().forward(channel_major(this_cell, self.nodes), previous_cells)


class ChannelMajorFactorizedReduce(FactorizedReduce):
    """NNI's ``FactorizedReduce`` (its modules, taken over) with its two halves joined channel-major."""

    def __init__(self, reduce: FactorizedReduce) -> None:
        nn.Module.__init__(self)
        for name, module in reduce.named_children():
            self.add_module(name, module)

    def forward(self, x):
        x = self.relu(x)
        halves = [self.conv_1(x), self.conv_2(self.pad(x)[:, :, 1:, 1:])]
        return self.bn(channel_major(torch.cat(halves, 1), 2))


class ChannelSearchBuilder(CellBuilder):
    """NNI's ``CellBuilder`` whose cells join their parts channel-major (used with channel search)."""

    def op_factory(self, node_index, op_index, input_index, *, op, channels, is_reduction_cell):
        operation = super().op_factory(node_index, op_index, input_index, op=op, channels=channels,
                                       is_reduction_cell=is_reduction_cell)
        return ChannelMajorFactorizedReduce(operation) if isinstance(operation, FactorizedReduce) else operation

    def __call__(self, repeat_idx: int):
        return channel_major_cell(super().__call__(repeat_idx), self.num_nodes)


def channel_major_cell(cell: nn.Module, nodes: int) -> nn.Module:
    """``cell`` (NNI's or a :class:`DerivedCell`) with a channel-major output and first input."""
    cell.postprocessor = ChannelMajorConcat(nodes)
    if isinstance(cell.preprocessor.pre0, FactorizedReduce):
        cell.preprocessor.pre0 = ChannelMajorFactorizedReduce(cell.preprocessor.pre0)
    return cell


class DerivedCell(nn.Module):
    """A DARTS cell fixed to a searched genotype (``{label}/op_i_k`` and ``{label}/input_i_k``)
    whose channel count may still be a choice: stage two of the U-Boost flow."""

    def __init__(self, arch: dict, label: str, builder: CellBuilder, nodes: int, reduction: bool, preprocessor: nn.Module):
        super().__init__()
        self.preprocessor = preprocessor
        self.postprocessor = CellPostprocessor()
        self.nodes = nn.ModuleList()
        self.inputs: list[list[int]] = []
        for i in range(2, nodes + 2):
            ops, inputs = nn.ModuleList(), []
            for k in range(2):
                try:
                    op_name, (j,) = arch[f"{label}/op_{i}_{k}"], arch[f"{label}/input_{i}_{k}"]
                except (KeyError, TypeError, ValueError):
                    raise ArchitectureError(f"cell_arch lacks a valid {label}/op_{i}_{k} / {label}/input_{i}_{k}") from None
                if not isinstance(op_name, str) or op_name not in OPS:
                    raise ArchitectureError(f"cell_arch uses unknown op {op_name!r}")
                _check_input(j, f"{label}/input_{i}_{k}", i)
                ops.append(builder.op_factory(i, k, j, op=op_name, channels=builder.C, is_reduction_cell=reduction))
                inputs.append(j)
            self.nodes.append(ops)
            self.inputs.append(inputs)

    def forward(self, inputs):
        states = self.preprocessor(inputs)
        for ops, inputs_ in zip(self.nodes, self.inputs):
            states.append(sum(op(states[j]) for op, j in zip(ops, inputs_)))
        return self.postprocessor(torch.cat(states[2:], 1), inputs)


def _check_input(j, key: str, node: int) -> None:
    """Node ``node`` reads one of the states made before it: the cell's two inputs (0, 1) and nodes
    2 .. ``node - 1``. A larger index failed in ``forward`` after the run directory was written, and
    a negative one was silently taken as counted from the end."""
    if isinstance(j, bool) or not isinstance(j, int) or not 0 <= j < node:
        raise ArchitectureError(f"cell_arch {key} must be [J] with a whole number 0 <= J < {node} (an earlier state), got [{j!r}]")


class DartsCifar(ModelSpace):
    """DARTS-style CIFAR network: a stem, three stages of cells (reductions between them),
    global pooling and a classifier. See the module docstring for the options."""

    default_init = True  # torch's default initialization: a retrain redraws the weights from its seed alone

    def __init__(
        self,
        *,
        width: int = 16,
        cells: int = 8,
        nodes: int = 4,
        ops: str | Sequence[str] = "uboost",
        channels: tuple[int, int, int] | None = None,
        cell_arch: dict | None = None,
        num_classes: int = 10,
        input_shape: tuple[int, int, int] = (3, 32, 32),
    ):
        super().__init__()
        op_list = list(OP_SETS[ops]) if isinstance(ops, str) and ops in OP_SETS else ops
        if isinstance(ops, str) and ops not in OP_SETS:
            raise ConfigError(f"unknown op set {ops!r}; expected one of: {', '.join(OP_SETS)} or a list of op names")
        unknown = [o for o in op_list if o not in OPS or o == "none"]
        if unknown:
            raise ConfigError(f"unknown ops {unknown}; available: {', '.join(sorted(k for k in OPS if k != 'none'))}")
        if cells < 3:
            raise ConfigError(f"cells must be at least 3 (one per stage), got {cells}")
        if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 1:  # -1 was a tensor traceback, 0 a space
            raise ConfigError(f"nodes must be a whole number >= 1 (intermediate nodes per cell), got {nodes!r}")  # of nothing
        if width < 2 or width % 2:
            raise ConfigError(f"width must be an even number >= 2, got {width}")
        self.options = dict(width=width, cells=cells, nodes=nodes, ops=list(op_list), channels=channels,
                            cell_arch=cell_arch, num_classes=num_classes, input_shape=tuple(input_shape))
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes

        stage_widths = [self._stage_width(width, channels, s) for s in range(3)]
        # decided by the options, not by the widths: the frozen network (ints) joins its parts as the supernet does
        searched = channels is not None and len(range(channels[0], channels[1] + 1, channels[2])) > 1
        make_builder = ChannelSearchBuilder if searched else CellBuilder
        c = stage_widths[0]
        self.stem = nn.Sequential(
            MutableConv2d(input_shape[0], 3 * c, 3, padding=1, bias=False), MutableBatchNorm2d(3 * c)
        )
        c_pprev = c_prev = 3 * c
        last_reduce = False
        per_stage = [(i + 1) * cells // 3 - i * cells // 3 for i in range(3)]
        self.stages = nn.ModuleList()
        for s in range(3):
            c = stage_widths[s]
            builder = make_builder(op_list, c_pprev, c_prev, c, nodes, "all", s > 0, last_reduce, 0.0)
            if cell_arch is None:
                stage = NDSStage(builder, per_stage[s])
            else:
                stage = nn.Sequential(*[self._derived(builder, cell_arch, s > 0 and i == 0, nodes) for i in range(per_stage[s])])
            self.stages.append(stage)
            c_pprev = c_prev if per_stage[s] == 1 else nodes * c
            c_prev = nodes * c
            last_reduce = builder.last_cell_reduce
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = MutableLinear(c_prev, num_classes)

    @staticmethod
    def _stage_width(width: int, channels, stage: int):
        if channels is None:
            return width * 2**stage
        start, stop, step = channels
        values = [v * 2**stage for v in range(start, stop + 1, step)]
        if len(values) == 1:
            return values[0]
        return nni.choice(f"width_{stage}", values)

    @staticmethod
    def _derived(builder: CellBuilder, arch: dict, reduction: bool, nodes: int) -> DerivedCell:
        pre = CellPreprocessor(builder.C_prev_in, builder.C_in, builder.C, builder.last_cell_reduce)
        cell = DerivedCell(arch, "reduce" if reduction else "normal", builder, nodes, reduction, pre)
        if isinstance(builder, ChannelSearchBuilder):
            channel_major_cell(cell, nodes)
        builder.C_prev_in, builder.C_in, builder.last_cell_reduce = builder.C_in, builder.C * nodes, reduction
        builder._expect_idx += 1
        return cell

    def forward(self, x):
        s0 = s1 = self.stem(x)
        for stage in self.stages:
            for cell in stage if isinstance(stage, nn.Sequential) else [stage]:
                s0, s1 = cell([s0, s1])
        out = self.pool(s1)
        return self.classifier(out.view(out.size(0), -1))

    def freeze(self, sample: dict) -> nn.Module:
        """Rebuild the whole network under ``sample`` (stages depend on each other, as in NNI's NDS)."""
        with model_context(sample):
            return DartsCifar(**self.options)


def parse_channels(text: str | Sequence[int] | None) -> tuple[int, int, int] | None:
    """``"16:256:8"`` -> ``(16, 256, 8)``; validated."""
    if text is None:
        return None
    if isinstance(text, str):
        parts = text.replace(",", ":").split(":")
        try:
            values = tuple(int(p) for p in parts)
        except ValueError:
            raise ConfigError(f"channels must look like START:STOP:STEP (e.g. 16:64:8), got {text!r}") from None
    else:  # a TOML list: int() raised a traceback on "a" and truncated 8.5, which the CLI's "8.5:16:8" refuses
        if not isinstance(text, (list, tuple)) or any(isinstance(v, bool) or not isinstance(v, int) for v in text):
            raise ConfigError(f"channels must be three whole numbers [START, STOP, STEP] (e.g. [16, 64, 8]), got {text!r}")
        values = tuple(text)
    if len(values) != 3:
        raise ConfigError(f"channels must have START:STOP:STEP, got {text!r}")
    start, stop, step = values
    if start < 2 or stop < start or step < 1 or start % 2 or step % 2:
        raise ConfigError(f"channels need even START >= 2, STOP >= START and an even STEP >= 2, got {text!r}")
    return values


@register("darts-cifar", description="DARTS cells (+ plain 3x3/5x5 convs), optional per-stage channel search")
def darts_cifar(**options: Any) -> DartsCifar:
    if "channels" in options:
        options["channels"] = parse_channels(options["channels"])
    if "input_shape" in options:
        options["input_shape"] = tuple(options["input_shape"])
    return DartsCifar(**options)


darts_cifar.input_channels = 3
