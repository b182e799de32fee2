"""Host syncs per search step, and an older uboost side by side (for ``bench_search_step.py``).

* ``--syncs``: one more lockstep repeat whose processes count, per training step, the reads of
  device values on the host that a GPU would wait for (:mod:`uboost.host_syncs`, which models an
  accelerator on a CPU). The counting slows the step: that repeat's times are not reported.
* ``--baseline SRC``: every UBoost strategy also runs as ``"<name> (base)"`` with the ``uboost``
  package imported from ``SRC`` (e.g. a ``git worktree`` of the parent commit's ``src``), in the
  same lockstep: before and after on the same load. The counter is loaded from this checkout's
  ``src/uboost/host_syncs.py`` by path, so it counts the older code too.
"""

from __future__ import annotations

import collections
import importlib.util
import statistics
import sys
from pathlib import Path

BASE_SUFFIX = " (base)"
COUNTER_PATH = Path(__file__).resolve().parents[1] / "src" / "uboost" / "host_syncs.py"


def strategy_name(name: str) -> str:
    """The strategy a (possibly ``(base)``) entry runs."""
    return name[: -len(BASE_SUFFIX)] if name.endswith(BASE_SUFFIX) else name


def use_baseline(name: str, src: str | None) -> None:
    """In a child process, before anything imports uboost: a ``(base)`` entry imports it from ``src``."""
    if not name.endswith(BASE_SUFFIX):
        return
    if not src or not (Path(src) / "uboost" / "__init__.py").is_file():
        raise RuntimeError(f"{name}: --baseline must name a src directory holding the uboost package, got {src!r}")
    if any(m == "uboost" or m.startswith("uboost.") for m in sys.modules):
        raise RuntimeError("uboost was imported before the baseline source could be chosen")
    sys.path.insert(0, str(Path(src).resolve()))


def with_baselines(names: list[str]) -> list[str]:
    """``names`` with a ``(base)`` twin after every UBoost entry."""
    out = []
    for name in names:
        out.append(name)
        if name.startswith("UBoost"):
            out.append(name + BASE_SUFFIX)
    return out


def step_counter():
    """A Lightning callback counting host syncs per step (``.steps``: one Counter of sites per step)."""
    spec = importlib.util.spec_from_file_location("_bench_host_syncs", COUNTER_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.step_callback()


def print_syncs(results: dict[str, dict], names: list[str], warmup: int, top: int = 3) -> None:
    """Syncs per timed step by strategy, and where the most frequent ones are."""
    print()
    print("host syncs per search step (--syncs: an instrumented lockstep repeat; a read of a device value on the")
    print("host that a GPU waits for, counted on this CPU by uboost.host_syncs; timed steps only, from one")
    print("on_train_batch_start to the next: the step, Lightning's bookkeeping and the next batch):")
    print(f"{'strategy':<34} {'median':>6} {'mean':>6} {'max':>4}  most frequent sites (per step)")
    for name in names:
        steps = results[name]["syncs"][warmup:]
        if not steps:
            continue
        totals = [sum(s.values()) for s in steps]
        sites = collections.Counter()
        for s in steps:
            sites.update(s)
        where = "; ".join(f"{n / len(steps):.1f} {site}" for site, n in sites.most_common(top)) or "-"
        print(f"{name:<34} {statistics.median(totals):6.1f} {statistics.fmean(totals):6.2f} {max(totals):4d}  {where}")
