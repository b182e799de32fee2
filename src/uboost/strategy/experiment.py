"""Running one NNI experiment in-process, with NNI's loose ends tied (NNI-NOTES traps 7-9)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from uboost._quiet import quiet_nni

logger = logging.getLogger(__name__)


def run_experiment(space, evaluator, strategy, *, workdir: str | os.PathLike | None = None) -> dict:
    """Run ``NasExperiment(space, evaluator, strategy)`` to completion and return the top
    architecture as NNI's JSON-safe dict. The experiment is always stopped (NNI's ``run()``
    does not), and its files go to ``workdir`` when given."""
    quiet_nni()
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
