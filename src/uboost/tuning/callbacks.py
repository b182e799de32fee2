"""Lightning callbacks that run inside a trial's search process and talk to the tuner over its pipe.

- Pruning is Optuna's own ``optuna_integration.PyTorchLightningPruningCallback`` on ``val_acc``.
  It is given a :class:`PipeTrial`: ``report`` and ``should_prune`` are answered by the parent,
  which holds the real ``optuna.Trial`` (so the child never opens the storage, and a study in
  memory prunes as well as one in a database). When the pruner says so, the callback raises
  ``optuna.TrialPruned`` in the child and the search stops at that epoch.
- :func:`progress_callback` sends the epoch, validation accuracy and expected latency as the search
  goes, for the live status line of each running trial.

Messages on the pipe are tuples: ``("report", value, step)``, ``("should_prune",)`` (answered with a
bool), ``("progress", {...})``, and finally ``("result", {...})`` from the trial process itself.
"""

from __future__ import annotations

import time
from typing import Any

PROGRESS_EVERY_S = 1.0
"""Within an epoch, send the running latency at most this often (epoch ends are always sent)."""


class PipeTrial:
    """The part of ``optuna.Trial`` the Lightning pruning callback uses, forwarded to the parent."""

    def __init__(self, conn, number: int) -> None:
        self._conn, self.number = conn, number

    def report(self, value: float, step: int) -> None:
        self._conn.send(("report", float(value), int(step)))

    def should_prune(self) -> bool:
        self._conn.send(("should_prune",))
        return bool(self._conn.recv())


def pruning_callback(trial: PipeTrial, monitor: str = "val_acc"):
    """Optuna's ``PyTorchLightningPruningCallback``, usable by NNI's ``pytorch_lightning`` trainer.

    optuna-integration subclasses ``lightning.pytorch.Callback``; NNI 3 trains with the
    ``pytorch_lightning`` package, whose trainer checks for its own ``Callback``. The mixin is both.
    """
    import pytorch_lightning as pl
    from optuna_integration import PyTorchLightningPruningCallback

    class PruningCallback(PyTorchLightningPruningCallback, pl.Callback):
        pass

    return PruningCallback(trial, monitor=monitor)  # type: ignore[arg-type] - duck-typed trial


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def progress_callback(conn):
    """Sends ``("progress", {"epoch", "epochs", "val_acc", "latency_ms"})`` from the training loop."""
    import pytorch_lightning as pl

    class Progress(pl.Callback):
        def __init__(self) -> None:
            self.val_acc: float | None = None
            self.sent = 0.0

        def _send(self, trainer) -> None:
            metrics = trainer.callback_metrics
            conn.send(("progress", {
                "epoch": int(trainer.current_epoch), "epochs": int(trainer.max_epochs or 0),
                "val_acc": self.val_acc, "latency_ms": _number(metrics.get("hw/latency_ms")),
            }))
            self.sent = time.monotonic()

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            self._send(trainer)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if time.monotonic() - self.sent >= PROGRESS_EVERY_S:
                self._send(trainer)

        def on_validation_end(self, trainer, pl_module) -> None:
            if not trainer.sanity_checking:
                self.val_acc = _number(trainer.callback_metrics.get("val_acc"))
                self._send(trainer)

    return Progress()
