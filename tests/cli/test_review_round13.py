"""Settings that were accepted and silently did nothing, or said nothing (review of 2026-12-05)."""

import json

import pytest

from tests.cli.conftest import TINY, one_line_error


def test_a_fixed_voltage_with_auto_operating_points_is_refused(cli, tmp_path):
    """The search ran each point at its table's voltage and wrote 0.725 V into result.json."""
    out = tmp_path / "vv"
    one_line_error(cli("search", *TINY, "--operating-points", "rk3576-npu", "--operating-point", "auto",
                       "--voltage-v", "1.2", "--out", out), "give one or the other")
    assert not out.exists()


def test_a_search_priced_by_a_lookup_table_is_refused_before_anything_is_written(cli, tmp_path):
    out = tmp_path / "lk"
    one_line_error(cli("search", *TINY, "--cost-model", "lookup", "--out", out), "profile --cost-model lookup --table")
    assert not out.exists()


def test_profile_says_why_an_asked_for_area_is_missing(cli):
    result = cli("profile", "resnet18", "--input", "3x32x32", "--array", "16x16", "--tech", "recpipe12")
    assert result.code == 0, result.err
    assert "no area for 16x16" in " ".join(result.out.split()) and "sram" in result.out.lower()


def test_energy_columns_are_in_microjoules(cli):
    from uboost.hardware import HardwareSpec
    from uboost.hardware.registry import create
    from uboost.tables import layer_table
    import torch

    report = create("systolic", spec=HardwareSpec(rows=8, cols=8)).evaluate(torch.nn.Conv2d(3, 8, 3), (3, 8, 8))
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(layer_table("conv", (3, 8, 8), [report], detail=True))
    text = console.export_text()
    assert "µJ" in text and "uJ" not in text


def test_a_search_given_a_built_lookup_model_runs(tmp_path):
    """The refusal is for a config without its table; run_search(cost_model=...) with the table built runs."""
    from uboost.cli import main
    from uboost.hardware.registry import create
    from uboost.search import SearchConfig, run_search

    table = tmp_path / "t.csv"
    try:
        main(["hw", "tabulate", "lenet", "--image-size", "8", "--array", "16x16", "--cost-model", "systolic", "--out", str(table)])
    except SystemExit as exc:
        assert not exc.code
    config = SearchConfig(space="lenet", dataset="digits", image_size=8, epochs=1, max_samples=64, batch_size=32,
                          cost_model="lookup")
    result = run_search(config, tmp_path / "run", cost_model=create("lookup", table=table, spec=config.hardware_spec()))
    assert result.summary()["latency_ms"] > 0


def _folder(root, size, classes=2, count=12):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"c{c}").mkdir(parents=True, exist_ok=True)
        for i in range(count):
            Image.fromarray(rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)).save(root / f"c{c}" / f"{i}.png")
    return root


def test_retrain_on_data_of_another_shape_is_refused_before_anything_is_written(cli, tiny_run, tmp_path):
    """It trained a network export and profile could not describe (they rebuild the search's 1x8x8 space)."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    shutil.rmtree(run / "retrain", ignore_errors=True)
    folder = _folder(tmp_path / "four", (16, 16), classes=4)  # resized to the search's 8x8: 4 classes, not 10
    one_line_error(cli("retrain", run, "--dataset", f"folder:{folder}", "--epochs", "1"), "4 classes of", "10 classes")
    assert not (run / "retrain").exists()


def test_a_folder_dataset_is_stored_absolute_so_the_run_works_from_elsewhere(tmp_path, monkeypatch):
    from uboost.search import SearchConfig

    _folder(tmp_path / "imgs", (8, 8))
    monkeypatch.chdir(tmp_path)
    config = SearchConfig(space="lenet", dataset="folder:imgs", data_dir="cache")
    assert config.dataset == f"folder:{tmp_path / 'imgs'}" and config.data_dir == str(tmp_path / "cache")
    monkeypatch.chdir("/")
    assert SearchConfig.from_dict(config.to_dict()).dataset == config.dataset


@pytest.mark.parametrize("options, fragment", [("nodes = -1", "nodes must be a whole number"),
                                               ("nodes = 0", "nodes must be a whole number"),
                                               ("num_classes = 5", "comes from the dataset")])
def test_space_options_that_cannot_work_are_one_line_before_anything_is_written(cli, tmp_path, options, fragment):
    """nodes = -1 was a 90-line tensor traceback, nodes = 0 failed after the run directory was written, num_classes
    was stored and ignored."""
    (tmp_path / "c.toml").write_text(f"[space_options]\n{options}\n")
    space = "lenet" if "num_classes" in options else "darts-cifar"
    out = tmp_path / "run"
    one_line_error(cli("search", "--space", space, "--config", tmp_path / "c.toml", "--epochs", "1", "--out", out), fragment)
    assert not out.exists()


def test_a_space_with_no_choices_is_refused_before_the_run_directory_is_written(cli, tmp_path):
    first = tmp_path / "first"
    assert cli("search", "--space", "darts-cifar", "--dataset", "digits", "--image-size", "8", "--epochs", "1",
               "--max-samples", "64", "--out", first).code == 0
    out = tmp_path / "fixed"
    one_line_error(cli("search", "--space", "darts-cifar", "--dataset", "digits", "--image-size", "8", "--epochs", "1",
                       "--max-samples", "64", "--cell-arch", first, "--out", out), "no choices to search")
    assert not out.exists()
    # with several bitwidths the bits are the choices: architecture first, bits second (HAQ / EdMIPS style)
    assert cli("search", "--space", "darts-cifar", "--dataset", "digits", "--image-size", "8", "--epochs", "1",
               "--max-samples", "64", "--cell-arch", first, "--bits", "2,8", "--pe", "bitfusion", "--widen", "bits",
               "--out", out).code == 0
    cells = {k: v for k, v in json.loads((first / "arch.json").read_text()).items() if not k.startswith("width_")}
    assert json.loads((out / "config.json").read_text())["space_options"]["cell_arch"] == cells
    precision = json.loads((out / "precision.json").read_text())
    assert len(precision) > 10 and {p["weight_bits"] for p in precision.values()} <= {2, 8}
    one_line_error(cli("search", "--space", "darts-cifar", "--dataset", "digits", "--image-size", "8", "--epochs", "1",
                       "--max-samples", "64", "--cell-arch", first, "--bits", "8", "--out", tmp_path / "one"),
                   "no choices to search")  # one width is no choice
    one_line_error(cli("search", "--space", "darts-cifar", "--dataset", "digits", "--image-size", "8", "--epochs", "1",
                       "--max-samples", "64", "--cell-arch", first, "--bits", "2,8", "--pin-bits", "*=8",
                       "--out", tmp_path / "pinned"), "the pins fix every searched bitwidth")
    assert not (tmp_path / "pinned").exists()


def test_module_factory_is_found_in_the_current_directory_as_the_uboost_script_runs(tmp_path, monkeypatch):
    """The console script does not search the current directory (python -m does): mymods:mlp was "No module"."""
    import os
    import sys

    from uboost.networks import load_network

    (tmp_path / "uboost_test_mymods.py").write_text(
        "import torch.nn as nn\ndef mlp():\n    m = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))\n"
        "    m.input_shape = (1, 8, 8)\n    return m\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", os.getcwd(), str(tmp_path))])
    loaded = load_network("uboost_test_mymods:mlp")
    assert loaded.input_shape == (1, 8, 8)
    assert str(tmp_path) not in sys.path  # put back as it was
