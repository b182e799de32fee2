"""Timing pieces of ``bench_search_step.py``: the baton that lets one process compute at a time
(lockstep), per-section step times, peak memory, and the Lightning callback that times each step."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

WAIT_S = 1800  # longest wait for a baton or a barrier before giving up


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


class Baton:
    """One process computes at a time, one step each in a rotating order (see the docstring)."""

    def __init__(self, semaphores, barrier, index: int, steps: int) -> None:
        self.semaphores, self.barrier, self.index, self.steps = semaphores, barrier, index, steps
        self.n = len(semaphores)

    def order(self, step: int) -> list[int]:
        return [(j + step) % self.n for j in range(self.n)]

    def take(self, step: int) -> None:
        if step == 0:
            self.barrier.wait(WAIT_S)  # everyone set up (imports, tracing the space, loaders)
            if self.order(0)[0] == self.index:
                self.semaphores[self.index].release()
        if not self.semaphores[self.index].acquire(timeout=WAIT_S):
            raise TimeoutError("no baton: another strategy's process failed")

    def give(self, step: int) -> None:
        order = self.order(step)
        pos = order.index(self.index)
        if pos + 1 < self.n:
            self.semaphores[order[pos + 1]].release()
        elif step + 1 < self.steps:
            self.semaphores[self.order(step + 1)[0]].release()


class Sections:
    """Per-step wall time of the parts of a search step, by wrapping (on the instances only)
    the methods the one-shot module calls. Only the outermost wrapped call is timed, so nested
    calls (``log_probs`` -> ``log_dict`` -> ``log``) are counted once, in the outer part."""

    def __init__(self) -> None:
        self.steps: list[dict[str, float]] = []
        self._current: dict[str, float] | None = None  # None: outside a step, nothing recorded
        self._depth = 0
        self._backwards = 0

    def install(self, pl_module) -> None:
        tm = pl_module.training_module

        def by_parity(args, kwargs):
            batch_idx = args[1] if len(args) > 1 else kwargs.get("batch_idx", 1)
            return "arch forward + task loss" if batch_idx % 2 == 0 else "weight forward + loss"

        def backward_name(args, kwargs):
            self._backwards += 1
            return "arch backward" if self._backwards == 1 else "weight backward"

        def log_name(args, kwargs):
            keys = args[0] if args else kwargs.get("dictionary", {})
            return "log_dict(hw/*), log(tau)" if any(str(k).startswith("hw/") for k in keys) else "log_probs(export_probs)"

        targets = [
            (pl_module, "on_train_batch_start", "batch-start hook (tau walk)"),
            (pl_module, "resample", "resample"),
            (tm, "training_step", by_parity),
            (pl_module, "manual_backward", backward_name),
            (tm, "optimizer_zero_grad", "weight zero_grad"),
            (tm, "configure_gradient_clipping", "gradient clipping"),
            (tm, "optimizer_step", "weight optimizer step"),
            (pl_module, "log_dict", log_name),
            (pl_module, "log", "log_dict(hw/*), log(tau)"),
            (pl_module, "log_probs", "log_probs(export_probs)"),
        ]
        hw = getattr(pl_module, "hardware_loss", None)
        if hw is not None:
            targets.append((hw, "forward", "hardware loss forward"))
        for obj, attr, name in targets:
            self._wrap(obj, attr, name)

    def _wrap(self, obj, attr: str, name) -> None:
        inner = getattr(obj, attr)

        def wrapper(*args, **kwargs):
            if self._depth or self._current is None:
                return inner(*args, **kwargs)
            label = name(args, kwargs) if callable(name) else name
            self._depth += 1
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self._current[label] = self._current.get(label, 0.0) + time.perf_counter() - start
                self._depth -= 1

        object.__setattr__(obj, attr, wrapper)  # instance attribute: the classes are untouched

    def start_step(self) -> None:
        self._current, self._backwards = {}, 0

    def end_step(self, total: float) -> None:
        self._current["(step total)"] = total
        self.steps.append(self._current)
        self._current = None


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class Memory:
    """Peak memory of this process from now on: CPU RSS (the kernel's high-water mark, reset
    here through ``/proc/self/clear_refs``) and, with a GPU, ``torch.cuda.max_memory_allocated``."""

    def __init__(self) -> None:
        import torch

        self.reset = False
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM to the current RSS
            self.reset = True
        except OSError:
            pass
        self.rss_start = _status_mb("VmRSS")
        self.cuda = torch.cuda.is_available()
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.cuda_start = torch.cuda.memory_allocated() / 2**20
        self.result: dict = {}

    def stop(self) -> None:
        import torch

        peak = _status_mb("VmHWM")
        self.result = dict(rss_start=self.rss_start, rss_peak=peak, rss_reset=self.reset,
                           rss_extra=None if peak is None or self.rss_start is None else peak - self.rss_start)
        if self.cuda:
            torch.cuda.synchronize()
            self.result.update(cuda_start=self.cuda_start, cuda_peak=torch.cuda.max_memory_allocated() / 2**20)


def torch_sync(module) -> Callable[[], None]:
    """``torch.cuda.synchronize`` when ``module``'s parameters live on a CUDA device, else a no-op."""
    import torch

    param = next(module.parameters(), None)
    if param is not None and param.device.type == "cuda":
        return lambda: torch.cuda.synchronize(param.device)
    return lambda: None


def make_timer(baton: Baton, sections: Sections | None = None):
    from pytorch_lightning import Callback

    class StepTimer(Callback):
        """Takes the baton for every step and times it (architecture step + weight step)."""

        def __init__(self) -> None:
            self.times: list[float] = []  # on_train_batch_start -> on_train_batch_end
            self.loops: list[float] = []  # baton held: step + bookkeeping + next batch's loading
            self._start = 0.0

        def on_train_start(self, trainer, pl_module):
            if sections is not None:
                sections.install(pl_module)
            self.memory = Memory()
            # on a GPU a step is timed to its last kernel: the host only queues work (no-op on a CPU)
            self._sync = torch_sync(pl_module)

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            step = len(self.times)
            if step:
                self.loops.append(time.perf_counter() - self._start)
                baton.give(step - 1)
            baton.take(step)
            if sections is not None:
                sections.start_step()
            self._sync()
            self._start = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self._sync()
            self.times.append(time.perf_counter() - self._start)
            if sections is not None:
                sections.end_step(self.times[-1])

        def on_train_end(self, trainer, pl_module):
            self.memory.stop()
            baton.give(len(self.times) - 1)  # the last loop is not timed: no next batch
            baton.barrier.wait(WAIT_S)  # nobody cleans up while another still steps

    return StepTimer()
