"""Host work of a search step moved off the training thread (the commit phase's integer program).

The commit phase (:mod:`uboost.strategy.loss`) projects the alphas onto the budget window with
scipy's MILP every step (~25 ms on ``darts-cifar``). That solve needs only the alphas the step
starts with, and those are known one step earlier, right after the previous step's architecture
update (the weight step does not move them). :class:`Pending` runs the solve for step ``t + 1``
on one worker thread while step ``t``'s weight step runs; step ``t + 1`` takes its result.
The network is the one a solve at the start of step ``t + 1`` would give (same alphas, bit for
bit, from a :class:`~uboost.strategy.host_mirror.HostMirror`): the search's numbers, a resumed
search and the ranks of a data-parallel search (each solves the same program) do not change.
A step with no prepared solve (the first of the phase after a resume) solves on its own thread.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def executor() -> ThreadPoolExecutor:
    """The process's one worker thread for search-step host work (started on first use)."""
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="uboost-step")
        return _executor


class Pending:
    """At most one background result, for one step: :meth:`submit`, then :meth:`take` it."""

    def __init__(self) -> None:
        self._step: int | None = None
        self._future: Future | None = None

    def submit(self, step: int, fn, *args) -> None:
        self._step, self._future = step, executor().submit(fn, *args)

    def take(self, step: int | None):
        """The result submitted for ``step`` (waits for it; raises what the solve raised), or None;
        a result for another step is settled (:meth:`settle`), never left running."""
        if self._future is None or step is None or step != self._step:
            self.settle()
            return None
        future, self._future = self._future, None
        return future.result()

    def settle(self) -> None:
        """Drop the pending result: cancelled if it has not started, else waited for (its outcome
        ignored), so no solve outlives the training that asked for it."""
        future, self._future, self._step = self._future, None, None
        if future is not None and not future.cancel():
            future.exception()

    # a pending solve does not travel with copies or pickles of its owner (a Future cannot)
    def __deepcopy__(self, memo) -> "Pending":
        return Pending()

    def __getstate__(self) -> dict:
        return {"_step": None, "_future": None}
