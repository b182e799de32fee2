"""The distribution over *exportable* cells: every node keeps exactly ``n_chosen`` inputs.

NNI's DARTS cells train one alpha per edge (the ops plus a "none" entry) and export, per node,
the ``n_chosen`` incoming edges with the largest non-none alpha entry, each with that op (never
"none"). The plain per-edge softmax prices something else: every edge of the supernet
with weight ``1 - p(none)``. A darts-cifar node with 4 inputs then counts ~3.4 edges where the
exported network has 2 (the expectation sits far *over* the exported network), and once the
hardware term has pushed "none" up on every edge it counts almost none (far *under* it). Neither
converges on the exported network, however decided the alphas are.

:func:`edge_probabilities` replaces each edge's entries in the flat probability vector by those
of an exportable cell:

* edge ``e`` is kept with probability ``P(e)``, the inclusion probability of drawing
  ``n_chosen`` of the node's edges without replacement with weights
  ``w_e = exp(max_{o != none} alpha_e(o) / tau)`` (Plackett-Luce: each draw picks a remaining
  edge with probability proportional to its weight); the ``P(e)`` of a node sum to ``n_chosen``,
  and as ``tau`` falls they become NNI's top-k (which ranks edges by that alpha entry);
* a kept edge runs op ``o`` with probability ``p_e(o) / sum_{o' != none} p_e(o')``;
* so entry ``o`` becomes ``P(e) * p_e(o) / (1 - p_e(none))`` and "none" becomes ``1 - P(e)``.

Everything is computed in log space (``softmax(alpha / tau)`` at a low ``tau`` underflows).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class EdgeSlot:
    alpha: torch.Tensor  # the edge's alpha (ops, then "none" when ``has_none``)
    offset: int | None  # where its entries start in the flat vector (None: no cost row reads it)
    has_none: bool


@dataclass(frozen=True)
class NodeInputs:
    n_chosen: int
    edges: tuple[EdgeSlot, ...]


@functools.lru_cache(maxsize=None)
def _ordered_draws(n: int, k: int, device: torch.device) -> torch.Tensor:
    """Every ordered draw of ``k`` of ``n`` items, ``[n! / (n - k)!, k]`` (built once per shape and
    device: it is read at every training step, and a copy to a GPU every step would wait for it)."""
    return torch.tensor(list(itertools.permutations(range(n), k))).to(device)


def inclusion_probabilities(log_w: torch.Tensor, k: int) -> torch.Tensor:
    """``P(e in sample)`` for drawing ``k`` of ``len(log_w)`` items without replacement with
    weights ``exp(log_w)`` (Plackett-Luce), exactly, by enumerating the ordered draws."""
    n = log_w.shape[0]
    if k >= n:
        return torch.ones_like(log_w)
    draws = _ordered_draws(n, k, log_w.device)  # [S, k]
    taken = torch.zeros(draws.shape[0], n, dtype=torch.bool, device=log_w.device)
    log_p = torch.zeros(draws.shape[0], dtype=log_w.dtype, device=log_w.device)
    inclusion = torch.zeros_like(log_w)
    for t in range(k):
        remaining = log_w.expand(draws.shape[0], n).masked_fill(taken, float("-inf"))
        pick = draws[:, t]
        log_p = log_p + remaining.gather(1, pick[:, None])[:, 0] - torch.logsumexp(remaining, dim=1)
        taken = taken.scatter(1, pick[:, None], True)
    weight = log_p.exp()
    for t in range(k):
        inclusion = inclusion.index_add(0, draws[:, t], weight)
    return inclusion


def edge_probabilities(nodes: Sequence[NodeInputs], tau: float, uniform: bool, dtype, device
                       ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The flat indices of every costed edge entry and their exportable-cell probabilities."""
    indices, values = [], []
    for node in nodes:
        log_ops, log_w = [], []
        for edge in node.edges:
            alpha = edge.alpha.reshape(-1).to(device=device, dtype=dtype)
            logits = torch.zeros_like(alpha) if uniform else alpha / tau
            ops = logits[:-1] if edge.has_none else logits  # "none" is never exported
            log_w.append(ops.max())
            log_ops.append(torch.log_softmax(ops, dim=-1))
        kept = inclusion_probabilities(torch.stack(log_w), node.n_chosen)
        for edge, ops, p_kept in zip(node.edges, log_ops, kept):
            if edge.offset is None:
                continue
            entries = p_kept * ops.exp()
            if edge.has_none:
                entries = torch.cat([entries, (1.0 - p_kept).reshape(1)])
            indices.append(torch.arange(edge.offset, edge.offset + entries.shape[0], device=device))
            values.append(entries)
    if not indices:
        return None
    return torch.cat(indices), torch.cat(values)
