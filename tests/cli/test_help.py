"""--help shows every option's real default and a help line; switches are plain flags."""

import pytest
import typer

from uboost.cli import app

MINE = ("search", "retrain", "export")  # the commands whose options default to None for TOML layering or runs


def _command(name):
    group = typer.main.get_command(app)
    return group.commands[name]


@pytest.mark.parametrize("name", MINE)
def test_every_option_has_help_and_a_default(name):
    options = [p for p in _command(name).params if p.param_type_name == "option"]
    assert len(options) >= 5  # typer 0.29's options are not click.Option: select them by kind
    for param in options:
        if param.param_type_name != "option" or param.name == "help":  # typer 0.29 has its own click
            continue
        assert param.help, f"{name} {param.opts[0]} has no help line"
        if param.is_flag:
            assert param.default is False, f"{name} {param.opts[0]} should be off by default"
            continue
        shown = param.default is not None and param.show_default is not False
        assert shown or "[default:" in param.help, f"{name} {param.opts[0]} shows no default"


def test_search_help_shows_config_defaults_and_plain_flags(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    text = cli("search", "--help").out
    lines, current = {}, None
    for line in text.splitlines():  # one entry per option, wrapped help joined
        if line.startswith("  --"):
            current = line.split()[0]
            lines[current] = line.strip()
        elif current and line.startswith("    "):
            lines[current] += " " + line.strip()
    assert "[default: 6]" in lines["--epochs"] and "[default: 64]" in lines["--batch-size"]
    assert "[default: auto]" in lines["--accelerator"] and "[default: 8]" in lines["--width"]
    assert "[default: 0]" in lines["--seed"] and "[search]" in lines["--config"]
    for flag in ("--download", "--resume", "--force"):
        assert "<bool>" not in lines[flag] and lines[flag].split()[1] != "<bool>", lines[flag]


def test_flags_take_no_value(cli, tmp_path):
    """--force is a switch: the word after it is the next option, not its value."""
    result = cli("export", tmp_path / "nowhere", "--force", "--format", "json")
    assert result.code == 1 and "expected a run directory" in result.err


def test_accelerator_defaults_to_auto_as_lightning():
    from uboost.retrain import RetrainConfig
    from uboost.search import SearchConfig

    assert SearchConfig().accelerator == "auto" and RetrainConfig().accelerator == "auto"
    retrain = {p.name: p for p in _command("retrain").params}
    assert retrain["accelerator"].default == "auto"


def test_each_space_owns_its_default_options():
    """SearchConfig(space="lenet") must not inherit darts-cifar's width/cells."""
    from uboost.search import SearchConfig
    from uboost.search_spaces import create, default_options

    assert SearchConfig(space="lenet").space_options == {} == default_options("lenet")
    assert SearchConfig().space_options == {"width": 8, "cells": 3}
    assert SearchConfig(space="darts-cifar", space_options={"width": 16}).space_options == {"width": 16, "cells": 3}
    config = SearchConfig(space="lenet", image_size=8)
    create(config.space, **config.space_options)  # builds: no foreign keyword
    assert SearchConfig.from_dict(config.to_dict()) == config


def test_lazy_root_lists_every_command_as_the_built_commands_would():
    """`uboost --help` shows the stored first lines (uboost.cli._app.COMMANDS) without building the
    commands; once every command is built, the same help must come out."""
    from uboost.cli import _app

    group = typer.main.get_command(app)
    assert isinstance(group, _app.LazyGroup) and group.list_commands(None) == list(_app.COMMANDS)
    lazy_help = group.get_help(group.make_context("uboost", [], resilient_parsing=True))
    assert not group.commands.built
    for name in _app.COMMANDS:
        command = group.commands[name]
        assert command.name == name and command.help.splitlines()[0] == _app.COMMANDS[name][2], name
    assert group.get_help(group.make_context("uboost", [], resilient_parsing=True)) == lazy_help
    for name in _app.COMMANDS:
        assert f"\n  {name} " in lazy_help


def test_a_lazy_command_keeps_its_help_options_and_errors(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    result = cli("retrain", "--help")
    assert result.code == 0 and " retrain [OPTIONS]" in result.out and "[default: auto]" in result.out
    result = cli("hw", "list", "--help")
    assert result.code == 0 and " hw list [OPTIONS]" in result.out
    result = cli("serch")
    assert result.code == 2 and "No such command 'serch'. Did you mean 'search'?" in result.err
    result = cli("search", "--epochs", "x")
    assert result.code == 2 and "Invalid value for '--epochs'" in result.err
