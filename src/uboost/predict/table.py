"""The block-additive accuracy table (MathNAS's table, learned) and its least-squares fit.

A network of the space is one value per choice label (an ``arch`` in label -> entry-index form,
the entries of the supernet's alphas: for a cell, one label per *edge*, "none" included). The
table predicts

    accuracy(network) = base + sum over labels of delta[label][value of the network]

where ``base`` is the accuracy of a *reference* network (the search's argmax) and
``delta[label][v]`` the change of swapping the reference's value of ``label`` for ``v`` (0 for
the reference's own value): MathNAS's "base minus the blocks' differences", with the
differences fitted by ridge regression on sampled sub-networks instead of measured one block at
a time. The ridge strength is chosen by exact leave-one-out error (closed form, one SVD), which
is also the uncertainty reported with each prediction.

Pure numpy: no torch, no NNI.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from uboost.exceptions import ConfigError, RunDirError

# ridge strengths tried (in units of "samples": the features are 0/1); 0 is plain least squares
RIDGE_GRID = (0.0, 1e-4, 1e-3, 1e-2, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)


@dataclass(frozen=True, kw_only=True)
class AdditiveTable:
    """``base`` + one ``delta`` per (label, value); ``values[label]`` lists the label's values
    (JSON keys, ``str(value)``) in entry order, ``reference[label]`` the base network's entry."""

    values: dict[str, list[str]]
    reference: dict[str, int]
    base: float
    delta: dict[str, list[float]]
    loo_rmse: float  # leave-one-out root-mean-square error of the fit: the reported uncertainty
    loo_mae: float
    ridge: float
    samples: int
    counts: dict[str, list[int]] = field(default_factory=dict)  # how often each value was sampled

    def __post_init__(self) -> None:
        if set(self.values) != set(self.reference) or set(self.values) != set(self.delta):
            raise ConfigError("an additive table needs values, reference and delta for the same labels")
        for label, names in self.values.items():
            if len(self.delta[label]) != len(names) or not 0 <= self.reference[label] < len(names):
                raise ConfigError(f"additive table entry {label!r}: {len(names)} values, {len(self.delta[label])} deltas, "
                                  f"reference {self.reference[label]}")

    def predict(self, indices: Mapping[str, int]) -> float:
        """The predicted accuracy of the network taking entry ``indices[label]`` of every label (an entry index, not
        the value: :meth:`indices_of` turns an architecture dict of values into these)."""
        missing = [label for label in self.values if label not in indices]
        if missing:
            raise ConfigError(f"the network has no value for {missing[:3]}")
        for label, names in self.values.items():
            index = indices[label]
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(names):
                raise ConfigError(f"{label} = {index!r} is not an entry index of {label} (0..{len(names) - 1} for "
                                  f"{', '.join(names)}); for an architecture dict of values use predict_arch")
        return self.base + sum(self.delta[label][indices[label]] for label in self.values)

    def indices_of(self, arch: Mapping[str, object]) -> dict[str, int]:
        """An architecture dict (label -> value, as a search returns it) as label -> entry index."""
        if not isinstance(arch, Mapping):
            raise ConfigError(f"an architecture is a dict of label -> value (a search's arch.json), got {type(arch).__name__}")
        out = {}
        for label, names in self.values.items():
            if label not in arch:
                raise ConfigError(f"the architecture has no value for {label!r}")
            text = str(arch[label])
            if text not in names:
                raise ConfigError(f"{label} = {arch[label]!r} is not a value of the space ({', '.join(names)})")
            out[label] = names.index(text)
        return out

    def unseen(self, indices: Mapping[str, int]) -> list[str]:
        """Labels whose value in ``indices`` no sampled network had (its delta is a guess: 0)."""
        return [label for label, seen in self.counts.items() if not seen[int(indices[label])]]

    def to_dict(self) -> dict:
        return {"base": self.base, "loo_rmse": self.loo_rmse, "loo_mae": self.loo_mae, "ridge": self.ridge,
                "samples": self.samples,
                "terms": {label: {"values": self.values[label], "reference": self.reference[label],
                                  "delta": self.delta[label], "counts": self.counts.get(label, [])}
                          for label in self.values}}

    @classmethod
    def from_dict(cls, data, where: str = "predictor table") -> "AdditiveTable":
        """Read :meth:`to_dict` output back; anything malformed is one :class:`RunDirError` line."""
        def bad(what: str) -> RunDirError:
            return RunDirError(f"{where} is corrupt ({what}); delete it or rebuild it with uboost predict --rebuild")

        def number(value, what: str) -> float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise bad(f"{what} must be a finite number, got {value!r}")
            return float(value)

        if not isinstance(data, dict) or not isinstance(data.get("terms"), dict) or not data["terms"]:
            raise bad("no terms")
        values, reference, delta, counts = {}, {}, {}, {}
        for label, term in data["terms"].items():
            if not isinstance(term, dict):
                raise bad(f"term {label!r} is not an object")
            names, deltas, ref = term.get("values"), term.get("delta"), term.get("reference")
            if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
                raise bad(f"term {label!r} has no list of values")
            if not isinstance(deltas, list) or len(deltas) != len(names):
                raise bad(f"term {label!r} needs one delta per value")
            if isinstance(ref, bool) or not isinstance(ref, int) or not 0 <= ref < len(names):
                raise bad(f"term {label!r} has no valid reference entry")
            seen = term.get("counts", [])
            if not isinstance(seen, list) or (seen and (len(seen) != len(names) or not all(
                    isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in seen))):
                raise bad(f"term {label!r} has bad counts (one non-negative integer per value)")
            values[label], reference[label] = list(names), ref
            delta[label] = [number(d, f"delta of {label!r}") for d in deltas]
            if seen:
                counts[label] = list(seen)
        samples = data.get("samples")
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise bad(f"samples must be a positive integer, got {samples!r}")
        return cls(values=values, reference=reference, delta=delta, counts=counts, samples=samples,
                   base=number(data.get("base"), "base"), loo_rmse=number(data.get("loo_rmse"), "loo_rmse"),
                   loo_mae=number(data.get("loo_mae"), "loo_mae"), ridge=number(data.get("ridge"), "ridge"))


def design_matrix(values: Mapping[str, Sequence[str]], reference: Mapping[str, int],
                  networks: Sequence[Mapping[str, int]]) -> tuple[np.ndarray, list[tuple[str, int]]]:
    """One 0/1 column per (label, non-reference entry): ``X[i, j] = 1`` when network ``i`` takes it."""
    for label, names in values.items():
        if not 0 <= reference.get(label, -1) < len(names):
            raise ConfigError(f"the reference network has no valid entry for {label!r} ({len(names)} values)")
    for i, network in enumerate(networks):
        for label, names in values.items():
            entry = network.get(label) if isinstance(network, Mapping) else None
            if isinstance(entry, bool) or not isinstance(entry, (int, np.integer)) or not 0 <= entry < len(names):
                raise ConfigError(f"network {i}: {label!r} must be an entry index from 0 to {len(names) - 1}, got {entry!r}")
    columns = [(label, k) for label, names in values.items() for k in range(len(names)) if k != reference[label]]
    where = {column: j for j, column in enumerate(columns)}
    x = np.zeros((len(networks), len(columns)))
    for i, network in enumerate(networks):
        for label in values:
            j = where.get((label, int(network[label])))
            if j is not None:
                x[i, j] = 1.0
    return x, columns


def _ridge_path(x: np.ndarray, y: np.ndarray, ridge: float, u, s, vt) -> tuple[np.ndarray, float, np.ndarray]:
    """``(weights, intercept, leave-one-out residuals)`` of ridge on centred ``x`` (SVD ``u s vt``)."""
    n = x.shape[0]
    keep = s > 1e-10 * max(1.0, float(s.max(initial=0.0)))
    s_k, u_k, v_k = s[keep], u[:, keep], vt[keep].T
    shrink = s_k / (s_k**2 + ridge)
    yc = y - y.mean()
    w = v_k @ (shrink * (u_k.T @ yc))
    b = float(y.mean() - x.mean(axis=0) @ w)
    residual = y - (b + x @ w)
    leverage = 1.0 / n + np.einsum("ij,j,ij->i", u_k, s_k**2 / (s_k**2 + ridge), u_k)
    with np.errstate(divide="ignore", invalid="ignore"):
        loo = np.where(leverage < 1 - 1e-9, residual / (1.0 - leverage), np.inf)
    return w, b, loo


def fit_additive(values: Mapping[str, Sequence[str]], reference: Mapping[str, int],
                 networks: Sequence[Mapping[str, int]], accuracies: Sequence[float],
                 ridge_grid: Sequence[float] = RIDGE_GRID) -> AdditiveTable:
    """Fit the table to measured ``accuracies`` of ``networks`` (label -> entry index).

    The ridge strength with the least leave-one-out error wins (plain least squares when the
    data are exactly additive); a value no network took keeps delta 0."""
    y = np.asarray(accuracies, dtype=np.float64)
    if len(networks) != y.shape[0] or y.shape[0] < 2:
        raise ConfigError(f"fitting needs at least 2 measured networks, got {len(networks)} networks and {y.shape[0]} accuracies")
    if not np.all(np.isfinite(y)):
        raise ConfigError("measured accuracies must be finite")
    if not len(ridge_grid) or not all(isinstance(r, (int, float)) and math.isfinite(r) and r >= 0 for r in ridge_grid):
        raise ConfigError(f"ridge_grid must list finite strengths >= 0, got {list(ridge_grid)!r}")
    x, columns = design_matrix(values, reference, networks)
    u, s, vt = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)
    best = None
    for ridge in ridge_grid:
        w, b, loo = _ridge_path(x, y, float(ridge), u, s, vt)
        rmse = float(np.sqrt(np.mean(loo**2))) if np.all(np.isfinite(loo)) else math.inf
        if best is None or rmse < best[0] - 1e-12:
            best = (rmse, float(ridge), w, b, loo)
    rmse, ridge, w, b, loo = best
    if not math.isfinite(rmse):  # fewer networks than terms: leave-one-out is undefined at every strength
        ridge = float(max(ridge_grid))
        w, b, loo = _ridge_path(x, y, ridge, u, s, vt)
        rmse = math.inf
    delta = {label: [0.0] * len(names) for label, names in values.items()}
    for (label, k), weight in zip(columns, w):
        delta[label][k] = float(weight)
    counts = {label: [0] * len(names) for label, names in values.items()}
    for network in networks:
        for label in values:
            counts[label][int(network[label])] += 1
    finite = loo[np.isfinite(loo)]
    return AdditiveTable(values={k: list(v) for k, v in values.items()}, reference=dict(reference), base=b, delta=delta,
                         loo_rmse=rmse if math.isfinite(rmse) else float(np.std(y)),
                         loo_mae=float(np.mean(np.abs(finite))) if finite.size else float(np.std(y)),
                         ridge=ridge, samples=len(networks), counts=counts)
