"""Shared CLI plumbing: the Rich console and the one-line error convention."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence

import typer
from rich.console import Console

from uboost.exceptions import ConfigError, UBoostError

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)


def fail(message: str) -> None:
    """Print one red line and exit 1."""
    err_console.print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)
    raise typer.Exit(1)


def quiet_third_party() -> None:
    """Silence the known, harmless warnings of NNI and Lightning (see NNI-NOTES)."""
    warnings.filterwarnings("ignore", message=r".*is found to be not a nn\.Module.*")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*val_dataloader.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    for name in ("nni", "lightning", "pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("PYTHONWARNINGS", "ignore")


def parse_shape(text: str, what: str = "input shape") -> tuple[int, ...]:
    parts = str(text).lower().replace("*", "x").split("x")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise ConfigError(f"{what} must look like 3x32x32, got {text!r}") from None
    if not dims or any(d < 1 for d in dims):
        raise ConfigError(f"{what} must have positive dimensions, got {text!r}")
    return dims


def human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:.0f}" if float(n).is_integer() else f"{n:.2f}"


def unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))
