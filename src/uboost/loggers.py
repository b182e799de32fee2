"""Lightning loggers for searches and retraining.

Every run keeps its metrics in a standard Lightning ``CSVLogger`` writing ``metrics.csv`` and
``hparams.yaml`` straight into the run directory (integer ``epoch``/``step`` columns, one row per
step and per validation); ``search.png`` and ``uboost tune`` read that file. Any other Lightning
logger can be added beside it: ``run_search(..., logger=TensorBoardLogger(...))`` or
``uboost search --logger tensorboard|wandb|mlflow`` (whichever is installed).
"""

from __future__ import annotations

import csv
import io
import importlib.util
import os
from pathlib import Path
from typing import Any

from uboost.exceptions import ConfigError

KINDS = ("csv", "tensorboard", "wandb", "mlflow")
_NEEDS = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",), "mlflow": ("mlflow",)}


def check_kind(kind: str | None) -> str | None:
    """Validate ``--logger`` before anything is written: one line when it is unknown or not installed."""
    if kind is None or kind == "csv":
        return kind
    if kind not in KINDS:
        raise ConfigError(f"unknown logger {kind!r}; expected one of: {', '.join(KINDS)}")
    if not any(importlib.util.find_spec(m) is not None for m in _NEEDS[kind]):
        raise ConfigError(f"--logger {kind} needs the {_NEEDS[kind][0]} package (pip install {_NEEDS[kind][0]}); "
                          f"metrics.csv is always written")
    return kind


def create(kind: str | None, out: str | os.PathLike):
    """The Lightning logger ``--logger KIND`` names, writing under run directory ``out``
    (None for ``csv``: the run's own CSVLogger is always there)."""
    kind = check_kind(kind)
    if kind in (None, "csv"):
        return None
    out = Path(out)
    if kind == "tensorboard":
        from pytorch_lightning.loggers import TensorBoardLogger

        return TensorBoardLogger(save_dir=str(out), name="tensorboard", version="")
    if kind == "wandb":
        from pytorch_lightning.loggers import WandbLogger

        return WandbLogger(save_dir=str(out), project="uboost", name=out.name)
    from pytorch_lightning.loggers import MLFlowLogger

    return MLFlowLogger(experiment_name="uboost", run_name=out.name, tracking_uri=(out / "mlruns").resolve().as_uri())


def register_folders(root: str | os.PathLike, out: str | os.PathLike, *, fresh: bool, owner: str | None = None):
    """For an output ``out`` whose manifest lives in ``root`` (a retrain: ``root`` is the run when
    ``out`` lies inside it): returns ``register()``, which lists in that manifest every file and
    folder the optional loggers have written under ``OUT/tensorboard|wandb|mlruns`` since now, so
    ``--force`` on the run removes them. Call it at each epoch end and at the end (as
    :func:`uboost.runs.locked_run` does for a search). ``fresh``: first remove what an earlier run
    of uboost wrote there for the same ``owner`` (a user's file, another command's, stays)."""
    from uboost import _manifest
    from uboost.runs import LOGGER_FOLDERS  # where create()'s loggers write

    root = Path(root)
    folders = [_manifest._relative(root, Path(out).resolve() / name) for name in LOGGER_FOLDERS]
    if fresh:
        _manifest.clear_under(root, *folders, owner=owner)
    before = _manifest.snapshot(root, *folders)

    def register() -> None:
        _manifest.record_new(root, before, *folders, owner=owner)

    return register


ROWS_KEY = "uboost_metrics_rows"  # in a checkpoint: how many metrics.csv rows had been logged when it was saved


def run_csv_logger(out: str | os.PathLike, *, resume: bool = False, keep_rows: int | None = None):
    """A ``CSVLogger`` writing ``OUT/metrics.csv`` and ``OUT/hparams.yaml``. On ``resume`` the rows
    already recorded are kept (Lightning's writer would delete an existing metrics file): the first
    ``keep_rows`` of them, those logged before the checkpoint being resumed was saved (the steps
    after it are trained, and logged, again)."""
    from uboost._csv_logger import RunCSVLogger

    path = Path(out) / "metrics.csv"
    rows = read_metrics(path) if resume and path.is_file() else []
    if keep_rows is not None:
        rows = rows[:keep_rows]
    logger = RunCSVLogger(str(out), rows=rows)
    if rows:
        logger.experiment  # noqa: B018 - created now: the kept rows replace the file (atomically)
    return logger


def rows_in_checkpoint(csv_logger):
    """A callback that stores in every checkpoint how many rows ``csv_logger`` had logged (see
    :func:`run_csv_logger`'s ``keep_rows``)."""
    import pytorch_lightning as pl

    class RowsInCheckpoint(pl.Callback):
        def on_save_checkpoint(self, trainer, pl_module, checkpoint):
            writer = csv_logger.experiment
            path = Path(writer.metrics_file_path)
            checkpoint[ROWS_KEY] = (len(read_metrics(path)) if path.is_file() else 0) + len(writer.metrics)

    return RowsInCheckpoint()


def _number(text: str) -> Any:
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a ``metrics.csv`` (empty cells left out; integers stay integers); a damaged file
    is one line naming it, never a traceback."""
    from uboost.exceptions import RunDirError

    try:
        with open(path, encoding="utf-8", newline="") as f:
            text = f.read()
        if text and not text.endswith("\n"):  # a torn append (a kill or a full disk mid-row): its row is partial
            text = text[: text.rfind("\n") + 1]
        return [{k: _number(v) for k, v in row.items() if v not in ("", None) and k is not None}
                for row in csv.DictReader(io.StringIO(text, newline=""))]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise RunDirError(f"{path} is damaged ({type(exc).__name__}); move it away to resume without its earlier rows") from None


def combine(run_logger, extra) -> list:
    """The run's CSV logger plus whatever the caller passed (one logger, a list, or None)."""
    if extra is None or extra is False:
        extras = []
    elif isinstance(extra, (list, tuple)):
        extras = list(extra)
    else:
        extras = [extra]
    return [run_logger, *extras]
