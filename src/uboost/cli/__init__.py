"""The ``uboost`` command line: thin Typer commands over the library.

A :class:`~uboost.exceptions.UBoostError` becomes one red line and exit code 1; a traceback
is a bug.
"""

import os
import sys

# Before torch starts OpenMP: idle threads sleep instead of spinning. On a small shared
# machine spinning threads slowed the small ops of a search by an order of magnitude.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import typer

from uboost.cli import _lazy_coercion

_lazy_coercion.install()  # no pydantic import for options nobody gave (--help, hw list, spaces)

from uboost.cli._common import fail, quiet_third_party  # noqa: E402
from uboost.cli.frontier import frontier
from uboost.cli.profile import hw_app, profile
from uboost.cli.search import export, retrain, search, spaces
from uboost.cli.tune import tune
from uboost.exceptions import UBoostError

app = typer.Typer(
    name="uboost",
    help="Hardware-aware, utilization-boosted differentiable NAS (U-Boost) on NNI and Optuna.",
    invoke_without_command=True,
    # Plain help: every "[default: ...]" shows as written (Rich markup would swallow it), flags
    # read as flags, and --help needs no Markdown/Pygments import.
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        from uboost import __version__

        typer.echo(f"uboost {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", callback=_version, is_eager=True),
) -> None:
    """Hardware-aware, utilization-boosted differentiable NAS (U-Boost) on NNI and Optuna."""
    if ctx.invoked_subcommand is None:  # bare `uboost`: the help, and success
        typer.echo(ctx.get_help())
        raise typer.Exit(0)

app.command()(search)
app.command()(export)
app.command()(retrain)
app.command()(profile)
app.command()(spaces)
app.command()(tune)
app.command()(frontier)
app.add_typer(hw_app, name="hw")


def main(argv: list[str] | None = None) -> None:
    quiet_third_party()
    try:
        app(args=argv, standalone_mode=True)
    except UBoostError as exc:
        try:
            fail(str(exc), getattr(exc, "exit_code", 1))
        except typer.Exit as done:
            sys.exit(done.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
