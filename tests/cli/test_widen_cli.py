"""`uboost search --widen all`: channel counts and bits raised jointly at export (uboost.strategy.widening)."""

import json

from tests.cli.conftest import TINY, one_line_error


def test_search_widen_all_exports_a_network_no_dearer_than_the_argmax(cli, tmp_path):
    out = tmp_path / "run"
    result = cli("search", *TINY, "--bits", "2,4,8", "--pe", "bitfusion", "--widen", "all", "--out", out)
    assert result.code == 0, result.err
    facts = json.loads((out / "result.json").read_text())
    assert json.loads((out / "config.json").read_text())["widen"] == "all"
    assert isinstance(facts["widened"], list)  # the labels it raised (maybe none)
    assert facts["latency_ms"] <= facts["argmax_latency_ms"] * (1 + 1e-9)  # widening never costs latency
    arch, precision = json.loads((out / "arch.json").read_text()), json.loads((out / "precision.json").read_text())
    assert set(arch) == {"conv1_width", "conv1_kernel", "conv2_width", "conv2_kernel", "fc1_width"}
    assert set(precision) == {"conv1", "conv2", "fc1", "fc2"}


def test_an_unknown_widen_mode_is_one_red_line_and_writes_nothing(cli, tmp_path):
    one_line_error(cli("search", *TINY, "--widen", "everything", "--out", tmp_path / "bad"), "widen must be one of bits, all")
    assert not (tmp_path / "bad").exists()
