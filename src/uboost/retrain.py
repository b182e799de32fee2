"""Train a searched architecture from scratch: frozen from the same space, no copied model code."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uboost import runs
from uboost.exceptions import ConfigError, Interrupted, RunDirError, SearchError
from uboost.io import atomic_path, write_json

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class RetrainConfig:
    dataset: str | None = None  # default: the search's dataset
    data_dir: str | None = None
    download: bool = False
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 0.05
    weight_decay: float = 5e-4
    schedule: str = "cosine"  # or "onecycle"
    augment: bool = True
    seed: int = 0
    accelerator: str = "auto"  # as Lightning: a GPU where there is one, else the CPU
    devices: int = 1
    max_samples: int | None = None

    def __post_init__(self) -> None:
        if self.schedule not in ("cosine", "onecycle"):
            raise ConfigError(f"schedule must be cosine or onecycle, got {self.schedule!r}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be positive, got {self.learning_rate}")
        if isinstance(self.devices, bool) or not isinstance(self.devices, int) or self.devices < 1:
            raise ConfigError(f"devices must be a positive integer, got {self.devices!r}")
        if self.devices > 1:  # Lightning's DDP re-launches the command per rank: refuse it up front
            raise ConfigError(f"devices={self.devices}: multi-device retraining is not supported yet (each DDP rank would re-run "
                              "the command into the same run directory); use --devices 1")

        if self.max_samples is not None and self.max_samples < 1:
            raise ConfigError(f"max_samples must be a positive integer, got {self.max_samples}")


SETTINGS_KEY = "uboost_retrain_settings"
# the settings a checkpoint was trained with; the schedule and the data depend on every one of them
RESUME_SETTINGS = ("epochs", "batch_size", "learning_rate", "weight_decay", "schedule", "augment", "seed", "max_samples")


def _check_resume_settings(path: Path, checkpoint: dict, config: RetrainConfig) -> None:
    stored = checkpoint.get(SETTINGS_KEY)
    if not isinstance(stored, dict):
        return  # a checkpoint from before settings were stored: nothing to compare
    changed = [f"{k} {stored[k]!r} -> {getattr(config, k)!r}" for k in RESUME_SETTINGS if k in stored and stored[k] != getattr(config, k)]
    if changed:
        raise RunDirError(f"--resume would continue {path} with other settings ({', '.join(changed)}); "
                          "repeat the original ones, or retrain from scratch without --resume")


def _module(network, config: RetrainConfig, steps_per_epoch: int):
    import pytorch_lightning as pl
    import torch
    import torch.nn.functional as F

    class RetrainModule(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(self, x):
            return self.network(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            logits = self(x)
            loss = F.cross_entropy(logits, y)
            if not torch.isfinite(loss):
                raise SearchError(f"retraining loss became {float(loss)} at epoch {self.current_epoch}: lower --lr")
            self.log("train_loss", loss, prog_bar=True)
            self.log("train_acc", (logits.argmax(1) == y).float().mean(), prog_bar=True)
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            logits = self(x)
            self.log("test_loss", F.cross_entropy(logits, y), prog_bar=True)
            self.log("test_acc", (logits.argmax(1) == y).float().mean(), prog_bar=True)

        def on_save_checkpoint(self, checkpoint: dict) -> None:  # what --resume must not silently change
            checkpoint[SETTINGS_KEY] = {k: getattr(config, k) for k in RESUME_SETTINGS}

        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=config.learning_rate, momentum=0.9, nesterov=True, weight_decay=config.weight_decay)
            total = config.epochs * steps_per_epoch
            if config.schedule == "onecycle":
                sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.learning_rate, total_steps=total)
            else:
                sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    return RetrainModule()


@dataclass(frozen=True)
class RetrainResult:
    out: Path
    test_acc: float
    report: Any  # NetworkCost
    seconds: float
    quantized: bool = False  # trained and tested fake-quantized at the run's precision.json

    def summary(self) -> dict:
        return {
            "test_acc": self.test_acc,
            "quantized": self.quantized,
            "cycles": self.report.cycles,
            "latency_ms": self.report.latency_ms,
            "utilization": self.report.utilization,
            "macs": self.report.macs,
            "array": self.report.spec.array,
            "dataflow": self.report.spec.dataflow,
            "cost_model": self.report.model,
            "retrain_seconds": self.seconds,
        }


OUTPUTS = ("model.pt", "retrain.json", "hardware.json", "metrics.csv", "hparams.yaml", "checkpoints/last.ckpt",
           "checkpoints/interrupted.ckpt")


class RetrainInterrupted(SearchError, Interrupted):
    """Ctrl-C during retraining; a checkpoint was left behind (``--resume`` continues)."""


def retrain(source: str | os.PathLike, config: RetrainConfig, *, out: str | os.PathLike | None = None,
            search_config=None, progress: bool = False, cost_model=None, resume: bool = False,
            callbacks: list | None = None, logger=None) -> RetrainResult:
    """Freeze ``source`` (run dir or arch.json) from a fresh space and train it from scratch.

    ``search_config`` overrides the run's config (needed for a bare ``arch.json``);
    ``cost_model`` overrides the array the result is priced on. Output goes to ``out``
    (default ``RUN/retrain``), listed in the manifest of the run directory when it lies inside
    it (so ``search --force`` removes a stale retrain), else in ``out``'s own; the directory
    is locked while it trains. Each epoch is checkpointed in ``out/checkpoints``; ``resume``
    continues from the newest checkpoint, losing at most the epoch in progress.
    """
    from uboost.search import SearchConfig

    run = runs.load_run(source)
    if search_config is None:
        if not run.config:
            raise ConfigError(f"no {runs.CONFIG} next to {source}: pass --space (and its options) to say which space it is")
        search_config = SearchConfig.from_dict(run.config)
    if config.dataset is not None:
        search_config = search_config.replace(dataset=config.dataset, data_dir=config.data_dir)
    out = Path(out) if out is not None else run.root / runs.RETRAIN
    if out.exists() and not out.is_dir():
        raise RunDirError(f"output {out} exists and is not a directory")
    root = runs.owner_root(out, run.root)
    with runs.run_lock(root):
        return _retrain(source, run, config, out, root, search_config, progress, cost_model, resume, callbacks or [],
                        extra_logger=logger)


def _retrain(source, run, config: RetrainConfig, out: Path, root: Path, search_config, progress: bool, cost_model,
             resume: bool, extra_callbacks: list, *, extra_logger=None) -> RetrainResult:
    import pytorch_lightning as pl
    import torch

    from uboost.data import load_datasets, make_loaders
    from uboost.search import build_cost_model, build_space

    targets = [out.resolve() / name for name in OUTPUTS]
    runs.refuse_foreign(root, targets)  # never overwrite a file uboost did not write
    ckpt_dir = out / runs.CHECKPOINTS
    ckpt_path = None
    if resume:
        ckpt_path = runs.latest_checkpoint(out)
        if ckpt_path is None:
            raise RunDirError(f"no retrain checkpoint in {ckpt_dir} to resume from; run without --resume")
        _check_resume_settings(ckpt_path, runs.check_checkpoint(ckpt_path), config)

    started = time.perf_counter()
    pl.seed_everything(config.seed, workers=True, verbose=False)
    space, input_shape, spec = build_space(search_config)
    network = runs.freeze_arch(space, run.arch)
    from uboost.quant import apply_run_precision

    quantized = apply_run_precision(network, run.root) is not None  # precision.json: trained quantization-aware
    train, test = load_datasets(
        search_config.dataset, data_dir=search_config.data_dir, download=config.download,
        image_size=input_shape[-1], channels=input_shape[0], augment=config.augment, seed=config.seed,
    )
    if config.max_samples is not None and config.max_samples < len(train):
        train = torch.utils.data.Subset(train, range(config.max_samples))
    train_loader, test_loader = make_loaders(train, test, batch_size=config.batch_size, seed=config.seed)
    module = _module(network, config, max(1, len(train_loader)))
    runs.record(root, *targets)  # everything is validated: register, then write
    new_dirs = [d for d in (ckpt_dir.resolve(), out.resolve(), *out.resolve().parents) if d.is_relative_to(root.resolve()) and d != root.resolve() and not d.exists()]
    runs.record(root, dirs=new_dirs)
    out.mkdir(parents=True, exist_ok=True)
    if not resume:  # a fresh start must not leave an earlier retrain's checkpoint to resume later
        for name in ("last.ckpt", "interrupted.ckpt"):
            (ckpt_dir / name).unlink(missing_ok=True)
    from pytorch_lightning.callbacks import ModelCheckpoint, OnExceptionCheckpoint

    callbacks = [
        ModelCheckpoint(dirpath=ckpt_dir, filename="last", every_n_epochs=1, save_top_k=1, enable_version_counter=False),
        OnExceptionCheckpoint(dirpath=ckpt_dir, filename="interrupted"),
        *extra_callbacks,
    ]
    if progress:
        from pytorch_lightning.callbacks import RichProgressBar

        callbacks.append(RichProgressBar(leave=True))
    from uboost.loggers import combine, register_folders, run_csv_logger

    register_logged = register_folders(root, out, fresh=not resume)  # what --logger writes, listed for --force
    callbacks.append(runs._registering_callback(register_logged))
    loggers = combine(run_csv_logger(out, resume=resume), extra_logger)  # OUT/metrics.csv, hparams.yaml (+ --logger)
    for each in loggers:
        each.log_hyperparams({**config.__dict__, "source": str(source)})
    trainer = pl.Trainer(
        max_epochs=config.epochs, accelerator=config.accelerator, devices=config.devices, logger=loggers,
        enable_checkpointing=True, enable_progress_bar=progress, enable_model_summary=False,
        callbacks=callbacks, default_root_dir=str(out), num_sanity_val_steps=0, deterministic="warn", log_every_n_steps=10,
    )
    again = f"uboost retrain {source}{'' if out == run.root / runs.RETRAIN else f' --out {out}'} --resume"
    interrupted = RetrainInterrupted(f"retraining interrupted; a checkpoint is in {ckpt_dir}; continue with: {again}")
    try:
        trainer.fit(module, train_loader, test_loader, ckpt_path=None if ckpt_path is None else str(ckpt_path), weights_only=True)
    except (SystemExit, KeyboardInterrupt):  # Lightning exits after a graceful Ctrl-C shutdown
        if trainer.interrupted or trainer.state.status.value == "interrupted":
            raise interrupted from None
        raise
    finally:
        register_logged()
    if trainer.interrupted:
        raise interrupted
    metrics = trainer.validate(module, test_loader, verbose=False)[0]
    cost_model = cost_model if cost_model is not None else build_cost_model(search_config)
    report = cost_model.evaluate(network.cpu(), input_shape)
    result = RetrainResult(out=out, test_acc=float(metrics["test_acc"]), report=report, seconds=time.perf_counter() - started,
                           quantized=quantized)
    with atomic_path(out / "model.pt") as tmp:
        torch.save(network.state_dict(), tmp)
    write_json(out / "retrain.json", {**result.summary(), "config": config.__dict__, "source": str(source)})
    write_json(out / "hardware.json", report.to_dict())
    register_logged()
    return result
