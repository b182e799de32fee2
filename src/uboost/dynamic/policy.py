"""The exit policy: which exits are kept, their thresholds and the operating point.

A sample leaves at the first kept exit whose max-softmax confidence is >= that exit's threshold
(MSDNet; REFERENCES section 6), else at the final classifier. :func:`decide` applies a policy to
precomputed confidences (numpy, vectorised): the search scores thousands of policies this way,
and the ONNX graph's outputs are turned into decisions with it. :class:`ExitPolicy` is one
exported point: JSON in, JSON out, validated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from uboost.exceptions import ConfigError


def softmax_confidence(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(max softmax, argmax)`` over the last axis of ``logits``."""
    z = logits - logits.max(-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(-1, keepdims=True)
    return p.max(-1), logits.argmax(-1)


def decide(confidence: np.ndarray, thresholds: Sequence[float | None]) -> np.ndarray:
    """The exit each sample takes: ``confidence`` is ``(N, K)`` (one column per head), ``thresholds``
    one per head (``None``: not kept). Returns ``(N,)`` ints, ``K`` for the final classifier."""
    n, k = confidence.shape
    if len(thresholds) != k:
        raise ConfigError(f"{k} exits but {len(thresholds)} thresholds")
    taken = np.full(n, k, dtype=np.int64)
    for j in reversed(range(k)):  # the first confident kept exit wins: overwrite from the last to the first
        t = thresholds[j]
        if t is not None:
            taken[confidence[:, j] >= t] = j
    return taken


def outcome(confidence: np.ndarray, correct: np.ndarray, thresholds: Sequence[float | None]) -> tuple[float, np.ndarray]:
    """``(accuracy, shares)`` of a policy: ``correct`` is ``(N, K + 1)`` (the heads, then the final),
    ``shares`` the fraction of samples leaving at each of the ``K + 1`` exits."""
    taken = decide(confidence, thresholds)
    k = confidence.shape[1]
    accuracy = float(correct[np.arange(len(taken)), taken].mean()) if len(taken) else 0.0
    shares = np.bincount(taken, minlength=k + 1) / max(1, len(taken))
    return accuracy, shares


def decide_outputs(outputs: Sequence[np.ndarray], thresholds: Sequence[float | None]) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and exits from every exit's logits (e.g. onnxruntime's outputs ``exit0``.., ``final``)."""
    conf, pred = zip(*(softmax_confidence(np.asarray(o)) for o in outputs))
    taken = decide(np.stack(conf[:-1], 1), thresholds) if len(outputs) > 1 else np.zeros(len(pred[0]), dtype=np.int64)
    preds = np.stack(pred, 1)
    return preds[np.arange(len(taken)), taken], taken


@dataclass(frozen=True, kw_only=True)
class ExitPolicy:
    """One point: thresholds per exit position (``None``: dropped) and the operating point."""

    positions: tuple[str, ...]
    thresholds: tuple[float | None, ...]
    freq_hz: float
    voltage_v: float
    metrics: dict[str, Any] = field(default_factory=dict)  # accuracy, expected latency/energy, shares...

    def __post_init__(self) -> None:
        from uboost.dynamic.model import check_thresholds

        object.__setattr__(self, "positions", tuple(str(p) for p in self.positions))
        object.__setattr__(self, "thresholds", tuple(check_thresholds(self.thresholds, len(self.positions))))
        for name in ("freq_hz", "voltage_v"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"policy {name} must be a positive number, got {value!r}")

    @property
    def kept(self) -> tuple[bool, ...]:
        return tuple(t is not None for t in self.thresholds)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["positions"], data["thresholds"] = list(self.positions), list(self.thresholds)
        return data

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "policy") -> "ExitPolicy":
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: a policy is a JSON object")
        missing = [k for k in ("positions", "thresholds", "freq_hz", "voltage_v") if k not in data]
        if missing:
            raise ConfigError(f"{source}: missing {', '.join(missing)}")
        metrics = data.get("metrics", {})
        if not isinstance(metrics, dict):  # dict([1, 2]) was a TypeError traceback in `uboost switch`
            raise ConfigError(f"{source}: metrics must be a JSON object, got {type(metrics).__name__}")
        try:
            return cls(positions=data["positions"], thresholds=data["thresholds"], freq_hz=data["freq_hz"],
                       voltage_v=data["voltage_v"], metrics=dict(metrics))
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    @classmethod
    def load(cls, path: str | Path) -> "ExitPolicy":
        from uboost.runs import read_json

        return cls.from_dict(read_json(Path(path), "exit policy"), source=str(path))
