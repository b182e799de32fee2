"""Issue 22 item 1: --hardware FILE on search, tune, export and frontier; the run directory keeps the
resolved accelerator, so retrain, export and frontier price on the same one (even once the file is gone)."""

import json
from pathlib import Path

import pytest

from tests.cli.conftest import TINY, one_line_error

CFG = Path(__file__).parents[1] / "hardware" / "data" / "scalesim_cfg"
ACCELERATOR = """\
[hardware]
rows = 8
cols = 12
dataflow = "os"
ifmap_sram_kb = 4
filter_sram_kb = 8
ofmap_sram_kb = 2
dram_bw_words = 3.5
operating_points = [[400e6, 0.7], [800e6, 0.9]]

[hardware.energy]
base = "eyeriss65"
dram_pj_per_bit = 9.5

[hardware.area]
base = "recpipe12"
fixed_mm2 = 0.25
"""


def _spec(path):
    return json.loads(Path(path).read_text())["hardware"]


@pytest.fixture(scope="module")
def hw_run(tmp_path_factory):
    from tests.cli.conftest import Result  # noqa: F401 - the runner below is the real entry point
    from uboost.cli import main

    root = tmp_path_factory.mktemp("hw")
    toml = root / "acc.toml"
    toml.write_text(ACCELERATOR)
    out = root / "run"
    try:
        main(["search", *TINY, "--hardware", str(toml), "--out", str(out)])
    except SystemExit as exc:
        assert not exc.code, exc.code
    toml.unlink()  # the run must not need the file again
    return out


def test_search_prices_on_the_described_accelerator(hw_run):
    hw = _spec(hw_run / "hardware.json")
    assert (hw["rows"], hw["cols"], hw["dataflow"]) == (8, 12, "os")
    assert (hw["ifmap_sram_kb"], hw["filter_sram_kb"], hw["ofmap_sram_kb"], hw["dram_bw_words"]) == (4, 8, 2, 3.5)
    assert hw["energy"]["dram_pj_per_bit"] == 9.5 and hw["clock_hz"] == 800e6  # the table's fastest point
    config = json.loads((hw_run / "config.json").read_text())
    assert config["energy"]["dram_pj_per_bit"] == 9.5  # stored resolved, not as a path
    assert config["hardware"]["area"]["fixed_mm2"] == 0.25


def test_retrain_export_and_frontier_price_on_the_runs_accelerator(cli, hw_run, tmp_path):
    stored = _spec(hw_run / "hardware.json")
    assert cli("retrain", hw_run, "--epochs", "1", "--max-samples", "64", "--batch-size", "32",
               "--out", tmp_path / "re").code == 0
    assert _spec(tmp_path / "re" / "hardware.json") == stored
    from uboost.frontier import load_projector

    high = load_projector(hw_run).projector.unconstrained().latency_ms
    result = cli("export", hw_run, "--target-latency-ms", high, "--out", tmp_path / "ex")
    assert result.code == 0, result.err
    assert _spec(tmp_path / "ex" / "hardware.json") == stored
    result = cli("frontier", hw_run, "--points", "2", "--out", tmp_path / "fr")
    assert result.code == 0, result.err
    assert _spec(tmp_path / "fr" / "p01" / "hardware.json") == stored
    profile = json.loads(cli("profile", hw_run, "--json").out)["reports"][0]
    assert profile["hardware"] == stored


def test_export_on_another_accelerator_file(cli, hw_run, tmp_path):
    from uboost.frontier import load_projector

    high = load_projector(hw_run, CFG / "scale_v2.cfg").projector.unconstrained().latency_ms
    result = cli("export", hw_run, "--target-latency-ms", high, "--out", tmp_path / "ex", "--hardware", CFG / "scale_v2.cfg")
    assert result.code == 0, result.err
    hw = _spec(tmp_path / "ex" / "hardware.json")
    assert (hw["rows"], hw["dataflow"], hw["sram_kb"], hw["ifmap_sram_kb"]) == (32, "os", 64, None)  # nothing of the run's left
    assert hw["energy"]["name"] == "horowitz45"


def test_options_override_the_file_and_tune_starts_from_it(tmp_path):
    from uboost.cli.search import hardware_changes
    from uboost.cli.tune import _base_config
    from uboost.search import SearchConfig

    cfg = SearchConfig(**{**hardware_changes(CFG / "google_v3.cfg"), "array": "16x16"})
    spec = cfg.hardware_spec()
    assert (spec.rows, spec.cols, spec.buffer_kb, spec.dram_bw_words) == (16, 16, (6144, 6144, 2048), 10)
    base = _base_config(None, {"space": "lenet"}, default_epochs=1, hardware=CFG / "scale_v2.cfg")
    assert (base.array, base.dataflow, base.sram_kb, base.dram_bw_words) == ("32x32", "os", 64, 64)


@pytest.mark.parametrize("command", ["search", "tune"])
def test_a_bad_hardware_file_is_one_line_and_writes_nothing(cli, tmp_path, command):
    bad = tmp_path / "bad.cfg"
    bad.write_text("[architecture_presets]\nArrayHeight: 8\nArrayWidth: 8\nTurbo: 1\n")
    out = tmp_path / "out"
    one_line_error(cli(command, "--space", "lenet", "--hardware", bad, "--out", out), "unknown key(s) Turbo in")
    assert not out.exists()


def test_hardware_on_a_plain_export_is_refused(cli, hw_run, tmp_path):
    one_line_error(cli("export", hw_run, "--hardware", CFG / "scale_v2.cfg", "--out", tmp_path / "a.json"), "budget export")


@pytest.mark.parametrize("name", ["scale_v2.cfg", "toml"])
def test_resume_with_the_same_hardware_file_is_not_a_change(cli, tmp_path, name):
    # a file without a clock leaves it to be resolved (its DVFS table's fastest, else 1 GHz), as config.json stores it
    if name == "toml":
        hardware = tmp_path / "acc.toml"
        hardware.write_text(ACCELERATOR)
    else:
        hardware = CFG / name
    flags = [*TINY, "--hardware", hardware, "--out", tmp_path / "run"]
    assert cli("search", *flags).code == 0
    for name in ("result.json", "arch.json"):  # as if killed after its last checkpoint: a finished run is not resumed
        (tmp_path / "run" / name).unlink()
    again = cli("search", *flags, "--resume")  # was: "these differ: clock_hz 1000000000.0 -> None"
    assert again.code == 0, again.err
    one_line_error(cli("search", *flags, "--array", "4x4", "--resume"), "these differ", "array")
