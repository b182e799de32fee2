"""The dynamic network as one ONNX graph per segment, so onnxruntime really skips the rest.

Segment ``k`` runs the backbone from after the previous kept exit up to kept exit ``k`` and
returns that exit's logits (output ``exit``) plus every value a later segment still needs
(``out0``, ``out1``..., the next segment's ``in0``, ``in1``...); the last segment returns the final logits (``final``). Between
segments, :func:`run_segments` applies the policy in numpy and passes on only the rows that did
not leave; when none is left the later sessions never run. Only kept exits split the network.

Applies when every value crossing a boundary is a tensor, or a tuple/list of tensors (DARTS
cells), with the batch in dimension 0; a network that carries a Python number across an exit
(``n = x.size(0)`` taken before it) is refused in one line: use :func:`uboost.dynamic.model.export_onnx`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.fx as fx
from torch import nn

from uboost.dynamic.policy import softmax_confidence
from uboost.dynamic.segments import feature_of
from uboost.exceptions import ConfigError


def _flatten(value, where: str) -> tuple[list[torch.Tensor], object]:
    if isinstance(value, torch.Tensor):
        return [value], "t"
    if isinstance(value, (tuple, list)) and all(isinstance(v, torch.Tensor) for v in value):
        return list(value), (type(value), len(value))
    raise ConfigError(f"{where} carries a {type(value).__name__} across an exit; only tensors can cross a segment "
                      "boundary in the per-segment ONNX form (use the all-exits form)")


def _unflatten(flat: list, spec) -> object:
    return flat[0] if spec == "t" else spec[0](flat[: spec[1]])


class _Segment(nn.Module):
    def __init__(self, gm: fx.GraphModule, nodes: list, batch: set, live_in: list, specs: dict, live_out: list, head: nn.Module | None):
        super().__init__()
        self.gm, self.head = gm, head
        self._nodes, self._batch, self._in, self._specs, self._out = nodes, batch, live_in, specs, live_out

    def forward(self, *flat):
        interp = fx.Interpreter(self.gm)
        interp.env, i = {}, 0
        for node in self._in:
            spec = self._specs[node]
            n = 1 if spec == "t" else spec[1]
            interp.env[node] = _unflatten(list(flat[i:i + n]), spec)
            i += n
        interp.args_iter = iter(flat[:1])
        for node in self._nodes:
            if node.op == "output":
                return (interp.run_node(node),)
            interp.env[node] = interp.run_node(node)
        outs = [self.head(feature_of(interp.env[self._nodes[-1]]))]
        for node in self._out:
            outs.extend(_flatten(interp.env[node], str(node))[0])
        return tuple(outs)


def export_onnx_segments(network, directory: str | Path, input_shape: Sequence[int]) -> list[Path]:
    """Write ``segment0.onnx`` ... into ``directory`` for the kept exits of ``network``; returns the paths."""
    import warnings

    backbone = network.backbone
    gm = backbone.graph_module
    nodes = list(gm.graph.nodes)
    exit_index = {k: nodes.index(node) for node, k in backbone._exit_at.items()}
    cuts = [exit_index[k] for k, t in enumerate(network.thresholds) if t is not None]
    heads = [network.heads[k] for k, t in enumerate(network.thresholds) if t is not None]
    batch = backbone._batch_nodes
    constant = [n for n in nodes if n not in batch and n.op != "output"]  # parameters etc.: recomputed in every segment
    # one run at batch 2 gives the value of every node (for the tuple structure of what crosses a cut)
    values: dict = {}
    interp = fx.Interpreter(gm)
    interp.env, interp.args_iter = values, iter([torch.zeros(2, *input_shape)])
    with torch.no_grad():
        for node in nodes[:-1]:
            values[node] = interp.run_node(node)
    bounds = [-1, *cuts, len(nodes) - 1]
    paths, directory = [], Path(directory)
    for s in range(len(bounds) - 1):
        start, stop = bounds[s] + 1, bounds[s + 1]
        inside = [n for n in nodes[start:stop + 1] if n in batch or n.op == "output"]
        before = set(nodes[:start])
        live_in = [n for n in nodes[:start] if n in batch and any(u not in before for u in n.users)]
        live_out = [n for n in nodes[: stop + 1] if n in batch and any(nodes.index(u) > stop for u in n.users)] if s < len(cuts) else []
        specs = {n: _flatten(values[n], str(n))[1] for n in (*live_in, *live_out)}
        run = [n for n in constant if nodes.index(n) <= stop] + inside
        run.sort(key=nodes.index)
        segment = _Segment(gm, run, batch, live_in, specs, live_out, heads[s] if s < len(cuts) else None).eval()
        flat_in = [t for n in live_in for t in _flatten(values[n], str(n))[0]] if s else [torch.zeros(1, *input_shape)]
        flat_in = [t[:1] for t in flat_in]
        n_out = 1 if s == len(cuts) else 1 + sum(len(_flatten(values[n], str(n))[0]) for n in live_out)
        names_in = ["input"] if s == 0 else [f"in{i}" for i in range(len(flat_in))]
        names_out = ["final"] if s == len(cuts) else ["exit", *[f"out{i}" for i in range(n_out - 1)]]
        path = directory / f"segment{s}.onnx"
        from uboost.onnx_export import onnx_export

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            onnx_export(segment, tuple(flat_in), str(path), input_names=names_in, output_names=names_out,
                              dynamic_axes={n: {0: "batch"} for n in (*names_in, *names_out)}, dynamo=False)
        paths.append(path)
    return paths


def run_segments(sessions: Sequence, x: np.ndarray, thresholds: Sequence[float]) -> tuple[np.ndarray, np.ndarray, int]:
    """Predictions and exits (index among the kept exits; ``len(thresholds)``: final) from onnxruntime
    sessions of :func:`export_onnx_segments`, and how many sessions ran."""
    n = len(x)
    preds, taken = np.zeros(n, dtype=np.int64), np.full(n, len(thresholds), dtype=np.int64)
    rows, feed, ran = np.arange(n), {"input": x}, 0
    for k, session in enumerate(sessions):
        outputs = session.run(None, feed)
        ran += 1
        if k == len(thresholds):
            preds[rows] = outputs[0].argmax(-1)
            break
        conf, pred = softmax_confidence(outputs[0])
        leave = conf >= thresholds[k]
        preds[rows[leave]], taken[rows[leave]] = pred[leave], k
        rows = rows[~leave]
        if not len(rows):
            break
        feed = {f"in{i}": v[~leave] for i, v in enumerate(outputs[1:])}
    return preds, taken, ran
