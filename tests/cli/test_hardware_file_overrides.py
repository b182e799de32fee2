"""Command-line options over a --hardware file replace what they stand for in it, not only their own key."""

import json

import pytest

from tests.cli.conftest import TINY

NET = ["resnet18", "--input", "3x32x32"]


def _report(cli, *args):
    result = cli("profile", *NET, "--json", *args)
    assert result.code == 0, result.err
    return json.loads(result.out)["reports"][0]


def test_sram_kb_replaces_a_files_per_buffer_sizes(cli, tmp_path):
    path = tmp_path / "perbuf.toml"
    path.write_text("[hardware]\nrows = 16\ncols = 16\nifmap_sram_kb = 16\nfilter_sram_kb = 16\nofmap_sram_kb = 8\n"
                    "dram_bw_words = 4\n")
    own = _report(cli, "--hardware", path)["hardware"]
    over = _report(cli, "--hardware", path, "--sram-kb", "64")["hardware"]
    assert (own["ifmap_sram_kb"], own["ofmap_sram_kb"]) == (16, 8)
    assert over["sram_kb"] == 64 and over["ifmap_sram_kb"] is None and over["ofmap_sram_kb"] is None


def test_one_bandwidth_unit_replaces_the_other(cli, tmp_path):
    path = tmp_path / "gbps.toml"
    path.write_text("[hardware]\nrows = 16\ncols = 16\nsram_kb = 16\ndram_bw_gbps = 4.0\n")
    over = _report(cli, "--hardware", path, "--dram-bw-words", "10")["hardware"]
    assert over["dram_bw_words"] == 10 and over["dram_bw_gbps"] is None


def test_another_dvfs_table_runs_at_its_own_fastest_point(cli, tmp_path):
    path = tmp_path / "acc.toml"
    path.write_text('[hardware]\nrows = 8\ncols = 8\noperating_points = "rk3576-npu"\n')
    assert _report(cli, "--hardware", path)["hardware"]["clock_hz"] == 9e8
    assert _report(cli, "--hardware", path, "--operating-points", "rk356x-gpu")["hardware"]["clock_hz"] == 8e8
    out = tmp_path / "run"
    result = cli("search", *TINY, "--hardware", path, "--operating-points", "rk356x-gpu", "--out", out)
    assert result.code == 0, result.err
    assert json.loads((out / "hardware.json").read_text())["hardware"]["clock_hz"] == 8e8


def test_a_file_naming_an_area_preset_resumes(cli, tmp_path):
    path = tmp_path / "area.toml"
    path.write_text('[hardware]\nrows = 8\ncols = 8\narea = "tpu28"\n')
    out = tmp_path / "run"
    assert cli("search", *TINY, "--hardware", path, "--out", out).code == 0
    (out / "result.json").unlink()  # as if killed after its last checkpoint: there is something to resume
    (out / "arch.json").unlink()
    again = cli("search", *TINY, "--hardware", path, "--out", out, "--resume")
    assert again.code == 0, again.err  # was refused: the stored table and the preset name compared unequal


def test_memory_text_says_what_is_bounded():
    from uboost.hardware import HardwareSpec

    assert HardwareSpec(sram_kb=64, dram_bw_words=10).memory_text == "64 kB SRAM, 10 words/cycle"
    assert HardwareSpec(ifmap_sram_kb=512, filter_sram_kb=512, ofmap_sram_kb=256).memory_text == \
        "512/512/256 kB SRAM, unbounded DRAM bandwidth (no stalls)"
    assert HardwareSpec(dram_bw_words=4).memory_text == "unbounded SRAM, 4 words/cycle (no stalls)"
    assert HardwareSpec().memory_text == "unbounded memory"


def test_a_files_own_clock_stays_with_another_dvfs_table_as_in_search(cli, tmp_path):
    path = tmp_path / "clock.toml"
    path.write_text("[hardware]\nrows = 8\ncols = 8\nclock_hz = 6e8\n")
    assert _report(cli, "--hardware", path, "--operating-points", "rk3576-npu")["hardware"]["clock_hz"] == 6e8  # was 9e8


def test_options_over_a_runs_accelerator_replace_what_they_stand_for_as_over_a_file(cli, tmp_path):
    """A run from a file with per-buffer sizes kept them under `profile RUN --sram-kb` (16 vs 64 kB priced), and
    a run's bandwidth could not be given in the other unit (refused as two bandwidths)."""
    path = tmp_path / "perbuf.toml"
    path.write_text("[hardware]\nrows = 8\ncols = 8\nsram_kb = 16\nifmap_sram_kb = 4\ndram_bw_words = 4\n")
    out = tmp_path / "run"
    assert cli("search", *TINY, "--hardware", path, "--out", out).code == 0
    result = cli("profile", out, "--json", "--sram-kb", "64", "--dram-bw-gbps", "8")
    assert result.code == 0, result.err
    over = json.loads(result.out)["reports"][0]["hardware"]
    assert over["sram_kb"] == 64 and over["ifmap_sram_kb"] is None
    assert over["dram_bw_gbps"] == 8 and over["dram_bw_words"] is None


def test_profile_and_frontier_price_a_run_on_another_file_with_that_files_area_table(cli, tmp_path):
    """A file without an area table replaces the run's (default tpu28), as frontier and export read it; profile kept
    the run's recpipe12 (0.041 vs 6.74 mm² for the same accelerator)."""
    own = tmp_path / "own.toml"
    own.write_text('[hardware]\nrows = 16\ncols = 16\nsram_kb = 4\narea = "recpipe12"\n')
    other = tmp_path / "other.toml"
    other.write_text("[hardware]\nrows = 8\ncols = 8\nsram_kb = 4\n")
    run = tmp_path / "run"
    assert cli("search", *TINY, "--hardware", own, "--out", run).code == 0
    assert cli("frontier", run, "--points", "2", "--hardware", other, "--out", tmp_path / "front").code == 0
    profiled = json.loads(cli("profile", run, "--hardware", other, "--json").out)["reports"][0]["area_mm2"]
    point = json.loads(cli("profile", tmp_path / "front" / "p00", "--json").out)["reports"][0]["area_mm2"]
    assert profiled["total"] == pytest.approx(point["total"]) and profiled["total"] > 1.0  # tpu28's fixed part
