"""A dynamic network that really exits: later blocks do not run for inputs that left.

:class:`DynamicNetwork` holds a :class:`~uboost.dynamic.segments.SegmentedBackbone`, one head
per exit position and a policy (a threshold per exit; an exit that is not kept has no threshold
and its head never runs). A sample leaves at the first kept exit whose max-softmax confidence is
>= its threshold (MSDNet's rule); the others go on, so in a batch every sample keeps its own exit
and the batch shrinks as it goes. :meth:`DynamicNetwork.all_exits` runs everything and returns
every head's logits plus the final ones: what the heads are trained and calibrated on, and the
graph :func:`export_onnx` writes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from uboost.dynamic.segments import SegmentedBackbone
from uboost.exceptions import ConfigError


def check_thresholds(thresholds: Sequence[float | None], exits: int) -> list[float | None]:
    """Thresholds in [0, 1] (``None``: the exit is not kept), one per exit."""
    values = list(thresholds)
    if len(values) != exits:
        raise ConfigError(f"expected {exits} thresholds (one per exit, null to drop an exit), got {len(values)}")
    for t in values:
        if t is None:
            continue
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or not 0.0 <= t <= 1.0:
            raise ConfigError(f"exit thresholds are max-softmax confidences in [0, 1], got {t!r}")
    return [None if t is None else float(t) for t in values]


class DynamicNetwork(nn.Module):
    """Backbone + exit heads + thresholds; :meth:`forward` returns logits, :meth:`forward_with_exits` also the exit taken."""

    def __init__(self, backbone: SegmentedBackbone, heads: nn.ModuleList, thresholds: Sequence[float | None] | None = None) -> None:
        super().__init__()
        if len(heads) != len(backbone.positions):
            raise ConfigError(f"{len(backbone.positions)} exit positions but {len(heads)} heads")
        self.backbone = backbone
        self.heads = heads
        self.thresholds = check_thresholds(thresholds if thresholds is not None else [None] * len(heads), len(heads))

    @property
    def exits(self) -> int:
        return len(self.heads)

    def set_thresholds(self, thresholds: Sequence[float | None]) -> None:
        self.thresholds = check_thresholds(thresholds, self.exits)

    def forward_with_exits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits, exit)``: exit ``k`` < number of exits is a head, ``exits`` the final classifier."""
        state: dict = {"out": None, "alive": torch.arange(x.shape[0], device=x.device)}
        taken = torch.full((x.shape[0],), self.exits, dtype=torch.long, device=x.device)

        def place(rows: torch.Tensor, logits: torch.Tensor) -> None:
            if state["out"] is None:
                state["out"] = logits.new_empty((x.shape[0], *logits.shape[1:]))
            state["out"][rows] = logits

        def on_exit(k: int, feature: torch.Tensor):
            t = self.thresholds[k]
            if t is None:
                return None
            logits = self.heads[k](feature)
            leave = logits.softmax(-1).amax(-1) >= t
            rows = state["alive"]
            place(rows[leave], logits[leave])
            taken[rows[leave]] = k
            state["alive"] = rows[~leave]
            return leave

        final, rows = self.backbone.run(x, on_exit)
        if final is not None:
            place(rows, final)
        return state["out"], taken

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_exits(x)[0]

    def all_exits(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every head's logits and the final logits (nothing exits)."""
        outs: list[torch.Tensor] = []

        def on_exit(k: int, feature: torch.Tensor):
            outs.append(self.heads[k](feature))
            return None

        final, _ = self.backbone.run(x, on_exit)
        return [*outs, final]


class AllExits(nn.Module):
    """``x -> (head_0 logits, ..., final logits)``: the ONNX form of a dynamic network."""

    def __init__(self, network: DynamicNetwork) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor):
        return tuple(self.network.all_exits(x))


def export_onnx(network: DynamicNetwork, path, input_shape: Sequence[int]) -> None:
    """Write ``network`` as ONNX with every exit's logits as outputs (``exit0``.., ``final``).

    One graph with all heads as outputs; the exit policy (first exit whose max softmax reaches
    its threshold) is applied outside the graph, by :func:`uboost.dynamic.policy.decide` on the
    outputs. onnxruntime therefore runs the whole network and every head (the worst-case cost);
    the graph reproduces the decisions and accuracy, not the savings
    (:func:`uboost.dynamic.onnx_segments.export_onnx_segments` does, for one policy).
    """
    import warnings

    names = [f"exit{k}" for k in range(network.exits)] + ["final"]
    model = AllExits(network).eval()
    from uboost.onnx_export import onnx_export

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onnx_export(model, (torch.zeros(1, *input_shape),), str(path), input_names=["input"], output_names=names,
                          dynamic_axes={n: {0: "batch"} for n in ["input", *names]}, dynamo=False)
