"""Run directories: one folder per search, every file written atomically.

A run directory holds ``config.json`` (the resolved :class:`~uboost.search.SearchConfig`),
``arch.json`` (NNI's architecture dict, loadable by ``space.freeze``), ``hardware.json``
(per-layer report of the derived network), ``metrics.csv``, ``result.json``, Lightning
checkpoints under ``checkpoints/`` and PNG plots.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uboost.exceptions import ArchitectureError, RunDirError

CONFIG = "config.json"
ARCH = "arch.json"
HARDWARE = "hardware.json"
METRICS = "metrics.csv"
RESULT = "result.json"
CHECKPOINTS = "checkpoints"


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise RunDirError(f"{what} not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunDirError(f"cannot read {what} {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{what} {path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None


def prepare_run_dir(path: str | os.PathLike, *, resume: bool = False, force: bool = False) -> Path:
    """Create ``path`` for a new run; refuse to reuse a non-empty one unless ``resume``/``force``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunDirError(f"output {path} exists and is not a directory")
    non_empty = path.is_dir() and any(path.iterdir())
    if resume:
        if not (path / CONFIG).is_file():
            raise RunDirError(f"nothing to resume in {path}: no {CONFIG} (start a new run without --resume)")
        return path
    if non_empty and not force:
        raise RunDirError(f"output {path} already exists; pass --resume to continue it or --force to start over in it")
    if non_empty:  # --force: drop an earlier run's artifacts (a stale checkpoint would be resumed); keep other files
        for name in (CONFIG, ARCH, HARDWARE, "hardware.txt", METRICS, RESULT, "utilization.png", "search.png"):
            (path / name).unlink(missing_ok=True)
        for name in (CHECKPOINTS, "nni"):
            if (path / name).is_dir():
                shutil.rmtree(path / name)
    path.mkdir(parents=True, exist_ok=True)
    return path


def latest_checkpoint(run: Path) -> Path | None:
    ckpts = sorted((run / CHECKPOINTS).glob("*.ckpt"), key=lambda p: p.stat().st_mtime) if (run / CHECKPOINTS).is_dir() else []
    return ckpts[-1] if ckpts else None


def check_checkpoint(path: Path) -> None:
    """Fail early, in one line, on a checkpoint that cannot be loaded."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise RunDirError(f"checkpoint {path} is corrupt or unreadable ({type(exc).__name__}); delete it to restart the run") from None
    if not isinstance(state, dict) or "state_dict" not in state:
        raise RunDirError(f"checkpoint {path} is not a Lightning checkpoint")


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
            raise RunDirError(f"{path} has no {ARCH}: the search did not finish (resume it with --resume)")
    elif path.suffix == ".json":
        root, arch_path = path.parent, path
    else:
        raise RunDirError(f"expected a run directory or an arch.json, got {path}")
    arch = read_json(arch_path, "architecture")
    if not isinstance(arch, dict):
        raise ArchitectureError(f"{arch_path} must hold a JSON object (NNI's architecture dict)")
    config = read_json(root / CONFIG, "run config") if (root / CONFIG).is_file() else {}
    return RunArtifacts(config=config, arch=arch, root=root)


def freeze_arch(space, arch: dict):
    """``space.freeze(arch)`` with a one-line error when the dict does not fit the space."""
    expected = set(space.simplify())
    missing = sorted(expected - set(arch))
    extra = sorted(set(arch) - expected)
    if missing or extra:
        detail = (f"missing {missing[:4]}" if missing else "") + (" " if missing and extra else "") + (f"unexpected {extra[:4]}" if extra else "")
        raise ArchitectureError(f"architecture does not match the search space: {detail}")
    try:
        return space.freeze(arch)
    except Exception as exc:
        raise ArchitectureError(f"architecture does not fit the search space: {type(exc).__name__}: {exc}") from None


def load_frozen_network(path: str | os.PathLike):
    """The derived network of a run (for ``uboost profile RUN``)."""
    from uboost.networks import LoadedNetwork
    from uboost.search import SearchConfig, build_space

    run = load_run(path)
    if not run.config:
        raise RunDirError(f"no {CONFIG} next to {path}: cannot tell which space the architecture belongs to")
    config = SearchConfig.from_dict(run.config)
    space, shape, _ = build_space(config)
    return LoadedNetwork(freeze_arch(space, run.arch), shape, f"{run.root.name} ({config.space})")
