"""Which sub-networks the predictor measures: the search's argmax, its one-choice neighbours and
uniform random networks of the space, all from one seed.

Networks are label -> entry-index dicts over the supernet's alphas
(:func:`uboost.strategy.architecture.choice_groups`): a plain choice takes any of its values; a
cell node keeps exactly ``n_chosen`` of its incoming edges, each with a real op (not "none"),
and its other edges take "none" -- the networks NNI can export.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _has_none(edge) -> bool:
    return edge.values[-1] is None


def random_network(choices: Sequence, nodes: Sequence, rng: np.random.Generator) -> dict[str, int]:
    """One network drawn uniformly per choice (a node's inputs: uniformly among the subsets)."""
    network = {c.label: int(rng.integers(len(c.values))) for c in choices if c.kind != "edge"}
    for node in nodes:
        kept = set(rng.choice(len(node.edges), size=min(node.n_chosen, len(node.edges)), replace=False).tolist())
        for j, edge in enumerate(node.edges):
            ops = len(edge.values) - (1 if _has_none(edge) else 0)
            network[edge.label] = int(rng.integers(ops)) if j in kept else len(edge.values) - 1
    return network


def neighbours(choices: Sequence, nodes: Sequence, center: dict[str, int]) -> list[dict[str, int]]:
    """Every network one choice away from ``center``: another value of a plain choice, another op
    on a kept cell edge, or one kept input of a node swapped for an unused one (same op)."""
    out = []
    for c in choices:
        if c.kind == "edge":
            continue
        for k in range(len(c.values)):
            if k != center[c.label]:
                out.append({**center, c.label: k})
    for node in nodes:
        kept = [e for e in node.edges if not (_has_none(e) and center[e.label] == len(e.values) - 1)]
        unused = [e for e in node.edges if e not in kept]
        for edge in kept:
            ops = len(edge.values) - (1 if _has_none(edge) else 0)
            for k in range(ops):
                if k != center[edge.label]:
                    out.append({**center, edge.label: k})
            for other in unused:
                op = min(center[edge.label], len(other.values) - 2)
                out.append({**center, edge.label: len(edge.values) - 1, other.label: op})
    return out


def space_size(choices: Sequence, nodes: Sequence) -> int:
    """How many distinct networks the space holds (to stop sampling a small space early)."""
    from math import comb

    size = 1
    for c in choices:
        if c.kind != "edge":
            size *= len(c.values)
    for node in nodes:
        k = min(node.n_chosen, len(node.edges))
        ops = len(node.edges[0].values) - (1 if _has_none(node.edges[0]) else 0) if node.edges else 1
        size *= comb(len(node.edges), k) * ops**k
    return size


def sample_networks(choices: Sequence, nodes: Sequence, center: dict[str, int], count: int, seed: int
                    ) -> list[dict[str, int]]:
    """``count`` distinct networks (fewer if the space is smaller): ``center`` (the argmax) first,
    then up to half of them its one-choice neighbours (a seeded subset when there are more),
    then uniform random networks. The same arguments give the same list."""
    rng = np.random.default_rng(seed)
    count = min(int(count), space_size(choices, nodes))
    chosen: dict[tuple, dict[str, int]] = {}

    def add(network: dict[str, int]) -> None:
        key = tuple(sorted(network.items()))
        if key not in chosen and len(chosen) < count:
            chosen[key] = network

    add(dict(center))
    near = neighbours(choices, nodes, center)
    room = max(0, count // 2 - 1)
    if len(near) > room:
        near = [near[i] for i in sorted(rng.choice(len(near), size=room, replace=False).tolist())]
    for network in near:
        add(network)
    attempts = 0
    while len(chosen) < count and attempts < 100 * count:
        add(random_network(choices, nodes, rng))
        attempts += 1
    return list(chosen.values())
