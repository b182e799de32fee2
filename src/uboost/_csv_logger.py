"""Lightning's ``CSVLogger`` with a ``metrics.csv`` that a kill or a full disk cannot empty.

Lightning's writer removes an existing ``metrics.csv`` when it is created, and rewrites the whole file in place
whenever a new column appears (a validation metric at the first epoch's end): a kill or a full disk in either
moment lost every row logged before it. Here the resumed rows and every rewrite replace the file atomically; rows
are still appended when no column is new (a torn append damages only its own last line, which
:func:`uboost.loggers.read_metrics` leaves out). Imported only where a command trains (it imports Lightning).
"""

from __future__ import annotations

import csv
import io
import os

from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment

from uboost.io import write_text


class _Writer(ExperimentWriter):
    def __init__(self, log_dir: str, rows: list[dict]) -> None:
        self._resumed = rows  # the rows a resume keeps: they replace the file; none: it is removed, as Lightning does
        super().__init__(log_dir)
        if rows:  # the kept rows, in place of the file before any step is logged again
            self.metrics_keys = sorted(set().union(*rows))
            self._replace(rows)

    def _check_log_dir_exists(self) -> None:
        if not self._resumed and os.path.isfile(self.metrics_file_path):  # a fresh run, or a resume that keeps no row
            os.remove(self.metrics_file_path)

    def _replace(self, rows: list[dict]) -> None:
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=self.metrics_keys)
        writer.writeheader()
        writer.writerows(rows)
        write_text(self.metrics_file_path, text.getvalue())

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        from uboost.loggers import read_metrics

        self._replace(read_metrics(self.metrics_file_path))


class RunCSVLogger(CSVLogger):
    """``CSVLogger(save_dir, name="", version="")`` writing through :class:`_Writer`; ``rows``: a resume's kept rows."""

    def __init__(self, save_dir: str, rows: list[dict] | None = None) -> None:
        super().__init__(save_dir=save_dir, name="", version="")
        self._rows = rows

    @property
    @rank_zero_experiment
    def experiment(self) -> _Writer:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _Writer(self.log_dir, self._rows or [])
        return self._experiment
