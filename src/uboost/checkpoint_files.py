"""A run's checkpoint files: which one to resume from, and loading one without running code from it.

Kept apart from :mod:`uboost.runs` (which re-exports every name here, as callers know them) so that neither module
outgrows its subject; nothing here imports torch until a function needs it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from uboost.exceptions import RunDirError

CHECKPOINTS = "checkpoints"  # a run's (and a retrain's) Lightning checkpoints, under its directory
UNREADABLE = -2  # the step checkpoint_progress gives a file it cannot read (below any real one, and below -1: none saved)


def checkpoint_progress(path: Path) -> tuple[int, float]:
    """``(global_step, mtime)`` of a checkpoint; an unreadable one ranks last (never chosen over a good one)."""
    import torch

    try:
        step = torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("global_step", -1)
        step = step if isinstance(step, int) else -1
    except Exception:
        step = UNREADABLE
    return step, path.stat().st_mtime


def _checkpoint_files(run: Path) -> list[Path]:
    """The checkpoints in ``run``: hidden files are the atomic writer's temporaries (``.last.ckpt.XXXX.ckpt``: a kill
    mid-write leaves one), never a checkpoint."""
    folder = run / CHECKPOINTS
    return sorted(p for p in folder.glob("*.ckpt") if not p.name.startswith(".")) if folder.is_dir() else []


def latest_checkpoint(run: Path) -> Path | None:
    """The checkpoint that got furthest (most optimizer steps; the newest among equals). Not simply
    the newest file: a failed resume that saved an epoch-0 checkpoint must not win over ten finished epochs."""
    ckpts = _checkpoint_files(run)
    return max(ckpts, key=checkpoint_progress) if ckpts else None


def unreadable_checkpoints(run: Path) -> list[Path]:
    """The checkpoints in ``run`` that cannot be read (torn or corrupt) beside one that can, which a resume passes
    over: its command says so, as the work since the checkpoint it takes instead is lost. (With none that reads, the
    resume itself fails on the unreadable one, saying so.)"""
    ckpts = _checkpoint_files(run)
    unreadable = [p for p in ckpts if checkpoint_progress(p)[0] == UNREADABLE]
    return unreadable if len(unreadable) < len(ckpts) else []


def tensors_differ(expected: dict, state: dict, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """``(name, shape in state, expected shape)`` of every tensor under ``prefix`` whose shape
    differs between the module's ``expected`` state dict and a checkpoint's ``state``."""
    want = {k: tuple(v.shape) for k, v in expected.items() if k.startswith(prefix)}
    found = {k: tuple(v.shape) for k, v in state.items() if k.startswith(prefix) and hasattr(v, "shape")}
    return [(k[len(prefix):], found.get(k, "missing"), want.get(k, "absent"))
            for k in sorted(want.keys() | found.keys()) if want.get(k) != found.get(k)]


def safe_load(path: str | os.PathLike, what: str = "checkpoint"):
    """``torch.load`` that runs no code from the file (``weights_only=True``), errors in one line.

    uboost's own Lightning/NNI checkpoints hold only tensors and plain containers, so nothing
    is allow-listed; a file that needs any other global is refused, never executed.
    """
    import pickle
    import re

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise RunDirError(f"{what} {path} not found") from None
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc)) or re.search(r"Unsupported global: ([\w.]+)", str(exc))
        if found:
            raise RunDirError(f"refusing {what} {path}: it holds objects that would run code when loaded "
                              f"({found.group(1)}); delete it if you did not write it") from None
        raise RunDirError(f"{what} {path} is corrupt or unreadable (UnpicklingError); delete it to restart") from None
    except Exception as exc:
        raise RunDirError(f"{what} {path} is corrupt or unreadable ({type(exc).__name__}); delete it to restart") from None


def check_checkpoint(path: Path) -> dict:
    """Fail early, in one line, on a checkpoint that cannot be loaded safely; return it."""
    state = safe_load(path)
    if not isinstance(state, dict) or "state_dict" not in state:
        raise RunDirError(f"checkpoint {path} is not a Lightning checkpoint")
    return state
