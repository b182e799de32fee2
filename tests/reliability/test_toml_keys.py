"""Issue 27, wrong results: settings above the [search] table are refused, not silently ignored;
a TOML file that is not UTF-8 is one line."""

import pytest

from tests.reliability.conftest import one_line_error


@pytest.mark.parametrize("command", ["search", "tune"])
def test_keys_above_the_search_table_are_refused(cli, tmp_path, command):
    cfg = tmp_path / "c.toml"
    cfg.write_text('epochs = 50\nlatency_weight = 3.0\n\n[search]\nspace = "lenet"\n')
    out = tmp_path / "out"
    one_line_error(cli(command, "--config", cfg, "--out", out), "'epochs', 'latency_weight'", "outside the [search] table")
    assert not out.exists()


def test_a_file_of_top_level_settings_still_works_without_a_table(tmp_path):
    from uboost.cli.search import _load_config

    cfg = tmp_path / "c.toml"
    cfg.write_text('space = "lenet"\nepochs = 2\n')
    assert _load_config(cfg) == {"space": "lenet", "epochs": 2}


@pytest.mark.parametrize("command", ["search", "tune"])
def test_a_toml_file_that_is_not_utf8_is_one_line(cli, tmp_path, command):
    cfg = tmp_path / "c.toml"
    cfg.write_bytes(b'[search]\nspace = "l\xe9net"\n')
    out = tmp_path / "out"
    one_line_error(cli(command, "--config", cfg, "--out", out), "not UTF-8")
    assert not out.exists()
