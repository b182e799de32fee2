"""Train a searched architecture from scratch: frozen from the same space, no copied model code."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uboost import runs
from uboost._owners import EXPORT_RUN, TUNE_EXPORT
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
    max_samples: int | None = None
    # launch settings (uboost.distributed)
    devices: int = 1  # devices per node, one process each (DDP when more than one)
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"

    def __post_init__(self) -> None:
        if self.schedule not in ("cosine", "onecycle"):
            raise ConfigError(f"schedule must be cosine or onecycle, got {self.schedule!r}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 < self.learning_rate < float("inf"):
            raise ConfigError(f"learning_rate must be a positive number, got {self.learning_rate}")
        from uboost.search_config import check_seed

        check_seed(self.seed)
        if self.accelerator not in ("cpu", "gpu", "cuda", "mps", "auto"):
            raise ConfigError(f"accelerator must be cpu, gpu, mps or auto, got {self.accelerator!r}")
        from uboost.distributed import check_settings

        check_settings(devices=self.devices, num_nodes=self.num_nodes, strategy=self.strategy, precision=self.precision)
        if self.max_samples is not None and self.max_samples < 1:
            raise ConfigError(f"max_samples must be a positive integer, got {self.max_samples}")


SETTINGS_KEY = "uboost_retrain_settings"
ARCH_KEY = "uboost_retrain_arch"  # the architecture a checkpoint trains
# the settings a checkpoint was trained with; the schedule and the data depend on every one of them
RESUME_SETTINGS = ("epochs", "batch_size", "learning_rate", "weight_decay", "schedule", "augment", "seed", "max_samples")


# `uboost retrain`'s flag for each setting a resume must repeat (weight decay and augmentation have none: defaults)
_FLAGS = {"dataset": "--dataset", "data_dir": "--data-dir", "epochs": "--epochs", "batch_size": "--batch-size",
          "learning_rate": "--lr", "schedule": "--schedule", "seed": "--seed", "max_samples": "--max-samples"}


def _resume_flags(config: RetrainConfig) -> str:
    """`` --epochs 400 --lr 0.1``: the flags that repeat ``config``'s settings where they are not the defaults, so
    the interrupted retrain's "continue with" command resumes instead of being refused for other settings."""
    import shlex

    default = RetrainConfig()
    return "".join(f" {flag} {shlex.quote(str(getattr(config, key)))}" for key, flag in _FLAGS.items()
                   if getattr(config, key) != getattr(default, key))


def _pricing_flags(run, search_config) -> str:
    """`` --array 32x32 --dataflow os`` (and ``--space`` for a bare arch.json): what the retrain was priced on where it
    is not the run's own, so the "continue with" command prices the resumed retrain alike (a checkpoint holds none)."""
    import shlex

    if not run.config:
        return f" --space {shlex.quote(search_config.space)}"
    from uboost.search import SearchConfig

    own = SearchConfig.from_dict(runs.network_config(run))
    return "".join(f" --{key} {shlex.quote(str(getattr(search_config, key)))}" for key in ("array", "dataflow")
                   if getattr(search_config, key) != getattr(own, key))


def _settings_changed(checkpoint: dict, config: RetrainConfig) -> list[str]:
    """What ``config`` changes of the settings ``checkpoint`` was trained at (``epochs 40 -> 30``); none for a
    checkpoint from before settings were stored."""
    stored = checkpoint.get(SETTINGS_KEY)
    if not isinstance(stored, dict):
        return []
    return [f"{k} {stored[k]!r} -> {getattr(config, k)!r}" for k in RESUME_SETTINGS if k in stored and stored[k] != getattr(config, k)]


def interrupted_settings_changed(out: Path, config: RetrainConfig) -> list[str]:
    """What ``config`` changes of the settings of the interrupted retrain in ``out`` (its latest readable
    checkpoint; none without one): checked by a caller before it starts anything that ``retrain(resume=True)``
    would refuse (``frontier --resume`` over several points)."""
    path = runs.latest_checkpoint(Path(out))
    return [] if path is None else _settings_changed(runs.check_checkpoint(path), config)


def _check_resume_settings(path: Path, checkpoint: dict, config: RetrainConfig) -> None:
    changed = _settings_changed(checkpoint, config)
    if changed:
        raise RunDirError(f"--resume would continue {path} with other settings ({', '.join(changed)}); "
                          "repeat the original ones, or retrain from scratch without --resume")
    from uboost.distributed.lightning import WORLD_KEY

    saved, now = checkpoint.get(WORLD_KEY), config.devices * config.num_nodes
    if isinstance(saved, int) and saved != now:  # the schedule's length counts its steps: a cosine would climb back
        raise RunDirError(f"{path} was trained by {saved} process{'es' if saved != 1 else ''} (devices x nodes), this "
                          f"resume would run {now}: its learning-rate schedule is sized in their steps; resume with "
                          f"--devices/--num-nodes giving {saved}")


def _refuse_another_shape(searched_on, retrained_on) -> None:
    """``--dataset`` retrains the network on other data of the same input shape and classes: a network rebuilt for
    another shape or class count is not the run's (export, profile and frontier build the search's)."""
    from uboost.search_config import data_spec

    before, after = data_spec(searched_on), data_spec(retrained_on)
    if (before.num_classes, tuple(before.input_shape)) != (after.num_classes, tuple(after.input_shape)):
        raise ConfigError(f"--dataset {retrained_on.dataset} has {after.num_classes} classes of {'x'.join(map(str, after.input_shape))} "
                          f"images, the search's {searched_on.dataset} {before.num_classes} classes of "
                          f"{'x'.join(map(str, before.input_shape))}: retrain on data of the searched shape, or search on it")


def _check_resume_arch(path: Path, checkpoint: dict, arch: dict) -> None:
    """Refuse a checkpoint that trains another architecture (checked first: nothing else matters then)."""
    stored = checkpoint.get(ARCH_KEY)
    if isinstance(stored, dict) and stored != arch:
        labels = sorted(k for k in stored.keys() | arch.keys() if stored.get(k) != arch.get(k))
        raise RunDirError(f"checkpoint {path} trains another architecture ({len(labels)} choices differ, e.g. {labels[0]}); "
                          "retrain from scratch without --resume, or into another --out")


def _check_resume_network(path: Path, checkpoint: dict, module) -> None:
    """Refuse, before Lightning restores anything, a checkpoint whose tensors are not this network's
    (checkpoints written before the architecture was stored in them)."""
    differ = runs.tensors_differ(module.state_dict(), checkpoint.get("state_dict", {}))
    if differ:
        key, found, want = differ[0]
        raise RunDirError(f"checkpoint {path} is not this network's ({len(differ)} tensors differ, e.g. {key}: {found} in the "
                          f"checkpoint, {want} here); retrain from scratch without --resume, or into another --out")


def _module(network, config: RetrainConfig, steps_per_epoch: int, arch: dict, *, sync_dist: bool = False,
            generators: dict | None = None, loaders: dict | None = None):
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
            self.log("train_loss", loss, prog_bar=True, sync_dist=sync_dist)
            self.log("train_acc", (logits.argmax(1) == y).float().mean(), prog_bar=True, sync_dist=sync_dist)
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            logits = self(x)
            self.log("test_loss", F.cross_entropy(logits, y), prog_bar=True, sync_dist=sync_dist)
            self.log("test_acc", (logits.argmax(1) == y).float().mean(), prog_bar=True, sync_dist=sync_dist)

        def on_save_checkpoint(self, checkpoint: dict) -> None:  # what --resume must not silently change
            from uboost.distributed.lightning import WORLD_KEY

            from uboost.resumable_loader import save_passes
            from uboost.strategy import rng

            checkpoint[SETTINGS_KEY] = {k: getattr(config, k) for k in RESUME_SETTINGS}
            checkpoint[ARCH_KEY] = arch
            checkpoint[WORLD_KEY] = int(self.trainer.world_size)
            # the shuffling order, the place in the epoch and the noise: a resume from an epoch's end (last.ckpt)
            # or from a batch boundary inside one (Ctrl-C) repeats the uninterrupted run (tests/reliability)
            checkpoint[rng.KEY] = rng.collect(generators or {})
            save_passes(checkpoint, loaders or {}, world_size=int(self.trainer.world_size))  # the epoch's order and place

        def on_load_checkpoint(self, checkpoint: dict) -> None:
            from uboost.strategy import rng

            from uboost.resumable_loader import restore_epoch_place

            if rng.KEY in checkpoint:  # older checkpoints resume as before
                rng.restore(checkpoint[rng.KEY], generators or {})
            restore_epoch_place(checkpoint, loaders or {}, world_size=int(self.trainer.world_size))

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
    """Freeze ``source`` (run dir or arch.json) from a fresh space and train it from scratch. In a space that
    declares ``default_init = True`` (uboost's own) the weights are drawn from the retrain's seed for that
    network alone (:func:`uboost.networks.reinitialize`): the same network and seed train alike whichever
    space or search found it; other spaces keep the weights their constructor drew (their own initializer).

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
            raise ConfigError(f"no {runs.CONFIG} next to {source}: pass --space NAME to say which space it is (built with its "
                              f"default options; another width or cell count needs the search's {runs.CONFIG} next to it)")
        search_config = SearchConfig.from_dict(runs.network_config(run))  # priced where the search put it
    if config.dataset is not None:
        searched_on = search_config
        kept = search_config.data_dir if config.dataset == search_config.dataset else None  # the search's own folder
        search_config = search_config.replace(dataset=config.dataset,
                                              data_dir=config.data_dir if config.data_dir is not None else kept)
        _refuse_another_shape(searched_on, search_config)
    elif config.data_dir is not None:  # the search's dataset, found elsewhere (moved, or another machine)
        search_config = search_config.replace(data_dir=config.data_dir)
    from uboost.accelerators import check_accelerator

    check_accelerator(config.accelerator, config.devices)  # before anything is written
    out = Path(out) if out is not None else run.root / runs.RETRAIN
    if out.exists() and not out.is_dir():
        raise RunDirError(f"output {out} exists and is not a directory")
    root = runs.owner_root(out, run.root)
    from uboost.distributed import check_launch, is_rank_zero

    check_launch(accelerator=config.accelerator, devices=config.devices, num_nodes=config.num_nodes, precision=config.precision,
                 strategy=config.strategy)
    if not is_rank_zero(config):  # another rank of a DDP retrain: never touches the output directory
        return _retrain(source, run, config, out, root, search_config, progress, cost_model, resume, callbacks or [],
                        extra_logger=logger, rank_zero=False)
    with runs.run_lock(root):
        return _retrain(source, run, config, out, root, search_config, progress, cost_model, resume, callbacks or [],
                        extra_logger=logger)


def _retrain(source, run, config: RetrainConfig, out: Path, root: Path, search_config, progress: bool, cost_model,
             resume: bool, extra_callbacks: list, *, extra_logger=None, rank_zero: bool = True) -> RetrainResult:
    import pytorch_lightning as pl
    import torch

    from uboost._quiet import quiet_nni

    quiet_nni()  # after Lightning's import, which sets its loggers to INFO ("GPU available", tips): as the search does

    from uboost.data import load_datasets, make_loaders
    from uboost.search import build_cost_model, build_space

    from uboost.distributed import loader_options, uses_ddp
    from uboost.distributed.lightning import trainer_kwargs, wait_for_children

    targets = [out.resolve() / name for name in OUTPUTS]
    owner = runs.retrain_owner(root, out)
    # in its own folder inside a run (RUN/retrain), a copy or export of a run's files (a tune export's copied trial
    # retrain) is no other command's work: this retrain replaces it; the search's, another retrain's are refused
    replaceable = (TUNE_EXPORT, EXPORT_RUN) if out.resolve() != root.resolve() else ()
    if rank_zero:
        runs.refuse_foreign(root, targets, owner, replaceable)  # never overwrite a file uboost did not write, nor another output's
    ckpt_dir = out / runs.CHECKPOINTS
    ckpt_path = checkpoint = None
    if resume:
        ckpt_path = runs.latest_checkpoint(out)
        if ckpt_path is None:
            raise RunDirError(f"no retrain checkpoint in {ckpt_dir} to resume from; run without --resume")
        checkpoint = runs.check_checkpoint(ckpt_path)
        _check_resume_arch(ckpt_path, checkpoint, run.arch)
        _check_resume_settings(ckpt_path, checkpoint, config)
        if (out / "retrain.json").is_file():  # resuming would test it again and rewrite its model.pt and result
            raise RunDirError(f"{out} holds a finished retrain (its result: {out / 'retrain.json'}); nothing to resume; "
                              "pass --force to retrain again, or --out another folder")

    from uboost.checkpointing import Stopwatch, atomic_checkpoint_io, checkpoint_callbacks

    stopwatch = Stopwatch(checkpoint)
    pl.seed_everything(config.seed, workers=True, verbose=False)
    space, input_shape, spec = build_space(search_config)
    network = runs.freeze_arch(space, run.arch)
    # a space on torch's default initialization: the weights are redrawn from the seed alone, so they do not
    # depend on the space that found the network (a space with an initializer of its own keeps its weights)
    if getattr(space, "default_init", False):
        from uboost.networks import reinitialize

        reinitialize(network, config.seed)
    from uboost.quant import apply_run_precision

    precision = apply_run_precision(network, run.root)  # precision.json: trained quantization-aware
    quantized = precision is not None
    cost_model = cost_model if cost_model is not None else build_cost_model(search_config)
    report = None  # the price depends on the layers' shapes and bits, not on the weights: priced once
    if quantized:  # bits the accelerator cannot run (16 on BitFusion) are refused now, not after the training
        import copy

        with torch.random.fork_rng(devices=[]):  # pricing traces a copy; the training draws as before
            report = cost_model.evaluate(copy.deepcopy(network), input_shape)
    train, test = load_datasets(
        search_config.dataset, data_dir=search_config.data_dir, download=config.download,
        # the search's split (its seed): the retrain's own seed shuffles and initializes, it does not move test images
        # into the training set the search chose the network on; (H, W) as the space's input (not W x W)
        image_size=search_config.image_size, channels=input_shape[0], augment=config.augment, seed=search_config.seed,
    )
    if config.max_samples is not None and config.max_samples < len(train):
        train = torch.utils.data.Subset(train, range(config.max_samples))
    workers = loader_options(config.accelerator, config.devices).get("num_workers", 0)
    train_loader, test_loader = make_loaders(train, test, batch_size=config.batch_size, seed=config.seed, num_workers=workers)
    parallel = uses_ddp(devices=config.devices, num_nodes=config.num_nodes, strategy=config.strategy)
    ranks = config.devices * config.num_nodes if parallel else 1  # Lightning shards the train set over them
    steps = max(1, -(-len(train_loader) // ranks))  # optimizer steps per epoch on each rank
    module = _module(network, config, steps, run.arch, sync_dist=parallel, generators={"train": train_loader.generator},
                     loaders={"train": train_loader})
    if checkpoint is not None:
        _check_resume_network(ckpt_path, checkpoint, module)
    if rank_zero:
        _prepare_out(root, out, targets, ckpt_dir, resume, owner)

    callbacks = [*checkpoint_callbacks(ckpt_dir), *extra_callbacks]
    if progress and rank_zero:
        from pytorch_lightning.callbacks import RichProgressBar

        callbacks.append(RichProgressBar(leave=True))
    from uboost.loggers import ROWS_KEY, combine, register_folders, rows_in_checkpoint, run_csv_logger

    # what --logger writes, listed for --force
    register_logged = register_folders(root, out, fresh=not resume, owner=owner) if rank_zero else (lambda: None)
    callbacks.append(runs._registering_callback(register_logged))
    csv_logger = run_csv_logger(out, resume=resume and rank_zero, keep_rows=(checkpoint or {}).get(ROWS_KEY))
    loggers = combine(csv_logger, extra_logger)  # OUT/metrics.csv, hparams.yaml (+ --logger)
    callbacks.append(stopwatch.callback())
    if rank_zero:
        callbacks.append(rows_in_checkpoint(csv_logger))
    for each in loggers if rank_zero else ():
        each.log_hyperparams({**config.__dict__, "source": str(source)})
    trainer = pl.Trainer(
        max_epochs=config.epochs, accelerator=config.accelerator, logger=loggers,
        enable_checkpointing=True, enable_progress_bar=progress and rank_zero, enable_model_summary=False,
        callbacks=callbacks, default_root_dir=str(out), num_sanity_val_steps=0, deterministic="warn", log_every_n_steps=min(10, steps),
        plugins=[atomic_checkpoint_io()],
        **trainer_kwargs(devices=config.devices, num_nodes=config.num_nodes, strategy=config.strategy,
                         precision=config.precision, search=False),
    )
    again = (f"uboost retrain {source}{'' if out == run.root / runs.RETRAIN else f' --out {out}'}{_resume_flags(config)}"
             f"{_pricing_flags(run, search_config)} --resume")
    interrupted = RetrainInterrupted(f"retraining interrupted; a checkpoint is in {ckpt_dir}; continue with: {again}")
    from uboost.distributed.errors import fit_outcome

    try:
        with fit_outcome(trainer, interrupted, ckpt_dir):
            trainer.fit(module, train_loader, test_loader, ckpt_path=None if ckpt_path is None else str(ckpt_path),
                        weights_only=True)
    finally:
        register_logged()
    wait_for_children(trainer)
    if parallel:  # the whole test set once, on each rank alone (a DistributedSampler would pad it with repeats)
        test_acc = full_accuracy(network, test_loader, trainer.strategy.root_device)
    else:  # a Ctrl-C here (the closing test) is the same resumable interruption, not Lightning's bare exit 1
        with fit_outcome(trainer, interrupted, ckpt_dir):
            test_acc = float(trainer.validate(module, test_loader, verbose=False)[0]["test_acc"])
    network.cpu()
    report = report if report is not None else cost_model.evaluate(network, input_shape)
    result = RetrainResult(out=out, test_acc=test_acc, report=report, seconds=stopwatch.seconds(),
                           quantized=quantized)
    if not rank_zero:
        return result
    with atomic_path(out / "model.pt") as tmp:
        torch.save(network.state_dict(), tmp)
    from uboost.quant import precision_dict

    trained_at = {"precision": precision_dict(precision) if quantized else None}  # export checks model.pt against it
    write_json(out / "hardware.json", report.to_dict())
    write_json(out / "retrain.json", {**result.summary(), **trained_at, "config": config.__dict__, "source": str(source),
                                          "source_path": str(Path(source).resolve())})  # last
    register_logged()
    return result


def _prepare_out(root: Path, out: Path, targets: list[Path], ckpt_dir: Path, resume: bool, owner: str) -> None:
    """Register what the retrain will write in the manifest (as ``owner``'s), then create ``out`` (rank 0 only)."""
    runs.record(root, *targets, owner=owner)  # everything is validated: register, then write
    new_dirs = [d for d in (ckpt_dir.resolve(), out.resolve(), *out.resolve().parents) if d.is_relative_to(root.resolve()) and d != root.resolve() and not d.exists()]
    runs.record(root, dirs=new_dirs)
    out.mkdir(parents=True, exist_ok=True)
    if not resume:  # a fresh start must not leave an earlier retrain's checkpoint to resume later, nor its results
        for name in ("last.ckpt", "interrupted.ckpt"):  # beside this one's curves (a --force stopped midway was
            (ckpt_dir / name).unlink(missing_ok=True)  # read as the earlier retrain, finished, with its model)
        for name in ("retrain.json", "hardware.json", "model.pt"):
            (out / name).unlink(missing_ok=True)


def full_accuracy(network, loader, device) -> float:
    """Top-1 accuracy of ``network`` on every sample of ``loader`` exactly once (no sampler padding)."""
    import torch

    network = network.to(device).eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            correct += int((network(x).argmax(1) == y).sum())
            total += len(y)
    return correct / max(1, total)
