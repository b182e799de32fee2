"""What crosses the CLI boundary as one line: errors of the operating system and of memory, and
text a terminal cannot encode.

:func:`one_line` turns an ``OSError`` (any errno: a name too long, a read-only file system, a
full disk, a directory where a file is expected...) into its errno message and the path it names,
and an allocation failure into the options that shrink the job. :func:`degrade_output` makes
stdout/stderr replace characters their encoding lacks (``PYTHONIOENCODING=ascii``, a latin-1
terminal) instead of raising ``UnicodeEncodeError`` in the middle of a table.
"""

from __future__ import annotations

import codecs
import re
import sys

# what to shrink when a command runs out of memory, by command
SHRINK = {
    "search": "--width, --cells, --channels, --batch-size or --image-size",
    "tune": "--batch-size, --image-size or the space_options (width, cells) of --config",
    "retrain": "--batch-size (or retrain a smaller architecture)",
    "profile": "--batch or --input",
    "frontier": "--points (or the search's own width/cells)",
    "export": "the network (search a smaller one)",
}
_ALLOCATION = ("can't allocate", "cannot allocate", "out of memory", "not enough memory", "bad_alloc")

_ASCII = {"µ": "u", "λ": "lambda", "β": "beta", "×": "x", "…": "...", "—": "-", "–": "-", "→": "->", "≤": "<=", "≥": ">="}


def one_line(exc: BaseException, argv: list[str] | tuple[str, ...]) -> str | None:
    """The one-line message for an exception the commands do not translate themselves, or None
    when it is a bug (a traceback is then the right thing to show)."""
    command = next((a for a in argv if not a.startswith("-")), "")
    if isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and any(s in str(exc).lower() for s in _ALLOCATION)):
        shrink = SHRINK.get(command, "the network or the batch")
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        return f"out of memory ({_short(detail)}): make the job smaller with {shrink}"
    if isinstance(exc, OSError):
        text = exc.strerror or str(exc) or type(exc).__name__
        paths = [p for p in (exc.filename, exc.filename2) if p is not None]
        return f"{text}: {' -> '.join(map(str, paths))}" if paths else text
    return None


_FLAG_ALIASES = {"voltage_v": ("--voltage",), "batch_size": ("--batch",), "learning_rate": ("--lr",)}  # other flag names


def name_the_flag(message: str, argv: list[str] | tuple[str, ...]) -> str:
    """A validation message that opens with a setting's field name (``dram_bw_gbps must be ...``, as the Python API
    and files name it) opens with the flag instead when the command line gave that flag (``--dram-bw-gbps must be
    ...``): the user typed the flag. A value from a file or a run keeps the field's name (its message says where)."""
    # a field of two words or more (dram_bw_gbps ...), or of one before "must" (epochs must be ...)
    found = re.match(r"([a-z][a-z0-9]*(?:_[a-z0-9]+)+) |([a-z][a-z0-9]*) must ", message)
    if not found:
        return message
    field = found.group(1) or found.group(2)
    flags = ("--" + field.replace("_", "-"), *_FLAG_ALIASES.get(field, ()))
    given = next((f for a in argv for f in flags if a == f or a.startswith(f + "=")), None)
    if not given:
        return message
    rest = message[len(field):]
    named = re.match(r" \((--[a-z0-9-]+)\)", rest)  # "area_budget_mm2 (--area-budget-mm2) must": named once
    return given + (rest[named.end():] if named and named.group(1) in flags else rest)


def _short(text: str, limit: int = 160) -> str:
    tried = re.search(r"tried to allocate [^.(]*", text)  # torch's allocators say how much
    text = tried.group(0).strip() if tried else text
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _replace(error: UnicodeEncodeError) -> tuple[str, int]:
    bad = error.object[error.start : error.end]
    return "".join(_ASCII.get(ch, "?") for ch in bad), error.end


codecs.register_error("uboost-ascii", _replace)


def degrade_output() -> None:
    """Let stdout and stderr write what their encoding cannot hold as ASCII look-alikes or ``?``."""
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None)
        if not encoding or not hasattr(stream, "reconfigure"):
            continue
        try:
            "µλβ│━".encode(encoding)
        except UnicodeEncodeError:
            stream.reconfigure(errors="uboost-ascii")
        except LookupError:
            pass


def say_interrupted() -> None:
    """The line of a Ctrl-C, said once: by the process that owns the run (rank 0), not by each rank
    a launcher started (they get the same signal; rank 0 speaks for the run)."""
    from uboost.distributed import global_rank

    _quiet_later_interrupts()
    if global_rank() == 0:  # commands that keep resumable work say how to go on themselves (search, retrain, tune)
        print("interrupted; run the same command again to finish", file=sys.stderr)


def _quiet_later_interrupts() -> None:
    """After the interrupt's line, a further Ctrl-C while the interpreter shuts down (Lightning's and NNI's exit
    callbacks) is not a page of "Exception ignored in atexit callback ... KeyboardInterrupt": the user asked to stop,
    and was told so. Other unraisable exceptions are shown as before."""
    previous = sys.unraisablehook
    if getattr(previous, "_uboost_quiet", False):
        return

    def quiet(unraisable) -> None:
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            previous(unraisable)

    quiet._uboost_quiet = True
    sys.unraisablehook = quiet
