"""Comma-separated options refuse an empty entry ("2,,8", "4,8,", ",4"): a value left out is a typo, not one
choice fewer. Every list option parsed by splitting at commas says so in one line."""

import pytest

from uboost.exceptions import ConfigError

EMPTY = ["8,,16", "8,16,", ",8"]


@pytest.mark.parametrize("text", EMPTY)
def test_every_comma_list_parser_refuses_an_empty_entry(text):
    from uboost.cli._tune_parsing import parse_choices, parse_int_space
    from uboost.cli.exits import _floats
    from uboost.quant import parse_bits
    from uboost.tuning import check_objectives

    for parse in (lambda: parse_bits(text, "--act-bits"), lambda: parse_choices(text, "--act-bits"),
                  lambda: parse_int_space(text, "--act-bits"), lambda: _floats(text.replace("16", "0.9"), "--act-bits")):
        with pytest.raises(ConfigError, match="--act-bits has an empty entry"):
            parse()
    with pytest.raises(ConfigError, match="objectives has an empty entry"):
        check_objectives(text.replace("16", "latency").replace("8", "accuracy"))


def test_spaces_around_entries_are_still_fine():
    from uboost.cli._tune_parsing import parse_choices
    from uboost.quant import parse_bits

    assert parse_bits(" 2, 4 ,8 ") == (2, 4, 8) and parse_choices("8, 16", "x") == (8, 16)


@pytest.mark.parametrize("flags,fragment", [
    (["--dataflows", "ws,,os"], "--dataflows has an empty entry"),
    (["--rows", "8,16,"], "--rows has an empty entry"),
    (["--objectives", "accuracy,latency,"], "objectives has an empty entry"),
])
def test_tune_list_options_refuse_an_empty_entry(cli, tmp_path, flags, fragment):
    from tests.cli.conftest import TINY, one_line_error

    out = tmp_path / "never"
    one_line_error(cli("tune", *TINY, *flags, "--trials", "1", "--out", out), fragment)
    assert not out.exists()
