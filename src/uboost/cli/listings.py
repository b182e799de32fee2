"""``uboost spaces`` and ``uboost hw list``: the registered names, without torch, NNI -- or Typer.

Both take no arguments, so :func:`uboost.cli.main` runs them directly (no Typer app is built:
~50 ms of a ~0.25 s start); ``uboost spaces --help`` and anything with more arguments go through
the app, where these same functions are its commands.
"""

from uboost.cli._common import console, registry_table


def spaces() -> None:
    """List the registered search spaces."""
    from uboost.catalog import spaces as list_spaces

    console.print(registry_table("search spaces", list_spaces()))


def hw_list() -> None:
    """List the registered cost models with one-line descriptions."""
    from uboost.catalog import cost_models

    console.print(registry_table("cost models", cost_models()))


# argv -> the command it runs directly
DIRECT = {("spaces",): spaces, ("hw", "list"): hw_list}


def run_direct(command) -> None:
    """Run ``command`` as the app would (quiet third parties; a UBoostError is one red line and
    its exit code; Ctrl-C exits 130) and exit 0 after it."""
    import sys

    from uboost.cli._common import error_line, quiet_third_party
    from uboost.exceptions import UBoostError

    quiet_third_party()
    try:
        command()
    except UBoostError as exc:
        error_line(str(exc))
        sys.exit(getattr(exc, "exit_code", 1))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(0)
