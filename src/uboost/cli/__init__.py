"""The ``uboost`` command line: thin Typer commands over the library.

A :class:`~uboost.exceptions.UBoostError` becomes one red line and exit code 1; a traceback
is a bug. Importing this package is instant: the Typer app (:mod:`uboost.cli._app`) loads on
first use of :data:`app` or :func:`main`, and builds only the command that runs.
"""

import os
import sys

# Before torch starts OpenMP: idle threads sleep instead of spinning. On a small shared
# machine spinning threads slowed the small ops of a search by an order of magnitude.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """The console script: ``uboost ARGV`` (``sys.argv[1:]`` by default); exits with its code."""
    args = tuple(sys.argv[1:] if argv is None else map(str, argv))
    from uboost.cli._boundary import degrade_output

    degrade_output()  # a terminal that cannot show µ or a box line gets a look-alike, not a traceback
    if args == ("--version",):  # answered without Typer
        from uboost import __version__

        print(f"uboost {__version__}")
        sys.exit(0)
    try:  # a Ctrl-C while the app is still imported (a DDP rank starting up): one line, as anywhere else
        from uboost.cli.listings import DIRECT, run_direct

        if args in DIRECT:  # `uboost spaces`, `uboost hw list`: no arguments to parse, run without the app
            run_direct(DIRECT[args])
        from uboost.cli._app import run
    except KeyboardInterrupt:
        from uboost.cli._boundary import say_interrupted

        say_interrupted()
        sys.exit(130)
    run(argv)


def __getattr__(name: str):
    if name == "app":  # the typer.Typer, for tests and for embedding
        from uboost.cli._app import app

        return app
    raise AttributeError(f"module 'uboost.cli' has no attribute {name!r}")
