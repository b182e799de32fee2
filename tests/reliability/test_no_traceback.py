"""Issue 13, the no-traceback list: bad input is one red line, exit 1, and leaves nothing behind."""

import pytest

from tests.reliability.conftest import TINY, one_line_error, tree


@pytest.mark.parametrize(
    "toml,fragments",
    [
        ("space_options = 5\n", ["space_options", "must be a table"]),
        ("search = 5\n", ["search in", "must be a table"]),
        ('[search]\nepochs = "x"\n', ["epochs"]),
    ],
)
@pytest.mark.parametrize("command", ["search", "tune"])
def test_wrong_toml_types(cli, tmp_path, toml, fragments, command):
    config = tmp_path / "bad.toml"
    config.write_text(toml)
    extra = ["--trials", "1"] if command == "tune" else []
    one_line_error(cli(command, "--config", config, "--out", tmp_path / "out", *extra), *fragments)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value", ["0", "-5"])
def test_max_samples_must_be_positive(cli, tiny_run, tmp_path, value):
    one_line_error(cli("search", *TINY[:-4], "--max-samples", value, "--out", tmp_path / "s"), "--max-samples")
    one_line_error(cli("retrain", tiny_run, "--max-samples", value, "--out", tmp_path / "r"), "--max-samples")
    assert not (tmp_path / "s").exists() and not (tmp_path / "r").exists()


def test_a_failed_command_leaves_no_folder_that_refuses_the_rerun(cli, tmp_path):
    out = tmp_path / "run"
    one_line_error(cli("search", *TINY, "--array", "abc", "--out", out), "ROWSxCOLS")
    one_line_error(cli("search", *TINY, "--dataset", "folder:/nonexistent", "--out", out))
    assert not out.exists()


def test_unwritable_outputs(cli, tiny_run, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_line_error(cli("search", *TINY, "--out", blocker / "run"), "cannot create output directory")
    one_line_error(cli("retrain", tiny_run, "--epochs", "1", "--out", blocker / "re"), "cannot create output directory")
    one_line_error(cli("profile", tiny_run, "--plot", tmp_path), "is a directory")
    one_line_error(cli("profile", tiny_run, "--plot", blocker / "u.png"), "cannot write")


def test_messages_with_brackets_are_printed_verbatim(cli, tmp_path):
    one_line_error(cli("search", "--out", tmp_path / "[run]", "--resume"), "[run]")


@pytest.mark.parametrize("command", ["search", "retrain"])
def test_zero_devices_is_refused_in_one_line_before_anything_is_written(cli, run_copy, tmp_path, command):
    if command == "search":
        result = cli("search", *TINY, "--devices", "0", "--out", tmp_path / "ddp")
        assert not (tmp_path / "ddp").exists()
    else:
        before = tree(run_copy)
        result = cli("retrain", run_copy, "--devices", "0", "--epochs", "1")
        assert tree(run_copy) == before
    one_line_error(result, "devices must be a positive integer", "0")
