"""The trial process: one search (+ optional retrain) in a fresh child process, and the parent's side of it."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import traceback
import warnings
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from uboost.exceptions import ConfigError, SearchError, UBoostError

if TYPE_CHECKING:
    import optuna

# Imported once in the forkserver, so each trial child starts warm (see the module docstring).
_PRELOAD = [
    "uboost.tuning.child", "uboost.search", "uboost.retrain", "uboost.data", "uboost.strategy",
    "uboost.search_spaces", "uboost.hardware", "pytorch_lightning", "nni.nas.evaluator.pytorch",
    "nni.nas.experiment", "matplotlib", "uboost.tuning.callbacks", "optuna_integration.pytorch_lightning",
    "uboost.tuning.cost_cache",
    "uboost.tuning._forkserver",  # a trial start cut short by Ctrl-C exits without a traceback
]


class TrialFailed(SearchError):
    """A trial could not produce a result; Optuna records it as FAIL and the study goes on."""


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
    """Body of a trial's child process: one search (+ optional retrain) with the progress and (with
    ``payload["prune"]``) Optuna pruning callbacks; the outcome goes to ``conn`` as ``("result", ...)``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business: it stops us
    _exit_with_parent(alive)
    _quiet_child()
    message: dict[str, Any]
    try:
        from uboost.search import SearchConfig as Config, run_search
        from uboost.tuning.callbacks import PipeTrial, progress_callback, pruning_callback

        run_dir = Path(payload["run_dir"])
        callbacks = [progress_callback(conn)]
        if payload.get("prune"):
            callbacks.append(pruning_callback(PipeTrial(conn, payload["number"])))
        config = Config.from_dict(payload["config"])
        cost_model = None
        if payload.get("cost_cache"):  # trials on one accelerator price its layers once (cost_cache.py)
            from uboost.search import build_cost_model
            from uboost.tuning.cost_cache import CachedCostModel

            cost_model = CachedCostModel(build_cost_model(config), payload["cost_cache"])
        result = run_search(config, run_dir, callbacks=callbacks, cost_model=cost_model)
        message = {
            "ok": True, "summary": result.summary(), "arch": result.arch,
            "array": result.hardware.spec.array, "dataflow": result.hardware.spec.dataflow,
            "layers": [cost.layer.to_dict() for cost in result.hardware.layers],  # for an inner accelerator choice
        }
        from uboost import runs

        precision = run_dir / runs.PRECISION  # a bits search's chosen widths
        if precision.is_file():
            message["precision"] = runs.read_json(precision, "precision file")
        if cost_model is not None:
            message["cost_cache"] = {"key": cost_model.key, "hits": cost_model.hits, "misses": cost_model.misses}
        if payload.get("retrain"):
            from uboost.retrain import RetrainConfig, retrain

            retrained = retrain(run_dir, RetrainConfig(**payload["retrain"]), out=run_dir / "retrain")
            message["test_acc"] = retrained.test_acc
            message["retrain_seconds"] = retrained.seconds
    except UBoostError as exc:
        message = {"ok": False, "error": f"{exc}"}
    except BaseException as exc:  # noqa: BLE001 - everything must reach the parent as a message
        if _is_pruned(exc):
            message = {"ok": False, "pruned": True, "error": str(_is_pruned(exc))}
        else:
            message = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    try:
        conn.send(("result", message))
    finally:
        conn.close()


def _is_pruned(exc: BaseException | None) -> BaseException | None:
    """The ``optuna.TrialPruned`` the pruning callback raised, however Lightning/NNI wrapped it."""
    for _ in range(10):
        if exc is None:
            return None
        if type(exc).__name__ == "TrialPruned":
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


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


def _check_main(config: dict[str, Any], conn) -> None:
    """Body of the config-check process: build the space and cost model once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _quiet_child()
    try:
        from uboost.search import SearchConfig as Config, build_cost_model, build_space

        cfg = Config.from_dict(config)
        from uboost.data import check_available

        check_available(cfg.dataset, data_dir=cfg.data_dir, download=cfg.download)  # every trial would fail without it
        build_space(cfg)
        build_cost_model(cfg)
        answer = None
    except UBoostError as exc:
        answer = str(exc)
    except BaseException as exc:  # noqa: BLE001 - a bad value of any kind is the user's to fix
        answer = f"bad config: {type(exc).__name__}: {exc}"
    try:
        conn.send(answer)
    except OSError:  # the parent is gone (Ctrl-C while this ran): nobody to answer, and nothing to print
        pass
    finally:
        conn.close()


def check_config(config, *, start_method: str | None = None) -> None:
    """Build ``config``'s search space and cost model once, in a process like a trial's (where NNI is
    already imported): a bad space option or dataset fails here, as one :class:`ConfigError`, before
    any storage is touched, instead of failing every trial."""
    from uboost.search_config import refuse_tableless_lookup

    refuse_tableless_lookup(config)  # the cost model's own error would name a --table no trial can take
    ctx = _context(start_method)
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_check_main, args=(config.to_dict(), sender), name="uboost-config-check", daemon=True)
    try:
        with _interruptible():
            proc.start()
        sender.close()
        with _interruptible():
            try:
                problem = receiver.recv()
            except EOFError:
                problem = f"the config check process died (exit code {proc.exitcode})"
    finally:
        _stop(proc)
        receiver.close()
    if problem:
        raise ConfigError(problem)


class _InterruptGuard:
    """Ctrl-C handling for :func:`run_study`: a SIGINT (or SIGTERM) raises ``KeyboardInterrupt`` only while we
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
    previous_term = signal.signal(signal.SIGTERM, guard)  # `kill PID`, a scheduler's stop: as a Ctrl-C (it left the trial RUNNING)
    _GUARD = guard
    try:
        yield
    finally:
        _GUARD = None
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)


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
               poll_seconds: float, progress: Callable[[int, dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run one trial's search in a fresh process and serve its pipe: with ``report``, the child's
    pruning callback reports each epoch's val_acc through us to ``trial`` and asks ``trial.should_prune()``
    (a pruned trial raises ``optuna.TrialPruned`` here); ``progress(number, info)`` gets its progress."""
    import optuna

    ctx = _context(start_method)
    ours, theirs = ctx.Pipe(duplex=True)
    alive_child, alive_parent = ctx.Pipe(duplex=False)  # the child exits when our end closes
    payload = {**payload, "prune": report, "number": trial.number}
    proc = ctx.Process(target=_trial_main, args=(payload, theirs, alive_child), name=f"uboost-trial-{trial.number}", daemon=True)
    message, last_step = None, None
    try:
        try:
            if ctx.get_start_method() == "spawn":
                with _sigint_ignored():  # returns right after exec; the child starts with SIGINT ignored
                    proc.start()
            else:
                with _interruptible():  # the first start waits for the server's preload
                    proc.start()  # forked by the server, which ignores SIGINT and passes that on
        finally:
            theirs.close()  # the child holds its own copy: its exit shows up as EOF
            alive_child.close()
        while message is None:
            with _interruptible():
                ready = ours.poll(poll_seconds)
            if not ready:
                continue
            try:
                kind, *rest = ours.recv()
            except EOFError:
                break
            if kind == "result":
                message = rest[0]
            elif kind == "report":
                value, last_step = rest
                trial.report(value, step=last_step)
            elif kind == "should_prune":
                prune = trial.should_prune()
                if prune:
                    trial.set_user_attr("pruned_at_epoch", last_step)
                ours.send(prune)
            elif kind == "progress" and progress is not None:
                with contextlib.suppress(Exception):  # a display must never fail a trial
                    progress(trial.number, rest[0])
        with _interruptible():
            proc.join()
    finally:
        _stop(proc)
        alive_parent.close()
        ours.close()
    if message is None:
        code = proc.exitcode
        why = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        raise TrialFailed(f"trial {trial.number}: the search process died without a result ({why})")
    if message.get("pruned"):
        raise optuna.TrialPruned(f"pruned after epoch {last_step}")
    return message
