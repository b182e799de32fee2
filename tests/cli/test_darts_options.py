"""darts-cifar options from the user (a --cell-arch file, TOML space options): one line, nothing written."""

import json

import pytest

from tests.cli.conftest import one_line_error


def cell_arch(nodes=4, **inputs):
    """A fixed genotype of conv_3x3 edges from the two cell inputs; ``inputs``: ``input_3_0=[3]`` overrides."""
    arch = {}
    for label in ("normal", "reduce"):
        for i in range(2, nodes + 2):
            for k in range(2):
                arch[f"{label}/op_{i}_{k}"] = "conv_3x3"
                arch[f"{label}/input_{i}_{k}"] = inputs.get(f"input_{i}_{k}", [k])
    return arch


@pytest.mark.parametrize("index", [[3], [-1], [1.0], [True], ["0"]])
def test_a_cell_arch_input_that_is_not_an_earlier_state_is_one_line_before_anything_is_written(cli, tmp_path, index):
    """[3] at node 3 was an IndexError traceback in forward after the run directory was written; [-1] was taken."""
    first = tmp_path / "first"
    first.mkdir()
    (first / "config.json").write_text("{}")
    (first / "arch.json").write_text(json.dumps(cell_arch(input_3_0=index)))
    out = tmp_path / "fixed"
    one_line_error(cli("search", "--space", "darts-cifar", "--dataset", "digits", "--image-size", "8", "--epochs", "1",
                       "--max-samples", "64", "--channels", "8:16:8", "--cell-arch", first, "--out", out),
                   "normal/input_3_0 must be [J] with a whole number 0 <= J < 3")
    assert not out.exists()


def test_a_cell_arch_reading_earlier_nodes_builds_and_runs():
    import torch

    from uboost.search_spaces import create

    space = create("darts-cifar", width=4, cells=3, cell_arch=cell_arch(input_3_0=[2], input_5_1=[4]),
                   input_shape=(3, 8, 8))
    assert space(torch.zeros(2, 3, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize("channels", ['["a", 8, 8]', "[8.5, 16, 8]", "[true, 16, 8]", "8"])
def test_toml_channels_that_are_not_three_whole_numbers_are_one_line_before_anything_is_written(cli, tmp_path, channels):
    """["a", 8, 8] was a ValueError traceback, [8.5, 16, 8] silently became 8 (the CLI's 8.5:16:8 is refused)."""
    (tmp_path / "c.toml").write_text(f"[search.space_options]\nchannels = {channels}\n")
    out = tmp_path / "run"
    one_line_error(cli("search", "--space", "darts-cifar", "--config", tmp_path / "c.toml", "--epochs", "1", "--out", out),
                   "channels must be three whole numbers")
    assert not out.exists()
