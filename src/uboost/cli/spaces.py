"""``uboost spaces``."""

from uboost.cli._common import console, registry_table


def spaces() -> None:
    """List the registered search spaces."""
    from uboost.catalog import spaces as list_spaces

    console.print(registry_table("search spaces", list_spaces()))
