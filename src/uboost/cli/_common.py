"""Shared CLI plumbing: the Rich console and the one-line error convention.

Nothing here imports Rich or Typer at import time: ``uboost --help`` and ``uboost <cmd> --help`` print
plain click help, and Rich (~40 ms) loads with the first thing a command prints through it.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence

from uboost._quiet import quiet_nni
from uboost.exceptions import ConfigError
from uboost.tables import human, latency_text, number_text  # noqa: F401  (the CLI's number formats)



PIPED_WIDTH = 160


class LazyConsole:
    """A ``rich.console.Console(highlight=False)`` created on first use; attribute access goes to it.
    Hand :meth:`get_console` (the real Console) to Rich objects that take a ``console=``."""

    def __init__(self, *, stderr: bool) -> None:
        self._stderr = stderr
        self._console = None

    def get_console(self):
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr, highlight=False, width=self.piped_width())
        return self._console

    def piped_width(self) -> int | None:
        """Output to a file or a pipe (not a terminal, ``COLUMNS`` unset) is :data:`PIPED_WIDTH` wide,
        not Rich's 80 columns: a table as wide as a profile of two arrays is then written whole, not
        cut with ellipses. A terminal keeps its own width."""
        stream = sys.stderr if self._stderr else sys.stdout
        try:
            terminal = stream.isatty()
        except (AttributeError, ValueError):
            terminal = False
        return None if terminal or os.environ.get("COLUMNS") else PIPED_WIDTH

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.get_console(), name)


console = LazyConsole(stderr=False)
err_console = LazyConsole(stderr=True)


def Flag(*names: str, help: str):  # noqa: N802  (reads like typer.Option)
    """A plain on/off switch (off by default): ``--force``, not ``--force <bool>``."""
    import typer

    return typer.Option(*names, help=help, show_default=False)


def error_line(message: str) -> None:
    """The one red ``error: ...`` line on stderr."""
    from rich.markup import escape

    err_console.print(f"[bold red]error:[/] {escape(str(message))}", markup=True, soft_wrap=True)


def not_drawn(path, reason: object) -> None:
    """The one yellow line for an optional plot not drawn (e.g. no matplotlib); ``reason`` escaped, so its
    ``pip install 'uboost[plot]'`` is not read as markup."""
    from rich.markup import escape

    err_console.print(f"[yellow]could not draw {escape(str(path))}: {escape(str(reason))}[/]", soft_wrap=True)


def note_unreadable_checkpoints(folder) -> None:
    """Before a ``--resume``: one yellow line per checkpoint in ``folder`` it passes over because it cannot be read
    (torn or corrupt), since the work saved there is lost and the resume starts from an earlier one."""
    from pathlib import Path

    from rich.markup import escape

    from uboost.runs import unreadable_checkpoints

    for path in unreadable_checkpoints(Path(folder)):
        err_console.print(f"[yellow]note:[/] {escape(str(path))} is unreadable (torn or corrupt); the resume passes over "
                          "it and continues from the furthest checkpoint that reads", soft_wrap=True)


def fail(message: str, code: int = 1) -> None:
    """Print one red line and exit ``code`` (1; 130 after Ctrl-C)."""
    import typer

    error_line(message)
    raise typer.Exit(code)


def quiet_third_party() -> None:
    """The library's NNI/Lightning filters, plus deprecation noise a CLI user cannot act on."""
    quiet_nni()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
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


def unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def registry_table(title: str, entries: dict[str, str]):
    """A Rich table of registered names and their one-line descriptions."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column("name", style="bold cyan")
    table.add_column("description")
    for name, description in entries.items():
        table.add_row(name, description)
    return table


def check_output_file(option: str, path, *, force: bool, suffix: str = "") -> None:
    """Refuse, before any work, a file output (``--plot``, ``--out``) uboost could not or should not
    write: a directory, a parent that is not a folder, or an existing file without ``--force`` (a
    loose file has no manifest to say who wrote it: it may be someone's result), and with ``--force`` too a file
    of another command's results; with ``suffix``, a name without it. Missing parent folders are fine: the atomic
    write creates them, as ``export --out`` and ``search --out`` do."""
    from uboost.exceptions import RunDirError

    if path is None:
        return
    if path.is_dir():
        raise RunDirError(f"{option} {path} is a directory; give a file name, e.g. {path / ('out' + suffix)}")
    ancestor = path.parent
    while not ancestor.exists() and not ancestor.is_symlink() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        why = "is a broken link" if ancestor.is_symlink() and not ancestor.exists() else "is not a folder"
        raise RunDirError(f"cannot write {option} {path}: {ancestor} {why}")
    if (path.exists() or path.is_symlink()) and not force:
        raise RunDirError(f"{option} {path} already exists; pass --force to replace it")
    from uboost._owners import refuse_others

    refuse_others(path, ())  # --force or not, never a file of another command's results (a run's arch.json, a model.pt)
    if suffix and path.suffix.lower() != suffix:  # (a PNG written under another name is read as that kind of file)
        from uboost.exceptions import ConfigError

        raise ConfigError(f"{option} {path} must end in {suffix} (it writes a {suffix[1:].upper()} image)")


def stop_on_sigterm(command):
    """``command`` with SIGTERM (``kill PID``, a scheduler's stop) handled as a Ctrl-C: one line, exit 130, instead of
    a silent exit 143. For commands that train without Lightning (``exits``, ``predict``): Lightning has its own
    SIGTERM handling, which search and retrain use."""
    import functools
    import signal
    import threading

    @functools.wraps(command)
    def run(*args, **kwargs):
        if threading.current_thread() is not threading.main_thread():
            return command(*args, **kwargs)

        def interrupt(signum, frame):
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, interrupt)
        try:
            return command(*args, **kwargs)
        finally:
            signal.signal(signal.SIGTERM, previous)

    return run
