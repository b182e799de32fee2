"""Journal files: a damaged journal is detected before anything appends to it, and never made worse.

Optuna's journal is one JSON record per line. A crash or a full disk in the middle of an append
leaves a *torn* last record (no newline). Optuna still reads such a file (it skips the unfinished
line), but the next append lands on the same line, and from then on the file cannot be read at all.
So before a study is opened for writing, :func:`check_journal` looks at the file under Optuna's own
journal lock. A torn tail stops the command with one line that offers the repair
(``uboost tune --repair-journal``): :func:`repair_journal` keeps a copy of the damaged file and cuts
the journal back to its last complete record, which loses only the unfinished write. A broken
record in the middle is not something a cut can fix: that is reported, and nothing is changed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from uboost.exceptions import ConfigError


@dataclass(frozen=True)
class Damage:
    torn_bytes: int  # bytes after the last complete record (0: the tail is fine)
    bad_record: int | None  # 1-based number of the first complete record that is not JSON
    complete_bytes: int  # length of the file up to its last complete record


@contextlib.contextmanager
def _journal_lock(path: Path):
    from optuna.storages.journal import JournalFileSymlinkLock

    lock = JournalFileSymlinkLock(str(path))  # the lock Optuna's JournalFileBackend appends under
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def inspect_journal(path: str | os.PathLike) -> Damage | None:
    """What is wrong with the journal at ``path`` (None: nothing, or no file yet)."""
    path = Path(path)
    if not path.is_file():
        return None
    with _journal_lock(path):
        data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    bad = None
    for number, line in enumerate(data[:end].splitlines(), start=1):
        if not line.strip():
            continue
        try:
            json.loads(line)
        except ValueError:
            bad = number
            break
    if end == len(data) and bad is None:
        return None
    return Damage(torn_bytes=len(data) - end, bad_record=bad, complete_bytes=end)


def _backup_name(path: Path) -> Path:
    """A name beside ``path`` that no earlier backup holds (two repairs within a second each keep theirs)."""
    stem = f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
    backup, n = path.with_name(stem), 1
    while backup.exists() or backup.is_symlink():
        n += 1
        backup = path.with_name(f"{stem}-{n}")
    return backup


def check_journal(path: str | os.PathLike) -> None:
    """Refuse, in one line, to open a damaged journal for writing."""
    damage = inspect_journal(path)
    if damage is None:
        return
    if damage.bad_record is not None:
        raise ConfigError(f"journal {path}: record {damage.bad_record} is not valid JSON, so Optuna cannot read the study; "
                          "restore the file from a backup (uboost changed nothing)")
    raise ConfigError(f"journal {path} ends in a torn record ({damage.torn_bytes} bytes: a crash or a full disk mid-write); "
                      "run the same command with --repair-journal to cut it back to its last complete record "
                      "(the damaged file is kept beside it)")


def repair_journal(path: str | os.PathLike) -> Path | None:
    """Cut a torn journal back to its last complete record, keeping the damaged file as a copy;
    returns the copy's path (None: nothing to repair). A broken middle record is refused."""
    path = Path(path)
    damage = inspect_journal(path)
    if damage is None:
        return None
    if damage.bad_record is not None:
        check_journal(path)  # raises: a cut cannot fix a broken middle record
    with _journal_lock(path):
        backup = _backup_name(path)
        shutil.copy2(path, backup)
        with open(path, "r+b") as f:
            f.truncate(damage.complete_bytes)
            f.flush()
            os.fsync(f.fileno())
    return backup
