"""What uboost wrote into an output directory, so ``--force`` removes exactly that.

Each output directory (a run, a retrain, a tune export) holds ``.uboost-manifest.json``: the
relative paths of the files uboost wrote there (registered before they are written, so a
``kill -9`` leaves none unlisted) and of the folders it created. ``--force`` deletes the listed
files, then the listed folders that are left empty, and nothing else: a user's file, even one
placed in ``checkpoints/``, survives, and a user's file where uboost wants to write stops the
command with one line instead of being overwritten.

Each file also has an *owner*: the output that wrote it (``search``, ``retrain:retrain``,
``export``...). A file another uboost output wrote is someone's result too: a command refuses
to overwrite a file whose owner is not its own (``retrain --out RUN`` would otherwise replace the
search's checkpoint and metrics). Manifests written before owners existed are read with the
owner a ``legacy`` function gives (see :mod:`uboost.runs`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from uboost.exceptions import RunDirError
from uboost.io import write_json

MANIFEST = ".uboost-manifest.json"
LOCK = ".lock"
BOOKKEEPING = frozenset({MANIFEST, LOCK})


def _load(root: Path) -> dict:
    path = root / MANIFEST
    if not path.is_file():
        return {"files": [], "dirs": [], "owners": {}}
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunDirError(f"{path} is unreadable ({type(exc).__name__}); remove the old files in {root} by hand") from None
    if (not isinstance(data, dict) or not all(isinstance(data.get(k, []), list) for k in ("files", "dirs"))
            or not isinstance(data.get("owners", {}), dict)):
        raise RunDirError(f"{path} is not a uboost manifest; remove the old files in {root} by hand")
    return {**{k: [str(p) for p in data.get(k, [])] for k in ("files", "dirs")},
            "owners": {str(k): str(v) for k, v in data.get("owners", {}).items()}}


def _write(root: Path, files, dirs, owners: dict[str, str]) -> None:
    files = list(files)
    write_json(root / MANIFEST, {"files": files, "dirs": list(dirs), "owners": {f: owners[f] for f in files if f in owners}})


def _relative(root: Path, path: str | os.PathLike) -> str:
    """``path`` (absolute or relative to ``root``) as a clean relative POSIX path inside ``root``. A path relative to
    the *current directory* (``run/model.onnx`` for root ``run``) must be passed resolved: read as relative to
    ``root`` it would name ``run/run/model.onnx``, a file that does not exist, and so looks safe to overwrite."""
    path = Path(path)
    if path.is_absolute():
        try:
            path = path.relative_to(root) if path.is_relative_to(root) else path.resolve().relative_to(root.resolve())
        except ValueError:
            raise RunDirError(f"{path} is outside the output directory {root}") from None
    rel = PurePosixPath(path.as_posix())
    if not rel.parts or rel.is_absolute() or ".." in rel.parts or rel.as_posix() == ".":
        raise RunDirError(f"{path} is not a path inside {root}")
    return rel.as_posix()


def _inside(root: Path, rel: str) -> Path | None:
    """``root/rel`` when it really lies inside ``root`` (no ``..``, no symlinked folder leading out)."""
    try:
        clean = PurePosixPath(rel)
        if not clean.parts or clean.is_absolute() or ".." in clean.parts:
            return None
        target = root / clean
        if not Path(os.path.realpath(target.parent)).is_relative_to(os.path.realpath(root)):
            return None
        return target
    except (TypeError, ValueError):
        return None


def listing(root: str | os.PathLike) -> tuple[list[str], list[str], dict[str, str]]:
    """The files, folders and file owners ``root``'s manifest lists (all empty without one)."""
    data = _load(Path(root))
    return data["files"], data["dirs"], data["owners"]


def owned(root: str | os.PathLike) -> set[str]:
    """Relative paths of the files uboost registered in ``root``."""
    return set(_load(Path(root))["files"])


def record(root: str | os.PathLike, *paths: str | os.PathLike, dirs: Iterable[str | os.PathLike] = (),
           owner: str | None = None) -> None:
    """Register files uboost is about to write (or wrote) in ``root``, written by output ``owner``;
    atomic, idempotent."""
    root = Path(root).absolute()  # paths found under it are then absolute too, never read as relative to it twice
    data = _load(root)
    files = dict.fromkeys(data["files"])
    folders = dict.fromkeys(data["dirs"])
    owners = data["owners"]
    new_files = [_relative(root, p) for p in paths]
    new_dirs = [_relative(root, d) for d in dirs]
    if (all(f in files for f in new_files) and all(d in folders for d in new_dirs)
            and (owner is None or all(owners.get(f) == owner for f in new_files))):
        return
    files.update(dict.fromkeys(new_files))
    folders.update(dict.fromkeys(new_dirs))
    if owner is not None:
        owners.update(dict.fromkeys(new_files, owner))
    _write(root, files, folders, owners)


def record_new(root: str | os.PathLike, before: set[str], *subdirs: str, owner: str | None = None) -> None:
    """Register the files (and folders) under ``root/subdir`` that were not in ``before``."""
    root = Path(root).absolute()  # paths found under it are then absolute too, never read as relative to it twice
    files, folders = [], []
    for sub in subdirs:
        base = root / sub
        if not base.is_dir() or base.is_symlink():
            continue
        if sub not in before:
            folders.append(sub)
        for dirpath, dirnames, filenames in os.walk(base):
            for name in dirnames:
                rel = _relative(root, Path(dirpath, name))
                if rel not in before:
                    folders.append(rel)
            for name in filenames:
                rel = _relative(root, Path(dirpath, name))
                if rel not in before:
                    files.append(rel)
    if files or folders:
        record(root, *files, dirs=folders, owner=owner)


def snapshot(root: str | os.PathLike, *subdirs: str) -> set[str]:
    """Relative paths of every file and folder now under ``root/subdir`` (and the subdirs)."""
    root = Path(root).absolute()  # paths found under it are then absolute too, never read as relative to it twice
    seen: set[str] = set()
    for sub in subdirs:
        base = root / sub
        if not base.is_dir():
            continue
        seen.add(sub)
        for dirpath, dirnames, filenames in os.walk(base):
            seen.update(_relative(root, Path(dirpath, n)) for n in (*dirnames, *filenames))
    return seen


def guard(root: str | os.PathLike, *protected: str | os.PathLike) -> None:
    """Refuse to clear the current directory, one of its parents, or a parent of ``protected``."""
    resolved = Path(root).resolve()
    for keep in (Path.cwd(), *protected):
        keep = Path(keep).resolve()
        if keep == resolved or keep.is_relative_to(resolved):
            what = "the current directory" if keep == Path.cwd().resolve() else str(keep)
            relation = "is" if keep == resolved else "contains"
            raise RunDirError(f"refusing to clear {root}: it {relation} {what}; choose a dedicated output directory")


def foreign(root: str | os.PathLike, targets: Iterable[str | os.PathLike], owner: str | None = None,
            legacy=None, replaceable: Iterable[str] = ()) -> list[tuple[str, str | None]]:
    """``(path, its owner)`` for each of ``targets`` (paths in ``root``) that exists there and was
    not written by uboost (owner ``None``) or, when ``owner`` is given, by another uboost output.
    ``legacy(rel, listed)`` gives the owner of a file listed before owners were recorded. Files of an owner in
    ``replaceable`` may be replaced too."""
    replaceable = set(replaceable)
    root = Path(root).absolute()  # paths found under it are then absolute too, never read as relative to it twice
    data = _load(root)
    mine, owners = set(data["files"]), data["owners"]
    found = []
    for rel in (_relative(root, t) for t in targets):
        if not ((root / rel).exists() or (root / rel).is_symlink()):
            continue
        if rel not in mine:
            found.append((rel, None))
        elif owner is not None:
            theirs = owners.get(rel) or (legacy(rel, mine) if legacy is not None else None)
            if theirs is not None and theirs != owner and theirs not in replaceable:
                found.append((rel, theirs))
    return found


DESCRIPTIONS = {"export-run": "uboost export --target-latency-ms or uboost frontier (a budget export, a frontier point or its plot)",
                "tune-export": "uboost tune --export"}
"""Owners whose command is not their name (see :mod:`uboost._owners`)."""


def describe_owner(owner: str) -> str:
    """``"retrain:retrain"`` -> ``"uboost retrain (into retrain)"``."""
    if owner in DESCRIPTIONS:
        return DESCRIPTIONS[owner]
    command, _, place = owner.partition(":")
    return f"uboost {command}" + (f" (into {place})" if place else "")


def refuse_foreign(root: str | os.PathLike, targets: Iterable[str | os.PathLike], owner: str | None = None,
                   legacy=None, replaceable: Iterable[str] = ()) -> None:
    others = foreign(root, targets, owner, legacy, replaceable)
    if others:
        more = f" (and {len(others) - 1} more)" if len(others) > 1 else ""
        rel, theirs = others[0]
        if theirs is None:
            raise RunDirError(f"{Path(root) / rel}{more} was not written by uboost; move it away, uboost will not overwrite it")
        raise RunDirError(f"{Path(root) / rel}{more} holds the results of {describe_owner(theirs)}; "
                          "choose another output, uboost will not overwrite another command's results")


def is_empty(root: str | os.PathLike) -> bool:
    """No entries besides uboost's bookkeeping files."""
    root = Path(root).absolute()  # paths found under it are then absolute too, never read as relative to it twice
    return not root.is_dir() or all(p.name in BOOKKEEPING for p in root.iterdir())


def clear(root: str | os.PathLike, *protected: str | os.PathLike) -> list[Path]:
    """Delete the files uboost registered in ``root`` and its emptied folders; return what went.

    Foreign files stay. Refuses (one line) for the current directory, its parents and the
    parents of ``protected``.
    """
    root = Path(root).absolute()  # paths found under it are then absolute too, never read as relative to it twice
    guard(root, *protected)
    _refuse_busy(root, lambda rel: True)
    return _remove(root, lambda rel: True)


def clear_under(root: str | os.PathLike, *subdirs: str | os.PathLike, owner: str | None = None) -> list[Path]:
    """:func:`clear` limited to ``root/subdir`` (the subdirs included) and, when given, to the files
    of ``owner``: a fresh retrain drops what an earlier one's loggers wrote there (TensorBoard would
    draw both runs as one); others' stay."""
    root = Path(root).absolute()  # paths found under it are then absolute too, never read as relative to it twice
    prefixes = [_relative(root, d) for d in subdirs]
    owners = _load(root)["owners"]

    def selected(rel):
        return any(rel == p or rel.startswith(p + "/") for p in prefixes) and (owner is None or owners.get(rel, owner) == owner)

    _refuse_busy(root, selected)
    return _remove(root, selected)


def _refuse_busy(root: Path, selected) -> None:
    """Refuse, before anything is deleted, to clear an output of its own (a frontier's point) that another
    process holds (a retrain of that point): its files would go from under it."""
    from uboost._lock import in_use

    for rel in filter(selected, _load(root)["dirs"]):
        target = _inside(root, rel)
        if target is None or target.is_symlink() or not (target / MANIFEST).is_file():
            continue
        holder = in_use(target)
        if holder is not None:
            raise RunDirError(f"{target} is in use by {holder}; wait for it to finish before replacing it")
        _refuse_busy(target, lambda _: True)


def _remove(root: Path, selected) -> list[Path]:
    """Delete the listed files and (emptied) folders whose relative path is ``selected``; unlist them."""
    data = _load(root)
    removed: list[Path] = []
    kept_files = []
    for rel in data["files"]:
        if not selected(rel):
            kept_files.append(rel)
            continue
        target = _inside(root, rel)
        if target is None:
            continue  # a tampered entry: never follow it out of the directory
        if target.is_symlink() or target.is_file():
            target.unlink()
            removed.append(target)
    kept_dirs = [rel for rel in data["dirs"] if not selected(rel)]
    for rel in sorted(filter(selected, data["dirs"]), key=lambda r: r.count("/"), reverse=True):
        target = _inside(root, rel)
        if target is None or target.is_symlink() or not target.is_dir():
            continue
        if (target / MANIFEST).is_file():  # an output of its own (a frontier's point): what uboost wrote there goes too
            removed += _remove(target, lambda _: True)
            (target / MANIFEST).unlink(missing_ok=True)
        try:
            target.rmdir()
            removed.append(target)
        except OSError:  # holds a foreign file: keep it, and keep it listed
            kept_dirs.append(rel)
    if (root / MANIFEST).is_file():
        _write(root, kept_files, [d for d in data["dirs"] if d in kept_dirs], data["owners"])
    return removed
