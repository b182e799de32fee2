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
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import logging
import math
import multiprocessing
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from uboost import _manifest, runs
from uboost.exceptions import ConfigError, RunDirError, SearchError, UBoostError
from uboost.hardware.spec import DATAFLOWS
from uboost.io import write_json, write_text
from uboost.search import SearchConfig

if TYPE_CHECKING:  # optuna is imported lazily: the trial children do not need it
    import optuna

logger = logging.getLogger(__name__)

MODES = ("pareto", "budget")
DEFAULT_STUDY = "uboost"
METRIC_NAMES = {"pareto": ["accuracy", "latency_ms"], "budget": ["accuracy"]}
DIRECTIONS = {"pareto": ["maximize", "minimize"], "budget": ["maximize"]}
BUDGET_CONSTRAINT = "latency_over_budget_ms"
"""Constraint key (and user attribute): latency minus budget, feasible when <= 0."""

# Imported once in the forkserver, so each trial child starts warm (see the module docstring).
_PRELOAD = [
    "uboost.tuning", "uboost.search", "uboost.retrain", "uboost.data", "uboost.strategy",
    "uboost.search_spaces", "uboost.hardware", "pytorch_lightning", "nni.nas.evaluator.pytorch",
    "nni.nas.experiment", "matplotlib",
]


class TrialFailed(SearchError):
    """A trial could not produce a result; Optuna records it as FAIL and the study goes on."""


# --------------------------------------------------------------------------------------------- space


def _float_range(name: str, value: Any, *, positive: bool) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a (low, high) pair of numbers, got {value!r}") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise ConfigError(f"{name} must have finite low <= high, got {value!r}")
    if positive and low <= 0:
        raise ConfigError(f"{name} is searched on a log scale and must be positive, got {value!r}")
    if not positive and low < 0:
        raise ConfigError(f"{name} must be non-negative, got {value!r}")
    return low, high


def _int_choices(name: str, value: Any) -> tuple[int, ...] | range:
    if isinstance(value, range):
        if len(value) == 0 or value.step < 1 or value.start < 1:
            raise ConfigError(f"{name} range must be non-empty, increasing and positive, got {value!r}")
        return value
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ConfigError(f"{name} must be a list of positive integers or a range, got {value!r}")
    choices = tuple(value)
    if not choices or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in choices):
        raise ConfigError(f"{name} must be a non-empty list of positive integers, got {value!r}")
    return tuple(dict.fromkeys(choices))


@dataclass(frozen=True, kw_only=True)
class TuneSpace:
    """What Optuna searches: one value of each per trial.

    ``rows``/``cols`` are choices (a sequence) or a ``range`` (``range(8, 65, 8)``: 8..64 in steps
    of 8). With ``area_budget`` a trial whose ``rows * cols`` exceeds it fails at once, without
    running. ``dataflows``/``utilization_weight`` are searched only when given; otherwise the base
    config's values are used. ``latency_weight`` (lambda) and ``temperature`` are log-scale ranges,
    ``utilization_weight`` a linear one; ``low == high`` fixes a value.
    """

    latency_weight: tuple[float, float] = (0.01, 10.0)
    temperature: tuple[float, float] = (1.0, 50.0)
    rows: Sequence[int] | range = (8, 16, 32)
    cols: Sequence[int] | range = (8, 16, 32)
    area_budget: int | None = None
    dataflows: Sequence[str] | None = None
    utilization_weight: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 - frozen dataclass
        set_("latency_weight", _float_range("latency_weight (lambda) range", self.latency_weight, positive=True))
        set_("temperature", _float_range("temperature range", self.temperature, positive=True))
        if self.utilization_weight is not None:
            set_("utilization_weight", _float_range("utilization_weight range", self.utilization_weight, positive=False))
        set_("rows", _int_choices("rows", self.rows))
        set_("cols", _int_choices("cols", self.cols))
        if self.dataflows is not None:
            flows = tuple(dict.fromkeys([self.dataflows] if isinstance(self.dataflows, str) else self.dataflows))
            bad = [d for d in flows if d not in DATAFLOWS]
            if not flows or bad:
                raise ConfigError(f"unknown dataflow {bad[0] if bad else '(none)'!r}; expected some of: {', '.join(DATAFLOWS)}")
            set_("dataflows", flows)
        if self.area_budget is not None:
            if isinstance(self.area_budget, bool) or not isinstance(self.area_budget, int) or self.area_budget < 1:
                raise ConfigError(f"area_budget must be a positive integer (rows*cols PEs), got {self.area_budget!r}")
            smallest = min(self.rows) * min(self.cols)
            if smallest > self.area_budget:
                raise ConfigError(
                    f"no array fits the area budget {self.area_budget}: the smallest is "
                    f"{min(self.rows)}x{min(self.cols)} = {smallest} PEs"
                )

    def suggest(self, trial: "optuna.Trial") -> dict[str, Any]:
        """Ask ``trial`` for one point; returns the :class:`SearchConfig` changes (``array``...)."""
        changes: dict[str, Any] = {
            "latency_weight": trial.suggest_float("latency_weight", *self.latency_weight, log=True),
            "temperature": trial.suggest_float("temperature", *self.temperature, log=True),
        }
        rows, cols = (self._suggest_int(trial, name, getattr(self, name)) for name in ("rows", "cols"))
        changes["array"] = f"{rows}x{cols}"
        if self.dataflows is not None:
            changes["dataflow"] = trial.suggest_categorical("dataflow", list(self.dataflows))
        if self.utilization_weight is not None:
            changes["utilization_weight"] = trial.suggest_float("utilization_weight", *self.utilization_weight)
        return changes

    def distributions(self) -> dict[str, "optuna.distributions.BaseDistribution"]:
        """The Optuna distributions :meth:`suggest` uses, by parameter name."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        def ints(space: tuple[int, ...] | range):
            if isinstance(space, range):
                return IntDistribution(space.start, space[-1], step=space.step)
            return CategoricalDistribution(list(space))

        found = {
            "latency_weight": FloatDistribution(*self.latency_weight, log=True),
            "temperature": FloatDistribution(*self.temperature, log=True),
            "rows": ints(self.rows),
            "cols": ints(self.cols),
        }
        if self.dataflows is not None:
            found["dataflow"] = CategoricalDistribution(list(self.dataflows))
        if self.utilization_weight is not None:
            found["utilization_weight"] = FloatDistribution(*self.utilization_weight)
        return found

    def check_compatible(self, study: "optuna.Study") -> None:
        """Raise :class:`ConfigError` if ``study``'s trials used a parameter in a way Optuna cannot
        continue with (e.g. other choices for a categorical ``rows``)."""
        from optuna.distributions import check_distribution_compatibility

        seen: dict[str, Any] = {}
        for trial in study.get_trials(deepcopy=False):
            seen.update(trial.distributions)
        for name, new in self.distributions().items():
            old = seen.get(name)
            if old is None:
                continue
            try:
                check_distribution_compatibility(old, new)
            except ValueError as exc:
                raise ConfigError(
                    f"study {study.study_name!r} searched {name} as {_describe(old)}, now {_describe(new)}: "
                    f"Optuna cannot continue with that ({exc}); keep the old setting or use a new --study-name"
                ) from None

    @staticmethod
    def _suggest_int(trial: "optuna.Trial", name: str, space: tuple[int, ...] | range) -> int:
        if isinstance(space, range):
            return trial.suggest_int(name, space.start, space[-1], step=space.step)
        return int(trial.suggest_categorical(name, list(space)))

    def area_violation(self, array: str) -> str | None:
        """Why ``array`` is invalid under the area budget, or ``None``."""
        if self.area_budget is None:
            return None
        rows, cols = (int(v) for v in array.split("x"))
        if rows * cols <= self.area_budget:
            return None
        return f"array {array} has {rows * cols} PEs, over the area budget of {self.area_budget} (rows*cols)"

    def to_dict(self) -> dict[str, Any]:
        def plain(v: Any) -> Any:
            if isinstance(v, range):
                return {"low": v.start, "high": v[-1], "step": v.step}
            return list(v) if isinstance(v, tuple) else v

        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _describe(dist) -> str:
    if hasattr(dist, "choices"):
        return "choices " + ",".join(str(c) for c in dist.choices)
    step = getattr(dist, "step", None)
    return f"range {dist.low:g}:{dist.high:g}" + (f":{step:g}" if step not in (None, 1) else "") + (" (log)" if getattr(dist, "log", False) else "")


# ------------------------------------------------------------------------------------ child process


def _quiet_child() -> None:
    warnings.filterwarnings("ignore")
    for name in ("nni", "lightning", "pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _exit_with_parent(alive) -> None:
    """Exit as soon as the parent closes its end of ``alive`` or dies (even by SIGKILL, or while it
    is a zombie): a trial's search never outlives the process that waits for it."""

    def watch() -> None:
        try:
            alive.recv()  # the parent never sends: this returns (EOFError) when its end closes
        except (EOFError, OSError):
            pass
        os._exit(3)

    threading.Thread(target=watch, name="uboost-parent-watch", daemon=True).start()


def _trial_main(payload: dict[str, Any], conn, alive) -> None:
    """Body of a trial's child process: one search (+ optional retrain); the outcome goes to ``conn``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business: it stops us
    _exit_with_parent(alive)
    _quiet_child()
    message: dict[str, Any]
    try:
        from uboost.search import SearchConfig as Config, run_search

        run_dir = Path(payload["run_dir"])
        result = run_search(Config.from_dict(payload["config"]), run_dir)
        message = {
            "ok": True, "summary": result.summary(), "arch": result.arch,
            "array": result.hardware.spec.array, "dataflow": result.hardware.spec.dataflow,
        }
        if payload.get("retrain"):
            from uboost.retrain import RetrainConfig, retrain

            retrained = retrain(run_dir, RetrainConfig(**payload["retrain"]), out=run_dir / "retrain")
            message["test_acc"] = retrained.test_acc
            message["retrain_seconds"] = retrained.seconds
    except UBoostError as exc:
        message = {"ok": False, "error": f"{exc}"}
    except BaseException as exc:  # noqa: BLE001 - everything must reach the parent as a message
        message = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    try:
        conn.send(message)
    finally:
        conn.close()


def _start_method(start_method: str | None) -> str:
    methods = multiprocessing.get_all_start_methods()
    method = start_method or ("forkserver" if "forkserver" in methods else "spawn")
    if method not in ("forkserver", "spawn"):
        raise ConfigError(f"start_method must be forkserver or spawn (a fresh process per trial), got {method!r}")
    if method not in methods:
        raise ConfigError(f"start method {method!r} is not available here; use one of: {', '.join(methods)}")
    return method


def _context(start_method: str | None):
    method = _start_method(start_method)
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        from multiprocessing import forkserver

        ctx.set_forkserver_preload(_PRELOAD)  # takes effect when the server starts (first trial)
        with _sigint_ignored():  # inherited: Ctrl-C during its long preload must not kill it with a traceback
            forkserver.ensure_running()
    return ctx


class _InterruptGuard:
    """Ctrl-C handling for :func:`run_study`: a SIGINT raises ``KeyboardInterrupt`` only while we
    wait for a trial's process; anywhere else (Optuna writing to its storage, holding the journal's
    file lock) it is noted and raised at the next safe point, so no trial is left RUNNING and no
    lock is left behind. A third Ctrl-C raises at once."""

    def __init__(self) -> None:
        self.requested = 0
        self.waiting = False

    def __call__(self, signum, frame) -> None:
        self.requested += 1
        if self.waiting or self.requested >= 3:
            raise KeyboardInterrupt

    def check(self) -> None:
        if self.requested:
            raise KeyboardInterrupt


_GUARD: _InterruptGuard | None = None


@contextlib.contextmanager
def _interrupt_guard():
    global _GUARD
    if _GUARD is not None or threading.current_thread() is not threading.main_thread():
        yield
        return
    guard = _InterruptGuard()
    previous = signal.signal(signal.SIGINT, guard)
    _GUARD = guard
    try:
        yield
    finally:
        _GUARD = None
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _interruptible():
    """A region where Ctrl-C may raise at once (we are only waiting for the trial's process)."""
    guard = _GUARD
    if guard is None:
        yield
        return
    guard.check()
    guard.waiting = True
    try:
        yield
    finally:
        guard.waiting = False


def _check_interrupt(*_: Any) -> None:
    if _GUARD is not None:
        _GUARD.check()


@contextlib.contextmanager
def _sigint_ignored():
    """Processes started inside inherit SIGINT ignored (Python keeps an inherited SIG_IGN), so a
    Ctrl-C sent to the whole process group stops only this process, which then stops them."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _val_accuracies(metrics: Path) -> list[tuple[int, float]]:
    """``(epoch, val_acc)`` per finished validation, from the run's ``metrics.csv`` (written atomically)."""
    try:
        with open(metrics, newline="") as f:
            rows = list(csv.DictReader(f))
    except (FileNotFoundError, OSError, csv.Error):
        return []
    found: dict[int, float] = {}
    for row in rows:
        value, epoch = row.get("val_acc"), row.get("epoch")
        if value not in (None, "") and epoch not in (None, ""):
            found[int(float(epoch))] = float(value)
    return sorted(found.items())


def _stop(proc) -> None:
    if proc.pid is None:  # never started (Ctrl-C while the forkserver was starting)
        return
    if proc.is_alive():
        proc.terminate()
        proc.join(5)
    if proc.is_alive():
        proc.kill()
    proc.join()


def _run_child(trial: "optuna.Trial", payload: dict[str, Any], *, report: bool, start_method: str | None,
               poll_seconds: float) -> dict[str, Any]:
    """Run one trial's search in a fresh process; with ``report``, pass each epoch's val_acc to
    ``trial.report`` and kill the child as soon as ``trial.should_prune()``."""
    import optuna

    ctx = _context(start_method)
    receiver, sender = ctx.Pipe(duplex=False)
    alive_child, alive_parent = ctx.Pipe(duplex=False)  # the child exits when our end closes
    proc = ctx.Process(target=_trial_main, args=(payload, sender, alive_child), name=f"uboost-trial-{trial.number}", daemon=True)
    metrics = Path(payload["run_dir"]) / runs.METRICS
    reported: set[int] = set()
    seen: list[Any] = [None]

    def report_new(check: bool) -> None:
        try:
            stat = metrics.stat()
        except OSError:
            return
        version = (stat.st_ino, stat.st_mtime_ns, stat.st_size)  # replaced atomically: a new inode each time
        if version == seen[0]:  # unchanged since the last poll: skip re-reading it
            return
        seen[0] = version
        for epoch, acc in _val_accuracies(metrics):
            if epoch in reported:
                continue
            reported.add(epoch)
            trial.report(acc, step=epoch)
            if check and trial.should_prune():
                _stop(proc)
                trial.set_user_attr("pruned_at_epoch", epoch)
                raise optuna.TrialPruned(f"pruned after epoch {epoch} at val_acc={acc:.4f}")

    message = None
    try:
        try:
            if ctx.get_start_method() == "spawn":
                with _sigint_ignored():  # returns right after exec; the child starts with SIGINT ignored
                    proc.start()
            else:
                with _interruptible():  # the first start waits for the server's preload
                    proc.start()  # forked by the server, which ignores SIGINT and passes that on
        finally:
            sender.close()  # the child holds its own copies: its exit shows up as EOF
            alive_child.close()
        while True:
            with _interruptible():
                ready = receiver.poll(poll_seconds)
            if ready:
                try:
                    message = receiver.recv()
                except EOFError:
                    message = None
                break
            if report:
                report_new(check=True)
        with _interruptible():
            proc.join()
        if report and message is not None and message.get("ok"):
            report_new(check=False)  # the epochs finished between two polls
    finally:
        _stop(proc)
        alive_parent.close()
        receiver.close()
    if message is None:
        code = proc.exitcode
        why = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        raise TrialFailed(f"trial {trial.number}: the search process died without a result ({why})")
    return message


# ----------------------------------------------------------------------------------------- objective


def check_mode(mode: str, budget_ms: float | None) -> None:
    if mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r}; expected one of: {', '.join(MODES)}")
    if budget_ms is not None and (not isinstance(budget_ms, (int, float)) or not math.isfinite(budget_ms) or budget_ms <= 0):
        raise ConfigError(f"budget_ms must be a positive number of milliseconds, got {budget_ms!r}")
    if mode == "budget" and budget_ms is None:
        raise ConfigError("mode 'budget' needs a latency budget: pass budget_ms (--budget-ms)")


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "study"


def trial_dir(out_root: str | os.PathLike, study_name: str, number: int) -> Path:
    """Where trial ``number`` of ``study_name`` writes its run directory."""
    return Path(out_root) / "trials" / safe_name(study_name) / f"{number:04d}"


def _base_config(base: SearchConfig | None, config: dict[str, Any]) -> SearchConfig:
    if base is None:
        return SearchConfig.from_dict(config)
    if config:
        unknown = sorted(set(config) - {f.name for f in dataclasses.fields(SearchConfig)})
        if unknown:
            raise ConfigError(f"unknown config keys {unknown}")
        return base.replace(**config)
    return base


def _fail(trial: "optuna.Trial", reason: str) -> TrialFailed:
    trial.set_user_attr("fail_reason", reason)
    return TrialFailed(f"trial {trial.number}: {reason}")


def objective(
    trial: "optuna.Trial",
    *,
    base: SearchConfig | None = None,
    tune_space: TuneSpace | None = None,
    out_root: str | os.PathLike = "runs/tune",
    retrain_epochs: int = 0,
    mode: str = "pareto",
    budget_ms: float | None = None,
    start_method: str | None = None,
    poll_seconds: float = 0.25,
    **config: Any,
) -> float | tuple[float, float]:
    """One trial: suggest lambda, T, rows, cols (...), run a fresh search in a child process.

    ``base`` is the :class:`SearchConfig` the suggestions are applied to; keyword arguments
    (``space="lenet", dataset="digits", epochs=2``...) build it or override its fields.
    Returns ``(accuracy, latency_ms)`` in ``"pareto"`` mode and ``accuracy`` in ``"budget"`` mode,
    where the latency budget is an Optuna constraint and each epoch's validation accuracy is
    reported for pruning. Accuracy is the search's validation accuracy, or the test accuracy of
    a ``retrain_epochs`` retrain. Arch, hardware metrics and the run directory are stored as user
    attributes. Raises :class:`TrialFailed` when the trial cannot give a result.
    """
    try:
        return _objective(trial, base=base, tune_space=tune_space, out_root=out_root, retrain_epochs=retrain_epochs,
                          mode=mode, budget_ms=budget_ms, start_method=start_method, poll_seconds=poll_seconds, config=config)
    except KeyboardInterrupt:  # Optuna records the trial as FAIL and re-raises; say why
        with contextlib.suppress(Exception):
            trial.set_user_attr("fail_reason", "interrupted (Ctrl-C)")
        raise


def _objective(trial, *, base, tune_space, out_root, retrain_epochs, mode, budget_ms, start_method, poll_seconds, config):
    _check_interrupt()  # a Ctrl-C while Optuna was busy
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    check_mode(mode, budget_ms)
    base = _base_config(base, config)
    tune_space = tune_space if tune_space is not None else TuneSpace()
    if isinstance(retrain_epochs, bool) or not isinstance(retrain_epochs, int) or retrain_epochs < 0:
        raise ConfigError(f"retrain_epochs must be a non-negative integer, got {retrain_epochs!r}")
    directions = len(trial.study.directions)
    if directions != len(DIRECTIONS[mode]):
        raise ConfigError(
            f"mode {mode!r} returns {' and '.join(METRIC_NAMES[mode])} but the study has {directions} "
            f"direction(s); create it with directions={DIRECTIONS[mode]} (uboost.tuning.create_study does)"
        )

    try:
        changes = tune_space.suggest(trial)
    except ValueError as exc:  # Optuna refuses e.g. new choices for a parameter of a running study
        raise ConfigError(f"cannot suggest parameters for trial {trial.number}: {exc}") from None
    trial.set_user_attr("array", changes["array"])
    violation = tune_space.area_violation(changes["array"])
    if violation:
        trial.set_user_attr("skipped", "area_budget")  # failed without running: not counted by run_study
        raise _fail(trial, violation)
    try:
        cfg = base.replace(**changes)
        cfg.hardware_spec()
    except UBoostError as exc:
        raise _fail(trial, f"invalid combination: {exc}") from None
    trial.set_user_attr("dataflow", cfg.dataflow)
    run_dir = trial_dir(out_root, trial.study.study_name, trial.number).resolve()
    if run_dir.exists() and any(run_dir.iterdir()):
        raise _fail(trial, f"trial directory {run_dir} already exists (left by another study?); remove it")
    trial.set_user_attr("run_dir", str(run_dir))
    trial.set_user_attr("config", cfg.to_dict())
    retrain = None
    if retrain_epochs:
        retrain = dict(epochs=retrain_epochs, batch_size=cfg.batch_size, max_samples=cfg.max_samples, seed=cfg.seed,
                       accelerator=cfg.accelerator, devices=cfg.devices)
    payload = {"config": cfg.to_dict(), "run_dir": str(run_dir), "retrain": retrain}
    message = _run_child(trial, payload, report=mode == "budget", start_method=start_method, poll_seconds=poll_seconds)
    if not message["ok"]:
        if message.get("traceback") and run_dir.is_dir():
            write_text(run_dir / "error.txt", message["traceback"])
        raise _fail(trial, message["error"])

    summary = message["summary"]
    attrs = {
        "arch": message["arch"], "latency_ms": summary["latency_ms"], "cycles": summary["cycles"],
        "utilization": summary["utilization"], "macs": summary["macs"], "val_acc": summary["val_acc"],
        "search_seconds": summary["search_seconds"], "array": message["array"], "dataflow": message["dataflow"],
    }
    if "test_acc" in message:
        attrs["test_acc"] = message["test_acc"]
        attrs["retrain_seconds"] = message["retrain_seconds"]
    accuracy = attrs.get("test_acc", attrs["val_acc"])
    attrs["accuracy"] = accuracy
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    latency = attrs["latency_ms"]
    if accuracy is None:
        raise _fail(trial, "the search reported no validation accuracy")
    if not math.isfinite(accuracy) or not math.isfinite(latency):
        raise _fail(trial, f"non-finite result: accuracy={accuracy}, latency_ms={latency}")
    if budget_ms is not None:
        over = latency - budget_ms
        trial.set_user_attr(BUDGET_CONSTRAINT, over)
        if hasattr(trial, "set_constraint"):  # Optuna >= 5; older versions read the user attr (create_study)
            trial.set_constraint(BUDGET_CONSTRAINT, over)
    return (accuracy, latency) if mode == "pareto" else accuracy


# ------------------------------------------------------------------------------------------- studies


def describe_storage(storage: Any, out_root: str | os.PathLike) -> str:
    """The storage as text for messages, any password masked."""
    if storage is None:
        return str(Path(out_root) / "study.journal")
    if not isinstance(storage, (str, os.PathLike)):
        return type(storage).__name__
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", os.fspath(storage))


def resolve_storage(storage: "str | os.PathLike | optuna.storages.BaseStorage | None", out_root: str | os.PathLike):
    """A storage object: ``None`` -> a journal file ``out_root/study.journal``; ``*.journal``/``*.log``
    paths -> journal files; ``*.db``/``*.sqlite`` paths -> SQLite; ``redis://`` -> a Redis journal;
    other URLs (``sqlite:///...``, ``postgresql://...``) -> Optuna's RDB storage with a heartbeat,
    so the trial of a killed worker is marked failed; storage objects pass through."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if storage is not None and not isinstance(storage, (str, os.PathLike)):
        return storage
    if storage is None:
        path = Path(out_root) / "study.journal"
    else:
        text = os.fspath(storage)
        if "://" in text:
            if text.startswith(("redis://", "rediss://", "unix://")):
                from optuna.storages.journal import JournalRedisBackend

                try:
                    return JournalStorage(JournalRedisBackend(text))
                except ImportError:
                    raise ConfigError("a redis storage needs the redis package: pip install redis") from None
            for attempt in range(5):
                try:
                    with warnings.catch_warnings():  # the heartbeat is "experimental" since Optuna 2.9
                        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                        return optuna.storages.RDBStorage(text, heartbeat_interval=60, grace_period=180)
                except Exception as exc:  # SQLAlchemy raises its own types for bad URLs / missing drivers
                    # Workers that open a new database at the same moment race to create its schema
                    # (IntegrityError on alembic_version); once one has, the others just open it.
                    if type(exc).__name__ not in ("IntegrityError", "OperationalError") or attempt == 4:
                        first = str(exc).splitlines()[0] if str(exc) else ""
                        shown = describe_storage(text, out_root)  # no passwords in messages
                        raise ConfigError(f"cannot open storage {shown!r}: {type(exc).__name__}: {first}") from None
                    time.sleep(0.2 * (attempt + 1))
        path = Path(text)
        if path.suffix in (".db", ".sqlite", ".sqlite3"):
            path.parent.mkdir(parents=True, exist_ok=True)
            return resolve_storage(f"sqlite:///{path.resolve()}", out_root)
        if path.suffix not in (".journal", ".log", ".jsonl"):
            raise ConfigError(
                f"storage must be an Optuna URL (sqlite:///study.db, postgresql://...) or a file ending in "
                f".journal or .db, got {text!r}"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def _constraints_from_attrs(trial) -> Sequence[float]:  # Optuna < 5 (no Trial.set_constraint)
    return (float(trial.user_attrs.get(BUDGET_CONSTRAINT, 0.0)),)


def create_study(
    out_root: str | os.PathLike = "runs/tune",
    *,
    mode: str = "pareto",
    storage: Any = None,
    study_name: str = DEFAULT_STUDY,
    seed: int | None = None,
    population_size: int = 20,
    pruner: "optuna.pruners.BasePruner | None" = None,
) -> "optuna.Study":
    """Create or continue (``load_if_exists``) a study with metric names set.

    ``"pareto"``: maximize accuracy, minimize latency_ms with a seeded NSGA-II. ``"budget"``:
    maximize accuracy with TPE (latency budget as a constraint) and a median pruner on the
    per-epoch validation accuracy. When the study already has trials, the sampler seed is offset
    by their number so a continued study does not replay the first run's samples.
    Parallel workers on one storage should use different seeds (or none).
    """
    import optuna

    if mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r}; expected one of: {', '.join(MODES)}")
    if isinstance(population_size, bool) or not isinstance(population_size, int) or population_size < 2:
        raise ConfigError(f"population_size must be an integer >= 2, got {population_size!r}")
    legacy = not hasattr(optuna.trial.Trial, "set_constraint")

    def sampler(seed_: int | None):
        if mode == "pareto":
            extra = {"constraints_func": _constraints_from_attrs} if legacy else {}
            return optuna.samplers.NSGAIISampler(seed=seed_, population_size=population_size, **extra)
        extra = {"constraints_func": _constraints_from_attrs} if legacy else {}
        return optuna.samplers.TPESampler(seed=seed_, n_startup_trials=5, **extra)

    if pruner is None:
        pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1) if mode == "budget" else optuna.pruners.NopPruner()
    study = optuna.create_study(
        storage=resolve_storage(storage, out_root), study_name=study_name, directions=DIRECTIONS[mode],
        sampler=sampler(seed), pruner=pruner, load_if_exists=True,
    )
    found = ["maximize" if d == optuna.study.StudyDirection.MAXIMIZE else "minimize" for d in study.directions]
    if found != DIRECTIONS[mode]:
        other = next(m for m, d in DIRECTIONS.items() if d == found) if found in DIRECTIONS.values() else "another"
        raise ConfigError(
            f"study {study_name!r} was created in {other!r} mode ({', '.join(found)}), not {mode!r}; "
            f"use --mode {other} or a new --study-name"
        )
    if study.metric_names != METRIC_NAMES[mode]:
        with warnings.catch_warnings():  # "experimental" in Optuna 3.2-5.0; it is what the dashboard reads
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(METRIC_NAMES[mode])
    done = len(study.get_trials(deepcopy=False))
    if done and seed is not None:
        study.sampler = sampler(seed + done)
    return study


def run_study(
    *,
    base: SearchConfig,
    tune_space: TuneSpace | None = None,
    out_root: str | os.PathLike = "runs/tune",
    n_trials: int | None = 10,
    timeout: float | None = None,
    mode: str = "pareto",
    budget_ms: float | None = None,
    retrain_epochs: int = 0,
    storage: Any = None,
    study_name: str = DEFAULT_STUDY,
    seed: int | None = None,
    population_size: int = 20,
    pruner: "optuna.pruners.BasePruner | None" = None,
    callbacks: Sequence[Callable] | None = None,
    start_method: str | None = None,
    study: "optuna.Study | None" = None,
) -> "optuna.Study":
    """Create/continue the study (or use ``study``) and run ``n_trials`` more searches here.

    ``n_trials`` counts searches: trials skipped at once for the area budget (recorded as FAIL with
    user attribute ``skipped``) come on top. Failed trials are recorded as FAIL and the study goes
    on. Ctrl-C stops the running trial's process, records that trial as FAIL and raises
    ``KeyboardInterrupt``; finished trials stay in storage.
    """
    check_mode(mode, budget_ms)
    _start_method(start_method)
    tune_space = tune_space if tune_space is not None else TuneSpace()
    if n_trials is not None and (isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 0):
        raise ConfigError(f"n_trials must be a non-negative integer, got {n_trials!r}")
    if study is None:
        study = create_study(out_root, mode=mode, storage=storage, study_name=study_name, seed=seed,
                             population_size=population_size, pruner=pruner)
    tune_space.check_compatible(study)
    attrs = {"uboost_base": base.to_dict(), "uboost_space": tune_space.to_dict(), "uboost_budget_ms": budget_ms,
             "uboost_retrain_epochs": retrain_epochs}
    for key, value in attrs.items():
        old = study.user_attrs.get(key)
        if old is not None and old != value:
            logger.warning("study %r continues with a different %s than it started with", study.study_name, key.removeprefix("uboost_"))
        if old != value:
            study.set_user_attr(key, value)
    if n_trials == 0:
        return study

    def func(trial):
        return objective(trial, base=base, tune_space=tune_space, out_root=out_root, retrain_epochs=retrain_epochs,
                         mode=mode, budget_ms=budget_ms, start_method=start_method)

    ran = attempts = 0
    limit = None if n_trials is None else 20 * n_trials + 20

    def count(study_, frozen) -> None:  # n_trials counts searches run: area-budget skips are extra
        nonlocal ran, attempts
        attempts += 1
        ran += not frozen.user_attrs.get("skipped")
        if n_trials is not None and ran >= n_trials:
            study_.stop()
        elif limit is not None and attempts >= limit:
            logger.warning("stopping: %d of %d suggested arrays exceeded the area budget", attempts - ran, attempts)
            study_.stop()

    with _interrupt_guard():
        study.optimize(func, n_trials=None, timeout=timeout, catch=(UBoostError,),
                       callbacks=[count, *(callbacks or []), _check_interrupt])
    return study


def load_study(out_root: str | os.PathLike = "runs/tune", *, storage: Any = None, study_name: str = DEFAULT_STUDY) -> "optuna.Study":
    """An existing study, whatever its mode (for reports and export)."""
    import optuna

    resolved = resolve_storage(storage, out_root) if storage is not None or (Path(out_root) / "study.journal").is_file() else None
    if resolved is None:
        raise ConfigError(f"no study in {out_root}: {Path(out_root) / 'study.journal'} does not exist (pass --storage?)")
    try:
        return optuna.load_study(study_name=study_name, storage=resolved)
    except KeyError:
        names = optuna.get_all_study_names(resolved)
        raise ConfigError(f"no study named {study_name!r} in that storage; studies there: {', '.join(names) or '(none)'}") from None


# ------------------------------------------------------------------------------------------- results


def feasible(trial) -> bool:
    """Within the latency budget (or no budget was set)."""
    over = trial.user_attrs.get(BUDGET_CONSTRAINT)
    return over is None or over <= 0


def completed(study: "optuna.Study") -> list:
    """Finished trials with accuracy and latency recorded."""
    import optuna

    return [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if t.user_attrs.get("accuracy") is not None and t.user_attrs.get("latency_ms") is not None]


def pareto_front(study: "optuna.Study", *, feasible_only: bool = True) -> list:
    """Completed trials no other trial beats on both accuracy (higher) and latency (lower),
    sorted by latency. Over-budget trials are left out when a budget was set."""
    trials = [t for t in completed(study) if not feasible_only or feasible(t)]
    points = [(t.user_attrs["accuracy"], t.user_attrs["latency_ms"]) for t in trials]
    front = []
    for t, (acc, lat) in zip(trials, points):
        dominated = any(a >= acc and l <= lat and (a > acc or l < lat) for a, l in points)
        if not dominated:
            front.append(t)
    return sorted(front, key=lambda t: (t.user_attrs["latency_ms"], -t.user_attrs["accuracy"], t.number))


def best_trial(study: "optuna.Study", *, budget_ms: float | None = None):
    """The most accurate completed trial within the latency budget (the study's, or ``budget_ms``);
    ties go to the lower latency. ``None`` if there is none."""
    candidates = [t for t in completed(study) if feasible(t)]
    if budget_ms is not None:
        candidates = [t for t in candidates if t.user_attrs["latency_ms"] <= budget_ms]
    if not candidates:
        return None
    return max(candidates, key=lambda t: (t.user_attrs["accuracy"], -t.user_attrs["latency_ms"], -t.number))


def find_trial(study: "optuna.Study", which: int | str, *, budget_ms: float | None = None):
    """Trial ``which`` (a number, or ``"best"``), checked to be finished with a result."""
    import optuna

    if isinstance(which, str) and which.strip().lower() == "best":
        trial = best_trial(study, budget_ms=budget_ms)
        if trial is None:
            within = " within the latency budget" if completed(study) else ""
            raise ConfigError(f"study {study.study_name!r} has no finished trial{within}")
        return trial
    try:
        number = int(which)
    except (TypeError, ValueError):
        raise ConfigError(f"trial must be a trial number or 'best', got {which!r}") from None
    trials = study.get_trials(deepcopy=False)
    match = [t for t in trials if t.number == number]
    if not match:
        span = f"0..{max(t.number for t in trials)}" if trials else "none yet"
        raise ConfigError(f"study {study.study_name!r} has no trial {number} (trials: {span})")
    trial = match[0]
    if trial.state != optuna.trial.TrialState.COMPLETE or "arch" not in trial.user_attrs:
        reason = trial.user_attrs.get("fail_reason")
        raise ConfigError(f"trial {number} is {trial.state.name}{f' ({reason})' if reason else ''}; only finished trials can be exported")
    return trial


_SKIP = {runs.CHECKPOINTS, "nni"}


def export_trial(study: "optuna.Study", which: int | str, out: str | os.PathLike | None = None, *,
                 out_root: str | os.PathLike = "runs/tune", force: bool = False, budget_ms: float | None = None) -> Path:
    """Write trial ``which`` (number or ``"best"``) as a run directory ``uboost retrain`` accepts.

    Files of the trial's own run directory are copied when it is on this machine (without
    checkpoints); ``config.json``, ``arch.json`` and ``tune.json`` come from the storage, so
    export also works for trials run elsewhere. Default ``out``: ``out_root/export-NUMBER``.
    """
    trial = find_trial(study, which, budget_ms=budget_ms)
    out = Path(out) if out is not None else Path(out_root) / f"export-{trial.number}"
    if out.exists() and not out.is_dir():
        raise RunDirError(f"output {out} exists and is not a directory")
    source = Path(trial.user_attrs["run_dir"]) if trial.user_attrs.get("run_dir") else None
    if not _manifest.is_empty(out):
        if not force:
            raise RunDirError(f"output {out} already exists; pass --force to replace it")
        _manifest.guard(out, out_root, *([source] if source else []))
    with runs.run_lock(out):
        tmp = Path(tempfile.mkdtemp(dir=out, prefix=".uboost-export."))
        try:
            if source is not None and source.is_dir():
                for item in source.iterdir():
                    if item.name in _SKIP or item.name.startswith("."):
                        continue
                    (shutil.copytree if item.is_dir() else shutil.copy2)(item, tmp / item.name)
            write_json(tmp / runs.CONFIG, trial.user_attrs["config"])
            write_json(tmp / runs.ARCH, trial.user_attrs["arch"])
            keys = ("accuracy", "val_acc", "test_acc", "latency_ms", "cycles", "utilization", "macs", "array", "dataflow", "run_dir")
            write_json(tmp / "tune.json", {
                "study": study.study_name, "trial": trial.number, "params": trial.params, "values": trial.values,
                **{k: trial.user_attrs[k] for k in keys if k in trial.user_attrs},
            })
            files = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
            _manifest.refuse_foreign(out, files)  # never overwrite a file uboost did not write
            if force:
                _manifest.clear(out, out_root, *([source] if source else []))
            folders = sorted({parent.as_posix() for f in files for parent in Path(f).parents
                              if parent != Path(".") and not (out / parent).is_dir()})
            _manifest.record(out, *files, dirs=folders)
            for name in files:
                try:
                    (out / name).parent.mkdir(parents=True, exist_ok=True)
                    os.replace(tmp / name, out / name)
                except OSError as exc:
                    raise RunDirError(f"cannot write {out / name}: {exc.strerror or exc}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


__all__ = [
    "BUDGET_CONSTRAINT", "DEFAULT_STUDY", "METRIC_NAMES", "MODES", "TrialFailed", "TuneSpace", "best_trial",
    "check_mode", "completed", "create_study", "describe_storage", "export_trial", "feasible", "find_trial",
    "load_study", "objective", "pareto_front", "resolve_storage", "run_study", "safe_name", "trial_dir",
]
