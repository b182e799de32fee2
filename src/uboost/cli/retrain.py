"""``uboost retrain``: train a searched architecture from scratch."""

# No `from __future__ import annotations`: typer would eval every option's string annotation at start-up.
from pathlib import Path
from typing import Annotated, Optional

import typer

from uboost.cli._common import Flag, console, human, latency_text, note_unreadable_checkpoints

Opt = typer.Option


def retrain(
    run: Annotated[Path, typer.Argument(help="run directory or arch.json")],
    dataset: Annotated[Optional[str], Opt(help="digits | cifar10 | cifar100 | folder:PATH [default: the search's dataset]")] = None,
    data_dir: Annotated[Optional[str], Opt("--data-dir", help="where the dataset lives [default: the search's, else ~/.cache/uboost/data]")] = None,
    download: Annotated[bool, Flag("--download", help="allow downloading the dataset (off: nothing is downloaded)")] = False,
    epochs: Annotated[int, Opt(help="training epochs")] = 10,
    batch_size: Annotated[int, Opt("--batch-size", help="training batch size")] = 64,
    lr: Annotated[float, Opt("--lr", help="SGD learning rate (peak of the schedule)")] = 0.05,
    schedule: Annotated[str, Opt(help="cosine | onecycle")] = "cosine",
    array: Annotated[Optional[str], Opt(help="price the result on this array ROWSxCOLS [default: the search's]")] = None,
    dataflow: Annotated[Optional[str], Opt(help="ws | os | is [default: the search's]")] = None,
    space: Annotated[Optional[str], Opt(help="for a bare arch.json: the space it came from [default: the run's]")] = None,
    seed: Annotated[int, Opt(help="random seed: weight initialization and data order (the test split is the search's)")] = 0,
    max_samples: Annotated[Optional[int], Opt("--max-samples", help="use at most this many training images [default: all]")] = None,
    out: Annotated[Optional[Path], Opt(help="output directory [default: RUN/retrain]")] = None,
    accelerator: Annotated[str, Opt(help="auto | cpu | gpu | mps (auto: a GPU where there is one)")] = "auto",
    devices: Annotated[int, Opt(help="devices per node, one process each (DDP when more than one)")] = 1,
    num_nodes: Annotated[int, Opt("--num-nodes", help="nodes (under torchrun, SLURM or MASTER_ADDR/NODE_RANK)")] = 1,
    strategy: Annotated[str, Opt(help="auto | ddp (auto: DDP on more than one device)")] = "auto",
    precision: Annotated[str, Opt(help="32-true | bf16-mixed | 16-mixed (GPU)")] = "32-true",
    resume: Annotated[bool, Flag("--resume", help="continue an interrupted retrain from its last checkpoint")] = False,
    force: Annotated[bool, Flag("--force", help="replace a finished (or start over an interrupted) retrain in --out")] = False,
    logger: Annotated[Optional[str], Opt("--logger", help="also log to tensorboard | wandb | mlflow (installed separately); metrics.csv is always written [default: csv]")] = None,
) -> None:
    """Train a searched architecture from scratch and report accuracy, cycles, latency, utilization."""
    from uboost.exceptions import ConfigError
    from uboost.retrain import RetrainConfig, retrain as run_retrain
    from uboost.runs import load_run, network_config
    from uboost.search import SearchConfig, build_cost_model

    cfg = RetrainConfig(
        dataset=dataset, data_dir=data_dir, download=download, epochs=epochs, batch_size=batch_size,
        learning_rate=lr, schedule=schedule, seed=seed, accelerator=accelerator, devices=devices, max_samples=max_samples,
        num_nodes=num_nodes, strategy=strategy, precision=precision,
    )
    artifacts = load_run(run)
    search_cfg = SearchConfig.from_dict(network_config(artifacts)) if artifacts.config else None  # at its chosen point
    if search_cfg is not None and space is not None and space != search_cfg.space:
        raise ConfigError(f"--space {space} is for a bare arch.json; {run} was searched on {search_cfg.space!r}: drop --space")
    if search_cfg is None and space is not None:
        search_cfg = SearchConfig(space=space)  # the space's own default options
    if search_cfg is not None and (array or dataflow):
        search_cfg = search_cfg.replace(**{k: v for k, v in (("array", array), ("dataflow", dataflow)) if v})
    cost_model = build_cost_model(search_cfg) if search_cfg is not None else None
    from uboost.loggers import check_kind, create as create_logger

    check_kind(logger)
    target = out if out is not None else artifacts.root / "retrain"
    from uboost.distributed import is_rank_zero

    rank_zero = is_rank_zero(cfg)  # a DDP retrain's other ranks re-run this command: rank 0 checks and locks the folder
    if not resume and not force and rank_zero:
        from uboost.runs import owner_root

        _refuse_replacing(target, owner_root(target, artifacts.root))
    if resume and rank_zero:
        note_unreadable_checkpoints(target)
    result = run_retrain(run, cfg, out=out, search_config=search_cfg, progress=True, cost_model=cost_model, resume=resume,
                         logger=create_logger(logger, target))
    if not rank_zero:  # the other ranks of a DDP retrain print nothing
        return
    from rich.table import Table

    s = result.summary()
    table = Table(title=f"retrained: {result.out}", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("test accuracy", f"{100 * s['test_acc']:.1f}%")
    table.add_row(f"cycles on {s['array']} {s['dataflow']}", f"{s['cycles']:,.0f}")
    table.add_row("latency", latency_text(s["latency_ms"]))
    table.add_row("utilization", f"{100 * s['utilization']:.1f}%")
    table.add_row("MACs", human(s["macs"]))
    console.print(table)
    console.print(f"saved {result.out / 'model.pt'} (state_dict; torch.load(..., weights_only=True))")


def _refuse_replacing(out: Path, lock_root: Path) -> None:
    """A retrain took minutes to hours: replacing one (or its resumable checkpoint) needs --force."""
    from uboost import runs
    from uboost.exceptions import RunDirError

    from uboost._lock import in_use, in_use_error

    holder = in_use(lock_root) if lock_root.is_dir() else None  # the folder a retrain there locks
    if holder is not None:  # a retrain running there: not a finished or an interrupted one
        raise in_use_error(lock_root, holder)
    if (out / "retrain.json").is_file():
        raise RunDirError(f"{out} holds a finished retrain; pass --force to replace it, or --out another folder")
    if out.is_dir() and not (out / runs.CONFIG).exists() and runs.latest_checkpoint(out) is not None:  # (a search's own
        # checkpoints: the retrain refuses that folder itself, saying why)
        raise RunDirError(f"{out} holds an interrupted retrain; continue it with --resume, or pass --force to start over")
