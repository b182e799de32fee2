"""`--force` on an export never replaces or clears another command's results: a search run, a retrain's output, a
tune study folder (as `retrain --out` and `frontier --out` refuse them); an earlier export of the same kind goes."""

import json
import shutil

import pytest

from tests.reliability.conftest import one_line_error, tree
from tests.reliability.test_force import _study

REFUSED = "holds the results of uboost"


@pytest.fixture
def other_run(run_copy, tmp_path):
    """A second finished search, the one the exports must not touch."""
    target = tmp_path / "other"
    shutil.copytree(run_copy, target)
    return target


def _budget(run):
    return str(json.loads((run / "result.json").read_text())["latency_ms"])  # the search's own network fits it


@pytest.mark.parametrize("name", ["config.json", "arch.json", "alphas.json", "checkpoints/last.ckpt"])
def test_a_file_export_never_replaces_a_search_runs_own_file(cli, run_copy, other_run, name):
    for run, where in ((run_copy, run_copy), (run_copy, other_run)):  # its own run, and another one
        before = tree(where)
        for force in ((), ("--force",)):
            one_line_error(cli("export", run, "--out", where / name, *force), f"{name} holds the results of uboost search",
                           "choose another output")
        assert tree(where) == before
    assert cli("export", run_copy, "--out", run_copy / "export.json", "--force").code == 0  # its own export: replaced


def test_a_budget_export_never_clears_another_search_or_a_retrain(cli, run_copy, other_run, tmp_path):
    budget = _budget(run_copy)
    before = tree(other_run)
    one_line_error(cli("export", run_copy, "--target-latency-ms", budget, "--out", other_run, "--force"),
                   "config.json (and", "holds the results of uboost search")
    one_line_error(cli("export", run_copy, "--target-latency-ms", budget, "--out", other_run / "checkpoints", "--force"),
                   "last.ckpt holds the results of uboost search")
    assert tree(other_run) == before
    retrained = tmp_path / "retrained"
    assert cli("retrain", run_copy, "--out", retrained, "--epochs", "1", "--max-samples", "64").code == 0
    before = tree(retrained)
    one_line_error(cli("export", run_copy, "--target-latency-ms", budget, "--out", retrained, "--force"),
                   "holds the results of uboost retrain")
    one_line_error(cli("frontier", run_copy, "--points", "2", "--out", retrained, "--force"), "holds the results of uboost retrain")
    assert tree(retrained) == before


def test_a_budget_export_replaces_an_earlier_one_with_force(cli, run_copy, tmp_path):
    budget, out = _budget(run_copy), tmp_path / "budget"
    assert cli("export", run_copy, "--target-latency-ms", budget, "--out", out).code == 0
    assert cli("export", out, "--format", "onnx").code == 0  # made from the network it replaces: goes with it
    one_line_error(cli("export", run_copy, "--out", out / "config.json", "--force"), "holds the results of uboost export")
    manifest = out / ".uboost-manifest.json"  # written before budget exports had an owner of their own
    data = json.loads(manifest.read_text())
    data["owners"] = {k: "search" for k in data["owners"] if k != "model.onnx"}
    manifest.write_text(json.dumps(data))
    assert cli("export", run_copy, "--target-latency-ms", budget, "--out", out, "--force").code == 0
    assert (out / "arch.json").is_file() and not (out / "model.onnx").exists()


def test_tune_export_never_clears_a_search_run_or_the_study(cli, run_copy, other_run, tmp_path):
    study_dir = tmp_path / "study"
    _study(study_dir)
    before = tree(other_run)
    for target in (other_run, study_dir):
        one_line_error(cli("tune", "--export", "0", "--out", study_dir, "--export-to", target, "--force"), REFUSED)
    assert tree(other_run) == before
    budget = tmp_path / "budget"
    assert cli("export", run_copy, "--target-latency-ms", _budget(run_copy), "--out", budget).code == 0
    one_line_error(cli("tune", "--export", "0", "--out", study_dir, "--export-to", budget, "--force"),
                   "holds the results of uboost export --target-latency-ms")
    assert cli("tune", "--export", "0", "--out", study_dir).code == 0
    assert cli("tune", "--export", "0", "--out", study_dir, "--force").code == 0  # its own earlier export: replaced
    one_line_error(cli("export", run_copy, "--target-latency-ms", _budget(run_copy), "--out", study_dir / "export-0",
                       "--force"), "holds the results of uboost tune --export")
    one_line_error(cli("export", run_copy, "--out", study_dir / "study.journal", "--force"), "holds the results of uboost tune")


def test_a_tune_export_s_retrain_is_its_own_and_goes_with_it(cli, run_copy, tmp_path):
    """The export's copied trial retrain is part of the export: `retrain EXPORT --force` replaces it, and before any
    retrain `tune --export --force` replaces the export with it; once the user's retrain has run there, it is the
    user's: a re-export over it is refused (one line naming it) and leaves it as it was."""
    import optuna

    from uboost.tuning import create_study

    study_dir = tmp_path / "study"
    study = create_study(study_dir, seed=0)
    run = tmp_path / "trial-run"  # the trial's run directory, a real search with its network
    shutil.copytree(run_copy, run)
    assert cli("retrain", run, "--epochs", "1", "--max-samples", "64").code == 0  # the trial's own retrain: copied
    attrs = {"config": json.loads((run / "config.json").read_text()), "arch": json.loads((run / "arch.json").read_text()),
             "accuracy": 0.5, "val_acc": 0.5, "latency_ms": 0.01, "array": "8x8", "dataflow": "ws", "run_dir": str(run)}
    study.add_trial(optuna.trial.create_trial(
        params={"latency_weight": 1.0}, distributions={"latency_weight": optuna.distributions.FloatDistribution(0.01, 10)},
        values=[0.5, 0.01], user_attrs=attrs))
    export = study_dir / "export-0"
    assert cli("tune", "--export", "0", "--out", study_dir).code == 0
    assert (export / "retrain" / "model.pt").is_file()
    assert cli("tune", "--export", "0", "--out", study_dir, "--force").code == 0  # no retrain of the user's yet
    result = cli("retrain", export, "--epochs", "1", "--max-samples", "64", "--force")
    assert result.code == 0, (result.out, result.err)
    assert (export / "retrain" / "retrain.json").is_file()
    before = tree(export)
    one_line_error(cli("tune", "--export", "0", "--out", study_dir, "--force"), "holds the results of uboost retrain")
    assert tree(export) == before
    retrained = tmp_path / "retrained"
    assert cli("retrain", run_copy, "--out", retrained, "--epochs", "1", "--max-samples", "64").code == 0
    before = tree(retrained)
    one_line_error(cli("tune", "--export", "0", "--out", study_dir, "--export-to", retrained, "--force"),
                   "holds the results of uboost retrain")
    assert tree(retrained) == before


def test_force_never_clears_a_users_retrain_inside_a_budget_export_or_frontier(cli, run_copy, tmp_path):
    """README: an export's --force never clears a retrain's output, even one inside a directory the export wrote."""
    budget, out = _budget(run_copy), tmp_path / "budget"
    assert cli("export", run_copy, "--target-latency-ms", budget, "--out", out).code == 0
    assert cli("retrain", out, "--epochs", "1", "--max-samples", "64").code == 0
    assert cli("export", out / "retrain", "--format", "onnx").code == 0
    before = tree(out)
    one_line_error(cli("export", run_copy, "--target-latency-ms", budget, "--out", out, "--force"),
                   "retrain", "holds the results of uboost retrain")
    one_line_error(cli("export", run_copy, "--target-latency-ms", budget, "--out", out / "retrain", "--force"),
                   "holds the results of uboost retrain")
    assert tree(out) == before
    frontier = tmp_path / "frontier"
    assert cli("frontier", run_copy, "--points", "2", "--out", frontier).code == 0
    point = sorted(p for p in frontier.iterdir() if p.is_dir())[0]
    assert cli("retrain", point, "--epochs", "1", "--max-samples", "64").code == 0
    before = tree(frontier)
    one_line_error(cli("frontier", run_copy, "--points", "2", "--out", frontier, "--force"), "holds the results of uboost retrain")
    assert tree(frontier) == before
    own = tmp_path / "own"  # the retrains frontier --retrain-epochs ran are the frontier's: its --force replaces them
    assert cli("frontier", run_copy, "--points", "2", "--out", own, "--retrain-epochs", "1", "--max-samples", "64").code == 0
    result = cli("frontier", run_copy, "--points", "2", "--out", own, "--force")
    assert result.code == 0, (result.out, result.err)
    assert cli("frontier", run_copy, "--points", "2", "--out", own, "--retrain-epochs", "1", "--max-samples", "64",
               "--force").code == 0
    result = cli("retrain", own / "p00", "--epochs", "1", "--max-samples", "64", "--force")  # the frontier's: replaced
    assert result.code == 0, (result.out, result.err)
    one_line_error(cli("frontier", run_copy, "--points", "2", "--out", own, "--force"), "holds the results of uboost retrain")


def test_a_tune_trial_s_own_run_directory_can_be_exported(cli, run_copy, tmp_path):
    """A trial's run directory (STUDY/trials/NAME/NUMBER) is a search run: its exports, frontier and budget exports go
    inside it as in any run; the study's own files and the trials folder stay refused."""
    study_dir = tmp_path / "study"
    _study(study_dir)
    trial = study_dir / "trials" / "uboost" / "0001"
    trial.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(run_copy, trial)
    for args in ((), ("--format", "onnx")):
        result = cli("export", trial, *args)
        assert result.code == 0, (result.out, result.err)
    result = cli("frontier", trial, "--points", "2")
    assert result.code == 0, (result.out, result.err)
    result = cli("export", trial, "--target-latency-ms", _budget(trial), "--out", trial / "b")
    assert result.code == 0, (result.out, result.err)
    one_line_error(cli("export", trial, "--out", trial / "config.json", "--force"), "holds the results of uboost search")
    one_line_error(cli("export", trial, "--out", study_dir / "trials" / "uboost" / "x.json", "--force"), "uboost tune")
    one_line_error(cli("export", trial, "--out", study_dir / "study.journal", "--force"), "uboost tune")


def test_an_export_through_a_symbolic_link_is_guarded_where_it_leads(cli, run_copy, tmp_path):
    """A link to a retrain's folder (or to a run's file) is that folder (or file): refused, nothing relabelled."""
    assert cli("retrain", run_copy, "--epochs", "1", "--max-samples", "64").code == 0
    (tmp_path / "rt").symlink_to(run_copy / "retrain")
    (tmp_path / "c.json").symlink_to(run_copy / "config.json")
    before, manifest = tree(run_copy), (run_copy / ".uboost-manifest.json").read_text()
    one_line_error(cli("export", run_copy, "--out", tmp_path / "rt" / "model.pt", "--force", "--format", "torchscript"),
                   "holds the results of uboost retrain")
    one_line_error(cli("export", run_copy, "--out", tmp_path / "c.json", "--force"), "holds the results of uboost search")
    assert tree(run_copy) == before and (run_copy / ".uboost-manifest.json").read_text() == manifest


def test_a_runs_retrain_exports_with_that_run_after_it_was_renamed(cli, run_copy, tmp_path):
    assert cli("retrain", run_copy, "--epochs", "1", "--max-samples", "64").code == 0
    moved = tmp_path / "renamed"
    shutil.move(run_copy, moved)  # retrain.json still names the old path
    result = cli("export", moved / "retrain", "--format", "onnx")
    assert result.code == 0, (result.out, result.err)
    assert (moved / "retrain" / "model.onnx").is_file() and not (moved / "retrain" / ".uboost-manifest.json").exists()


def test_a_retrain_from_before_manifests_and_a_frontiers_plot_are_guarded(cli, run_copy, tmp_path):
    assert cli("retrain", run_copy, "--epochs", "1", "--max-samples", "64").code == 0
    for manifest in run_copy.rglob(".uboost-manifest.json"):
        manifest.unlink()  # a run (and its retrain) written before manifests existed
    before = tree(run_copy)
    one_line_error(cli("export", run_copy, "--out", run_copy / "retrain" / "model.pt", "--force", "--format", "torchscript"),
                   "holds the results of uboost retrain")
    assert tree(run_copy) == before
    frontier = tmp_path / "frontier"
    assert cli("frontier", run_copy, "--points", "2", "--out", frontier).code == 0
    if (frontier / "frontier.png").is_file():
        one_line_error(cli("export", run_copy, "--out", frontier / "frontier.png", "--force"), "holds the results of uboost")
        assert cli("frontier", run_copy, "--points", "2", "--out", frontier, "--force").code == 0
