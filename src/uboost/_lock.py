"""One process at a time per output directory: ``fcntl.flock`` on ``DIR/.lock`` holding the PID.

A second ``uboost search/retrain/export`` on the same directory stops at once with one line
naming the PID that holds it. The lock dies with its process (``kill -9`` included), so a
stale ``.lock`` file never blocks a later run. Re-entrant within one process.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from uboost._manifest import LOCK, MANIFEST, is_empty
from uboost.exceptions import RunDirError

_held: dict[str, list[int]] = {}  # realpath -> [fd, depth]


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 32, 0).decode().strip()
        if text.isdigit():
            return f"PID {text}"
    return "another process"


def _make_dir(path: Path) -> bool:
    """Create ``path`` (and parents); True when it did not exist before."""
    if path.is_dir():
        return False
    if path.exists() or path.is_symlink():
        raise RunDirError(f"output {path} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot create output directory {path}: {exc.strerror or exc}") from None
    return True


@contextlib.contextmanager
def run_lock(path: str | os.PathLike) -> Iterator[Path]:
    """Hold the lock of output directory ``path`` (created if missing) for the block.

    A directory this call created and that is still empty afterwards (a command that failed
    validation) is removed again, so the corrected command is not refused.
    """
    path = Path(path)
    created = _make_dir(path)
    key = os.path.realpath(path)
    if key in _held:
        _held[key][1] += 1
        try:
            yield path
        finally:
            _held[key][1] -= 1
        return
    lock = path / LOCK
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RunDirError(f"cannot write in output directory {path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise in_use_error(path, holder) from None
        try:  # the holder we waited for may have removed the file: lock the one that is there now
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held[key] = [fd, 1]
    try:
        yield path
    finally:
        del _held[key]
        with contextlib.suppress(OSError):
            lock.unlink()
        os.close(fd)
        if created and is_empty(path):
            with contextlib.suppress(OSError):
                (path / MANIFEST).unlink(missing_ok=True)
                path.rmdir()


def in_use_error(path: str | os.PathLike, holder: str) -> RunDirError:
    return RunDirError(f"output directory {path} is in use by {holder}; wait for it to finish or choose another --out")


def in_use(path: str | os.PathLike) -> str | None:
    """Who holds the lock of output directory ``path`` when another process does ("PID 123"), else None."""
    if os.path.realpath(path) in _held:
        return None
    return lock_holder(Path(path) / LOCK)


def lock_holder(lock: str | os.PathLike) -> str | None:
    """Who holds the lock file ``lock`` ("PID 123", "another process"), or None when it is free or gone."""
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return _holder(fd)
    finally:
        os.close(fd)  # closing drops a lock this probe took
    return None


def holds_lock(path: str | os.PathLike) -> bool:
    return os.path.realpath(path) in _held
