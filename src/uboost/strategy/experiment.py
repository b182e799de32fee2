"""Running one NNI experiment in-process, with NNI's loose ends tied (NNI-NOTES traps 7-9)."""

from __future__ import annotations

import functools
import logging
import os
import tempfile
from pathlib import Path

from uboost._quiet import quiet_nni
from uboost.exceptions import ConfigError

logger = logging.getLogger(__name__)


def run_experiment(space, evaluator, strategy, *, workdir: str | os.PathLike | None = None) -> dict:
    """Run ``NasExperiment(space, evaluator, strategy)`` to completion and return the top
    architecture as NNI's JSON-safe dict. The experiment is always stopped (NNI's ``run()``
    does not), and its files go to ``workdir`` when given."""
    quiet_nni()
    check_nni_lock()
    from nni.nas.experiment import NasExperiment

    experiment = NasExperiment(space, evaluator, strategy)
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
        experiment.config.experiment_working_directory = str(Path(workdir).resolve())
    try:
        experiment.run()
        return experiment.export_top_models(formatter="dict")[0]
    finally:
        try:
            experiment.stop()
        except Exception as exc:  # stopping must not hide the real error
            logger.debug("experiment.stop() failed: %s", exc)


def check_nni_lock() -> None:
    """Fail in one line, instead of waiting forever, where NNI 3.0 cannot take its own file lock.

    Every NNI experiment, one-shot included, records itself in NNI's experiment list under
    ``nni.tools.nnictl``'s ``SimplePreemptiveLock``, a subclass of ``filelock.SoftFileLock`` that
    keeps its file descriptor where filelock < 3.12 looked for it. From filelock 3.12 on the lock
    never counts as taken and ``acquire`` polls forever: every search hangs before its first step
    (NNI 3.0 pins ``filelock<3.12``; installing a package that needs a newer one upgrades it with
    only a warning from pip). The lock is tried once per process on a private temporary file."""
    error = _nni_lock_error()
    if error:
        raise ConfigError(error)


@functools.lru_cache(maxsize=1)
def _nni_lock_error() -> str:
    import filelock
    from nni.tools.nnictl import common_utils

    with tempfile.TemporaryDirectory(prefix="uboost-lock-") as folder:
        lock = common_utils.get_file_lock(os.path.join(folder, "probe"), stale=2)
        try:
            lock.acquire(timeout=1.0)  # uncontended: a working lock is taken at the first try
        except filelock.Timeout:
            version = getattr(filelock, "__version__", "?")
            return (f"NNI 3.0 cannot take its experiment lock with filelock {version} (every search would wait forever); "
                    "install the version NNI supports: pip install 'filelock<3.12'")
        lock.release()
    return ""
