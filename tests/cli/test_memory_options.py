"""--sram-kb / --dram-bw-words on profile, search and tune; bad memory configs are one red line."""

import json

import pytest

from tests.cli.conftest import TINY, one_line_error

BAD = [
    (["--sram-kb", "0"], ["--sram-kb must be a positive whole number of kB"]),
    (["--sram-kb", "-4"], ["--sram-kb must be a positive whole number of kB"]),
    (["--dram-bw-words", "nan"], ["--dram-bw-words must be a positive finite number"]),
    (["--dram-bw-words", "0"], ["--dram-bw-words must be a positive finite number"]),
    (["--dram-bw-gbps", "0"], ["--dram-bw-gbps must be a positive finite number of GB/s"]),
    (["--dram-bw-gbps", "2", "--dram-bw-words", "4"], ["give the DRAM bandwidth once"]),
]


@pytest.mark.parametrize("args,fragments", BAD)
def test_profile_bad_memory_is_one_line(cli, args, fragments):
    one_line_error(cli("profile", "resnet18", "--array", "32x32", *args), *fragments)


@pytest.mark.parametrize("args,fragments", BAD)
def test_search_bad_memory_is_one_line(cli, tmp_path, args, fragments):
    one_line_error(cli("search", *TINY, "--out", tmp_path / "run", *args), *fragments)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args,fragments", BAD[::2] + BAD[-1:])
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


def test_search_takes_the_bandwidth_in_gbps_at_its_clock(cli, tmp_path):
    """`search --dram-bw-gbps` (only `profile` and accelerator files had GB/s): kept as a file's is, so the run is
    priced at GB/s / clock words per cycle, and profile RUN reads the same."""
    out = tmp_path / "run"
    result = cli("search", *TINY, "--cost-model", "systolic-mem", "--sram-kb", "4", "--clock-hz", "5e8",
                 "--dram-bw-gbps", "2", "--out", out)
    assert result.code == 0, result.err
    config = json.loads((out / "config.json").read_text())
    assert config["hardware"] == {"dram_bw_gbps": 2.0} and config["dram_bw_words"] is None
    from uboost.search import SearchConfig

    spec = SearchConfig.from_dict(config).hardware_spec()
    assert spec.dram_words_per_cycle == pytest.approx(4.0)  # 2 GB/s at 500 MHz
    report = json.loads(cli("profile", out, "--json").out)["reports"][0]
    words = json.loads(cli("profile", out, "--json", "--dram-bw-words", "4").out)["reports"][0]
    assert report["hardware"]["dram_bw_gbps"] == 2 and report["total"]["cycles"] == words["total"]["cycles"]


def test_a_bandwidth_option_replaces_a_files_in_the_other_unit_in_search_and_tune(cli, tmp_path):
    path = tmp_path / "acc.toml"
    path.write_text("[hardware]\nrows = 8\ncols = 8\nsram_kb = 4\ndram_bw_words = 2\n")
    out = tmp_path / "run"
    assert cli("search", *TINY, "--hardware", path, "--dram-bw-gbps", "8", "--out", out).code == 0
    config = json.loads((out / "config.json").read_text())
    assert config["dram_bw_words"] is None and config["hardware"]["dram_bw_gbps"] == 8
    from uboost.cli.tune import _base_config

    base = _base_config(None, {"space": "lenet"}, default_epochs=3, hardware=path, dram_bw_gbps=8.0)
    assert base.dram_bw_words is None and base.hardware["dram_bw_gbps"] == 8.0
    path.write_text("[hardware]\nrows = 8\ncols = 8\nsram_kb = 4\ndram_bw_gbps = 2\n")
    base = _base_config(None, {"space": "lenet", "dram_bw_words": 6.0}, default_epochs=3, hardware=path)
    assert base.dram_bw_words == 6.0 and "dram_bw_gbps" not in (base.hardware or {})


@pytest.mark.parametrize("args,fragments", [
    (["--cost-model", "systolic-mem", "--sram-kb", "2", "--dram-bw-gbps", "2", "--dram-bw-choices", "1,4"],
     ["--dram-bw-choices searches the DRAM bandwidth", "--dram-bw-gbps would be ignored"]),
    (["--cost-model", "systolic-mem", "--sram-kb", "2", "--dram-bw-words", "2", "--dram-bw-choices", "1,4"],
     ["--dram-bw-words would be ignored"]),
    (["--cost-model", "scalesim", "--sram-kb", "1", "--dram-bw-gbps", "3.6", "--operating-points", "rk3576-npu",
      "--search-operating-point"], ["whole DRAM words per cycle", "3.6 GB/s is 5.14286 at the 700 MHz"]),
    (["--cost-model", "scalesim", "--sram-kb", "1", "--dram-bw-choices", "1.5,4"], ["whole DRAM words", "1.5"]),
])
def test_tune_refuses_a_bandwidth_it_would_drop_or_scalesim_cannot_run(cli, tmp_path, args, fragments):
    """QA: the searched bandwidth silently replaced --dram-bw-gbps; with scalesim, GB/s that is not whole words at some
    searched operating point failed trials one by one in the middle of the study."""
    out = tmp_path / "tune"
    one_line_error(cli("tune", "--space", "lenet", "--trials", "2", "--rows", "8", "--cols", "8", "--out", out, *args),
                   *fragments)
    assert not out.exists()


def test_profile_json_gives_the_resolved_words_per_cycle_and_why_a_pe_mode_has_no_area(cli):
    """QA: `profile --json` showed `dram_bw_gbps: 8` beside `dram_bw_words: null` and no words per cycle; `--pe
    bitfusion` dropped the area without a word."""
    result = cli("profile", "resnet18", "--input", "3x32x32", "--array", "16x16", "--json", "--sram-kb", "16",
                 "--dram-bw-gbps", "8", "--clock-hz", "8e8")
    assert result.code == 0, result.err
    hardware = json.loads(result.out)["reports"][0]["hardware"]
    assert hardware["dram_bw_gbps"] == 8 and hardware["dram_words_per_cycle"] == pytest.approx(10.0)
    result = cli("profile", "resnet18", "--input", "3x32x32", "--array", "16x16", "--json", "--sram-kb", "16", "--pe", "bitfusion")
    data = json.loads(result.out)
    assert data["reports"][0]["area_mm2"] is None
    assert any("no PE area for 'bitfusion'" in note for note in data["notes"])


def test_tune_takes_any_gbps_with_scalesim_where_memory_is_unbounded():
    """QA: with unbounded SRAM SCALE-Sim runs in CALC mode and takes no bandwidth (`search` prices it so); tune refused
    7.2 GB/s for being 10.29 words per cycle at 700 MHz."""
    from uboost.cli.tune import _base_config
    from uboost.tuning.accelerator_space import AcceleratorSpace

    base = _base_config(None, {"space": "lenet", "cost_model": "scalesim", "operating_points": "rk3576-npu"},
                        default_epochs=1, dram_bw_gbps=7.2)
    space = AcceleratorSpace(clock_hz=(6e8, 7e8, 8e8, 9e8))
    space.check(base, rows=[8], cols=[8])  # unbounded: no refusal
    with pytest.raises(Exception, match="10.2857 at the 700 MHz"):
        space.check(base.replace(sram_kb=4), rows=[8], cols=[8])
    searched = AcceleratorSpace(clock_hz=(6e8, 7e8, 8e8, 9e8), ifmap_sram_kb=(4, 8))  # buffers the trials size
    with pytest.raises(Exception, match="10.2857 at the 700 MHz"):
        searched.check(base, rows=[8], cols=[8])


def test_a_setting_refused_by_its_field_is_named_by_the_flag_the_user_typed(cli):
    """QA: `--dram-bw-gbps -1` said "dram_bw_gbps must be ...", a name the command line does not have. From a file,
    the field's own name stays (the file names it that way, and the message says which file)."""
    from uboost.cli._boundary import name_the_flag

    said = "dram_bw_gbps must be a positive finite number of GB/s (or unset), got -1.0"
    assert name_the_flag(said, ["profile", "x", "--dram-bw-gbps", "-1"]).startswith("--dram-bw-gbps must be")
    assert name_the_flag(said, ["profile", "x", "--dram-bw-gbps=-1"]).startswith("--dram-bw-gbps must be")
    assert name_the_flag(said, ["profile", "x", "--hardware", "a.toml"]) == said
    assert name_the_flag("voltage_v must be positive", ["profile", "x", "--voltage", "-1"]) == "--voltage must be positive"
    assert name_the_flag("hardware file a.toml: sram_kb must be ...", ["profile", "x", "--sram-kb", "4"]).startswith("hardware file")
    # a message naming the flag after the field names it once; a one-word field before "must" is the flag too
    assert name_the_flag("area_budget_mm2 (--area-budget-mm2) must be positive", ["--area-budget-mm2", "-1"]) == \
        "--area-budget-mm2 must be positive"
    assert name_the_flag("epochs must be a positive integer", ["search", "--epochs", "0"]) == "--epochs must be a positive integer"
    assert name_the_flag("epochs of the retrain are 3", ["--epochs", "0"]) == "epochs of the retrain are 3"
    assert name_the_flag("learning_rate must be positive", ["retrain", "r", "--lr", "-1"]) == "--lr must be positive"
    result = cli("profile", "resnet18", "--input", "3x32x32", "--batch", "0")
    assert result.code == 1 and "error: --batch must be a positive integer" in result.err
