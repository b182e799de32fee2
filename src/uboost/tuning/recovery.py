"""What a dead worker or a dead storage leaves behind, and how a later ``uboost tune`` cleans it up.

*Dead workers.* Database storages have Optuna's heartbeat. A journal file has none, so every worker
process holds an exclusive ``flock`` on a file of its own beside the journal
(``.study.journal.workers/HOST-PID-TOKEN.lock``) for as long as it lives, and writes the file's
name into each trial it starts (user attribute ``worker_lock``). The kernel drops the lock when the
process dies, even by ``kill -9``: a RUNNING trial whose worker's lock is free (or gone) belongs to
a dead worker. :func:`fail_dead_trials` marks such trials (and stale database ones) FAIL with a
``fail_reason`` and re-queues each once (Optuna's retry callback). Only workers on this host are
judged (``flock`` across machines is not to be trusted).

*Dead storage.* A trial's result is written to ``RUN_DIR/.pending-result.json`` before it goes to
the storage; :func:`record_pending` (run by every later ``uboost tune``, and after each trial) records
what never arrived -- only for a trial whose worker is gone (dead, or this process, which gave up on
it): a live worker tells its own trial.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import os
import secrets
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from uboost.io import write_json
from uboost.tuning.storage import safe_name

if TYPE_CHECKING:
    import optuna

logger = logging.getLogger(__name__)

PENDING = ".pending-result.json"
INTERRUPTED_REASON = "interrupted (Ctrl-C)"  # fail_reason of a trial Ctrl-C or SIGTERM stopped (as studies hold it): queued again
_HELD: dict[str, tuple[int, str, int]] = {}  # lock folder -> (fd, file name, pid that holds it)
_RUNNING_HERE: set[tuple[str, int]] = set()  # (study name, trial number) whose objective runs in this process now


def worker_name() -> str:
    """This process as a trial's ``worker`` user attribute names it."""
    return f"{socket.gethostname()}:{os.getpid()}"


@contextlib.contextmanager
def running_here(trial: "optuna.Trial"):
    """Mark ``trial`` as run by this process for the block: :func:`record_pending` leaves its result alone
    (this process, alive, tells it; after the block a RUNNING trial of ours was given up: the storage failed)."""
    key = (trial.study.study_name, trial.number)
    _RUNNING_HERE.add(key)
    try:
        yield
    finally:
        _RUNNING_HERE.discard(key)


def _journal_file(storage) -> Path | None:
    """The journal file behind ``storage`` (a study's storage), or ``None`` for other storages."""
    backend = getattr(storage, "_backend", None)
    path = getattr(backend, "_file_path", None)
    return Path(path).resolve() if path else None


def _lock_folder(journal: Path) -> Path:
    return journal.parent / f".{journal.name}.workers"


def _release(path: Path, fd: int) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
    with contextlib.suppress(OSError):
        os.close(fd)


def hold_worker_lock(study: "optuna.Study") -> str | None:
    """Hold this process's lock file for ``study``'s journal (taken once, kept until exit) and
    return its name, or ``None`` when the storage is not a journal file."""
    journal = _journal_file(study._storage)
    if journal is None:
        return None
    folder = _lock_folder(journal)
    held = _HELD.get(str(folder))
    if held is not None and held[2] == os.getpid():
        return held[1]
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}.lock"
    fd = os.open(folder / name, os.O_CREAT | os.O_RDWR, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a fresh name: nobody else can hold it
    _HELD[str(folder)] = (fd, name, os.getpid())
    atexit.register(_release, folder / name, fd)
    return name


def _lock_is_free(path: Path) -> bool:
    """True when no live process holds ``path`` (or it is gone)."""
    from uboost._lock import lock_holder

    return lock_holder(path) is None


def _dead_trials(study: "optuna.Study") -> dict[int, tuple[int, str]]:
    """``trial_id -> (number, reason)`` for RUNNING trials whose worker is gone."""
    import optuna
    from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled

    storage, dead = study._storage, {}
    running = {t._trial_id: t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))}
    if isinstance(storage, BaseHeartbeat) and is_heartbeat_enabled(storage):
        for trial_id in storage._get_stale_trial_ids(study._study_id):
            trial = running.get(trial_id) or storage.get_trial(trial_id)
            worker = trial.user_attrs.get("worker", "its worker")
            dead[trial_id] = (trial.number, f"worker {worker} stopped sending heartbeats for "
                                            f"{storage.get_heartbeat_interval() * 3} s (killed?)")
    journal = _journal_file(storage)
    if journal is not None:
        host = socket.gethostname()
        for trial_id, trial in running.items():
            lock = trial.user_attrs.get("worker_lock")
            if lock and lock.startswith(f"{host}-") and _lock_is_free(_lock_folder(journal) / lock):
                worker = trial.user_attrs.get("worker", lock)
                dead[trial_id] = (trial.number, f"worker {worker} died (killed?) while running this trial")
    return dead


def fail_dead_trials(study: "optuna.Study", *, retry: bool = True, log: bool = True) -> list[int]:
    """Mark the RUNNING trials of dead workers FAIL (with ``fail_reason``) and, with ``retry``,
    queue each once more; returns their numbers. Safe to run from several workers at once: a trial
    is failed (and retried) by one of them. ``log=False``: no warning per trial (a caller that reports them)."""
    import optuna

    storage, failed = study._storage, []
    for trial_id, (number, reason) in sorted(_dead_trials(study).items()):
        try:
            storage.set_trial_user_attr(trial_id, "fail_reason", reason)
            if not storage.set_trial_state_values(trial_id, state=optuna.trial.TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:  # another worker was first
            continue
        failed.append(number)
        if log:
            logger.warning("trial %d: %s; marked failed%s", number, reason, " and queued again" if retry else "")
        if retry:  # once, as Optuna's retry callback (max_retry=1): a trial that kills its worker again stays failed
            _queue_again(study, storage.get_trial(trial_id), max_retry=1)
    return failed


def requeue_interrupted(study: "optuna.Study") -> list[int]:
    """Queue once more, with the same parameters, each trial a Ctrl-C stopped (FAIL with the interrupted
    ``fail_reason``) that is not queued again yet; returns their numbers. The same command then runs that
    point first, as the uninterrupted study would have. A retry that is itself interrupted is queued again
    (a Ctrl-C is the user's, not a crash that could repeat forever)."""
    import optuna

    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", ())}
    queued = []
    for trial in trials:
        if (trial.state == optuna.trial.TrialState.FAIL and trial.number not in retried
                and trial.user_attrs.get("fail_reason") == INTERRUPTED_REASON):
            _queue_again(study, trial)
            queued.append(trial.number)
    return queued


_KEPT_ON_RETRY = ("warm_start",)  # user attributes that say what a queued trial is (warm_start.SOURCE_ATTR); the rest are its run's


def _queue_again(study: "optuna.Study", trial: "optuna.trial.FrozenTrial", max_retry: int | None = None) -> None:
    """A WAITING copy of ``trial``'s parameters, as Optuna's retry callback makes it (system attributes
    ``failed_trial``: the first trial of the chain, ``retry_history``), without the stopped run's user attributes
    (its fail_reason, worker, run_dir...). Nothing when the chain has been retried ``max_retry`` times."""
    import optuna

    history = [*trial.system_attrs.get("retry_history", ()), trial.number]
    if max_retry is not None and len(history) > max_retry:
        return
    study.add_trial(optuna.trial.create_trial(
        state=optuna.trial.TrialState.WAITING, params=trial.params, distributions=trial.distributions,
        user_attrs={k: trial.user_attrs[k] for k in _KEPT_ON_RETRY if k in trial.user_attrs},
        system_attrs={"failed_trial": trial.system_attrs.get("failed_trial", trial.number), "retry_history": history},
    ))


# ----------------------------------------------------------------------------------- pending results


def write_pending(run_dir: Path, trial: "optuna.Trial", values: list[float], attrs: dict[str, Any]) -> Path:
    """Keep a finished trial's result on disk before it goes to the storage."""
    from optuna.distributions import distribution_to_json

    path = run_dir / PENDING
    write_json(path, {
        "study": trial.study.study_name, "number": trial.number, "params": trial.params,
        "distributions": {k: distribution_to_json(d) for k, d in trial.distributions.items()},
        "values": values, "user_attrs": attrs,
    })
    return path


def recorded(run_dir: str | os.PathLike | None) -> None:
    """The trial's result reached the storage: drop its pending copy."""
    if run_dir:
        with contextlib.suppress(OSError):
            (Path(run_dir) / PENDING).unlink()


def record_pending(study: "optuna.Study", out_root: str | os.PathLike) -> list[int]:
    """Record the results kept on disk whose trials never got them (the storage went away after
    the search finished, or the worker died before it told the storage); returns the trial numbers.
    A trial still RUNNING is completed when its worker is gone (:func:`_gone`), else left to its
    worker; one that was failed meanwhile (dead worker) gets a completed copy (user attribute
    ``recovered_from``) and its queued retry is dropped -- unless that retry completed already."""
    import optuna

    folder = Path(out_root) / "trials" / safe_name(study.study_name)
    paths = sorted(folder.glob(f"*/{PENDING}"))
    if not paths:
        return []
    gone = _gone(study)
    done = []
    for path in paths:
        claim = path.with_name(f"{PENDING}.{os.getpid()}")
        try:
            os.rename(path, claim)  # one worker records it
            record = json.loads(claim.read_text())
        except (OSError, ValueError):
            continue
        if record.get("study") != study.study_name:
            os.rename(claim, path)
            continue
        try:
            outcome = _record(study, record, gone, optuna)
        except BaseException:
            os.rename(claim, path)  # try again next time
            raise
        if outcome == _LEFT:
            os.rename(claim, path)
            continue
        claim.unlink()
        if outcome == _RECORDED:
            done.append(record["number"])
    return done


_RECORDED, _DROPPED, _LEFT = "recorded", "dropped", "left"  # what _record did with a pending result


def _gone(study: "optuna.Study") -> set[int]:
    """Numbers of the RUNNING trials no live worker will tell: their worker died (:func:`_dead_trials`), or it is
    this process and the trial no longer runs here (the storage failed as its result was written)."""
    import optuna

    gone = {number for number, _ in _dead_trials(study).values()}
    me = worker_name()
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if trial.user_attrs.get("worker") == me and (study.study_name, trial.number) not in _RUNNING_HERE:
            gone.add(trial.number)
    return gone


def _record(study, record: dict[str, Any], gone: set[int], optuna) -> str:
    from optuna.distributions import json_to_distribution

    number = record["number"]
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    trial = trials.get(number)
    if trial is None or trial.state == optuna.trial.TrialState.COMPLETE:
        return _DROPPED
    storage = study._storage
    if trial.state == optuna.trial.TrialState.RUNNING:
        if number not in gone:  # its worker is alive and tells it (telling it here made the worker's own tell fail)
            return _LEFT
        for key, value in record["user_attrs"].items():
            storage.set_trial_user_attr(trial._trial_id, key, value)
        storage.set_trial_user_attr(trial._trial_id, "recorded_late", True)
        study.tell(number, record["values"])
        logger.warning("trial %d: recorded its result kept on disk", number)
        return _RECORDED
    if any(t.user_attrs.get("recovered_from") == number for t in trials.values()):
        return _DROPPED
    retries = [t for t in trials.values() if t.system_attrs.get("failed_trial") == number]
    if any(t.state == optuna.trial.TrialState.COMPLETE for t in retries):  # the same point ran again: a copy would
        return _DROPPED                                                     # be a second trial of it
    if any(t.state == optuna.trial.TrialState.RUNNING for t in retries):
        return _LEFT  # decided when the retry ends
    study.add_trial(optuna.trial.create_trial(
        params=record["params"], values=record["values"],
        distributions={k: json_to_distribution(v) for k, v in record["distributions"].items()},
        user_attrs={**record["user_attrs"], "recovered_from": number},
    ))
    for t in retries:  # the dead worker's retry of the same point is not needed any more
        if t.state == optuna.trial.TrialState.WAITING:
            with contextlib.suppress(Exception):
                storage.set_trial_user_attr(t._trial_id, "fail_reason", f"trial {number}'s result was recovered")
                storage.set_trial_state_values(t._trial_id, state=optuna.trial.TrialState.FAIL)
    logger.warning("trial %d: its result kept on disk was recorded as a new trial", number)
    return _RECORDED
