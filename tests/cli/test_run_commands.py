import json

import pytest
import torch

from tests.cli.conftest import one_line_error


def test_export_json_and_torchscript(cli, tiny_run, tmp_path):
    assert cli("export", tiny_run, "--out", tmp_path / "a.json").code == 0
    assert json.loads((tmp_path / "a.json").read_text()) == json.loads((tiny_run / "arch.json").read_text())
    assert cli("export", tiny_run, "--format", "torchscript", "--out", tmp_path / "m.pt").code == 0
    scripted = torch.jit.load(str(tmp_path / "m.pt"))
    assert scripted(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    one_line_error(cli("export", tiny_run, "--format", "tflite"), "unknown format")


def test_retrain_reports_accuracy_and_hardware(cli, tiny_run, tmp_path):
    out = tmp_path / "re"
    result = cli("retrain", tiny_run, "--epochs", "1", "--max-samples", "128", "--out", out, "--array", "16x16")
    assert result.code == 0, result.err
    report = json.loads((out / "retrain.json").read_text())
    assert 0.0 <= report["test_acc"] <= 1.0 and report["cycles"] > 0 and report["array"] == "16x16"
    state = torch.load(out / "model.pt", weights_only=True)
    from uboost.search_spaces import create
    net = create("lenet", input_shape=(1, 8, 8)).freeze(json.loads((tiny_run / "arch.json").read_text()))
    net.load_state_dict(state)
    assert "test accuracy" in result.out


def test_profile_accepts_a_run_directory_and_arch_json(cli, tiny_run):
    for target in (tiny_run, tiny_run / "arch.json"):
        result = cli("profile", target, "--array", "8x8", "--json")
        assert result.code == 0, result.err
        data = json.loads(result.out)
        assert data["input_shape"] == [1, 8, 8] and len(data["reports"][0]["layers"]) == 4


def test_malformed_and_mismatched_arch(cli, tiny_run, tmp_path):
    run = tmp_path / "copy"
    run.mkdir()
    (run / "config.json").write_text((tiny_run / "config.json").read_text())
    (run / "arch.json").write_text("{not json")
    one_line_error(cli("retrain", run, "--epochs", "1"), "not valid JSON")
    (run / "arch.json").write_text(json.dumps({"conv1_width": 4}))
    one_line_error(cli("retrain", run, "--epochs", "1"), "does not match the search space", "missing")
    one_line_error(cli("export", tmp_path / "nowhere"), "expected a run directory or an arch.json")


def test_export_onnx_is_a_valid_model(cli, tiny_run, tmp_path):
    onnx = pytest.importorskip("onnx")  # in the dev extra; CI installs it
    target = tmp_path / "m.onnx"
    assert cli("export", tiny_run, "--format", "onnx", "--out", target).code == 0
    model = onnx.load(str(target))
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == ["input"]
