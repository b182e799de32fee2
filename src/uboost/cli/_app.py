"""The Typer app behind ``uboost``, with its sub-commands loaded lazily.

``uboost --help`` lists every command but builds none; ``uboost search ...`` imports and builds
``search`` alone (click's "LazyGroup" pattern). Typer would otherwise import every command module
(Rich, the search config, ...) and turn ~80 options into click parameters at every start.
"""

import functools
import importlib
import sys
from collections.abc import Iterator, MutableMapping
from gettext import gettext as _
from pathlib import PurePath

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup
from typer.models import TyperInfo

from uboost.cli import _lazy_coercion

_lazy_coercion.install()  # no pydantic import for options nobody gave (--help, hw list, spaces)

HELP = "Hardware-aware, utilization-boosted differentiable NAS (U-Boost) on NNI and Optuna."

# name: (module, attribute, the first line of the command's docstring). The attribute is a command
# function or, for a group, a typer.Typer. The first line is what `uboost --help` shows without
# importing the module; tests/cli/test_help.py checks it against the docstring.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "search": ("uboost.cli.search", "search", "Search an architecture with the U-Boost loss and write a run directory."),
    "export": ("uboost.cli.export", "export",
               "Export the searched architecture (JSON) or the derived network (ONNX / TorchScript)."),
    "retrain": ("uboost.cli.retrain", "retrain",
                "Train a searched architecture from scratch and report accuracy, cycles, latency, utilization."),
    "profile": ("uboost.cli.profile", "profile",
                "Per-layer MACs, cycles, utilization, words moved and energy of a network on one or more systolic arrays."),
    "spaces": ("uboost.cli.listings", "spaces", "List the registered search spaces."),
    "tune": ("uboost.cli.tune", "tune", "Tune lambda, T and the array with Optuna: each trial is one fresh U-Boost search."),
    "frontier": ("uboost.cli.frontier", "frontier",
                 "Project one search onto many latency budgets: an accuracy-latency frontier from one search."),
    "predict": ("uboost.cli.predict", "predict",
                "Predict a network's accuracy from the run's supernet, with its exact latency on the run's array."),
    "hw": ("uboost.cli.profile", "hw_app", "Inspect the registered hardware cost models."),
    "exits": ("uboost.cli.exits", "exits", "Attach early exits to a retrained run and search exits, thresholds and the operating point."),
    "switch": ("uboost.cli.switch", "switch", "Pick the most accurate network of a frontier within a latency (and energy) budget."),
}


def build_command(name: str) -> TyperCommand | TyperGroup:
    """The click command (or group) for ``name``, built exactly as ``app.command()`` /
    ``app.add_typer(..., name=name)`` on the root app would build it."""
    module, attr, _ = COMMANDS[name]
    target = getattr(importlib.import_module(module), attr)
    if isinstance(target, typer.Typer):
        for info in target.registered_commands:
            info.callback = expanding_user(info.callback)
        return typer.main.get_group_from_info(
            TyperInfo(target, name=name),
            pretty_exceptions_short=app.pretty_exceptions_short,
            rich_markup_mode=app.rich_markup_mode,
            suggest_commands=app.suggest_commands,
        )
    scratch = typer.Typer(rich_markup_mode=app.rich_markup_mode)
    scratch.command(name)(expanding_user(target))
    return typer.main.get_command_from_info(
        scratch.registered_commands[0],
        pretty_exceptions_short=app.pretty_exceptions_short,
        rich_markup_mode=app.rich_markup_mode,
    )


def expanding_user(command):
    """``command`` with a leading ``~`` of its path arguments expanded, as a shell would have done (``--out=~/x``
    and a quoted ``'~'`` reach us literally: the run went to a folder named ``~`` here while Lightning, which
    expands it, wrote into the home folder)."""
    if getattr(command, "_uboost_expanding", False):
        return command

    @functools.wraps(command)
    def run(*args, **kwargs):
        return command(*map(_expanded, args), **{k: _expanded(v) for k, v in kwargs.items()})

    run._uboost_expanding = True
    return run


def _expanded(value):
    if isinstance(value, PurePath):
        return value.expanduser()
    if isinstance(value, (list, tuple)) and any(isinstance(v, PurePath) for v in value):
        return type(value)(v.expanduser() if isinstance(v, PurePath) else v for v in value)
    return value


class LazyCommands(MutableMapping):
    """``TyperGroup.commands`` that builds a command the first time it is looked up."""

    def __init__(self) -> None:
        self.built: dict = {}

    def __getitem__(self, name: str):
        if name not in self.built:
            if name not in COMMANDS:
                raise KeyError(name)
            self.built[name] = build_command(name)
        return self.built[name]

    def __setitem__(self, name: str, command) -> None:
        self.built[name] = command

    def __delitem__(self, name: str) -> None:
        raise TypeError("uboost's commands cannot be removed")

    def __iter__(self) -> Iterator[str]:
        yield from COMMANDS
        yield from (name for name in self.built if name not in COMMANDS)

    def __len__(self) -> int:
        return len(set(COMMANDS) | set(self.built))


class LazyGroup(TyperGroup):
    """The root group: lists every command by name, builds one only when it runs or its help shows."""

    def __init__(self, **attrs) -> None:
        super().__init__(**attrs)
        lazy = LazyCommands()
        lazy.built.update(self.commands)
        self.commands = lazy

    def list_commands(self, ctx) -> list[str]:
        return list(self.commands)  # names only (TyperGroup's iterates the commands themselves)

    def format_commands(self, ctx, formatter) -> None:
        """As TyperGroup's, with the stored first line standing in for a command not built yet."""
        built = self.commands.built
        commands = [(name, built[name] if name in built else _summary(name)) for name in self.list_commands(ctx)]
        commands = [(name, cmd) for name, cmd in commands if not cmd.hidden]
        if commands:
            limit = formatter.width - 6 - max(len(name) for name, _ in commands)
            rows = [(name, cmd.get_short_help_str(limit)) for name, cmd in commands]
            with formatter.section(_("Commands")):
                formatter.write_dl(rows)


def _summary(name: str) -> TyperCommand:
    return TyperCommand(name=name, help=COMMANDS[name][2])


app = typer.Typer(
    name="uboost",
    cls=LazyGroup,
    help=HELP,
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


def run(argv: list[str] | None = None) -> None:
    """``uboost ARGV``: a UBoostError becomes one red line and its exit code; Ctrl-C exits 130."""
    from uboost.cli._boundary import say_interrupted
    from uboost.cli._common import fail, quiet_third_party
    from uboost.exceptions import UBoostError

    quiet_third_party()
    try:
        app(args=argv, standalone_mode=True)
    except SystemExit as done:  # typer turns a Ctrl-C outside our handlers into a silent exit 130
        if done.code == 130 and isinstance(getattr(done.__context__, "__cause__", None), KeyboardInterrupt):
            say_interrupted()
        raise
    except UBoostError as exc:
        from uboost.cli._boundary import name_the_flag

        try:
            fail(name_the_flag(str(exc), sys.argv[1:] if argv is None else [str(a) for a in argv]),
                 getattr(exc, "exit_code", 1))
        except typer.Exit as done:
            sys.exit(done.exit_code)
    except KeyboardInterrupt:
        say_interrupted()
        sys.exit(130)
    except (OSError, MemoryError, RuntimeError) as exc:  # the OS's or the allocator's refusal: one line too
        from uboost.cli._boundary import one_line

        message = one_line(exc, sys.argv[1:] if argv is None else [str(a) for a in argv])
        if message is None:
            raise
        try:
            fail(message)
        except typer.Exit as done:
            sys.exit(done.exit_code)
