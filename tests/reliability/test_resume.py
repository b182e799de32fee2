"""Issue 13, items 7 and 9: --resume never silently changes or loses a run."""

import json

from tests.reliability.conftest import TINY, one_line_error, tree


def test_resume_finishes_a_run_killed_after_its_last_checkpoint(cli, run_copy):
    arch = json.loads((run_copy / "arch.json").read_text())
    val_acc = json.loads((run_copy / "result.json").read_text())["val_acc"]
    for name in ("arch.json", "result.json", "hardware.json", "hardware.txt"):
        (run_copy / name).unlink(missing_ok=True)  # a kill after the last epoch's checkpoint, before the results
    result = cli("search", "--out", run_copy, "--resume")
    assert result.code == 0, result.err
    assert json.loads((run_copy / "arch.json").read_text()) == arch
    assert json.loads((run_copy / "result.json").read_text())["val_acc"] == val_acc
    assert (run_copy / "hardware.txt").is_file()


def test_resume_refuses_changed_settings_in_one_line(cli, run_copy):
    before = tree(run_copy)
    one_line_error(cli("search", "--out", run_copy, "--resume", "--epochs", "3", "--array", "8x8"),
                   "epochs 1 -> 3", "array '16x16' -> '8x8'", "--force")
    one_line_error(cli("search", "--out", run_copy, "--resume", "--space", "darts-cifar", "--width", "4"), "space 'lenet'")
    assert tree(run_copy) == before
    # repeating the stored values is fine
    result = cli("search", "--out", run_copy, "--resume", "--epochs", "1", "--space", "lenet")
    assert "differ" not in result.err


def test_resume_with_a_checkpoint_of_another_space_is_one_line_and_keeps_the_run(cli, run_copy, tmp_path):
    other = tmp_path / "other"
    assert cli("search", "--space", "darts-cifar", "--width", "4", "--cells", "3", "--dataset", "digits", "--image-size", "8",
               "--epochs", "1", "--max-samples", "64", "--batch-size", "32", "--out", other).code == 0
    for name in ("arch.json", "result.json"):
        (run_copy / name).unlink()  # an unfinished lenet run ...
    for ckpt in (run_copy / "checkpoints").glob("*.ckpt"):
        ckpt.write_bytes((other / "checkpoints" / "last.ckpt").read_bytes())  # ... whose checkpoint came from darts-cifar
    before = tree(run_copy)
    one_line_error(cli("search", "--out", run_copy, "--resume"), "does not belong to this run's lenet supernet", "--force")
    assert tree(run_copy) == before  # no exception checkpoint, nothing else written
