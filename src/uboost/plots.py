"""PNG plots (matplotlib, the ``plot`` extra). Written atomically."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from uboost.exceptions import ConfigError
from uboost.io import atomic_path


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConfigError("plotting needs matplotlib: pip install 'uboost[plot]'") from None
    return plt


def _finish_layer_bars(plt, fig, ax, path, ticks: Sequence[float], layer_names: Sequence[str], ylabel: str, title: str) -> None:
    """Layer names under the bars, labels and legend, then the PNG written atomically."""
    ax.set_xticks(list(ticks))
    ax.set_xticklabels(layer_names, rotation=90, fontsize=7)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def utilization_per_layer(path: str | os.PathLike, layer_names: Sequence[str], series: Mapping[str, Sequence[float]], title: str) -> None:
    """Bar chart of per-layer utilization, one bar group per layer and one series per array."""
    plt = _pyplot()
    n = len(layer_names)
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(6, 0.28 * n + 2), 4))
    for i, (label, values) in enumerate(series.items()):
        ax.bar([j + i * width for j in range(n)], [100 * v for v in values], width, label=label)
    ax.set_ylim(0, 100)
    _finish_layer_bars(plt, fig, ax, path, [j + 0.4 - width / 2 for j in range(n)], layer_names, "utilization (%)", title)


def energy_per_layer(path: str | os.PathLike, layer_names: Sequence[str], parts: Mapping[str, Sequence[float]], title: str) -> None:
    """Stacked bars of per-layer energy in uJ, one bar per layer and one stacked segment per part
    (``mac``, ``sram``, ``dram``, ``leakage``)."""
    plt = _pyplot()
    n = len(layer_names)
    fig, ax = plt.subplots(figsize=(max(6, 0.28 * n + 2), 4))
    bottom = [0.0] * n
    for label, values in parts.items():
        ax.bar(range(n), list(values), 0.8, bottom=bottom, label=label)
        bottom = [b + v for b, v in zip(bottom, values)]
    _finish_layer_bars(plt, fig, ax, path, list(range(n)), layer_names, "energy (µJ)", title)


def panels(path: str | os.PathLike, panels: Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float]]]], *,
           xlabel: str, title: str, vlines: Sequence[float] = ()) -> None:
    """One panel per y unit (its label, e.g. ``latency (µs)``), several labelled curves in each,
    against a shared x; ``vlines`` mark e.g. epoch boundaries."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(panels), 1, figsize=(7.5, 2.4 * len(panels)), sharex=True, squeeze=False)
    for ax, (ylabel, curves) in zip(axes[:, 0], panels.items()):
        for label, (x, y) in curves.items():
            few = len(x) <= 20
            ax.plot(x, y, label=label, marker="o" if few else None, markersize=4)
        for v in vlines:
            ax.axvline(v, color="grey", linestyle="--", linewidth=0.8, alpha=0.7)
        ax.set_ylabel(ylabel, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    axes[-1, 0].set_xlabel(xlabel)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def scatter(path: str | os.PathLike, points: Mapping[str, Sequence[tuple[float, float]]], *, xlabel: str, ylabel: str, title: str) -> None:
    """Labelled point clouds (e.g. accuracy vs latency Pareto plots)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for label, pts in points.items():
        if pts:
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], label=label, alpha=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
