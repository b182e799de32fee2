import csv
import json

import pytest

from tests.cli.conftest import one_line_error


def test_profile_table_compares_arrays(cli):
    result = cli("profile", "resnet18", "--array", "128x128", "--array", "32x64")
    assert result.code == 0, result.err
    assert "layer4.1.conv2" in result.out and "cycles" in result.out
    assert "128x128 ws: 441,581 cycles" in result.out  # hand-checked total, see tests/hardware


def test_profile_json_and_plot(cli, tmp_path):
    png = tmp_path / "util.png"
    result = cli("profile", "mobilenet_v2", "--array", "16x16", "--dataflow", "os", "--batch", "2", "--json", "--plot", png)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    report = data["reports"][0]
    assert report["hardware"]["dataflow"] == "os" and report["hardware"]["batch_size"] == 2
    assert len(report["layers"]) == 53 and report["total"]["utilization"] <= 1
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_profile_module_factory_and_input(cli):
    result = cli("profile", "torchvision.models:resnet18", "--input", "3x64x64", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["input_shape"] == [3, 64, 64]


def test_profile_with_lookup_table(cli, tmp_path):
    # tabulate the exact model for resnet18's layers, then price resnet18 from the table
    from uboost.hardware import HardwareSpec, LookupTable, extract_layers
    import torchvision

    layers = extract_layers(torchvision.models.resnet18(), (3, 224, 224))
    lut = LookupTable.example(HardwareSpec(rows=32, cols=32), layers)
    path = tmp_path / "lut.csv"
    rows = [{**l.layer.to_dict(), "cycles": l.cycles} for l in lut.evaluate(layers).layers]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    exact = json.loads(cli("profile", "resnet18", "--array", "32x32", "--json").out)
    looked = json.loads(cli("profile", "resnet18", "--array", "32x32", "--json", "--cost-model", "lookup", "--table", path).out)
    assert looked["reports"][0]["total"]["cycles"] == exact["reports"][0]["total"]["cycles"]


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["resnet18", "--array", "0x8"], ["array dimensions must be positive"]),
        (["resnet18", "--array", "12"], ["ROWSxCOLS"]),
        (["resnet1"], ["unknown model 'resnet1'", "resnet18"]),
        (["resnet18", "--dataflow", "rs"], ["unknown dataflow 'rs'", "ws, os, is"]),
        (["resnet18", "--cost-model", "nope"], ["unknown cost model 'nope'"]),
        (["resnet18", "--cost-model", "lookup", "--table", "/nonexistent.csv"], ["cannot read lookup table"]),
        (["resnet18", "--input", "3xAx4"], ["input shape"]),
        (["resnet18", "--table", "t.csv"], ["--table is the cycle table of --cost-model lookup", "'systolic'"]),
        (["nomodule:factory"], ["cannot load"]),
        (["/no/such/arch.json"], ["not found"]),
    ],
)
def test_profile_bad_input(cli, args, fragments):
    one_line_error(cli("profile", *args), *fragments)


def test_tabulate_with_the_lookup_model_says_it_cannot(cli, tmp_path):
    """QA: it asked for a --table that tabulate does not have (then click refused the option)."""
    one_line_error(cli("hw", "tabulate", "lenet", "--cost-model", "lookup", "--out", tmp_path / "t.csv"),
                   "only reads one", "scalesim")
    assert not (tmp_path / "t.csv").exists()


def test_hw_list(cli):
    result = cli("hw", "list")
    assert result.code == 0
    for name in ("systolic", "systolic-paper", "flops", "roofline", "lookup"):
        assert name in result.out


def test_a_tabulated_space_prices_its_own_search_through_lookup(cli, tiny_run, tmp_path):
    """`hw tabulate --out` writes what the lookup model reads (lenet's two Linear layers share a key: the
    grid is completed), and lookup on it prices the searched network as the tabulated model does."""
    table = tmp_path / "tab.csv"
    result = cli("hw", "tabulate", "lenet", "--array", "16x16", "--cost-model", "systolic", "--image-size", "8", "--out", table)
    assert result.code == 0 and "complete the channel grids" in result.out, result.err
    looked = json.loads(cli("profile", tiny_run, "--array", "16x16", "--cost-model", "lookup", "--table", table, "--json").out)
    plain = json.loads(cli("profile", tiny_run, "--array", "16x16", "--cost-model", "systolic", "--json").out)
    assert looked["reports"][0]["total"]["cycles"] == plain["reports"][0]["total"]["cycles"] > 0


def test_a_table_tabulated_with_memory_limits_prices_only_those_limits(cli, tiny_run, tmp_path):
    """Its cycles hold the stalls of that memory system: they were applied at any SRAM and bandwidth (3.5x off
    at 64 kB / 100 words/cycle) with a note saying the limits changed nothing, and cut to whole cycles."""
    table = tmp_path / "mem.csv"
    args = ["--cost-model", "systolic-mem", "--sram-kb", "1", "--dram-bw-words", "1"]
    assert cli("hw", "tabulate", "lenet", "--array", "16x16", "--image-size", "8", *args, "--out", table).code == 0
    looked = cli("profile", tiny_run, "--array", "16x16", "--cost-model", "lookup", "--table", table, "--sram-kb", "1",
                 "--dram-bw-words", "1", "--json")
    exact = json.loads(cli("profile", tiny_run, "--array", "16x16", *args, "--json").out)["reports"][0]["total"]["cycles"]
    report = json.loads(looked.out)
    assert report["reports"][0]["total"]["cycles"] == pytest.approx(exact, rel=1e-9) and "notes" not in report
    one_line_error(cli("profile", tiny_run, "--array", "16x16", "--cost-model", "lookup", "--table", table, "--sram-kb", "64",
                       "--dram-bw-words", "100"), "no rows", "1 kB SRAM and 1 words/cycle")
    # a bandwidth of many digits is written as it reads back (it was cut to 6 digits and then refused itself)
    odd = ["--cost-model", "systolic-mem", "--sram-kb", "2", "--dram-bw-words", "1.2345678"]
    assert cli("hw", "tabulate", "lenet", "--array", "16x16", "--image-size", "8", *odd, "--out", tmp_path / "odd.csv").code == 0
    again = cli("profile", tiny_run, "--array", "16x16", "--cost-model", "lookup", "--table", tmp_path / "odd.csv",
                "--sram-kb", "2", "--dram-bw-words", "1.2345678", "--json")
    assert again.code == 0, again.err


def test_grid_gaps_fill_a_shared_key_and_nothing_else():
    from uboost.hardware import LayerShape
    from uboost.hardware.lookup import grid_gaps

    fc1 = [LayerShape(name="fc1", kind="linear", in_channels=64, out_channels=c) for c in (16, 32)]
    fc2 = [LayerShape(name="fc2", kind="linear", in_channels=c, out_channels=10) for c in (16, 32)]
    gaps = {(g.in_channels, g.out_channels) for g in grid_gaps(fc1 + fc2)}
    assert gaps == {(64, 10), (16, 16), (16, 32), (32, 16), (32, 32)}
    assert grid_gaps(fc1) == []


@pytest.mark.parametrize("option", ["--plot", "--energy-plot"])
def test_a_plot_without_matplotlib_is_refused_before_anything_is_printed(cli, tmp_path, monkeypatch, option):
    """It printed every result (5.9 kB of JSON) and then failed."""
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails, as where it is not installed
    result = cli("profile", "resnet18", "--array", "16x16", "--json", option, tmp_path / "p.png")
    one_line_error(result, "pip install 'uboost[plot]'")
    assert result.out == "" and not (tmp_path / "p.png").exists()


def test_a_plot_is_a_png_by_name(cli, tmp_path):
    """QA: `--plot x.txt` wrote PNG bytes into x.txt, and a folder's hint named a file without .png."""
    one_line_error(cli("profile", "resnet18", "--input", "3x32x32", "--plot", tmp_path / "x.txt"), "must end in .png")
    assert not (tmp_path / "x.txt").exists()
    one_line_error(cli("profile", "resnet18", "--input", "3x32x32", "--energy-plot", tmp_path), "is a directory",
                   f"e.g. {tmp_path / 'out.png'}")


def test_profile_prices_multihead_attention(cli):
    """Before: 1 layer, 640 MACs (the attention's F.linear calls were not seen)."""
    result = cli("profile", "tests.hardware.test_attention:make", "--array", "16x16", "--json")
    assert result.code == 0, result.err
    rows = json.loads(result.out)["reports"][0]["layers"]
    assert [r["name"] for r in rows] == ["att.in_proj", "att.scores", "att.context", "att.out_proj", "fc"]
    assert sum(r["macs"] for r in rows) == 196_608 + 65_536 + 2 * 16_384 + 640
    text = cli("profile", "tests.hardware.test_attention:make", "--array", "16x16")
    assert text.code == 0 and "64->64 g4 x16" in text.out and "5 layers" in text.out


@pytest.mark.parametrize("option", ["--plot", "--energy-plot"])
def test_a_plot_never_replaces_another_commands_file_even_with_force(cli, tiny_run, tmp_path, option):
    """`--plot RUN/arch.json --force` turned the search's architecture into a PNG (retrain then failed to read it)."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    before = (run / "arch.json").read_bytes()
    one_line_error(cli("profile", run, option, run / "arch.json", "--force"), "holds the results of uboost search")
    assert (run / "arch.json").read_bytes() == before
    assert cli("profile", run, option, run / "mine.png").code == 0  # a new file beside the run's own is fine


def test_a_torchvision_model_is_profiled_at_its_own_input_size(cli):
    """QA: every torchvision model was priced at 3x224x224, though the help says "the model's own": inception_v3 at
    299 or efficientnet_b1 at 240 had about half or two thirds of its MACs."""
    import json

    own = json.loads(cli("profile", "efficientnet_b1", "--json").out)
    assert own["input_shape"] == [3, 240, 240]  # its weights' evaluation crop
    at_224 = json.loads(cli("profile", "efficientnet_b1", "--input", "3x224x224", "--json").out)
    macs = lambda d: sum(layer["macs"] for layer in d["reports"][0]["layers"])  # noqa: E731
    assert macs(own) > 1.1 * macs(at_224)
    assert json.loads(cli("profile", "resnet18", "--json").out)["input_shape"] == [3, 224, 224]
