"""The Optuna outer loop: each trial is one fresh U-Boost search over lambda, T and the array.

Optuna proposes the latency weight lambda (log scale), the smooth-ceiling temperature T, the array's
rows and cols (and optionally the dataflow and the utilization weight); every trial runs a short
search (plus an optional short retrain) and records accuracy, cycle-exact latency and utilization.

NNI keeps process-global state and a strategy mutates its space in place (NNI-NOTES trap 8), so every
trial's search runs in a fresh child process. By default the children are forked from a
``forkserver`` that has already imported torch, Lightning and NNI: a trial then starts in well under
a second instead of paying those imports (about 10 s here) again; ``start_method="spawn"`` is the
slower, everywhere-available alternative. Parallelism comes from several processes (for example
several ``uboost tune``) on one storage, never from threads.

Use it from your own code (trial children are new processes, so guard the script's entry point
as multiprocessing requires)::

    from uboost import UBoostError
    from uboost.tuning import TuneSpace, create_study, objective

    if __name__ == "__main__":
        study = create_study("runs/tune")                 # NSGA-II, journal file in runs/tune
        study.optimize(
            lambda t: objective(t, space="lenet", dataset="digits", epochs=2, out_root="runs/tune",
                                tune_space=TuneSpace(rows=(8, 16), cols=(8, 16, 32), area_budget=256)),
            n_trials=8, catch=(UBoostError,),
        )

or simply :func:`run_study`. A trial that cannot run (an array over the area budget, a diverged
search, a cost model that refuses the network) raises :class:`TrialFailed`, a
:class:`~uboost.exceptions.UBoostError`: pass ``catch=(UBoostError,)`` so the study records it as
FAIL and goes on.

The package follows the loop's seams: :mod:`~uboost.tuning.space` (what is searched),
:mod:`~uboost.tuning.child` (the trial process) and :mod:`~uboost.tuning.callbacks` (the Lightning
callbacks inside it: Optuna's pruning callback, live progress), :mod:`~uboost.tuning.objective`
(one trial), :mod:`~uboost.tuning.storage` (where studies live, retried writes),
:mod:`~uboost.tuning.recovery` (dead workers, results a lost storage left on disk),
:mod:`~uboost.tuning.study` (create, run, load), :mod:`~uboost.tuning.objectives` (accuracy, latency, energy,
area), :mod:`~uboost.tuning.accelerator_space` (the co-searched accelerator and its area budget),
:mod:`~uboost.tuning.cost_cache` (layer costs per accelerator, shared by trials),
:mod:`~uboost.tuning.inner_accelerator` and :mod:`~uboost.tuning.inner_pricing` (each trial's network on
the best accelerator of the space within the area budget), :mod:`~uboost.tuning.inner_rounds` (a second
network search on that accelerator), :mod:`~uboost.tuning.local_search` and :mod:`~uboost.tuning.local_trials`
(networks one choice away from the front's, priced, retrained, added as trials), :mod:`~uboost.tuning.report` (results, the Pareto
plot) and :mod:`~uboost.tuning.export`. Optuna itself is imported only inside functions: the trial
children do not need it.
"""

from __future__ import annotations

from uboost.tuning.accelerator_space import AREA_CONSTRAINT, AcceleratorSpace, area_of
from uboost.tuning.child import TrialFailed, check_config
from uboost.tuning.cost_cache import CachedCostModel
from uboost.tuning.export import export_trial, find_trial
from uboost.tuning.objective import BUDGET_CONSTRAINT, DEFAULT_STUDY, DIRECTIONS, METRIC_NAMES, MODES, check_mode, objective
from uboost.tuning.objectives import OBJECTIVES, SAMPLERS, check_objectives
from uboost.tuning.recovery import fail_dead_trials, record_pending, requeue_interrupted
from uboost.tuning.report import best_trial, completed, feasible, front_metrics, pareto_front, pareto_plot
from uboost.tuning.space import TuneSpace
from uboost.tuning.storage import StorageUnavailable, describe_storage, resolve_storage, safe_name, trial_dir
from uboost.tuning.study import create_study, load_study, run_study, settings_difference

__all__ = [
    "AREA_CONSTRAINT", "AcceleratorSpace", "CachedCostModel", "OBJECTIVES", "SAMPLERS", "area_of", "check_objectives", "front_metrics",
    "BUDGET_CONSTRAINT", "DEFAULT_STUDY", "DIRECTIONS", "METRIC_NAMES", "MODES", "StorageUnavailable", "TrialFailed",
    "TuneSpace", "best_trial", "check_config", "check_mode", "completed", "create_study", "describe_storage",
    "export_trial", "fail_dead_trials", "requeue_interrupted", "feasible", "find_trial", "load_study", "objective", "settings_difference", "pareto_front",
    "pareto_plot", "record_pending", "resolve_storage", "run_study", "safe_name", "trial_dir",
]
