"""Where a study lives: journal files (default), SQLite, PostgreSQL, Redis.

Database storages (``sqlite:///``, ``postgresql://``) get Optuna's heartbeat (a killed worker's
trial is failed after :data:`GRACE_PERIOD_S` and retried once by ``RetryFailedTrialCallback``) and
are wrapped so that a storage call that loses its connection is retried with back-off before the
worker gives up with :class:`StorageUnavailable` (one line; a finished trial's result is kept on
disk, see :mod:`uboost.tuning.recovery`).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from uboost.exceptions import ConfigError, UBoostError

if TYPE_CHECKING:
    import optuna

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 10
GRACE_PERIOD_S = 30
"""A database worker silent for this long is dead: its running trial is failed (and retried once)."""
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0)
"""Back-off between attempts of a storage call that lost its connection (about 15 s in all)."""

DRIVERS = {  # module SQLAlchemy could not import -> what to install
    "psycopg": "pip install 'uboost[postgres]' (psycopg 3)",
    "psycopg2": "pip install 'uboost[postgres]' (psycopg 3), and write the URL as postgresql+psycopg://",
    "pymysql": "pip install pymysql",
    "MySQLdb": "pip install mysqlclient",
}


class StorageUnavailable(UBoostError):
    """The study's storage stopped answering (database down, connection lost) and retries ran out."""


_TRANSIENT = {"OperationalError", "InterfaceError", "DisconnectionError", "ConnectionError", "TimeoutError",
              "ConnectionRefusedError", "ConnectionResetError", "BrokenPipeError"}


def _transient(exc: BaseException | None) -> bool:
    """A lost connection, also when wrapped (Optuna's RDB storage raises ``StorageInternalError``
    from SQLAlchemy's ``OperationalError``)."""
    for _ in range(10):
        if exc is None:
            return False
        if any(cls.__name__ in _TRANSIENT for cls in type(exc).__mro__):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _root_cause(exc: BaseException) -> BaseException:
    for _ in range(10):
        inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    return exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


@functools.cache
def _retrying_class():
    """A storage class that forwards every call to ``inner`` and retries those that lost the connection.

    Built on first use (Optuna is imported lazily). Once retries have run out, the storage counts as
    down and later calls try once (a failing ``tell`` after a failing trial must not wait again).
    Heartbeats never raise: a missed one only makes the trial look stale sooner.
    """
    import optuna
    from optuna.storages import BaseStorage
    from optuna.storages._heartbeat import BaseHeartbeat

    class RetryingStorage(BaseStorage, BaseHeartbeat):
        def __init__(self, inner, shown: str, delays: tuple[float, ...] = RETRY_DELAYS_S, lost: tuple[type, ...] = ()) -> None:
            self.inner, self.shown, self.delays, self.down, self.lost = inner, shown, tuple(delays), False, tuple(lost)

        def _call(self, name: str, *args, **kwargs):
            delays = () if self.down else self.delays
            for attempt in range(len(delays) + 1):
                try:
                    result = getattr(self.inner, name)(*args, **kwargs)
                    self.down = False
                    return result
                except optuna.exceptions.UpdateFinishedTrialError:
                    # a retried write whose first attempt did commit: the trial already has that state
                    if attempt and name == "set_trial_state_values" and self.inner.get_trial(args[0]).state == kwargs.get("state", args[1] if len(args) > 1 else None):
                        return True
                    raise
                except Exception as exc:  # noqa: BLE001 - SQLAlchemy/driver types are not importable here
                    if not (_transient(exc) or isinstance(exc, self.lost)):
                        raise
                    if attempt == len(delays):
                        self.down = True
                        raise StorageUnavailable(f"storage {self.shown} is unavailable ({_first_line(_root_cause(exc))})") from None
                    logger.info("storage %s: %s; retrying in %g s", self.shown, _first_line(exc), delays[attempt])
                    time.sleep(delays[attempt])

        def record_heartbeat(self, trial_id: int) -> None:
            try:
                self.inner.record_heartbeat(trial_id)
            except Exception as exc:  # noqa: BLE001 - runs in Optuna's heartbeat thread: never a traceback
                logger.info("storage %s: heartbeat not recorded (%s)", self.shown, _first_line(exc))

        def _heartbeat(self, name: str, default):
            # a BaseHeartbeat only when the inner storage is one (heartbeat disabled otherwise)
            return self._call(name) if hasattr(self.inner, name) else default

        def get_heartbeat_interval(self):
            return self._heartbeat("get_heartbeat_interval", None)

        def get_failed_trial_callback(self):
            return self._heartbeat("get_failed_trial_callback", None)

        def get_heartbeat_stale_trial_callback(self):
            return self._heartbeat("get_heartbeat_stale_trial_callback", None)

        def _get_stale_trial_ids(self, study_id: int) -> list[int]:
            return self._call("_get_stale_trial_ids", study_id) if hasattr(self.inner, "_get_stale_trial_ids") else []

        def __getattr__(self, name: str):  # anything else (e.g. RDBStorage.engine) from the inner storage
            return getattr(self.inner, name)

    def forward(name: str):
        def method(self, *args, **kwargs):
            return self._call(name, *args, **kwargs)

        method.__name__ = name
        return method

    names = {n for n in dir(BaseStorage) if not n.startswith("__") and callable(getattr(BaseStorage, n))}
    for name in names - {"_abc_impl"}:
        setattr(RetryingStorage, name, forward(name))
    RetryingStorage.__abstractmethods__ = frozenset()
    return RetryingStorage


def retry_callback(max_retry: int = 1):
    """Optuna's callback that re-queues a dead worker's trial (``RetryHeartbeatStaleTrialCallback``
    since Optuna 4.9, ``RetryFailedTrialCallback`` before)."""
    import optuna

    cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or optuna.storages.RetryFailedTrialCallback
    with warnings.catch_warnings():  # "experimental"
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return cls(max_retry=max_retry)


def retry_callback_kwargs() -> dict[str, Any]:
    import inspect

    import optuna

    params = inspect.signature(optuna.storages.RDBStorage).parameters
    key = "heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback" in params else "failed_trial_callback"
    return {key: retry_callback()}


def retrying(inner, shown: str = "", delays: tuple[float, ...] = RETRY_DELAYS_S, lost: tuple[type, ...] = ()):
    """``inner`` (any Optuna storage) with lost-connection retries; see :func:`_retrying_class`.
    Errors of the ``lost`` types also count as a lost storage (journal files: ``OSError``)."""
    return _retrying_class()(inner, shown or type(inner).__name__, delays, lost)


def safe_name(name: str) -> str:
    """``name`` as a folder name: itself when it is one already; otherwise its safe characters plus
    a short hash of the whole name, so two study names that clean up alike ("a b", "a_b", "a/b")
    never share a trial folder."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "study"
    if cleaned == name:
        return name
    import hashlib

    return f"{cleaned}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def trial_dir(out_root: str | os.PathLike, study_name: str, number: int) -> Path:
    """Where trial ``number`` of ``study_name`` writes its run directory."""
    return Path(out_root) / "trials" / safe_name(study_name) / f"{number:04d}"


def refuse_foreign_trials(out_root: str | os.PathLike, study_name: str, storage: Any) -> None:
    """A study new to its storage starts numbering trials at 0: refuse a folder that already holds another
    study's trial runs under the same name (the same ``out_root`` and study name with another storage). Its trials
    would fail on every number taken, and its report would replace the other study's plot."""
    folder = trial_dir(out_root, study_name, 0).parent
    held = sorted(p.name for p in folder.iterdir() if p.is_dir() and any(p.iterdir())) if folder.is_dir() else []
    if held:
        runs = f"{len(held)} trial run{'' if len(held) == 1 else 's'}"
        raise ConfigError(f"{folder} holds {runs} of another study named {study_name!r}, not the one in "
                          f"{describe_storage(storage, out_root)}: give another --out or --study-name, or that study's --storage")


def describe_storage(storage: Any, out_root: str | os.PathLike) -> str:
    """The storage as text for messages, any password masked."""
    if storage is None:
        return str(Path(out_root) / "study.journal")
    if not isinstance(storage, (str, os.PathLike)):
        return type(storage).__name__
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", os.fspath(storage))


FILE_SUFFIXES = (".journal", ".log", ".jsonl", ".db", ".sqlite", ".sqlite3")


def _refuse_run_folder(out: Path) -> None:
    """A study writes study.journal, trials/ and pareto.png into a folder of its own, never into a search run or a
    retrain's output (every other command refuses those as its output too)."""
    from uboost import runs

    held = runs.run_files_held(out)
    if held:
        what = "a retrain's output" if held == [runs.RETRAIN_INFO] else "a search run"
        raise ConfigError(f"--out {out} is {what} ({out / held[0]}); a tune study needs a folder of its own: "
                          "give another --out")


def check_storage(storage: Any, out_root: str | os.PathLike) -> Path | None:
    """The storage's file (None for a URL or a storage object), checked without writing anything:
    a bad suffix, a directory of that name or a file where a folder is needed is one line here,
    before a tune spends time on anything else."""
    _refuse_run_folder(Path(out_root))
    if storage is not None and not isinstance(storage, (str, os.PathLike)):
        return None
    if storage is None:
        path = Path(out_root) / "study.journal"
    else:
        text = os.fspath(storage)
        if "://" in text:
            return None
        path = Path(text).expanduser()  # a quoted '~/study.journal' means the home folder, as a shell would
        if path.suffix not in FILE_SUFFIXES:
            raise ConfigError(
                f"storage must be an Optuna URL (sqlite:///study.db, postgresql://...) or a file ending in "
                f".journal or .db, got {text!r}"
            )
    if path.is_dir():
        raise ConfigError(f"storage {path} is a directory; name a file in it, e.g. {path / 'study.journal'}")
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise ConfigError(f"cannot create storage {path}: {blocker} is a file, not a directory")
    return path


def _create_file(path: Path) -> None:
    """Create the storage file (and its folders) as Optuna would; a read-only place is one line."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab"):  # an existing file is left as it is
            pass
    except OSError as exc:
        raise ConfigError(f"cannot create storage {path}: {exc.strerror or exc}") from None


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
            shown = describe_storage(text, out_root)  # no passwords in messages
            for attempt in range(5):
                try:
                    with warnings.catch_warnings():  # the heartbeat is "experimental" since Optuna 2.9
                        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                        rdb = optuna.storages.RDBStorage(
                            text, heartbeat_interval=HEARTBEAT_INTERVAL_S, grace_period=GRACE_PERIOD_S,
                            engine_kwargs={"pool_pre_ping": True}, **retry_callback_kwargs(),
                        )
                    return retrying(rdb, shown)
                except ImportError as exc:  # SQLAlchemy found no driver for the URL's database
                    missing = getattr(exc.__cause__ or exc.__context__, "name", None) or exc.name or "its database driver"
                    hint = DRIVERS.get(missing.split(".")[0], f"pip install {missing}")
                    raise ConfigError(f"storage {shown!r} needs the Python package {missing!r}: {hint}") from None
                except Exception as exc:  # SQLAlchemy raises its own types for bad URLs
                    # Workers that open a new database at the same moment race to create its schema
                    # (IntegrityError on alembic_version); once one has, the others just open it.
                    if type(exc).__name__ not in ("IntegrityError", "OperationalError") or attempt == 4:
                        raise ConfigError(f"cannot open storage {shown!r}: {_first_line(exc)}") from None
                    time.sleep(0.2 * (attempt + 1))
        path = check_storage(text, out_root)
        if path.suffix in (".db", ".sqlite", ".sqlite3"):
            _create_file(path)
            return resolve_storage(f"sqlite:///{path.resolve()}", out_root)
    _create_file(check_storage(path, out_root))
    from uboost.tuning.journal import check_journal

    check_journal(path)  # an append to a torn journal would make it unreadable for good
    # A failed append may have written part of a record: never retried, but a disk that fills up or
    # a network file system that goes away is a lost storage (one line, the result kept on disk).
    return retrying(JournalStorage(JournalFileBackend(str(path))), str(path), delays=(), lost=(OSError,))
