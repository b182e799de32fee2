"""``importlib.metadata.entry_points(group=...)`` with the scan cached on disk between runs.

Finding plug-ins reads the metadata of every installed distribution: importing
``importlib.metadata`` and scanning ~200 distributions costs ~60 ms, a third of what ``uboost hw
list`` and ``uboost spaces`` may take. The scan is kept in ``~/.cache/uboost/entry-points-*.json``
(one per ``sys.path``) under a key made of ``sys.path`` and the size and modification time of every distribution's
``entry_points.txt`` on it (a listing and a ``stat`` each, ~1 ms): installing, upgrading or removing
a distribution, or rewriting its entry points, changes the key and the scan runs again. An
unreadable or unwritable cache, or a distribution finder other than the standard path finder,
means a plain scan. Each ``sys.path`` (a test's temporary folder, a script's directory) adds a file, so a
write keeps only the :data:`KEEP` most recently written.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

VERSION = 1
KEEP = 16  # cache files kept (one per sys.path); older ones are removed when a new scan is written


def cache_path() -> str:
    """One file per ``sys.path`` (the console script, ``python -c`` and a venv differ in it)."""
    import zlib

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    paths = "\0".join(os.path.abspath(p or ".") for p in sys.path)
    return os.path.join(base, "uboost", f"entry-points-{zlib.crc32(paths.encode()):08x}.json")


class CachedEntryPoint:
    """``name``, ``value`` and ``group`` of an entry point; :meth:`load` imports it as
    ``importlib.metadata.EntryPoint.load`` does."""

    __slots__ = ("name", "value", "group")

    def __init__(self, name: str, value: str, group: str) -> None:
        self.name, self.value, self.group = name, value, group

    def load(self) -> Any:
        from importlib.metadata import EntryPoint

        return EntryPoint(self.name, self.value, self.group).load()

    def __repr__(self) -> str:
        return f"CachedEntryPoint(name={self.name!r}, value={self.value!r}, group={self.group!r})"


def _key() -> list | None:
    """What the scan depends on; None where the cache cannot vouch for it."""
    from importlib.machinery import PathFinder

    if any(hasattr(f, "find_distributions") and f is not PathFinder for f in sys.meta_path):
        return None  # a custom distribution finder: its distributions are not on disk where we look
    key: list = []
    for entry in sys.path:
        folder = os.path.abspath(entry or ".")
        key.append(folder)
        try:
            names = sorted(os.listdir(folder))
        except OSError:  # a zip or a missing folder: importlib.metadata finds no entry points there either
            continue
        for name in names:
            if name.endswith((".dist-info", ".egg-info")):
                try:
                    st = os.stat(os.path.join(folder, name, "entry_points.txt"))
                except OSError:
                    key.append(name)
                    continue
                key.append([name, st.st_size, st.st_mtime_ns])
    return key


def _scan() -> dict[str, list[list[str]]]:
    from importlib.metadata import entry_points

    found = entry_points()  # EntryPoints (3.12+) or SelectableGroups (3.11): both select by group
    return {group: [[ep.name, ep.value] for ep in found.select(group=group)] for group in sorted(found.groups)}


def _read(path: str, key: list) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != VERSION or data.get("key") != key:
        return None
    groups = data.get("groups")
    return groups if isinstance(groups, dict) else None


def _write(path: str, key: list, groups: dict) -> None:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"version": VERSION, "key": key, "groups": groups}, f)
        os.replace(tmp, path)
    except OSError:
        return  # a read-only home: scan every time
    _prune(os.path.dirname(path))


def _prune(folder: str) -> None:
    """Remove all but the :data:`KEEP` newest ``entry-points-*.json`` in ``folder`` (another process's may go too:
    it only scans again)."""
    try:
        names = [n for n in os.listdir(folder) if n.startswith("entry-points-") and n.endswith(".json")]
        if len(names) <= KEEP:
            return
        dated = sorted(((os.stat(os.path.join(folder, n)).st_mtime_ns, n) for n in names), reverse=True)
    except OSError:
        return
    for _, name in dated[KEEP:]:
        try:
            os.remove(os.path.join(folder, name))
        except OSError:
            pass


def entry_points(group: str) -> list[CachedEntryPoint]:
    """The entry points of ``group`` (as ``importlib.metadata.entry_points(group=group)``), in
    the order importlib.metadata finds them."""
    key = _key()
    groups = None
    if key is not None:
        path = cache_path()
        groups = _read(path, key)
        if groups is None:
            groups = _scan()
            _write(path, key, groups)
    else:
        groups = _scan()
    return [CachedEntryPoint(name, value, group) for name, value in groups.get(group, [])]
