"""Issue 13, item 12 and the export cases of the no-traceback list."""

import json

from tests.reliability.conftest import one_line_error


def test_export_does_not_overwrite_a_file_without_force(cli, run_copy, tmp_path):
    target = tmp_path / "arch.json"
    target.write_text("my file")
    one_line_error(cli("export", run_copy, "--out", target), "already exists", "--force")
    assert target.read_text() == "my file"
    one_line_error(cli("export", run_copy, "--format", "torchscript", "--out", target), "already exists")
    assert target.read_text() == "my file"
    # --force replaces an earlier export, never a file uboost did not write (QA: a user's notes became ONNX bytes)
    for fmt in ("json", "onnx", "torchscript"):
        one_line_error(cli("export", run_copy, "--format", fmt, "--out", target, "--force"), "not an earlier export")
        assert target.read_text() == "my file"
    target.write_text(json.dumps({"conv1": 1}))  # JSON, but not this network's choices
    one_line_error(cli("export", run_copy, "--out", target, "--force"), "not an earlier export")
    target.unlink()
    assert cli("export", run_copy, "--format", "torchscript", "--out", target).code == 0
    for fmt in ("json", "torchscript", "json"):  # an earlier export of any format may be replaced
        assert cli("export", run_copy, "--format", fmt, "--out", target, "--force").code == 0
    assert json.loads(target.read_text()) == json.loads((run_copy / "arch.json").read_text())


def test_export_force_inside_a_run_keeps_a_users_file(cli, run_copy):
    """QA follow-up: inside a run, `--force` overwrote any file its manifest does not list."""
    mine = run_copy / "notes.txt"
    mine.write_text("user file")
    one_line_error(cli("export", run_copy, "--out", mine, "--force"), "not an earlier export")
    assert mine.read_text() == "user file"


def test_export_replaces_its_own_output_in_the_run_directory(cli, run_copy):
    assert cli("export", run_copy).code == 0
    assert cli("export", run_copy).code == 0  # export.json is uboost's own: no --force needed
    (run_copy / "model.torchscript.pt").write_text("user file")
    one_line_error(cli("export", run_copy, "--format", "torchscript"), "already exists")
    assert (run_copy / "model.torchscript.pt").read_text() == "user file"


def test_export_to_a_directory_is_one_line(cli, run_copy, tmp_path):
    one_line_error(cli("export", run_copy, "--out", tmp_path), "is a directory")


def test_export_to_a_read_only_place_is_one_line(cli, run_copy, tmp_path):
    import os

    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root ignores permissions: use a path under a file instead
            target = run_copy / "arch.json" / "x.json"
        else:
            target = locked / "x.json"
        one_line_error(cli("export", run_copy, "--out", target), "cannot write")
    finally:
        locked.chmod(0o700)


def test_export_refuses_to_overwrite_with_a_relative_run_path(cli, run_copy, monkeypatch):
    monkeypatch.chdir(run_copy.parent)  # "run/model.onnx" was read as run/run/model.onnx: missing, so "safe"
    (run_copy / "model.onnx").write_text("my notes")
    config = (run_copy / "config.json").read_text()
    one_line_error(cli("export", "run", "--format", "onnx"), "already exists", "--force")
    one_line_error(cli("export", "run", "--format", "onnx", "--out", "run/config.json"), "holds the results of uboost search")
    assert (run_copy / "model.onnx").read_text() == "my notes" and (run_copy / "config.json").read_text() == config
    assert cli("export", "run", "--format", "json").code == 0  # its own export.json: replaced without --force
    assert cli("export", "run", "--format", "json").code == 0
