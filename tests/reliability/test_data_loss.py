"""Issue 27, data loss: a command never writes over another command's results, a resume never
restores another network, and a checkpoint that got further is never replaced by a failed resume."""

import json
import shutil

from tests.reliability.conftest import one_line_error, tree

RETRAIN = ["--epochs", "1", "--max-samples", "64", "--batch-size", "32"]


def test_retrain_into_the_search_run_itself_is_refused_and_loses_nothing(cli, run_copy):
    before = tree(run_copy)
    one_line_error(cli("retrain", run_copy, *RETRAIN, "--out", run_copy), "uboost search", "another command")
    assert tree(run_copy) == before


def test_retrain_into_another_run_is_refused_and_loses_nothing(cli, run_copy, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(run_copy, other)
    before = tree(other)
    one_line_error(cli("retrain", run_copy, *RETRAIN, "--out", other), "uboost search")
    assert tree(other) == before


def test_retrain_into_its_own_earlier_output_replaces_it_only_with_force(cli, run_copy, tmp_path):
    out = tmp_path / "retrained"
    assert cli("retrain", run_copy, *RETRAIN, "--out", out).code == 0
    before = tree(out)
    one_line_error(cli("retrain", run_copy, *RETRAIN, "--seed", "1", "--out", out), "finished retrain", "--force")
    assert tree(out) == before  # hours of training are not replaced by a repeated command
    assert cli("retrain", run_copy, *RETRAIN, "--seed", "1", "--out", out, "--force").code == 0
    assert tree(out) != before


def test_a_fresh_retrain_over_an_interrupted_one_needs_resume_or_force(cli, run_copy, tmp_path):
    out = tmp_path / "retrained"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "interrupted.ckpt").write_bytes(b"epoch 3 of 10")
    one_line_error(cli("retrain", run_copy, *RETRAIN, "--out", out), "interrupted retrain", "--resume", "--force")
    assert (out / "checkpoints" / "interrupted.ckpt").read_bytes() == b"epoch 3 of 10"


def test_retrain_over_a_legacy_manifest_is_still_refused(cli, run_copy):
    """A run written before owners were recorded: its own files are the search's."""
    manifest = run_copy / ".uboost-manifest.json"
    data = json.loads(manifest.read_text())
    data.pop("owners")
    manifest.write_text(json.dumps(data))
    before = tree(run_copy)
    one_line_error(cli("retrain", run_copy, *RETRAIN, "--out", run_copy), "uboost search")
    assert tree(run_copy) == before


def test_export_over_the_search_hardware_report_is_refused(cli, run_copy):
    before = tree(run_copy)
    one_line_error(cli("export", run_copy, "--out", run_copy / "hardware.json"), "holds the results of uboost search")
    assert tree(run_copy) == before


def _retrained_checkpoint(cli, run):
    assert cli("retrain", run, "--epochs", "2", "--max-samples", "64", "--batch-size", "32").code == 0
    (run / "retrain" / "retrain.json").unlink()  # as a retrain stopped before its result: one a --resume continues
    return run / "retrain" / "checkpoints" / "last.ckpt"


def _other_architecture(run):
    arch = json.loads((run / "arch.json").read_text())
    widths = [4, 8, 16, 24, 32]
    arch["conv1_width"] = next(w for w in widths if w != arch["conv1_width"])
    (run / "arch.json").write_text(json.dumps(arch))


def test_resume_with_another_networks_checkpoint_is_refused_before_anything_is_written(cli, run_copy):
    _retrained_checkpoint(cli, run_copy)
    _other_architecture(run_copy)
    before = tree(run_copy)
    one_line_error(cli("retrain", run_copy, "--epochs", "2", "--max-samples", "64", "--batch-size", "32", "--resume"),
                   "another architecture")
    assert tree(run_copy) == before  # no epoch-0 checkpoint appeared


def test_resume_with_a_checkpoint_without_an_architecture_compares_tensors(cli, run_copy):
    """Checkpoints from before the architecture was stored are checked by their tensors."""
    import torch

    ckpt = _retrained_checkpoint(cli, run_copy)
    state = torch.load(ckpt, weights_only=True)
    del state["uboost_retrain_arch"]
    torch.save(state, ckpt)
    _other_architecture(run_copy)
    before = tree(run_copy)
    one_line_error(cli("retrain", run_copy, "--epochs", "2", "--max-samples", "64", "--batch-size", "32", "--resume"),
                   "tensors differ")
    assert tree(run_copy) == before


def test_resume_picks_the_checkpoint_that_got_furthest_not_the_newest(run_copy, cli):
    """A stray epoch-0 `interrupted.ckpt` written after ten epochs must not be resumed from."""
    import os

    import torch

    from uboost.runs import latest_checkpoint

    ckpt = _retrained_checkpoint(cli, run_copy)
    state = torch.load(ckpt, weights_only=True)
    early = {**state, "global_step": 0, "epoch": 0}
    stray = ckpt.with_name("interrupted.ckpt")
    torch.save(early, stray)
    os.utime(stray, (ckpt.stat().st_mtime + 60,) * 2)
    assert latest_checkpoint(run_copy / "retrain") == ckpt
    stray.write_bytes(b"torn")  # an unreadable one never wins either
    assert latest_checkpoint(run_copy / "retrain") == ckpt
    stray.unlink()
    temp = ckpt.with_name(".last.ckpt.8iv96y6e.ckpt")  # the atomic writer's temporary, left by a kill mid-write
    torch.save({**state, "global_step": state["global_step"] + 100}, temp)  # even one that would look further on
    assert latest_checkpoint(run_copy / "retrain") == ckpt


def test_a_damaged_retrain_summary_is_named_not_a_moved_run(cli, run_copy, tmp_path):
    """QA: a truncated retrain.json read as "a retrain of a run it does not name, which is not there now"."""
    out = tmp_path / "retrained"
    assert cli("retrain", run_copy, "--epochs", "1", "--max-samples", "64", "--out", out).code == 0
    info = out / "retrain.json"
    info.write_text(info.read_text()[:30])
    one_line_error(cli("export", out, "--format", "json", "--out", tmp_path / "a.json"), "retrain.json is not valid JSON")
    profiled = cli("profile", out)
    one_line_error(profiled, "retrain's output")
    assert "(None)" not in profiled.err
    assert not (tmp_path / "a.json").exists()
