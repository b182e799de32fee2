"""Whose results an output path holds: the guard every export runs before it writes.

``retrain --out`` and ``frontier --out`` refuse to write over another command's files through the
manifest's owners (:func:`uboost._manifest.refuse_foreign`). An export writes where it is told: a
file (``export --out FILE``), or a run directory it fills and, with ``--force``, clears first
(``export --target-latency-ms --out DIR``, ``tune --export N --export-to DIR``). :func:`refuse_others`
refuses both, with or without ``--force``, when the target is, or lies inside, an output that holds
another command's results: a search run, a retrain, a tune study folder, a predictor... A previous
output of the same kind (``allowed``) may be replaced.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from uboost import _manifest, runs
from uboost.exceptions import RunDirError

EXPORT_RUN = runs.EXPORT_RUN  # the owner of a budget export's (or a frontier point's) run directory files
TUNE_EXPORT = "tune-export"  # the owner of a tune trial's exported run directory files
TUNE = runs.TUNE  # a tune study folder (it has no manifest: found by its journal and trial folders)
TUNE_OWN = ("study.journal", "trials", "cost-cache")  # what a study folder holds of its own (and pareto*.png)
DERIVED = frozenset({runs.EXPORT})  # ONNX / TorchScript / JSON exports of a replaced network: made again from it


def _owner(folder: Path, rel: str, files: list[str], owners: dict[str, str]) -> str | None:
    """The output that wrote ``folder/rel``; directories written before owners were recorded are read by what they hold."""
    theirs = owners.get(rel)
    if theirs is None and "tune.json" in files:  # a tune export from before its files had an owner
        return TUNE_EXPORT
    theirs = theirs or runs._legacy_owner(rel, set(files))
    if theirs == runs.SEARCH and isinstance(runs._result_field(folder, "projected_from"), str):
        return EXPORT_RUN  # a budget export or frontier point, written with the search's owner before it had its own
    return theirs


def _held(folder: Path, target: Path, directory: bool, nested: bool) -> list[tuple[Path, str]]:
    """``(file, owner)`` of every file of ``folder``'s outputs that writing ``target`` would replace or (a directory,
    cleared by ``--force``) delete."""
    rel = "." if target == folder else target.relative_to(folder).as_posix()
    if runs.is_tune_study(folder):
        parts = rel.split("/")
        first = parts[0]
        # the study's own files, and the trials folder down to a trial's run directory (trials/STUDY/NUMBER); below
        # that, the trial run directory's own manifest decides (its exports, retrains, frontier... may be written)
        trial_run = first == "trials" and len(parts) > 3
        if rel == "." or (first in TUNE_OWN and not trial_run) or (first.startswith("pareto") and first.endswith(".png")):
            return [(target, TUNE)]
    if (folder / _manifest.MANIFEST).is_file():
        files, dirs, owners = _manifest.listing(folder)
    elif not directory and (folder / runs.CONFIG).is_file() and (folder / runs.ARCH).is_file():
        # a run from before manifests: its own files are the search's (a directory target: check_run_dir refuses them)
        files, dirs, owners = [f for f in runs.RUN_FILES if (folder / f).exists()], [], {}
        files += [p.relative_to(folder).as_posix() for sub in (runs.CHECKPOINTS, runs.NNI) if (folder / sub).is_dir()
                  for p in (folder / sub).rglob("*") if p.is_file()]
        owners = dict.fromkeys(files, runs.SEARCH)
    elif ((folder / runs.RETRAIN_INFO).is_file() and (folder / "model.pt").is_file()
          and not (folder / runs.ARCH).is_file()):  # a retrain's output (RUN/retrain, retrain --out) from before manifests
        files = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != _manifest.LOCK]
        dirs, owners = [], dict.fromkeys(files, runs.RETRAIN)
    else:
        return []
    if directory:
        chosen = [f for f in files if rel == "." or f == rel or f.startswith(rel + "/")]
    else:
        chosen = [rel] if rel in files else []
    found = [(folder / f, _owner(folder, f, files, owners)) for f in chosen if (folder / f).exists() or (folder / f).is_symlink()]
    if directory and nested:  # outputs of their own listed inside (a frontier's points): --force clears them too
        for d in dirs:
            if (rel == "." or d == rel or d.startswith(rel + "/")) and (folder / d / _manifest.MANIFEST).is_file():
                found += _held(folder / d, folder / d, True, True)
    return [(path, owner) for path, owner in found if owner is not None]


def refuse_others(target: str | os.PathLike, allowed: str | Iterable[str], *, directory: bool = False,
                  nested: bool = True) -> None:
    """Refuse (one line, before anything is written) to write output ``target`` -- a file, or with ``directory`` a
    run directory that ``--force`` clears first -- where another command's results are: in ``target`` itself
    (``directory``: every file its manifest lists, and with ``nested`` those of the outputs listed inside it) or in
    any directory above it. Files whose owner is one of ``allowed`` (and, in a directory, derived exports) may go."""
    allowed = {allowed} if isinstance(allowed, str) else set(allowed)
    given = Path(os.path.abspath(target))
    ok = allowed | DERIVED if directory else allowed
    # as written, and where it leads (a symbolic link to a retrain's folder or a run's file is that folder or file)
    for target in dict.fromkeys([given, given.resolve()]):
        _refuse_at(target, allowed, ok, directory, nested)


def _refuse_at(target: Path, allowed: set[str], ok: set[str], directory: bool, nested: bool) -> None:
    for folder in ([target] if directory else []) + list(target.parents):
        if not folder.is_dir():
            continue
        others = [(path, owner) for path, owner in _held(folder, target, directory, nested and folder == target)
                  if owner not in ok]
        if others:
            more = f" (and {len(others) - 1} more)" if len(others) > 1 else ""
            path, owner = others[0]
            path = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path  # as the user wrote it
            raise RunDirError(f"{path}{more} holds the results of {_manifest.describe_owner(owner)}; "
                              "choose another output, uboost will not overwrite another command's results")
