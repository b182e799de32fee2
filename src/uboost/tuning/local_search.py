"""Pareto local search after a study: one choice of a good network at a time (``uboost tune --local-search N``).

A study's trials each search a network for a sampled latency weight and accelerator. What they propose is
what the search's loss makes attractive, and its choices move together: on lenet's 16 kB co-search the
utilization term ties conv1's kernel to its width, so no trial of ten 20-trial studies proposed the network
one kernel away from the baseline's that is 2.32x better in EDP at equal accuracy (benchmarks/RESULTS.md,
"Co-search, lenet 16 kB"). Local search varies **one** architecture choice of a network the study already
has, prices the result without training it, and retrains only the neighbors that could improve the front:

1. **records**: one per distinct network of the study's finished, feasible trials -- its mean accuracy and
   its least hardware cost (EDP, or the latency or energy objective the study optimizes alone:
   :func:`~uboost.tuning.inner_accelerator.hardware_objective`);
2. **parents**: the records on the first :data:`PARENT_FRONTS` non-dominated fronts of (accuracy up, cost down);
3. **neighbors**: every network that differs from a parent in one choice of the space (``space.simplify()``)
   and is not in the study yet, priced on its best accelerator of the space (with the inner accelerator choice;
   ``--local-search-screen parent``: on its parent's accelerator, an upper bound, one evaluation each) or, without
   the inner choice, on its parent's accelerator;
4. **promising**: a neighbor whose cost is below the cheapest record at least as accurate as its parent
   -- if it kept its parent's accuracy it would join the front. Ranked by that ratio (``gain``) times the share of
   its parent's MACs it keeps (at most 1): U-Boost's own bet, that a network made cheaper by fitting the array
   better, not by computing less, keeps its accuracy. (On lenet 16 kB that moved the 2.32x network from 16th to
   11th of 21 promising neighbors in seed 0's study and from 7th to 3rd of 13 in seed 2's.) A neighbor the screen
   cannot tell from one already retrained -- the same screened cost and MACs, e.g. a DARTS cell op swapped for
   ``max_pool_3x3`` or for ``skip_connect``, both free on the array -- ranks after every one it can (:func:`twin`):
   on darts-cifar 16 kB seed 0, 10 of 20 local trials went to such twins before this rule;
5. the best-ranked neighbor is retrained as the study's trials are (``--retrain-epochs``, the parent's seed)
   and **added to the study** as a finished trial (``study.add_trial``): with the parent's parameters, the
   network, accelerator and numbers in its user attributes like any trial's, and ``local_search``
   saying which choice changed. Then the records are read again (the new network can be a parent), up to
   ``n`` retrains or until no neighbor is promising.

So ``tune --export``, the report and the Pareto plot treat these trials like the others (``--warm-start`` leaves
them out: they were not searched, their parents were). A neighbor that cannot be priced or retrained is left out
and counts as one of the ``n`` tries.
Each neighbor's retrain lives in ``OUT/local-search/<study>/<hash of the network>``, marked done by ``local-search.json``
written last: an interrupted local search resumes (a finished retrain is added, not redone; an unfinished one
is started again). In a study with ``--bits`` (or ``--weight-bits`` / ``--act-bits``) each layer's width is one more
choice (:mod:`~uboost.tuning.local_bits`). Not varied: hyperparameters (none is searched again: the parent's settings
are kept).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from uboost.exceptions import ConfigError
from uboost.tuning.report import feasible


ATTR = "local_search"
"""User attribute of a local-search trial: its parent trial and the choice it changed."""
FOLDER = "local-search"
DONE = "local-search.json"
PARENT_FRONTS = 2
"""Parents come from this many non-dominated fronts: on lenet 16 kB seed 0 the network one kernel away from the
2.32x pair is on the second (its twin of equal accuracy but less EDP is on the first)."""


@dataclass(frozen=True)
class Record:
    """One distinct network of the study: its mean accuracy, least cost and the trial that had it."""

    arch: dict
    accuracy: float
    cost: float
    trial: Any  # the optuna FrozenTrial of least cost
    macs: float | None = None


@dataclass(frozen=True)
class Neighbor:
    """A network one choice away from ``parent``, priced: ``gain`` = the cost it would have to beat over its own,
    ``kept`` = its MACs over its parent's (at most 1), ``score`` = their product (the rank)."""

    arch: dict
    parent: Record
    label: str
    old: Any
    new: Any
    cost: float
    gain: float
    kept: float = 1.0
    macs: float | None = None

    @property
    def score(self) -> float:
        return self.gain * self.kept


def searched(study: Any) -> list:
    """The finished trials of ``study`` that ran a search: not the ones skipped over an area budget, nor a local
    search's (their network was derived from another trial's)."""
    from optuna.trial import TrialState

    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if not t.user_attrs.get("skipped") and ATTR not in t.user_attrs]


def key(arch: dict) -> str:
    """A network's identity: its choices as sorted JSON."""
    return json.dumps(arch, sort_keys=True, default=str)


def cost_of(attrs: dict, objective: str) -> float | None:
    """A trial's (or priced neighbor's) hardware cost for ``objective`` (edp, latency, energy); EDP falls back
    to latency where no energy was priced."""
    latency, energy = attrs.get("latency_ms"), attrs.get("energy_uj")
    if objective == "energy":
        return energy
    if objective == "edp" and energy is not None and latency is not None:
        return energy * latency
    return latency


def twin(cost: float, macs: float | None) -> tuple[str, str]:
    """What the screen sees of a priced neighbor: its cost and MACs, to 9 significant digits. Two neighbors with the
    same twin differ in a way the screen is blind to (which free op, which input of equal shape)."""
    return f"{cost:.9g}", "-" if macs is None else f"{macs:.9g}"


def records(trials: Sequence, objective: str, network: Callable[[dict], dict] | None = None) -> list[Record]:
    """One :class:`Record` per distinct network of ``trials`` (finished, feasible, with an architecture).
    ``network(user_attrs)`` is what tells networks apart (default: the ``arch``; a bits study adds the widths:
    :meth:`~uboost.tuning.local_bits.BitsMoves.genome`)."""
    network = network or (lambda attrs: attrs["arch"])
    grouped: dict[str, list] = {}
    for trial in trials:
        attrs = trial.user_attrs
        if "arch" not in attrs or attrs.get("accuracy") is None or cost_of(attrs, objective) is None or not feasible(trial):
            continue
        grouped.setdefault(key(network(attrs)), []).append(trial)
    out = []
    for group in grouped.values():
        cheapest = min(group, key=lambda t: (cost_of(t.user_attrs, objective), t.number))
        accuracy = sum(t.user_attrs["accuracy"] for t in group) / len(group)
        out.append(Record(arch=dict(network(cheapest.user_attrs)), accuracy=accuracy,
                          cost=cost_of(cheapest.user_attrs, objective), trial=cheapest, macs=cheapest.user_attrs.get("macs")))
    return out


def fronts(recs: Sequence[Record], depth: int = PARENT_FRONTS) -> list[Record]:
    """The records on the first ``depth`` non-dominated fronts of (accuracy up, cost down)."""
    left, out = list(recs), []
    for _ in range(depth):
        front = [r for r in left if not any((q.accuracy >= r.accuracy and q.cost < r.cost) or
                                            (q.accuracy > r.accuracy and q.cost <= r.cost) for q in left)]
        out += front
        left = [r for r in left if all(r is not f for f in front)]
    return out


def neighbors(arch: dict, choices: dict[str, Sequence]) -> list[tuple[dict, str, Any, Any]]:
    """Every ``(network, label, old value, new value)`` one choice away from ``arch``."""
    out = []
    for label in sorted(choices):
        if label not in arch:
            raise ConfigError(f"the network has no choice {label!r}: it is not from this space")
        for value in choices[label]:
            if value != arch[label]:
                out.append(({**arch, label: value}, label, arch[label], value))
    return out


def promising(recs: Sequence[Record], choices: dict[str, Sequence],
              price: Callable[[dict, Record], tuple[float, float | None] | None], depth: int = PARENT_FRONTS,
              prepare: Callable[[list[tuple[dict, Record]]], None] | None = None,
              exclude: frozenset[str] | set[str] = frozenset(),
              tried: frozenset[tuple[str, str]] | set[tuple[str, str]] = frozenset(),
              moves: Callable[[dict], list[tuple[dict, str, Any, Any]]] | None = None) -> list[Neighbor]:
    """The neighbors of the parents (:func:`fronts`) that are not in ``recs`` and cost less than the cheapest record
    at least as accurate as their parent, best ``score`` first (ties: cheaper, then by network). ``price(arch,
    parent)`` is the neighbor's ``(cost, MACs)`` (``None``: it cannot run there; MACs ``None``: not known, the
    score is the gain); ``prepare`` first sees every ``(neighbor, parent)`` to be priced (to price them in one batch);
    networks whose :func:`key` is in ``exclude`` are left out (e.g. a retrain that failed); a neighbor whose
    :func:`twin` is in ``tried`` (neighbors already retrained) ranks after all the others. ``moves(arch)`` lists a
    parent's neighbors as :func:`neighbors` does (default: ``neighbors(arch, choices)``)."""
    moves = moves or (lambda arch: neighbors(arch, choices))
    seen = {key(r.arch) for r in recs} | set(exclude)
    parents = fronts(recs, depth)
    bars = [min(r.cost for r in recs if r.accuracy >= parent.accuracy) for parent in parents]
    pairs = [(parent, bar, arch, label, old, new) for parent, bar in zip(parents, bars)
             for arch, label, old, new in moves(parent.arch) if key(arch) not in seen]
    if prepare is not None:
        prepare([(arch, parent) for parent, _, arch, *_ in pairs])
    best: dict[str, Neighbor] = {}
    for parent, bar, arch, label, old, new in pairs:
        priced = price(arch, parent)
        if priced is None:
            continue
        cost, macs = priced
        if cost is None or not math.isfinite(cost) or cost <= 0 or cost >= bar:
            continue
        kept = min(1.0, macs / parent.macs) if macs and parent.macs else 1.0
        found = Neighbor(arch=arch, parent=parent, label=label, old=old, new=new, cost=cost, gain=bar / cost, kept=kept,
                         macs=macs)
        name = key(arch)
        if name not in best or found.score > best[name].score:
            best[name] = found
    return sorted(best.values(), key=lambda n: (twin(n.cost, n.macs) in tried, -n.score, n.cost, key(n.arch)))


SCREENS = ("best", "parent")
"""How neighbors are screened before one is retrained: ``best`` prices each on its best accelerator of the space
(exact; with the inner choice, every new layer shape on every accelerator structure), ``parent`` on its parent's
accelerator (one evaluation each: an upper bound of its best, since the parent's accelerator is in the space). The
neighbor that is retrained is always priced as the study's trials are (its best accelerator with the inner choice)."""


def check_local_search(n: Any, *, mode: str, retrain_epochs: int, screen: str = "best") -> int:
    """``n`` (``--local-search``) checked against the study's settings; 0 turns it off."""
    if screen not in SCREENS:
        raise ConfigError(f"unknown local-search screen {screen!r} (--local-search-screen); expected one of: {', '.join(SCREENS)}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ConfigError(f"--local-search must be a non-negative integer (retrains), got {n!r}")
    if not n:
        if screen != SCREENS[0]:  # said, not ignored
            raise ConfigError(f"--local-search-screen {screen} picks how --local-search screens neighbors: give it with --local-search N")
        return 0
    if mode != "pareto":
        raise ConfigError("--local-search improves a Pareto front: it needs --mode pareto")
    if not retrain_epochs:
        raise ConfigError("--local-search needs --retrain-epochs: a neighbor is never searched, its accuracy is a retrain's")
    return n
