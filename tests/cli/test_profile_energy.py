"""``uboost profile`` with energy: --energy, --voltage, --operating-points, --energy-plot, --json."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import one_line_error

NET = ["resnet18", "--input", "3x32x32", "--array", "16x16"]


def _strict(text: str) -> dict:
    def reject(constant):
        raise AssertionError(f"JSON holds {constant}")

    return json.loads(text, parse_constant=reject)


def test_profile_json_has_energy_per_layer_and_totals(cli):
    from torchvision.models import resnet18

    from uboost.hardware import LayerTable, create, extract_layers

    result = cli("profile", *NET, "--sram-kb", "32", "--json")
    assert result.code == 0, result.err
    report = _strict(result.out)["reports"][0]
    total, layers = report["total"], report["layers"]
    parts = total["energy_breakdown_uj"]
    assert set(parts) == {"mac", "sram", "dram", "leakage"} and all(v > 0 for v in parts.values())
    assert total["energy_uj"] == pytest.approx(sum(parts.values()))
    assert total["energy_uj"] == pytest.approx(sum(l["energy_uj"]["total"] for l in layers))
    assert total["power_mw"] == pytest.approx(total["energy_uj"] / total["latency_ms"])
    assert total["edp_uj_ms"] == pytest.approx(total["energy_uj"] * total["latency_ms"])
    assert report["hardware"]["energy"]["name"] == "horowitz45" and total["voltage_v"] == 0.9
    # the same numbers as the library's batched tensor expression
    model = create("systolic", rows=16, cols=16, sram_kb=32)
    table = LayerTable.from_shapes(extract_layers(resnet18(), (3, 32, 32)))
    assert total["energy_uj"] == pytest.approx(model.energy_pj(table).sum().item() * 1e-6, rel=1e-9)
    assert layers[0]["words"]["filter_dram_reads"] == 64 * 3 * 7 * 7


def test_profile_operating_points_mark_the_least_energy(cli):
    result = cli("profile", *NET, "--operating-points", "rk356x-gpu", "--json")
    assert result.code == 0, result.err
    data = _strict(result.out)
    (sweep,) = data["operating_points"]
    points = sweep["points"]
    assert [p["freq_hz"] for p in points] == [f * 1e8 for f in range(2, 9)]
    least = [p for p in points if p["least_energy"]]
    assert len(least) == 1 and least[0]["energy_uj"] == min(p["energy_uj"] for p in points)
    assert least[0]["freq_hz"] == 6e8  # the fastest point of the 825 mV floor
    latencies = [p["latency_ms"] for p in points]
    assert latencies == sorted(latencies, reverse=True)
    # without --clock-hz the main report runs at the fastest point
    assert data["reports"][0]["hardware"]["clock_hz"] == 8e8 and data["reports"][0]["total"]["voltage_v"] == 1.0
    text = cli("profile", *NET, "--operating-points", "rk356x-gpu")
    assert text.code == 0, text.err
    assert "least energy" in text.out and "EDP" in text.out and "µJ" in text.out


def test_profile_voltage_energy_file_and_plot(cli, tmp_path):
    low = _strict(cli("profile", *NET, "--voltage", "0.6", "--json").out)["reports"][0]["total"]["energy_uj"]
    high = _strict(cli("profile", *NET, "--voltage", "1.1", "--json").out)["reports"][0]["total"]["energy_uj"]
    assert low < high
    mine = tmp_path / "mine.toml"
    mine.write_text('base = "gemmini16"\ndram_pj_per_bit = 0.0\n')
    png = tmp_path / "energy.png"
    result = cli("profile", *NET, "--energy", mine, "--energy-plot", png, "--json")
    assert result.code == 0, result.err
    assert _strict(result.out)["reports"][0]["total"]["energy_breakdown_uj"]["dram"] == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_hardware_txt_carries_energy(tmp_path):
    from uboost.hardware import LayerShape, create
    from uboost.tables import write_layer_table

    layers = [LayerShape(name="conv", kind="conv", in_channels=3, out_channels=5, kernel_h=3, kernel_w=3, in_h=6, in_w=6, out_h=4, out_w=4)]
    report = create("systolic", rows=4, cols=4).evaluate(layers)
    write_layer_table(tmp_path / "hardware.txt", report, "tiny")
    text = (tmp_path / "hardware.txt").read_text()
    assert "DRAM" in text and "leak" in text and "energy" in text and "horowitz45 at 0.9 V" in text


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--energy", "tsmc3"], ["unknown energy preset 'tsmc3'", "horowitz45"]),
        (["--energy", "{missing}"], ["missing key(s)"]),
        (["--energy", "{negative}"], ["dram_pj_per_bit must be a finite number >= 0"]),
        (["--voltage", "-0.8"], ["--voltage must be a positive"]),
        (["--voltage", "nan"], ["--voltage must be a positive"]),
        (["--operating-points", "rk9999"], ["unknown operating-point preset 'rk9999'"]),
        (["--operating-points", "{unsorted}"], ["sorted by rising frequency"]),
        (["--operating-points", "{empty}"], ["at least one"]),
        (["--operating-points", "rk3576-npu", "--clock-hz", "2e9"], ["above the fastest operating point"]),
        (["--clock-hz", "0"], ["--clock-hz must be a positive"]),
        (["--energy-plot", "{nodir}/sub/e.png"], ["is not a folder"]),
    ],
)
def test_profile_bad_energy_input_is_one_line_and_writes_nothing(cli, tmp_path, args, fragments):
    files = {
        "missing": ("missing.toml", "v_ref = 0.9\n"),
        "negative": ("negative.toml", 'base = "horowitz45"\ndram_pj_per_bit = -2.0\n'),
        "unsorted": ("unsorted.toml", "points = [[8e8, 0.9], [4e8, 0.8]]\n"),
        "empty": ("empty.toml", "points = []\n"),
    }
    names = {key: str(tmp_path / name) for key, (name, _) in files.items()} | {"nodir": str(tmp_path / "missing.toml")}
    for name, text in files.values():
        (tmp_path / name).write_text(text)
    png = tmp_path / "out.png"
    argv = [a.format(**names) for a in args]
    if "--energy-plot" not in argv:
        argv += ["--energy-plot", str(png)]
    one_line_error(cli("profile", *NET, *argv), *fragments)
    assert not png.exists() and sorted(p.name for p in tmp_path.iterdir()) == sorted(name for name, _ in files.values())


def test_run_directory_carries_energy(tiny_run):
    """hardware.json of a search run (hardware.txt: test_hardware_txt_carries_energy; run_search writes it)."""
    hardware = _strict((tiny_run / "hardware.json").read_text())
    assert hardware["total"]["energy_uj"] > 0 and hardware["total"]["power_mw"] > 0
    assert all(set(l["energy_uj"]) == {"mac", "sram", "dram", "leakage", "total"} for l in hardware["layers"])


def test_profile_plots_into_new_nested_folders(cli, tmp_path):
    """Missing parent folders of --plot / --energy-plot are created (as export --out does); nothing is
    written when the run fails."""
    png = tmp_path / "a" / "b" / "util.png"
    energy = tmp_path / "c" / "energy.png"
    result = cli("profile", *NET, "--plot", png, "--energy-plot", energy)
    assert result.code == 0, result.err
    assert png.read_bytes()[:4] == b"\x89PNG" and energy.read_bytes()[:4] == b"\x89PNG"
    bad = cli("profile", *NET, "--array", "0x16", "--plot", tmp_path / "d" / "e.png")
    assert bad.code == 1 and not (tmp_path / "d").exists()
    one_line_error(cli("profile", *NET, "--plot", tmp_path / "same.png", "--energy-plot", tmp_path / "x" / ".." / "same.png"),
                   "give each its own file")
    assert not (tmp_path / "same.png").exists()


def test_both_commands_take_both_voltage_spellings(cli):
    for flag in ("--voltage", "--voltage-v"):
        report = json.loads(cli("profile", *NET, flag, "0.8", "--json").out)["reports"][0]
        assert report["total"]["voltage_v"] == 0.8
    from uboost.cli import app  # search's --voltage-v also answers to --voltage
    import typer.main

    params = {n for p in typer.main.get_command(app).commands["search"].params for n in p.opts}
    assert {"--voltage", "--voltage-v"} <= params


def test_hardware_txt_shows_long_layer_names_and_whole_shapes(tmp_path):
    """A fixed 140-column table shrank the shape column of darts-cifar's long layer names to "sha…" / "3x8…"."""
    from uboost.hardware import LayerShape, create
    from uboost.tables import write_layer_table

    name = "cells.2.nodes.1.ops.0.sep_conv_5x5.conv.depthwise"
    layers = [LayerShape(name=name, kind="conv", in_channels=24, out_channels=24, kernel_h=5, kernel_w=5, in_h=8,
                         in_w=8, out_h=8, out_w=8, groups=24)]
    report = create("systolic", rows=16, cols=16).evaluate(layers)
    write_layer_table(tmp_path / "hardware.txt", report, "darts")
    text = (tmp_path / "hardware.txt").read_text()
    assert name in text and "…" not in text and "shape" in text
