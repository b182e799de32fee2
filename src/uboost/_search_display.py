"""What a search shows while it runs and leaves behind for a person: the progress bar's entries in
readable units, the metrics a resumed run reports, and the run directory's plots (``search.png``,
``utilization.png``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from uboost import runs

if TYPE_CHECKING:  # pragma: no cover
    from uboost.hardware import NetworkCost

logger = logging.getLogger("uboost.search")


# progress-bar entries: metric key -> (shown as, scale, format). "expected": over the supernet's distribution (what
# the loss prices); "derived": the argmax network, priced exactly (what the search's result reports)
PROGRESS_UNITS = {
    "hw/latency_ms": ("expected µs", 1e3, "{:.3f}"),
    "hw/derived_latency_ms": ("derived µs", 1e3, "{:.3f}"),
    "hw/sampled_latency_ms": ("sampled µs", 1e3, "{:.3f}"),
    "hw/derived_utilization": ("derived util %", 100.0, "{:.2f}"),
    "train_acc": ("acc %", 100.0, "{:.1f}"),
    "val_acc": ("val acc %", 100.0, "{:.1f}"),
}


def progress_metrics(metrics: dict) -> dict:
    """The search's progress-bar entries in units a person reads: latency in µs, utilization and
    accuracy in %, with digits enough to see them move (the strategy logs ms and fractions)."""
    shown = {}
    for key, value in metrics.items():
        if key == "v_num":
            continue
        if key in PROGRESS_UNITS:
            name, scale, fmt = PROGRESS_UNITS[key]
            shown[name] = fmt.format(scale * float(value))
        else:
            shown[key] = value
    return shown


def progress_bar():
    from pytorch_lightning.callbacks import RichProgressBar

    class SearchProgressBar(RichProgressBar):
        def get_metrics(self, trainer, pl_module):
            # the strategy logs its hw/ values and the task's without prog_bar (Lightning would read them on
            # the host every step, a GPU sync): they are read here, when the bar is drawn
            metrics = super().get_metrics(trainer, pl_module)
            for key in (*PROGRESS_UNITS, "train_loss"):
                if key not in metrics and key in trainer.callback_metrics:
                    metrics[key] = float(trainer.callback_metrics[key])
            return progress_metrics(metrics)

    return SearchProgressBar(leave=True)


def resumed_metrics_callback(path: Path):
    import pytorch_lightning as pl

    class ResumedMetrics(pl.Callback):
        """A resumed run whose last epoch was already checkpointed trains no step: report the
        accuracies recorded in ``metrics.csv`` (NNI's final report needs them), newest first."""

        def on_fit_end(self, trainer, pl_module):
            import torch

            from uboost.loggers import read_metrics

            metrics = trainer.callback_metrics
            rows = read_metrics(path) if path.is_file() else []
            for row in reversed(rows):
                for key, value in row.items():
                    if key.startswith(("train_", "val_")) and key not in metrics and isinstance(value, (int, float)):
                        metrics[key] = torch.tensor(float(value))

    return ResumedMetrics()


# metrics.csv key -> (panel, legend label, scale to the panel's unit)
SEARCH_PANELS = {
    "hw/latency_ms": ("latency (µs)", "expected (supernet)", 1e3),
    "hw/derived_latency_ms": ("latency (µs)", "derived (argmax network)", 1e3),
    "hw/sampled_latency_ms": ("latency (µs)", "sampled path", 1e3),
    "hw/utilization": ("utilization (%)", "expected (supernet)", 100.0),
    "hw/derived_utilization": ("utilization (%)", "derived (argmax network)", 100.0),
    "hw/energy_uj": ("energy (µJ)", "expected (supernet)", 1.0),
    "hw/derived_energy_uj": ("energy (µJ)", "derived (argmax network)", 1.0),
    "hw/sampled_energy_uj": ("energy (µJ)", "sampled path", 1.0),
    "train_acc": ("accuracy (%)", "train (per step)", 100.0),
    "val_acc": ("accuracy (%)", "validation (per epoch)", 100.0),
}


def search_curves(rows: list[dict]) -> tuple[dict[str, dict[str, tuple[list, list]]], list[float]]:
    """From ``metrics.csv`` rows: ``{panel: {label: (steps, values)}}`` in display units, and the
    steps where a new epoch starts (drawn as vertical lines)."""
    panels: dict[str, dict[str, tuple[list, list]]] = {}
    for key, (panel, label, scale) in SEARCH_PANELS.items():
        points = [(float(r["step"]), scale * float(r[key])) for r in rows if r.get(key) not in (None, "") and "step" in r]
        if points:
            panels.setdefault(panel, {})[label] = ([x for x, _ in points], [y for _, y in points])
    boundaries, last = [], None
    for r in rows:
        if r.get("epoch") in (None, "") or "step" not in r:
            continue
        epoch = int(float(r["epoch"]))
        if last is not None and epoch != last:
            boundaries.append(float(r["step"]))
        last = epoch
    return panels, sorted(set(boundaries))


def draw_plots(out: Path, report: NetworkCost) -> None:
    try:
        from uboost import plots
        from uboost.loggers import read_metrics
    except ImportError:  # pragma: no cover
        return
    try:
        plots.utilization_per_layer(
            out / "utilization.png", [l.layer.name for l in report.layers],
            {f"{report.spec.array} {report.spec.dataflow}": [l.utilization for l in report.layers]},
            title=f"derived network on {report.spec.array} {report.spec.dataflow}: utilization per layer ({report.model})",
        )
        panels, boundaries = search_curves(read_metrics(out / runs.METRICS))
        if panels:
            plots.panels(out / "search.png", panels, xlabel="training step (dashed: epoch boundaries)", vlines=boundaries,
                         title=f"U-Boost search on {report.spec.array} {report.spec.dataflow}")
    except Exception as exc:  # plots are a convenience; never lose a finished search over them
        logger.warning("could not draw plots: %s", exc)
