"""A retrain written with --out: commands that need its run name the run its retrain.json records, and `uboost export
DIR` exports DIR/model.pt on that run's network (RUN/retrain/model.pt is the only one `export RUN` reads)."""

import json
import shutil

import pytest

from tests.cli.conftest import one_line_error


@pytest.fixture
def retrained_elsewhere(cli, tiny_run, tmp_path, monkeypatch):
    """``uboost retrain run --out run-r88`` in ``tmp_path`` (the current directory), as a user types it."""
    shutil.copytree(tiny_run, tmp_path / "run")
    monkeypatch.chdir(tmp_path)
    assert cli("retrain", "run", "--out", "run-r88", "--epochs", "1", "--max-samples", "64", "--batch-size", "32").code == 0
    return tmp_path / "run-r88"


def test_the_hint_names_the_run_the_retrain_records(cli, retrained_elsewhere):
    for command in (("profile",), ("retrain", "--epochs", "1")):
        result = cli(*command, "run-r88")
        one_line_error(result, "run-r88 has no arch.json", "a retrain's output", "pass the run it was retrained from (run)")
        assert "(.)" not in result.err


def _outputs(path, x):
    import torch

    with torch.no_grad():
        return torch.jit.load(str(path))(x)


def test_export_of_a_retrain_directory_carries_its_weights(cli, retrained_elsewhere, tmp_path, monkeypatch):
    import torch

    from uboost.networks import load_frozen_network

    result = cli("export", "run-r88", "--format", "torchscript")
    assert result.code == 0, result.err
    assert "run-r88/model.torchscript.pt (retrained weights)" in result.out
    network = load_frozen_network(tmp_path / "run").module.eval()
    network.load_state_dict(torch.load(retrained_elsewhere / "model.pt", weights_only=True))
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = network(x)
    torch.testing.assert_close(_outputs(retrained_elsewhere / "model.torchscript.pt", x), expected)
    assert cli("export", "run", "--format", "torchscript").code == 0  # the run's own: no retrain of its own, untrained
    assert not torch.allclose(_outputs(tmp_path / "run" / "model.torchscript.pt", x), expected)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # retrain.json's "run" is relative to where the retrain ran
    result = cli("export", "../run-r88", "--format", "onnx")
    assert result.code == 0 and "(retrained weights)" in result.out, result.err
    one_line_error(cli("export", "../run-r88", "--out", "../run-r88/model.pt", "--force"), "holds the results of uboost retrain")


def test_a_json_file_without_its_run_is_not_exported_as_an_architecture(cli, tmp_path):
    """QA: `uboost export junk.json` copied any JSON object to export.json (a policy file moved out of its exits folder
    too); like --format onnx it now needs the run's config.json beside the file."""
    for name, data in (("junk.json", {"a": 1}), ("p03.json", {"thresholds": [0.5], "positions": ["pool"]})):
        path = tmp_path / name
        path.write_text(json.dumps(data))
        one_line_error(cli("export", path), "no config.json next to", "run directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.json", "p03.json"]


def test_exits_on_a_retrain_written_elsewhere_name_the_run(cli, retrained_elsewhere):
    """QA: `exits run-r88` said "give the search run, `uboost exits .`"; the run is `run`, whose own retrain exits use."""
    result = cli("exits", "run-r88")
    one_line_error(result, "run-r88 is a retrain of run written elsewhere", "`uboost retrain run`, then `uboost exits run`")
    assert "exits .`" not in result.err
