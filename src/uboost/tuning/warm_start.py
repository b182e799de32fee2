"""Warm start: a study's first trials are another study's (Optuna's ``enqueue_trial``).

A co-search under an area budget (``uboost tune --area-budget-mm2``) samples each trial's latency weight and
accelerator and searches a network on it, so the networks a designer already has -- those of a study on today's
accelerator -- are seen only if the sampler happens to propose them again. ``uboost tune --warm-start DIR``
enqueues every finished trial of the study in ``DIR`` as a first trial of this one, with the values it was
searched with (latency weight, array, dataflow, buffers, bandwidth, clock, PE mode, as this study's space names
them, and the search seed as an offset from this study's base seed when the space draws seeds): the trial searches
the same network again (the same settings and seed), and with the inner accelerator
choice it is priced on its best accelerator of this space. So the co-search is never worse than "keep the network,
choose the accelerator". A source trial whose values this space cannot take (a rows value outside its choices, a
latency weight outside its range) is left out and said so; the trials run in the order of the source study.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from uboost.exceptions import ConfigError
from uboost.tuning.space import SEED_OFFSET

if TYPE_CHECKING:
    import optuna

    from uboost.search_config import SearchConfig
    from uboost.tuning.space import TuneSpace

logger = logging.getLogger(__name__)
SOURCE_ATTR = "warm_start"  # user attribute of an enqueued trial: "<source dir>#<trial number>"


def _same_source(tag: str) -> tuple[str, str]:
    """A warm-start tag ``"<source dir>#<trial>"`` as ``(resolved dir, trial)``: tags written before paths were resolved
    match their resolved spelling (from the directory the study is continued in)."""
    where, _, number = tag.rpartition("#")
    return str(Path(where).resolve()), number


def searched_values(config: "SearchConfig", base_seed: int | None = None) -> dict[str, Any]:
    """What a trial was searched with, by this package's Optuna parameter names (``search_seed``: its seed
    less ``base_seed``, the base seed of the study it would run in)."""
    spec = config.hardware_spec()
    ifmap, filters, ofmap = spec.buffer_kb
    return {"latency_weight": config.latency_weight, "temperature": config.temperature, "rows": spec.rows,
            "cols": spec.cols, "dataflow": spec.dataflow, "utilization_weight": config.utilization_weight,
            "ifmap_sram_kb": ifmap, "filter_sram_kb": filters, "ofmap_sram_kb": ofmap,
            "dram_bw_words": config.dram_bw_words, "clock_hz": spec.clock_hz, "pe": spec.pe,
            SEED_OFFSET: None if base_seed is None else config.seed - base_seed}


def _fits(dist, value) -> Any:
    """``value`` as ``dist`` holds it, or ``None`` when ``dist`` cannot take it."""
    from optuna.distributions import CategoricalDistribution

    if value is None:
        return None
    if isinstance(dist, CategoricalDistribution):
        for choice in dist.choices:
            same = choice == value if isinstance(choice, str) or isinstance(value, str) else \
                math.isclose(float(choice), float(value), rel_tol=1e-9)
            if same:
                return choice
        return None
    low, high = dist.low, dist.high
    return value if isinstance(value, (int, float)) and low * (1 - 1e-12) <= value <= high * (1 + 1e-12) else None


def params_for(config: "SearchConfig", tune_space: "TuneSpace", base_seed: int | None = None) -> tuple[dict[str, Any] | None, str]:
    """``(params for tune_space's distributions, "")``, or ``(None, why not)``; ``base_seed`` is needed when
    the space draws search seeds."""
    values = searched_values(config, base_seed)
    params = {}
    for name, dist in tune_space.distributions().items():
        fitted = _fits(dist, values.get(name))
        if fitted is None:
            return None, f"{name} = {values.get(name)!r} is not in this study's space"
        params[name] = fitted
    return params, ""


def check_source(source: str | os.PathLike) -> int:
    """How many finished, searched trials the study in ``source`` has; a ConfigError when it has none (or no study)."""
    from uboost.tuning.local_search import searched
    from uboost.tuning.study import load_study

    trials = searched(load_study(source))
    if not trials:
        raise ConfigError(f"--warm-start {source}: the study there has no finished trial to start from")
    return len(trials)


def enqueue_from(study: "optuna.Study", source: str | os.PathLike, tune_space: "TuneSpace",
                 base_seed: int | None = None) -> tuple[int, list[str]]:
    """Enqueue every finished, searched trial of the study in ``source`` into ``study``:
    ``(how many were enqueued, why each other one was not)``. A trial already enqueued or run from the same
    source trial is not enqueued again (a continued study). ``base_seed``: this study's base seed, which a
    space drawing search seeds needs to run each source trial with its own seed."""
    from uboost.search_config import SearchConfig
    from uboost.tuning.local_search import searched
    from uboost.tuning.study import load_study

    from optuna.trial import TrialState

    from uboost.tuning.objective import INTERRUPTED_REASON

    # run, running or queued from a source trial; one Ctrl-C stopped is not done: the same command runs it again
    done = {_same_source(t.user_attrs[SOURCE_ATTR]) for t in study.get_trials(deepcopy=False) if t.user_attrs.get(SOURCE_ATTR)
            and not (t.state == TrialState.FAIL and t.user_attrs.get("fail_reason") == INTERRUPTED_REASON)}
    enqueued, left = 0, []
    for trial in searched(load_study(source)):
        tag = f"{Path(source).resolve()}#{trial.number}"  # however the path is spelled (relative, absolute, ./)
        if _same_source(tag) in done:
            continue
        stored = trial.user_attrs.get("search_config") or trial.user_attrs.get("config")  # the one it was searched on
        if not stored:
            left.append(f"trial {trial.number}: no stored configuration")
            continue
        params, why = params_for(SearchConfig.from_dict(stored), tune_space, base_seed)
        if params is None:
            left.append(f"trial {trial.number}: {why}")
            continue
        study.enqueue_trial(params, user_attrs={SOURCE_ATTR: tag})
        enqueued += 1
    for line in left:
        logger.warning("--warm-start: %s", line)
    return enqueued, left
