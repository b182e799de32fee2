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
    for value, fragments in ((999, ["does not fit the search space", "999"]), ("8", ["'8' is text"])):
        arch = {**json.loads((tiny_run / "arch.json").read_text()), "conv1_width": value}
        (run / "arch.json").write_text(json.dumps(arch))
        result = cli("profile", run / "arch.json", "--json")
        one_line_error(result, *fragments)
        assert result.out == ""  # NNI's own log line of the failure is not printed (it broke --json output)


def test_export_onnx_is_a_valid_model(cli, tiny_run, tmp_path):
    onnx = pytest.importorskip("onnx")  # in the dev extra; CI installs it
    target = tmp_path / "m.onnx"
    assert cli("export", tiny_run, "--format", "onnx", "--out", target).code == 0
    model = onnx.load(str(target))
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == ["input"]


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_exported_network_matches_pytorch_at_batch_1_and_4(cli, tiny_run, tmp_path, fmt):
    """The export takes any batch size and computes what the PyTorch network computes."""
    import shutil

    import numpy as np
    import torch

    from uboost.networks import load_frozen_network

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    network = load_frozen_network(run).module.eval()
    (run / "retrain").mkdir(exist_ok=True)
    torch.save(network.state_dict(), run / "retrain" / "model.pt")  # the weights the export must carry
    target = tmp_path / f"m.{fmt}"
    assert cli("export", run, "--format", fmt, "--out", target).code == 0
    if fmt == "onnx":
        pytest.importorskip("onnx")
        ort = pytest.importorskip("onnxruntime")  # in the dev extra
        session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])

        def exported(x):
            return torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
    else:
        exported = torch.jit.load(str(target))
    generator = torch.Generator().manual_seed(0)
    for batch in (1, 4):
        x = torch.randn(batch, 1, 8, 8, generator=generator)
        with torch.no_grad():
            expected, got = network(x), exported(x)
        assert tuple(got.shape) == (batch, 10)
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-4, atol=1e-5)


def test_onnx_export_without_the_onnx_package_is_one_red_line(cli, tiny_run, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` fails, as where it is not installed
    target = tmp_path / "m.onnx"
    one_line_error(cli("export", tiny_run, "--format", "onnx", "--out", target), "needs the onnx package", "pip install onnx")
    assert not target.exists()
