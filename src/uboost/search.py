"""One U-Boost search as a library call: data, space, strategy, run directory.

``run_search(SearchConfig(...), "runs/demo")`` is what ``uboost search`` and each Optuna trial
run. Everything a later step needs is written to the run directory (see :mod:`uboost.runs`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from uboost.exceptions import ConfigError, Interrupted, SearchError
from uboost.io import write_json
from uboost import runs
from uboost._search_display import (  # noqa: F401  (progress_metrics and search_curves re-exported)
    draw_plots, progress_bar, progress_metrics, resumed_metrics_callback, search_curves,
)
from uboost.search_config import (  # noqa: F401  (re-exported: the public names stay here)
    COST_MODES, SAMPLING_MODES, SearchConfig, build_cost_model, build_space, check_pins, refuse_choiceless,
)

if TYPE_CHECKING:  # pragma: no cover  (uboost.hardware imports torch: loaded when a config is used)
    from uboost.hardware import NetworkCost

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchResult:
    run_dir: Path
    arch: dict
    hardware: NetworkCost
    val_acc: float | None
    latency_ref_ms: float | None
    seconds: float
    budget: dict = field(default_factory=dict)  # target, expected latency, argmax latency, projected?

    energy_ref_uj: float | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "val_acc": self.val_acc,
            "latency_ms": self.hardware.latency_ms,
            "cycles": self.hardware.cycles,
            "utilization": self.hardware.utilization,
            "macs": self.hardware.macs,
            "energy_uj": self.hardware.energy_uj,
            "energy_breakdown_uj": self.hardware.energy_breakdown_uj,
            "latency_ref_ms": self.latency_ref_ms,
            "energy_ref_uj": self.energy_ref_uj,
            "search_seconds": self.seconds,
            **self.budget,
        }


class SearchInterrupted(SearchError, Interrupted):
    """Ctrl-C during the search; a checkpoint was left behind (the CLI exits 130)."""


def run_search(
    config: SearchConfig,
    out: str | os.PathLike,
    *,
    resume: bool = False,
    force: bool = False,
    progress: bool = False,
    callbacks: list | None = None,
    logger=None,
    cost_model=None,
) -> SearchResult:
    """Search, write the run directory, and return the derived architecture with its cost.

    Metrics go to a Lightning ``CSVLogger`` in the run directory (``metrics.csv``,
    ``hparams.yaml``); ``logger`` adds any Lightning logger (or a list of them) beside it.

    With ``devices x num_nodes > 1`` (or ``strategy="ddp"``) the search is data-parallel
    (:mod:`uboost.distributed`): every process runs this call, and only global rank 0 locks and
    writes ``out``. On ``resume`` the launch settings (devices, nodes, strategy, precision) are
    this call's, the rest is the run's stored config: a run resumes on another number of devices.
    ``cost_model``: an instance priced on the config's accelerator to use instead of building one
    (the tuner passes its cached model, :mod:`uboost.tuning.cost_cache`).
    """
    from uboost.distributed import check_launch, is_rank_zero

    if config is None:  # a resume may take everything from the run itself
        if not resume:
            raise ConfigError("run_search needs a SearchConfig (only a resume reads the run's own config.json)")
        config = SearchConfig.from_dict(runs.read_json(Path(out) / runs.CONFIG, "run config"))
    check_launch(accelerator=config.accelerator, devices=config.devices, num_nodes=config.num_nodes, precision=config.precision,
                 strategy=config.strategy)
    from uboost.search_config import refuse_tableless_lookup

    refuse_tableless_lookup(config, cost_model)
    kwargs = dict(resume=resume, force=force, progress=progress, callbacks=callbacks, logger=logger, cost_model=cost_model)
    if is_rank_zero(config):
        return _locked_search(config, out, **kwargs)
    return _search(config, out, rank_zero=False, **kwargs)


def _search(config: SearchConfig, out, *, resume: bool, force: bool, progress: bool, callbacks: list | None, logger,
            rank_zero: bool = True, cost_model=None) -> SearchResult:
    from uboost._quiet import quiet_nni

    quiet_nni()  # before NNI and Lightning are imported: their import-time warnings are noise too
    import pytorch_lightning as pl
    import torch
    from nni.nas.evaluator.pytorch import Classification, DataLoader

    from uboost.data import load_datasets
    from uboost.distributed import LAUNCH_FIELDS, loader_options, log_every_n_steps
    from uboost.distributed.lightning import trainer_kwargs, wait_for_children
    from uboost.strategy import UBoost, run_experiment
    from uboost.strategy.experiment import check_nni_lock

    # refuse before anything is loaded or written (rank 0 only: the others never touch the directory)
    out = runs.check_run_dir(out, resume=resume, force=force, owner=runs.SEARCH) if rank_zero else Path(out)
    ckpt_path = checkpoint = None
    if resume:
        launch = {k: getattr(config, k) for k in LAUNCH_FIELDS}
        config = SearchConfig.from_dict(runs.read_json(out / runs.CONFIG, "run config")).replace(**launch)
        ckpt_path = runs.latest_checkpoint(out)
        if ckpt_path is None:
            raise SearchError(f"no checkpoint in {out / runs.CHECKPOINTS} to resume from; start over with --force")
        checkpoint = runs.check_checkpoint(ckpt_path)

    from uboost.accelerators import check_accelerator

    check_accelerator(config.accelerator, config.devices)  # Lightning would find out after config.json is written
    check_nni_lock()  # an NNI that would hang at its first step, said before anything is written
    from uboost.checkpointing import Stopwatch, atomic_checkpoint_io, checkpoint_callbacks

    stopwatch = Stopwatch(checkpoint)
    pl.seed_everything(config.seed, workers=True, verbose=False)
    space, input_shape, spec = build_space(config)
    if resume:  # before Lightning loads it (a mismatch there is a traceback, and an exception checkpoint)
        _check_checkpoint_matches(ckpt_path, checkpoint, config)
    cost_model = cost_model if cost_model is not None else build_cost_model(config)
    train, test = load_datasets(
        config.dataset, data_dir=config.data_dir, download=config.download,
        image_size=config.image_size, channels=input_shape[0], seed=config.seed,  # (H, W) as the space's input
    )
    if config.max_samples is not None and config.max_samples < len(train):
        train = torch.utils.data.Subset(train, range(config.max_samples))
        test = torch.utils.data.Subset(test, range(min(len(test), max(config.max_samples // 4, config.batch_size))))
    if not resume:
        from uboost.strategy.uboost import weight_share

        weight_share(len(train), config.data_split)  # e.g. --max-samples 1: refused before anything is written
        refuse_choiceless(config, space)
        check_pins(config)  # a pin matching no layer: said before anything is written
        if rank_zero:  # and a budget no network of the space meets
            from uboost.strategy.reachable import check_budget_reachable

            check_budget_reachable(config, cost_model)
    if rank_zero and not resume:  # everything is validated: only now clear an earlier run (--force) and write
        runs.prepare_run_dir(out, force=force)
        write_json(out / runs.CONFIG, config.to_dict())
    generator = torch.Generator().manual_seed(config.seed)
    train_loader = DataLoader(train, batch_size=config.batch_size, shuffle=True, generator=generator, **loader_options(config.accelerator, config.devices))
    test_loader = DataLoader(test, batch_size=config.batch_size, **loader_options(config.accelerator, config.devices))

    ckpt_dir = out / runs.CHECKPOINTS
    from uboost.loggers import ROWS_KEY, combine, rows_in_checkpoint, run_csv_logger

    csv_logger = run_csv_logger(out, resume=resume and rank_zero, keep_rows=(checkpoint or {}).get(ROWS_KEY))
    loggers = combine(csv_logger, logger)
    for each in loggers if rank_zero else ():
        each.log_hyperparams(config.to_dict())
    trainer_callbacks = [
        *checkpoint_callbacks(ckpt_dir),
        stopwatch.callback(),
        *([rows_in_checkpoint(csv_logger)] if rank_zero else []),
        resumed_metrics_callback(out / runs.METRICS),
        *(callbacks or []),
    ]
    if progress and rank_zero:
        trainer_callbacks.append(progress_bar())
    evaluator = Classification(
        train_dataloaders=train_loader,
        val_dataloaders=test_loader,
        num_classes=spec.num_classes,
        learning_rate=config.learning_rate,
        weight_decay=3e-4,
        max_epochs=config.epochs,
        accelerator=config.accelerator,
        callbacks=trainer_callbacks,
        enable_progress_bar=progress and rank_zero,
        enable_model_summary=False,
        logger=loggers,
        log_every_n_steps=log_every_n_steps(config.accelerator),  # CPU: every step (few, slow); GPU: every 25th
        default_root_dir=str(out),
        num_sanity_val_steps=0,
        plugins=[atomic_checkpoint_io()],
        **trainer_kwargs(devices=config.devices, num_nodes=config.num_nodes, strategy=config.strategy,
                         precision=config.precision, search=True),
    )
    if ckpt_path is not None:
        evaluator.fit_kwargs["ckpt_path"] = str(ckpt_path)
        evaluator.fit_kwargs["weights_only"] = True  # Lightning's own load runs no code from the file either
    strategy = UBoost(
        cost_model=cost_model,
        latency_weight=config.latency_weight,
        utilization_weight=config.utilization_weight,
        utilization_scale=config.utilization_scale,
        target_latency_ms=config.target_latency_ms,
        energy_weight=config.energy_weight,
        target_energy_uj=config.target_energy_uj,
        operating_point=config.operating_point,
        budget_lr=config.budget_lr,
        budget_floor=config.budget_floor,
        budget_commit=config.budget_commit,
        entropy_weight=config.entropy_weight,
        cost_mode=config.cost_mode,
        temperature=config.temperature,
        arch_lr=config.arch_lr,
        data_split=config.data_split,
        seed=config.seed,
        sampling=config.sampling,
        score_weight=config.score_weight,
        score_on=config.score_on,
        sharpen=config.sharpen,
        gumbel_temperature=config.gumbel_tau,
        warmup_epochs=config.warmup_epochs,
        **(config.bits_options() or {}),
    )
    trainer = evaluator.trainer
    interrupted = SearchInterrupted(f"search interrupted; a checkpoint is in {ckpt_dir}; continue with: uboost search --out {out} --resume")
    from uboost.distributed.errors import fit_outcome

    with _nni_workdir(out, rank_zero) as workdir, fit_outcome(trainer, interrupted, ckpt_dir), _nni_home(workdir):
        arch = run_experiment(space, evaluator, strategy, workdir=workdir)
    wait_for_children(trainer)
    seconds = stopwatch.seconds()  # over every session of the run

    budget = _final_choices(out, strategy, arch, config, write=rank_zero)
    arch, precision = _precision(strategy, budget.pop("arch"))
    fresh, _, _ = build_space(config)
    derived = runs.freeze_arch(fresh, arch)
    if precision is not None:  # the network at its searched bits: priced at them
        from uboost.quant import apply_precision

        apply_precision(derived, precision)
    point = budget.get("operating_point")
    if point is not None:  # priced where it runs: the operating point chosen with the network
        from uboost.strategy.projection import models_at_points

        cost_model = models_at_points(cost_model)[point["index"]]
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
        energy_ref_uj=strategy.energy_ref_uj,
    )
    if rank_zero:  # arch.json last: profile/retrain/export read a directory with it as a finished run
        if precision is not None:
            from uboost.quant import precision_dict

            write_json(out / runs.PRECISION, precision_dict(precision))
        write_json(out / runs.HARDWARE, report.to_dict())
        runs.write_layer_table(out / "hardware.txt", report, config.space)  # before the files that say "finished"
        write_json(out / runs.RESULT, result.summary())
        draw_plots(out, report)
        write_json(out / runs.ARCH, arch)
    return result


_locked_search = runs.locked_run(_search)


@contextlib.contextmanager
def _nni_workdir(out: Path, rank_zero: bool):
    """NNI's experiment files: ``OUT/nni`` on rank 0, a temporary folder removed afterwards elsewhere."""
    if rank_zero:
        yield out / runs.NNI
        return
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="uboost-rank-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _nni_home(folder: Path):
    """NNI lists every experiment in ``~/nni-experiments/.experiment`` (its ``Experiments``
    registry binds that path at import, NNI-NOTES trap 7): keep that list in the run directory."""
    import nni.nas.experiment.experiment as nas_experiment

    original = nas_experiment.Experiments
    folder.mkdir(parents=True, exist_ok=True)
    nas_experiment.Experiments = functools.partial(original, home_dir=str(folder.resolve()))
    try:
        yield
    finally:
        nas_experiment.Experiments = original


def _check_checkpoint_matches(path: Path, checkpoint: dict, config: SearchConfig) -> None:
    """Refuse, in one line, a checkpoint whose supernet tensors are not this run's."""
    from uboost.strategy import UBoost

    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        return  # runs.check_checkpoint refuses those; Lightning's own weights_only load is the last guard

    prefix = "training_module._model."
    space, _, _ = build_space(config)  # a fresh space: mutating it must not touch the one searched
    strategy = UBoost(sampling=config.sampling, **(config.bits_options() or {}))
    expected = {prefix + k: v for k, v in strategy.mutate_model(space).state_dict().items()  # (the bits' noise averages,
                if prefix + k in checkpoint["state_dict"] or ".uboost_quant.noise_" not in k}  # newer: zero when missing)
    differ = runs.tensors_differ(expected, checkpoint["state_dict"], prefix)
    if differ:
        key, found, want = differ[0]
        raise SearchError(
            f"checkpoint {path} does not belong to this run's {config.space} supernet ({len(differ)} tensors differ, "
            f"e.g. {key}: {found} in the checkpoint, {want} here); "
            "start over with --force")


def _final_choices(out: Path, strategy, arch: dict, config: SearchConfig, *, write: bool = True) -> dict[str, Any]:
    """Write the final alphas and probabilities (``write``); with a budget, project the architecture onto it.

    Returns ``{"arch": the architecture to export, ...facts for result.json}``.
    """
    from uboost.strategy.architecture import alphas_to_dict, probabilities_dict
    from uboost.strategy.final_export import priced_facts

    hardware_loss = strategy.hardware_loss
    facts: dict[str, Any] = {"arch": arch}
    if not hardware_loss.attached:  # no training step ran in this process (nothing to price)
        return facts
    # NNI's export (UBoost.list_models) projected the argmax already: its argmax (bits included), the projection and
    # what it did, not solved a second time
    arch, projected, done = strategy.exported_projection
    facts["arch"] = arch
    tau = hardware_loss.distribution_tau  # the distribution the hardware term priced last: softmax(alpha / tau)
    if write:
        write_json(out / runs.ALPHAS, alphas_to_dict(hardware_loss.supernet[0]))
        write_json(out / runs.PROBABILITIES, probabilities_dict(hardware_loss.choices, tau=tau))
    facts["distribution_tau"] = tau
    point = done.get("operating_point") if done else None  # operating point auto: priced at the chosen one
    facts.update(priced_facts(hardware_loss, None if point is None else point["index"]))
    argmax_ms = facts["argmax_latency_ms"]
    if config.target_latency_ms is not None:
        facts["target_latency_ms"] = config.target_latency_ms
        facts["budget_multiplier"] = float(hardware_loss.multiplier)
    if config.target_energy_uj is not None:
        facts["target_energy_uj"] = config.target_energy_uj
        facts["energy_multiplier"] = float(hardware_loss.energy_multiplier)
    if done:  # projected onto the budgets (and the operating point), exactly
        facts.update({k: v for k, v in done.items() if k != "projected_latency_ms"})
        if done["projected"]:
            logger.info("argmax network %.6g ms vs budgets: projected to %.6g ms", argmax_ms, done["projected_latency_ms"])
        facts["arch"] = projected
    if config.widen == "all" or strategy.bits_space is not None:  # raised where that costs nothing (the frontier's rule)
        from uboost.strategy.widening import widen_export

        with_energy = bool(hardware_loss.energy_weight) or config.target_energy_uj is not None
        widened = widen_export(config.widen, hardware_loss.projector(), hardware_loss.supernet[0], facts["arch"],
                               bits=strategy.bits_space is not None, with_energy=with_energy)
        free = set()  # the bits of candidates the exported network does not keep are free values: not changes
        if strategy.bits_space is not None:
            from uboost.strategy.precision import free_bits_labels

            free = free_bits_labels(hardware_loss.supernet[0], widened)
        facts["widened"] = sorted(k for k in widened if widened[k] != facts["arch"].get(k) and k not in free)
        facts["widened_values"] = {k: [facts["arch"].get(k), widened[k]] for k in facts["widened"]}  # label: [from, to]
        facts["arch"] = widened
    return facts


def _precision(strategy, arch: dict) -> tuple[dict, dict | None]:
    """``(NNI's architecture, bits per frozen layer or None)`` of the exported architecture."""
    if strategy.bits_space is None:
        return arch, None
    from uboost.strategy.precision import split_precision

    return split_precision(strategy.supernet, arch)
