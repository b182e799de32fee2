"""Run directories: one folder per search, every file written atomically.

The bottom layer of the library: it imports nothing from ``search``, ``networks``,
``retrain`` or the CLI (they import it).

A run directory holds ``config.json`` (the resolved :class:`~uboost.search.SearchConfig`),
``arch.json`` (NNI's architecture dict, loadable by ``space.freeze``), ``hardware.json``
(per-layer report of the derived network), ``metrics.csv``, ``result.json``, Lightning
checkpoints under ``checkpoints/`` and PNG plots.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uboost import _manifest
from uboost._lock import in_use, run_lock
from uboost.checkpoint_files import CHECKPOINTS as CHECKPOINTS  # re-exported: callers know them as runs.*
from uboost.checkpoint_files import check_checkpoint as check_checkpoint
from uboost.checkpoint_files import checkpoint_progress as checkpoint_progress
from uboost.checkpoint_files import latest_checkpoint as latest_checkpoint
from uboost.checkpoint_files import unreadable_checkpoints as unreadable_checkpoints
from uboost.checkpoint_files import safe_load as safe_load
from uboost.checkpoint_files import tensors_differ as tensors_differ
from uboost.exceptions import ArchitectureError, RunDirError

CONFIG = "config.json"
ARCH = "arch.json"
HARDWARE = "hardware.json"
METRICS = "metrics.csv"
RESULT = "result.json"
ALPHAS = "alphas.json"  # raw architecture parameters by label (what projections start from)
PROBABILITIES = "probabilities.json"  # NNI's label -> value -> probability
PRECISION = "precision.json"  # searched bits per layer of the frozen network (uboost.quant)
SEARCHED_BITS = " at its searched bits"  # the end of a loaded run's label when it has a precision.json
NNI = "nni"
RETRAIN = "retrain"
RETRAIN_INFO = "retrain.json"  # a retrain's summary, written last: its bits, its settings and the run it trained
LOGGER_FOLDERS = ("tensorboard", "wandb", "mlruns")  # where optional Lightning loggers write (uboost.loggers)
# every file a search writes in its run directory, registered in the manifest before it is written
RUN_FILES = (CONFIG, ARCH, HARDWARE, "hardware.txt", METRICS, "hparams.yaml", RESULT, "utilization.png", "search.png", ALPHAS, PROBABILITIES,
             PRECISION,
             f"{CHECKPOINTS}/last.ckpt", f"{CHECKPOINTS}/interrupted.ckpt", f"{NNI}/.experiment")
SEARCH = "search"  # the manifest owner of a run's own files (see uboost._manifest)
EXPORT_RUN = "export-run"  # the owner of a budget export's (or a frontier point's) run directory files
FRONTIER = "frontier"  # a frontier's folder, as other_output names it (its points are budget exports of their own)
TUNE = "tune"  # a tune study folder (it has no manifest: found by its journal and trial folders)
EXPORT = "export"


def retrain_owner(root: str | os.PathLike, out: str | os.PathLike) -> str:
    """The manifest owner of a retrain's files: ``retrain:<out relative to root>`` (``retrain`` when out is root)."""
    root, out = Path(root).resolve(), Path(out).resolve()
    return RETRAIN if out == root else f"{RETRAIN}:{out.relative_to(root).as_posix()}"


def _legacy_owner(rel: str, listed: set[str]) -> str | None:
    """Who wrote ``rel`` in a manifest from before owners were recorded: a run directory's own files
    are the search's, a retrain's (``retrain.json`` beside them) the retrain's."""
    folder, _, name = rel.rpartition("/")
    if f"{folder}/retrain.json".lstrip("/") in listed:
        return retrain_owner(".", folder or ".")
    if CONFIG in listed and (rel in RUN_FILES or rel.startswith((f"{CHECKPOINTS}/", f"{NNI}/"))):
        return SEARCH
    return None


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise RunDirError(f"{what} not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunDirError(f"cannot read {what} {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{what} {path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None


def unfinished_hint(root: str | os.PathLike) -> str:
    """Why a directory has no search result yet, and the exact command that makes one."""
    root = Path(root)
    if (root.parent / INCOMPLETE).is_file():  # a point an interrupted frontier did not finish writing
        return (f"it is a point of the frontier in {root.parent}, which was interrupted before it finished writing its "
                "points: repeat that `uboost frontier` command with --force")
    if not (root / CONFIG).is_file():
        if (root / RETRAIN_INFO).is_file() or root.name == RETRAIN:
            try:  # where retrain.json says, found from here; else as it records it; without one, RUN/retrain's RUN
                source = retrain_source(root) or _retrained_from(root)[0] or root.parent
            except RunDirError:
                source = _retrained_from(root)[0]
            if source is None:  # its retrain.json names none (damaged): nothing to point at
                return "it is a retrain's output, not a search run: pass the run it was retrained from"
            return f"it is a retrain's output, not a search run: pass the run it was retrained from ({source})"
        return "not a uboost search run directory (no config.json either)"
    holder = in_use(root)
    if holder is not None:  # not an interrupted search: a running one
        return f"its search is still running ({root} is in use by {holder}); wait for it to finish"
    if latest_checkpoint(root) is not None:
        return f"the search did not finish; continue it with: uboost search --out {root} --resume"
    return f"the search did not finish and left no checkpoint; start it over with: uboost search --out {root} --force"


def _retrained_from(folder: Path) -> tuple[str | None, str | None]:
    """``(source as given, its absolute path)`` that ``folder/retrain.json`` records (``None`` where it does not)."""
    try:
        data = json.loads((folder / RETRAIN_INFO).read_text())
    except (OSError, ValueError):
        return None, None
    data = data if isinstance(data, dict) else {}
    return tuple(v if isinstance(v, str) and v else None for v in (data.get("source"), data.get("source_path")))


def retrain_source(path: str | os.PathLike) -> Path | None:
    """The run (directory or ``arch.json``) the retrain whose output is ``path`` trained, or ``None`` when ``path`` is
    no retrain's output (a directory with ``retrain.json`` and no ``arch.json``). Found where ``retrain.json`` records
    it: the path as given (from the current directory, where that is still the run it trained), its absolute path, the
    path as given from beside ``path``, or (without a recorded source) the run ``path`` lies in (``RUN/retrain``)."""
    path = Path(path)
    if not path.is_dir() or (path / ARCH).is_file() or not (path / RETRAIN_INFO).is_file():
        return None
    parent = path.parent
    if (parent / ARCH).is_file() and (parent / CONFIG).is_file():
        # RUN/retrain, the run's own retrain (listed in its manifest): that run, even renamed or copied since
        own = (path / _manifest.MANIFEST).is_file()
        if f"{path.resolve().name}/{RETRAIN_INFO}" in _manifest.owned(parent) or not (own or (parent / _manifest.MANIFEST).is_file()):
            return parent
    given, absolute = _retrained_from(path)
    same = given and (absolute is None or Path(given).resolve() == Path(absolute))  # as given, where it still is
    candidates = [Path(p) for p in (given if same else None, absolute, given) if p] + ([path.parent / given] if given else [])
    candidates += [path.parent] if (path.parent / ARCH).is_file() and not given else []
    for candidate in candidates:
        if (candidate / ARCH).is_file() or (candidate.suffix == ".json" and candidate.is_file()):
            return candidate
    if given is None:
        read_json(path / RETRAIN_INFO, "retrain summary")  # a damaged file says so, not that its run moved
    raise RunDirError(f"{path} is a retrain of {given or 'a run it does not name'} (its {RETRAIN_INFO}), which is not "
                      "there now: run the command from the folder that retrain ran in, or move the run back")


def _result(root: Path) -> dict:
    """``root``'s ``result.json``; ``{}`` when the file is missing, unreadable or not an object (the callers then
    say what they would have said without it)."""
    try:
        result = json.loads((root / RESULT).read_text()) if (root / RESULT).is_file() else None
    except (OSError, ValueError):
        return {}
    return result if isinstance(result, dict) else {}


def _result_field(root: Path, key: str) -> Any:
    """``key`` of ``root``'s ``result.json`` (:func:`_result`); ``None`` without it."""
    return _result(root).get(key)


def not_the_argmax(root: str | os.PathLike) -> str | None:
    """Why a search run's own network (``arch.json``) is not the search's argmax, as text (``None``: it is): the
    export projected it to the run's budgets, or raised values at no extra cost (``--widen``). Commands that
    start from the argmax (``frontier``, ``predict``) say so, since the run's network is not among what they show."""
    result = _result(Path(root))  # read once
    if result.get("projected"):
        latency = result.get("latency_ms")
        budgets = [f"{1e3 * v:g} µs" if k == "target_latency_ms" else f"{v:g} µJ"
                   for k in ("target_latency_ms", "target_energy_uj") if isinstance(v := result.get(k), (int, float))]
        at = f" ({1e3 * latency:.4g} µs)" if isinstance(latency, (int, float)) else ""
        return f"the run's own network{at} was projected to its budget{'s' if len(budgets) > 1 else ''} {' and '.join(budgets)}".rstrip()
    if result.get("widened_values"):
        return "the run's own network has values raised at export at no extra cost (--widen)"
    return None


def no_alphas_hint(root: str | os.PathLike) -> str:
    """Why a run directory with a network (``arch.json``) has no ``alphas.json``: an exported network (a budget
    export, a frontier point, a tune trial's export) rather than a search, or a search by an older uboost."""
    root = Path(root)
    source = _result_field(root, "projected_from")
    if isinstance(source, str):
        return f"it holds one network exported from the search {source} (a budget export or a frontier point): use that run"
    if (root / "tune.json").is_file():
        return "it is a trial exported from a uboost tune study: use the trial's own run directory (in the study's trials/)"
    return "it was made by an older uboost, which did not keep the alphas: run its search again"


def searched_config(root: str | os.PathLike) -> dict:
    """The stored ``config.json`` of a finished search run (one with its ``alphas.json``); refuses in one line what
    is not one: no directory, no config, or no alphas (an unfinished search, an exported network...), saying why."""
    root = Path(root)
    if not root.is_dir():
        raise RunDirError(f"expected a search run directory, got {root}")
    if not (root / CONFIG).is_file():
        raise RunDirError(f"{root} has no {CONFIG}: not a uboost search run")
    if not (root / ALPHAS).is_file():
        hint = unfinished_hint(root) if not (root / ARCH).is_file() else no_alphas_hint(root)
        raise RunDirError(f"{root} has no {ALPHAS}: {hint}")
    return read_json(root / CONFIG, "run config")


def check_run_dir(path: str | os.PathLike, *, resume: bool = False, force: bool = False, resumable: bool = True,
                  owner: str | None = None) -> Path:
    """Refuse, before anything is written, a run directory that cannot be used as asked
    (``resumable``: whether the command writing it has a ``--resume``, for the message). With ``owner`` (the manifest
    owner of what the command writes), a folder holding another command's output is refused, ``--force`` or not."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunDirError(f"output {path} exists and is not a directory")
    finished = (path / ARCH).is_file() and (path / RESULT).is_file()
    if resume:
        if not (path / CONFIG).is_file():
            raise RunDirError(f"nothing to resume in {path}: no {CONFIG} (start a new run without --resume)")
        if finished and resumable:  # resuming would rewrite its result from the last checkpoint, less some of it
            raise RunDirError(f"{path} holds a finished search (its result: {path / RESULT}); nothing to resume; "
                              "pass --force to search again in it, or --out another folder")
        return path
    if not _manifest.is_empty(path):
        theirs = other_output(path) if owner is not None else None
        if theirs is not None and theirs != owner:  # --force would delete another command's results (a frontier's points, a retrain)
            raise RunDirError(f"output {path} holds the results of {_manifest.describe_owner(theirs)}; choose another "
                              "output, uboost will not overwrite another command's results")
        if not force:
            if finished and resumable:
                built = built_on(path)
                again = ("it holds a finished search: pass --force to search again in it" +
                         (f" (it deletes what was built on this search too: {', '.join(built)})" if built else "") +
                         ", or --out another folder")
            elif not _manifest.owned(path) and not (path / CONFIG).is_file():
                again = ("it holds files uboost did not write: pass --force to write there anyway (they stay), "
                         "or --out another folder")
            else:
                again = ("pass --resume to continue it or --force to start over in it" if resumable
                         else "pass --force to replace what uboost wrote there")
            raise RunDirError(f"output {path} already exists; {again}")
        _manifest.guard(path)
        _manifest.refuse_foreign(path, RUN_FILES)
    return path


def is_tune_study(folder: str | os.PathLike) -> bool:
    """A ``uboost tune`` study folder (its journal, or its trials' run directories)."""
    folder = Path(folder)
    return (folder / "study.journal").is_file() or any(folder.glob(f"trials/*/*/{_manifest.MANIFEST}"))


def other_output(path: str | os.PathLike) -> str | None:
    """The owner (as the manifest names it) of the results in ``path`` when it is another command's output -- a
    tune study, a frontier's or exits' folder, a retrain's ``--out`` (or ``RUN/retrain``, listed in its run's
    manifest) --, else None: a search run (with what was built on it), or a folder of the user's."""
    path = Path(path)
    if is_tune_study(path):
        return TUNE
    files, dirs, owners = _manifest.listing(path)
    prefix = ""
    if not files and not dirs and (path.parent / _manifest.MANIFEST).is_file():  # a folder its parent's manifest lists
        prefix = path.name + "/"
        files, _, owners = _manifest.listing(path.parent)
        files = [f[len(prefix):] for f in files if f.startswith(prefix)]
        owners = {k[len(prefix):]: v for k, v in owners.items() if k.startswith(prefix)}
    listed = set(files)
    present = [f for f in files if (path / f).exists()]
    kinds = {owners.get(f) or _legacy_owner(f, listed) for f in present}
    if SEARCH in kinds:
        return None
    kinds.discard(None)
    nested = {other_output(path / d) for d in dirs if "/" not in d and (path / d / _manifest.MANIFEST).is_file()}
    nested.discard(None)
    if nested and kinds <= {EXPORT_RUN} and nested <= {EXPORT_RUN}:
        return FRONTIER  # the points of a frontier (budget exports of their own) and its plot
    kinds = kinds or nested
    return min(kinds) if kinds else None


def holds_only_bookkeeping(folder: str | os.PathLike) -> bool:
    """True when ``folder`` is missing or holds nothing but uboost's bookkeeping files (manifest, lock), hidden
    files (a ``.gitkeep``) and empty folders."""
    folder = Path(folder)
    if not folder.is_dir():
        return True
    return all(p.name in _manifest.BOOKKEEPING or p.name.startswith(".") or (p.is_dir() and not any(p.iterdir()))
               for p in folder.iterdir())


def run_files_held(folder: str | os.PathLike) -> list[str]:
    """The files of a search run or a retrain's output that ``folder`` holds (``config.json``, ``arch.json``,
    ``retrain.json``): outputs that write a folder of their own (exits, a tune study) refuse such a folder."""
    return [name for name in (CONFIG, ARCH, RETRAIN_INFO) if (Path(folder) / name).is_file()]


def built_on(path: str | os.PathLike) -> list[str]:
    """The top-level entries of ``path`` that other commands built on its search (``retrain/``, ``exits/``,
    ``frontier/``, ``predictor.json``, ``model.onnx``...): what ``search --force`` deletes with the search."""
    files, dirs, owners = _manifest.listing(path)
    top = {f.split("/")[0] + ("/" if "/" in f else "") for f in files if owners.get(f, SEARCH) != SEARCH}
    top |= {f"{d}/" for d in dirs if "/" not in d and (Path(path) / d / _manifest.MANIFEST).is_file()}  # an output of its own
    return sorted(top)


INCOMPLETE = ".uboost-incomplete"  # in an output folder while a command writes it (frontier points, exits)


@contextlib.contextmanager
def writing(folder: str | os.PathLike, command: str, *, owner_root: str | os.PathLike | None = None,
            owner: str | None = None):
    """Mark ``folder`` incomplete while the block writes it: a kill or a Ctrl-C in between leaves the mark, and
    readers (:func:`check_complete`: ``switch``, ``export``) refuse a folder that mixes old and new files or lacks
    some. The mark is registered in ``owner_root``'s manifest (default ``folder``), so ``--force`` clears it."""
    mark = Path(folder) / INCOMPLETE
    record(owner_root or folder, mark.resolve(), owner=owner)
    from uboost.io import write_text

    write_text(mark, f"{command} stopped before it finished writing this folder; run it again (with --force)\n")
    yield
    mark.unlink()


def check_complete(folder: str | os.PathLike, again: str | None = None) -> None:
    """Refuse (one line) a folder an interrupted command left half-written (:func:`writing`); ``again`` says what to
    do (default: repeat that command with --force)."""
    mark = Path(folder) / INCOMPLETE
    if mark.is_file():
        what = mark.read_text().split(" stopped", 1)[0] or "the command that wrote it"
        again = again or f"repeat its `{what}` command with --force"
        raise RunDirError(f"{folder} is incomplete: {what} stopped before it finished writing it; {again}")


def prepare_run_dir(path: str | os.PathLike, *, resume: bool = False, force: bool = False, owner: str = SEARCH) -> Path:
    """Create ``path`` for a new run; refuse to reuse a non-empty one unless ``resume``/``force``.

    ``force`` deletes exactly what uboost wrote there before (the manifest: the earlier search,
    its checkpoints and NNI files, retrain output, exports) and keeps every other file. The files
    the new run will write are registered before they are written, as ``owner``'s (a budget export's run directory
    is not a search's: see :mod:`uboost._owners`).
    """
    path = check_run_dir(path, resume=resume, force=force, owner=owner)
    if resume:
        return path
    if not _manifest.is_empty(path):
        _manifest.clear(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        _manifest.record(path, *RUN_FILES, owner=owner)
    except OSError as exc:
        raise RunDirError(f"cannot write in output directory {path}: {exc.strerror or exc}") from None
    return path


def record(root: str | os.PathLike, *paths: str | os.PathLike, dirs=(), owner: str | None = None) -> None:
    """Register files (and created folders) uboost writes in output directory ``root`` for output
    ``owner``; ``--force`` removes them later. Register before writing, so a kill leaves none unlisted."""
    _manifest.record(root, *paths, dirs=dirs, owner=owner)


def may_overwrite(root: str | os.PathLike, path: str | os.PathLike, owner: str | None = None) -> bool:
    """True when ``path`` (a file path, inside output directory ``root``) is missing or uboost wrote it (for
    ``owner``, when given: another command's result is not ours to replace). Resolved here: relative to the current
    directory, ``run/model.onnx`` is not ``root/run/model.onnx``."""
    return not _manifest.foreign(root, [Path(path).resolve()], owner, _legacy_owner)


def refuse_foreign(root: str | os.PathLike, targets, owner: str | None = None, replaceable=()) -> None:
    """Refuse (one line) to write over a file uboost did not write, or another output's file (those of an owner in
    ``replaceable`` may go)."""
    _manifest.refuse_foreign(root, targets, owner, _legacy_owner, replaceable)


def owner_root(path: str | os.PathLike, run_root: str | os.PathLike) -> Path:
    """The directory whose manifest and lock cover output ``path``: the run when it lies inside it."""
    path, run_root = Path(path).resolve(), Path(run_root).resolve()
    return run_root if path.is_relative_to(run_root) else path


def _registering_callback(register):
    import pytorch_lightning as pl

    class RegisterWrittenFiles(pl.Callback):
        """Lists the checkpoint and NNI files of the run in the manifest as soon as they appear."""

        def on_fit_start(self, trainer, pl_module):
            register()

        def on_train_epoch_end(self, trainer, pl_module):
            register()

    return RegisterWrittenFiles()


def locked_run(func):
    """Decorate ``run_search(config, out, ...)``: hold OUT's lock for the whole run and list in
    OUT's manifest every file Lightning and NNI write under ``checkpoints/`` and ``nni/``."""

    @functools.wraps(func)
    def wrapper(config, out, *args, **kwargs):
        with run_lock(out):
            folders = (CHECKPOINTS, NNI, *LOGGER_FOLDERS)
            before = _manifest.snapshot(out, *folders)

            def register() -> None:
                if (Path(out) / _manifest.MANIFEST).is_file():  # only once this run owns the directory
                    _manifest.record_new(out, before, *folders, owner=SEARCH)

            kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), _registering_callback(register)]
            try:
                return func(config, out, *args, **kwargs)
            finally:
                register()

    return wrapper


@dataclass(frozen=True)
class RunArtifacts:
    """What ``export``/``retrain``/``profile`` need from a run directory or an ``arch.json``."""

    config: dict
    arch: dict
    root: Path


def load_run(path: str | os.PathLike) -> RunArtifacts:
    """A run directory, or an ``arch.json`` whose directory holds the run's ``config.json``."""
    path = Path(path)
    if path.is_dir():
        root, arch_path = path, path / ARCH
        if not arch_path.is_file():
            raise RunDirError(f"{path} has no {ARCH}: {unfinished_hint(path)}")
    elif path.suffix == ".json":
        root, arch_path = path.parent, path
    else:
        raise RunDirError(f"expected a run directory or an arch.json, got {path}")
    arch = read_json(arch_path, "architecture")
    if not isinstance(arch, dict):
        raise ArchitectureError(f"{arch_path} must hold a JSON object (NNI's architecture dict)")
    config = read_json(root / CONFIG, "run config") if (root / CONFIG).is_file() else {}
    if not isinstance(config, dict):
        raise RunDirError(f"{root / CONFIG} must hold a JSON object of search settings, got {type(config).__name__}")
    return RunArtifacts(config=config, arch=arch, root=root)


def network_config(run: RunArtifacts) -> dict:
    """The config the run's derived network runs under. A search with ``operating_point="auto"`` chose a DVFS point
    with the network (``result.json``'s ``operating_point``) and reported its cost there; ``profile`` and ``retrain``
    price it there too, as a budget export does (the stored config keeps "auto", for ``--resume``)."""
    config = run.config
    if not isinstance(config, dict) or config.get("operating_point") != "auto":
        return config
    point = _result_field(run.root, "operating_point")  # no (readable) result: the stored config, as before
    if not isinstance(point, dict) or not isinstance(point.get("freq_hz"), (int, float)):
        return config
    chosen = {"clock_hz": point["freq_hz"], "operating_point": None}
    if not config.get("operating_points") and config.get("voltage_v") is None:  # no table to give the point's voltage
        chosen["voltage_v"] = point.get("voltage_v")
    # else the table gives it at clock_hz (the same: the point is the table's), and at any --clock-hz a command sets
    return {**config, **chosen}


def freeze_arch(space, arch: dict):
    """``space.freeze(arch)`` with a one-line error when the dict does not fit the space."""
    expected = set(space.simplify())
    missing = sorted(expected - set(arch))
    extra = sorted(set(arch) - expected)
    if missing or extra:
        detail = (f"missing {missing[:4]}" if missing else "") + (" " if missing and extra else "") + (f"unexpected {extra[:4]}" if extra else "")
        raise ArchitectureError(f"architecture does not match the search space: {detail}")
    import logging

    nni_logger = logging.getLogger("nni")
    level = nni_logger.level
    nni_logger.setLevel(logging.CRITICAL)  # NNI logs the failure too (on stdout): the error below says it once
    try:
        return space.freeze(arch)
    except Exception as exc:
        typed = [f"{k}={v!r}" for k, v in arch.items() if isinstance(v, str) and _numeric(v)]
        hint = f" ({typed[0]} is text: write the number without quotes)" if typed else ""
        raise ArchitectureError(f"architecture does not fit the search space: {type(exc).__name__}: {exc}{hint}") from None
    finally:
        nni_logger.setLevel(level)


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def write_layer_table(path: str | os.PathLike, report, label: str) -> None:
    """``hardware.txt`` (see :func:`uboost.tables.write_layer_table`)."""
    from uboost.tables import write_layer_table as write

    write(path, report, label)
