"""One U-Boost search as a library call: data, space, strategy, run directory.

``run_search(SearchConfig(...), "runs/demo")`` is what ``uboost search`` and each Optuna trial
run. Everything a later step needs is written to the run directory (see :mod:`uboost.runs`).
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uboost.exceptions import ConfigError, Interrupted, SearchError
from uboost.hardware import CostModel, HardwareSpec, NetworkCost, create, parse_array
from uboost.io import atomic_write, write_json
from uboost import runs

logger = logging.getLogger(__name__)

SAMPLING_MODES = ("mixture", "single-path")  # as uboost.strategy.single_path (not imported here: NNI is heavy)


@dataclass(frozen=True, kw_only=True)
class SearchConfig:
    """Everything that defines a search; stored as ``config.json`` in the run directory."""

    space: str = "darts-cifar"
    space_options: dict = field(default_factory=lambda: {"width": 8, "cells": 3})
    dataset: str = "digits"
    data_dir: str | None = None
    download: bool = False
    image_size: int | None = None  # None: the dataset's own resolution (digits 8x8, CIFAR 32x32)
    max_samples: int | None = None
    cost_model: str = "systolic"
    array: str = "128x128"
    dataflow: str = "ws"
    inference_batch: int = 1
    sram_kb: int | None = None  # each of the ifmap/filter/ofmap SRAMs (kB); None = unbounded
    dram_bw_words: float | None = None  # DRAM words per cycle per port; None = unbounded
    clock_hz: float = 1.0e9
    latency_weight: float = 1.0
    utilization_weight: float = 1.0
    target_latency_ms: float | None = None
    budget_lr: float = 0.5
    budget_floor: float = 0.9  # with a target: export (and steer to) a network using >= this share of it
    entropy_weight: float = 0.0
    cost_mode: str = "expected"
    temperature: float = 10.0
    sampling: str = "mixture"  # or "single-path": one sampled candidate per choice runs per step
    epochs: int = 6
    batch_size: int = 64
    learning_rate: float = 0.01
    arch_lr: float = 0.03  # high enough that a short search commits (expected vs derived latency within ~5%)
    data_split: float = 0.8
    seed: int = 0
    accelerator: str = "cpu"
    devices: int = 1

    def __post_init__(self) -> None:
        parse_array(self.array)
        HardwareSpec(sram_kb=self.sram_kb, dram_bw_words=self.dram_bw_words)  # memory checked up front
        for name in ("epochs", "batch_size", "inference_batch", "devices"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        for name in ("learning_rate", "arch_lr", "temperature", "clock_hz"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{name} must be a positive number, got {value!r}")
        if self.target_latency_ms is not None and (
            isinstance(self.target_latency_ms, bool) or not isinstance(self.target_latency_ms, (int, float))
            or not math.isfinite(self.target_latency_ms) or self.target_latency_ms <= 0
        ):
            raise ConfigError(f"target_latency_ms must be a positive number of milliseconds, got {self.target_latency_ms!r}")
        if isinstance(self.budget_floor, bool) or not isinstance(self.budget_floor, (int, float)) or not 0 <= self.budget_floor < 1:
            raise ConfigError(f"budget_floor must be a fraction of the budget in [0, 1), got {self.budget_floor!r}")
        for name in ("latency_weight", "utilization_weight", "budget_lr", "entropy_weight"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"{name} must be a non-negative number, got {value!r}")
        if self.sampling not in SAMPLING_MODES:
            raise ConfigError(f"sampling must be one of {', '.join(SAMPLING_MODES)}, got {self.sampling!r}")
        if self.accelerator not in ("cpu", "gpu", "cuda", "mps", "auto"):
            raise ConfigError(f"accelerator must be cpu, gpu, mps or auto, got {self.accelerator!r}")
        if self.image_size is not None and self.image_size < 4:
            raise ConfigError(f"image_size must be at least 4, got {self.image_size}")
        if self.max_samples is not None and (isinstance(self.max_samples, bool) or not isinstance(self.max_samples, int) or self.max_samples < 1):
            raise ConfigError(f"max_samples must be a positive integer, got {self.max_samples!r}")

    @property
    def rows(self) -> int:
        return parse_array(self.array)[0]

    @property
    def cols(self) -> int:
        return parse_array(self.array)[1]

    def hardware_spec(self) -> HardwareSpec:
        return HardwareSpec(
            rows=self.rows, cols=self.cols, dataflow=self.dataflow, batch_size=self.inference_batch, clock_hz=self.clock_hz,
            sram_kb=self.sram_kb, dram_bw_words=self.dram_bw_words,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SearchConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config keys {unknown}; valid keys: {', '.join(sorted(known))}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"bad config: {exc}") from None

    def replace(self, **changes: Any) -> "SearchConfig":
        return dataclasses.replace(self, **changes)


def build_cost_model(config: SearchConfig) -> CostModel:
    return create(config.cost_model, spec=config.hardware_spec())


def build_space(config: SearchConfig):
    """A fresh model space sized to the dataset: ``(space, input_shape, data_spec)``."""
    from uboost.data import dataset_spec
    from uboost.search_spaces import SPACES

    factory = SPACES.get(config.space)
    channels = getattr(factory, "input_channels", 3)
    spec = dataset_spec(config.dataset, data_dir=config.data_dir, image_size=config.image_size, channels=channels)
    try:
        space = factory(**config.space_options, num_classes=spec.num_classes, input_shape=spec.input_shape)
    except TypeError as exc:
        raise ConfigError(f"bad options for space {config.space!r}: {exc}") from None
    return space, tuple(spec.input_shape), spec


@dataclass(frozen=True)
class SearchResult:
    run_dir: Path
    arch: dict
    hardware: NetworkCost
    val_acc: float | None
    latency_ref_ms: float | None
    seconds: float
    budget: dict = field(default_factory=dict)  # target, expected latency, argmax latency, projected?

    def summary(self) -> dict[str, Any]:
        return {
            "val_acc": self.val_acc,
            "latency_ms": self.hardware.latency_ms,
            "cycles": self.hardware.cycles,
            "utilization": self.hardware.utilization,
            "macs": self.hardware.macs,
            "latency_ref_ms": self.latency_ref_ms,
            "search_seconds": self.seconds,
            **self.budget,
        }


class SearchInterrupted(SearchError, Interrupted):
    """Ctrl-C during the search; a checkpoint was left behind (the CLI exits 130)."""


def _metrics_callback(path: Path):
    import pytorch_lightning as pl

    class MetricsRecorder(pl.Callback):
        """Every training step's logged scalars (and each validation) to ``metrics.csv``, atomically."""

        def __init__(self) -> None:
            self.rows: list[dict[str, float]] = []
            if path.is_file():  # resumed run: keep what the earlier part recorded
                with open(path, newline="") as f:
                    self.rows = [{k: float(v) for k, v in r.items() if v not in ("", None)} for r in csv.DictReader(f)]

        def _record(self, trainer, kind: str) -> None:
            row = {"epoch": float(trainer.current_epoch), "step": float(trainer.fit_loop.total_batch_idx)}
            for key, value in trainer.callback_metrics.items():
                if key.startswith(("train_", "val_", "hw/", "gumbel")) and (kind == "val") == key.startswith("val_"):
                    row[key] = float(value)
            self.rows.append(row)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self._record(trainer, "train")

        def on_validation_epoch_end(self, trainer, pl_module):
            if not trainer.sanity_checking:
                self._record(trainer, "val")
                self.flush()

        def on_train_epoch_end(self, trainer, pl_module):
            self.flush()

        def on_fit_end(self, trainer, pl_module):
            """A resumed run whose last epoch was already checkpointed trains no step: report the
            accuracies it recorded (NNI's final report needs them), newest first."""
            import torch

            metrics = trainer.callback_metrics
            for row in reversed(self.rows):
                for key, value in row.items():
                    if key.startswith(("train_", "val_")) and key not in metrics:
                        metrics[key] = torch.tensor(value)

        def flush(self) -> None:
            keys = list(dict.fromkeys(k for r in self.rows for k in r))

            def write(f):
                w = csv.DictWriter(f, fieldnames=keys)
                w.writeheader()
                w.writerows(self.rows)

            atomic_write(path, write)

    return MetricsRecorder()


@runs.locked_run
def run_search(
    config: SearchConfig,
    out: str | os.PathLike,
    *,
    resume: bool = False,
    force: bool = False,
    progress: bool = False,
    callbacks: list | None = None,
) -> SearchResult:
    """Search, write the run directory, and return the derived architecture with its cost."""
    import pytorch_lightning as pl
    import torch
    from nni.nas.evaluator.pytorch import Classification, DataLoader
    from pytorch_lightning.callbacks import ModelCheckpoint, OnExceptionCheckpoint

    from uboost.data import load_datasets
    from uboost.strategy import UBoost, quiet_nni, run_experiment

    quiet_nni()
    out = runs.check_run_dir(out, resume=resume, force=force)  # refuse before anything is loaded or written
    ckpt_path = None
    if resume:
        config = SearchConfig.from_dict(runs.read_json(out / runs.CONFIG, "run config"))
        ckpt_path = runs.latest_checkpoint(out)
        if ckpt_path is None:
            raise SearchError(f"no checkpoint in {out / runs.CHECKPOINTS} to resume from; start over with --force")
        runs.check_checkpoint(ckpt_path)

    started = time.perf_counter()
    pl.seed_everything(config.seed, workers=True, verbose=False)
    space, input_shape, spec = build_space(config)
    cost_model = build_cost_model(config)
    train, test = load_datasets(
        config.dataset, data_dir=config.data_dir, download=config.download,
        image_size=input_shape[-1], channels=input_shape[0], seed=config.seed,
    )
    if config.max_samples is not None and config.max_samples < len(train):
        train = torch.utils.data.Subset(train, range(config.max_samples))
        test = torch.utils.data.Subset(test, range(min(len(test), max(config.max_samples // 4, config.batch_size))))
    if not resume:  # everything is validated: only now clear an earlier run (--force) and write
        runs.prepare_run_dir(out, force=force)
        write_json(out / runs.CONFIG, config.to_dict())
    generator = torch.Generator().manual_seed(config.seed)
    train_loader = DataLoader(train, batch_size=config.batch_size, shuffle=True, generator=generator)
    test_loader = DataLoader(test, batch_size=config.batch_size)

    ckpt_dir = out / runs.CHECKPOINTS
    trainer_callbacks = [
        ModelCheckpoint(dirpath=ckpt_dir, filename="last", save_last=False, every_n_epochs=1, save_top_k=1, enable_version_counter=False),
        OnExceptionCheckpoint(dirpath=ckpt_dir, filename="interrupted"),
        _metrics_callback(out / runs.METRICS),
        *(callbacks or []),
    ]
    if progress:
        from pytorch_lightning.callbacks import RichProgressBar

        trainer_callbacks.append(RichProgressBar(leave=True))
    evaluator = Classification(
        train_dataloaders=train_loader,
        val_dataloaders=test_loader,
        num_classes=spec.num_classes,
        learning_rate=config.learning_rate,
        weight_decay=3e-4,
        max_epochs=config.epochs,
        accelerator=config.accelerator,
        devices=config.devices,
        callbacks=trainer_callbacks,
        enable_progress_bar=progress,
        enable_model_summary=False,
        logger=False,
        default_root_dir=str(out),
        num_sanity_val_steps=0,
    )
    if ckpt_path is not None:
        evaluator.fit_kwargs["ckpt_path"] = str(ckpt_path)
        evaluator.fit_kwargs["weights_only"] = True  # Lightning's own load runs no code from the file either
    strategy = UBoost(
        cost_model=cost_model,
        latency_weight=config.latency_weight,
        utilization_weight=config.utilization_weight,
        target_latency_ms=config.target_latency_ms,
        budget_lr=config.budget_lr,
        budget_floor=config.budget_floor,
        entropy_weight=config.entropy_weight,
        cost_mode=config.cost_mode,
        temperature=config.temperature,
        arch_lr=config.arch_lr,
        data_split=config.data_split,
        seed=config.seed,
        sampling=config.sampling,
    )
    trainer = evaluator.trainer
    interrupted = SearchInterrupted(f"search interrupted; a checkpoint is in {ckpt_dir}; continue with --resume")
    try:
        arch = run_experiment(space, evaluator, strategy, workdir=out / "nni")
    except (SystemExit, KeyboardInterrupt):  # Lightning exits after a graceful Ctrl-C shutdown
        if trainer.interrupted or trainer.state.status.value == "interrupted":
            raise interrupted from None
        raise
    if trainer.interrupted:
        raise interrupted
    seconds = time.perf_counter() - started

    budget = _final_choices(out, strategy, arch, config)
    arch = budget.pop("arch")
    fresh, _, _ = build_space(config)
    derived = runs.freeze_arch(fresh, arch)
    report = cost_model.evaluate(derived, input_shape)
    val_acc = trainer.callback_metrics.get("val_acc")
    result = SearchResult(
        run_dir=out,
        arch=arch,
        hardware=report,
        val_acc=None if val_acc is None else float(val_acc),
        latency_ref_ms=strategy.latency_ref_ms,
        seconds=seconds,
        budget=budget,
    )
    write_json(out / runs.ARCH, arch)
    write_json(out / runs.HARDWARE, report.to_dict())
    write_json(out / runs.RESULT, result.summary())
    _plots(out, report)
    return result


def _final_choices(out: Path, strategy, arch: dict, config: SearchConfig) -> dict[str, Any]:
    """Write the final alphas and probabilities; with a budget, project the architecture onto it.

    Returns ``{"arch": the architecture to export, ...facts for result.json}``.
    """
    import torch

    from uboost.strategy.architecture import alphas_to_dict, probabilities_dict

    hardware_loss = strategy.hardware_loss
    facts: dict[str, Any] = {"arch": arch}
    if not hardware_loss.attached:  # no training step ran in this process (nothing to price)
        return facts
    write_json(out / runs.ALPHAS, alphas_to_dict(hardware_loss.supernet[0]))
    write_json(out / runs.PROBABILITIES, probabilities_dict(hardware_loss.choices))
    with torch.no_grad():
        facts["expected_latency_ms"] = float(hardware_loss.supernet_cost().latency_ms)
    argmax_ms = float(hardware_loss.derived_cost().latency_ms)
    facts["argmax_latency_ms"] = argmax_ms
    target = config.target_latency_ms
    if target is not None:
        facts["target_latency_ms"] = target
        facts["budget_multiplier"] = float(hardware_loss.multiplier)
        projected = hardware_loss.projector().project(target, floor=config.budget_floor)
        facts["projected"] = projected.arch != arch
        if projected.arch != arch:
            logger.info("argmax network %.6g ms vs budget %.6g ms: projected to %.6g ms", argmax_ms, target, projected.latency_ms)
        facts["arch"] = projected.arch
    return facts


def _plots(out: Path, report: NetworkCost) -> None:
    try:
        from uboost import plots
    except ImportError:  # pragma: no cover
        return
    try:
        plots.utilization_per_layer(
            out / "utilization.png", [l.layer.name for l in report.layers],
            {f"{report.spec.array} {report.spec.dataflow}": [l.utilization for l in report.layers]},
            title=f"derived network: utilization per layer ({report.model})",
        )
        with open(out / runs.METRICS, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("hw/latency_ms")]
        if rows:
            steps = [float(r["step"]) for r in rows]
            series = {k: [float(r[k]) for r in rows if r.get(k)] for k in ("hw/latency_ms", "hw/derived_latency_ms", "hw/utilization", "train_acc") if rows[0].get(k)}
            plots.lines(out / "search.png", steps, series, xlabel="step", title="expected and derived latency / utilization / accuracy")
    except Exception as exc:  # plots are a convenience; never lose a finished search over them
        logger.warning("could not draw plots: %s", exc)
