"""--sram-kb / --dram-bw-words on profile, search and tune; bad memory configs are one red line."""

import json

import pytest

from tests.cli.conftest import TINY, one_line_error

BAD = [
    (["--sram-kb", "0"], ["sram_kb must be a positive whole number of kB"]),
    (["--sram-kb", "-4"], ["sram_kb must be a positive whole number of kB"]),
    (["--dram-bw-words", "nan"], ["dram_bw_words must be a positive finite number"]),
    (["--dram-bw-words", "0"], ["dram_bw_words must be a positive finite number"]),
]


@pytest.mark.parametrize("args,fragments", BAD)
def test_profile_bad_memory_is_one_line(cli, args, fragments):
    one_line_error(cli("profile", "resnet18", "--array", "32x32", *args), *fragments)


@pytest.mark.parametrize("args,fragments", BAD)
def test_search_bad_memory_is_one_line(cli, tmp_path, args, fragments):
    one_line_error(cli("search", *TINY, "--out", tmp_path / "run", *args), *fragments)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args,fragments", BAD[::2])
def test_tune_bad_memory_is_one_line(cli, tmp_path, args, fragments):
    one_line_error(cli("tune", "--space", "lenet", "--trials", "1", "--out", tmp_path / "tune", *args), *fragments)


def test_profile_prices_memory_stalls(cli):
    plain = json.loads(cli("profile", "resnet18", "--array", "32x32", "--json", "--cost-model", "systolic-mem").out)
    small = cli("profile", "resnet18", "--array", "32x32", "--json", "--cost-model", "systolic-mem",
                "--sram-kb", "64", "--dram-bw-words", "10")
    assert small.code == 0, small.err
    small = json.loads(small.out)
    report = small["reports"][0]
    assert report["hardware"]["sram_kb"] == 64 and report["hardware"]["dram_bw_words"] == 10
    assert report["total"]["cycles"] > plain["reports"][0]["total"]["cycles"]
    # the compute-only model ignores the memory system
    compute = json.loads(cli("profile", "resnet18", "--array", "32x32", "--json", "--sram-kb", "64", "--dram-bw-words", "10").out)
    assert compute["reports"][0]["total"]["cycles"] == plain["reports"][0]["total"]["cycles"]


def test_search_records_memory_in_its_config(cli, tmp_path):
    out = tmp_path / "run"
    result = cli("search", *TINY, "--cost-model", "systolic-mem", "--array", "16x16", "--sram-kb", "16", "--dram-bw-words", "4",
                 "--out", out)
    assert result.code == 0, result.err
    config = json.loads((out / "config.json").read_text())
    assert config["sram_kb"] == 16 and config["dram_bw_words"] == 4
