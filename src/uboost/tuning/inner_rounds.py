"""Alternating co-design in one trial: network -> accelerator -> network (``--inner-rounds 2``).

With the inner accelerator choice (:mod:`~uboost.tuning.inner_accelerator`) a trial searches its
network on the accelerator NSGA-II sampled and then picks the best accelerator of the space for
that network. The network never sees the accelerator it ends up on. ``inner_rounds=2`` adds the
second step of the Auto-NBA / NAAS alternating loop:

1. **round 1**: search on the sampled accelerator, inner choice (as with ``inner_rounds=1``);
2. **round 2**: search the network again -- same seed, same latency weight and every other
   setting of the trial -- on the accelerator round 1 chose (its configuration is round 2's
   ``search_config``), in ``<trial dir>/round-2``, then the inner choice again for the new network.

Each round is one (network, accelerator) pair that was searched, retrained and priced. The trial
reports **one** of them, by the study's own objectives: round 1 if its values Pareto-dominate
round 2's, else round 2 (the loop's last step; a trade-off between the two keeps round 2). The
trial's user attributes (``arch``, ``config``, ``run_dir``, the objective values...) are the kept
pair's, so ``tune --export`` carries a consistent network and accelerator; ``inner_rounds`` holds
both pairs' summaries and ``inner_round_kept`` says which one; ``inner-rounds.json`` in the trial's
directory keeps the same. If round 2 fails, the trial keeps round 1 and records why
(``inner_round_2_error``). Cost: a second search and retrain and a second inner choice per trial
(about twice the trial's time). Measured in benchmarks/RESULTS.md ("Alternating co-search").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from uboost.exceptions import ConfigError, UBoostError
from uboost.tuning import objectives as objs

if TYPE_CHECKING:
    from uboost.search_config import SearchConfig

logger = logging.getLogger(__name__)

ROUNDS = (1, 2)
DEFAULT_ROUNDS = 1
"""One round unless asked: a second round doubles each trial's time and, at 20 trials, moved the benchmark's EDP gain
by 0.00x (lenet, 16 kB) and +0.02x (darts-cifar, 4 kB) (benchmarks/RESULTS.md, "Alternating co-search")."""
ROUND_DIR = "round-2"
ROUNDS_FILE = "inner-rounds.json"


def check_rounds(rounds: Any, *, inner: str) -> int:
    """``inner_rounds`` (``--inner-rounds``): 1 or 2; 2 needs the inner accelerator choice. ``None``: the default."""
    if rounds is None:
        return DEFAULT_ROUNDS
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds not in ROUNDS:
        raise ConfigError(f"inner_rounds (--inner-rounds) must be 1 or 2, got {rounds!r}")
    if rounds == 2 and inner != "exhaustive":
        raise ConfigError("--inner-rounds 2 searches the network again on the accelerator the inner choice picked: "
                          "it needs --inner-accelerator exhaustive (an --area-budget-mm2 study)")
    return rounds


def summary(attrs: dict[str, Any], number: int) -> dict[str, Any]:
    """One round's (network, accelerator) pair, as ``inner_rounds`` records it."""
    keys = ("run_dir", "arch", "accuracy", "val_acc", "test_acc", "latency_ms", "energy_uj", "area_mm2", "array",
            "dataflow", "config", "search_config", "precision")
    out = {"round": number, **{k: attrs.get(k) for k in keys}}
    if attrs.get("latency_ms") is not None and attrs.get("energy_uj") is not None:
        out["edp_uj_ms"] = attrs["latency_ms"] * attrs["energy_uj"]
    return out


def kept_round(first: dict[str, Any], second: dict[str, Any], names: Sequence[str]) -> int:
    """1 when round 1's objective values Pareto-dominate round 2's, else 2."""
    signs = objs.signs(names)
    return 1 if objs.dominates(objs.values_from(first, names), objs.values_from(second, names), signs) else 2


def second_round(first: dict[str, Any], run_round: Callable[["SearchConfig", Path], dict[str, Any]], run_dir: Path,
                 names: Sequence[str]) -> dict[str, Any]:
    """The trial's attributes after round 2. ``first``: round 1's attributes (after its inner choice);
    ``run_round(config, run_dir)``: search, retrain and inner-choose a network on ``config`` in
    ``run_dir``, returning the same attributes. Writes ``inner-rounds.json`` in ``run_dir``."""
    from uboost.io import write_json
    from uboost.search_config import SearchConfig

    chosen = SearchConfig.from_dict(first["config"])  # round 1's inner choice
    first = {**first, "run_dir": str(run_dir)}
    rounds = [summary(first, 1)]
    try:
        second = run_round(chosen, run_dir / ROUND_DIR)
        second = {**second, "run_dir": str(run_dir / ROUND_DIR)}
        objs.values_from(second, names)  # every objective present and a number
    except (UBoostError, KeyError, TypeError, ValueError) as exc:
        logger.warning("inner round 2 failed, the trial keeps round 1: %s", exc)
        write_json(run_dir / ROUNDS_FILE, {"kept": 1, "rounds": rounds, "round_2_error": str(exc)})
        return {**first, "inner_rounds": rounds, "inner_round_kept": 1, "inner_round_2_error": str(exc)}
    rounds.append(summary(second, 2))
    kept = kept_round(first, second, names)
    logger.info("inner rounds: round 1 %s, round 2 %s; kept round %d", rounds[0]["array"], rounds[1]["array"], kept)
    write_json(run_dir / ROUNDS_FILE, {"kept": kept, "rounds": rounds})
    result = dict(first if kept == 1 else second)
    result.update(inner_rounds=rounds, inner_round_kept=kept)
    return result
