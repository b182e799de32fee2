"""Issue 13, items 1 and 2: ``--force`` removes exactly what uboost wrote, nothing else."""

import json

import pytest

from tests.reliability.conftest import TINY, one_line_error, tree
from uboost import _manifest
from uboost.search import SearchConfig

BASE = SearchConfig(space="lenet", space_options={}, dataset="digits", image_size=8, epochs=1, max_samples=64, batch_size=32)


def _study(root, *, run_dirs=()):
    """A study with finished trials (one per entry of ``run_dirs``; None: no local run directory)."""
    import optuna

    from uboost.tuning import create_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = create_study(root, seed=0)
    dist = {"latency_weight": optuna.distributions.FloatDistribution(0.01, 10, log=True)}
    for i, run_dir in enumerate(run_dirs or [None]):
        attrs = {"config": BASE.to_dict(), "arch": {"conv1_width": 4 + i}, "accuracy": 0.5, "val_acc": 0.5,
                 "latency_ms": 0.01 * (i + 1), "array": "8x8", "dataflow": "ws"}
        if run_dir is not None:
            attrs["run_dir"] = str(run_dir)
        study.add_trial(optuna.trial.create_trial(params={"latency_weight": 1.0}, distributions=dist,
                                                  values=[0.5, 0.01 * (i + 1)], user_attrs=attrs))
    return study


def _user_files(root):
    (root / "sub").mkdir(parents=True, exist_ok=True)
    (root / "notes.txt").write_text("precious")
    (root / "sub" / "data.bin").write_bytes(b"\x00\x01")
    return tree(root)


def test_tune_export_force_refuses_the_current_directory(cli, tmp_path, monkeypatch):
    study_dir = tmp_path / "study"
    _study(study_dir)
    cwd = tmp_path / "work"
    before = _user_files(cwd)
    monkeypatch.chdir(cwd)
    one_line_error(cli("tune", "--export", "0", "--out", study_dir, "--export-to", ".", "--force"), "current directory")
    assert tree(cwd) == before


def test_tune_export_force_refuses_a_parent_of_the_study(cli, tmp_path):
    study_dir = tmp_path / "projects" / "study"
    _study(study_dir)
    journal = tree(study_dir)
    one_line_error(cli("tune", "--export", "0", "--out", study_dir, "--export-to", tmp_path / "projects", "--force"),
                   "refusing to clear")
    assert tree(study_dir) == journal


def test_tune_export_force_keeps_foreign_files_and_drops_its_own(cli, tmp_path):
    source = tmp_path / "trial0"
    source.mkdir()
    (source / "result.json").write_text("{}")
    (source / "retrain").mkdir()
    (source / "retrain" / "retrain.json").write_text("{}")
    study_dir = tmp_path / "study"
    _study(study_dir, run_dirs=[source, None])
    important = tmp_path / "important"
    before = _user_files(important)
    one_line_error(cli("tune", "--export", "0", "--out", study_dir, "--export-to", important), "already exists", "--force")
    assert tree(important) == before

    assert cli("tune", "--export", "0", "--out", study_dir, "--export-to", important, "--force").code == 0
    assert (important / "result.json").is_file() and (important / "retrain" / "retrain.json").is_file()
    assert json.loads((important / "arch.json").read_text()) == {"conv1_width": 4}
    # trial 1 has no run directory: trial 0's copied files must go, the user's stay
    assert cli("tune", "--export", "1", "--out", study_dir, "--export-to", important, "--force").code == 0
    assert json.loads((important / "arch.json").read_text()) == {"conv1_width": 5}
    assert not (important / "result.json").exists() and not (important / "retrain").exists()
    after = tree(important)
    assert {k: after[k] for k in before} == before
    assert set(after) - set(before) == {"config.json", "arch.json", "tune.json", _manifest.MANIFEST}


def test_tune_export_never_overwrites_a_foreign_file(cli, tmp_path):
    study_dir = tmp_path / "study"
    _study(study_dir)
    target = tmp_path / "mine"
    target.mkdir()
    (target / "config.json").write_text("my own config")
    one_line_error(cli("tune", "--export", "0", "--out", study_dir, "--export-to", target, "--force"),
                   "config.json", "not written by uboost")
    assert (target / "config.json").read_text() == "my own config"
    assert sorted(p.name for p in target.iterdir()) == ["config.json"]


def test_search_force_keeps_user_files_and_removes_every_earlier_artifact(cli, tmp_path):
    out = tmp_path / "proj"
    assert cli("search", *TINY, "--out", out).code == 0
    assert cli("retrain", out, "--epochs", "1", "--max-samples", "64").code == 0
    assert cli("export", out, "--format", "torchscript").code == 0
    assert cli("export", out).code == 0
    # NNI's experiment list (.experiment and its lock files) is rewritten by every run, in the run
    old_nni = {p.name for p in (out / "nni").iterdir() if not p.name.startswith(".experiment")}
    (out / "checkpoints" / "mine.ckpt").write_bytes(b"user checkpoint")
    (out / "nni" / "notes.txt").write_text("user notes")
    (out / "notes.txt").write_text("top-level notes")

    result = cli("search", *TINY, "--out", out, "--force", "--seed", "3")
    assert result.code == 0, result.err
    assert (out / "checkpoints" / "mine.ckpt").read_bytes() == b"user checkpoint"
    assert (out / "nni" / "notes.txt").read_text() == "user notes"
    assert (out / "notes.txt").read_text() == "top-level notes"
    for stale in ("retrain", "model.torchscript.pt", "export.json"):
        assert not (out / stale).exists(), stale
    assert not old_nni & {p.name for p in (out / "nni").iterdir()}, "the earlier run's NNI files stay"
    assert json.loads((out / "config.json").read_text())["seed"] == 3
    # everything on disk is either the user's or listed in the manifest
    mine = {"checkpoints/mine.ckpt", "nni/notes.txt", "notes.txt"}
    listed = _manifest.owned(out)
    unlisted = set(tree(out)) - listed - mine - _manifest.BOOKKEEPING
    assert not unlisted, unlisted


def test_search_force_refuses_a_foreign_file_where_it_writes(cli, tmp_path):
    out = tmp_path / "proj"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "last.ckpt").write_bytes(b"someone else's")
    (out / "config.json").write_text("{}")
    before = tree(out)
    one_line_error(cli("search", *TINY, "--out", out, "--force"), "not written by uboost")
    assert tree(out) == before


def test_search_force_refuses_the_current_directory(cli, tmp_path, monkeypatch):
    before = _user_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    one_line_error(cli("search", *TINY, "--out", ".", "--force"), "current directory")
    assert tree(tmp_path) == before


def test_every_file_on_disk_is_listed_while_the_search_runs(tmp_path):
    """A kill -9 at any step leaves nothing unlisted: files are registered before or as they appear."""
    import pytorch_lightning as pl

    from uboost.search import run_search

    out = tmp_path / "run"
    seen = []

    class Look(pl.Callback):
        def on_train_batch_end(self, trainer, *args):
            on_disk = set(tree(out)) - _manifest.BOOKKEEPING
            seen.append(on_disk - _manifest.owned(out))

    run_search(BASE.replace(epochs=2), out, callbacks=[Look()])
    assert seen and all(not unlisted for unlisted in seen), seen
    assert any(name.startswith("nni/") for name in _manifest.owned(out))


def test_a_tampered_manifest_never_reaches_outside(cli, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    out = tmp_path / "proj"
    out.mkdir()
    (out / "config.json").write_text("{}")
    (out / _manifest.MANIFEST).write_text(json.dumps({"files": ["config.json", "../outside.txt", str(outside)], "dirs": [".."]}))
    _manifest.clear(out)
    assert outside.read_text() == "keep" and not (out / "config.json").exists()
    (out / _manifest.MANIFEST).write_text("[1, 2")
    with pytest.raises(Exception, match="unreadable"):
        _manifest.clear(out)


def _folder_logger(out):
    """A Lightning logger writing as TensorBoardLogger(save_dir=OUT, name="tensorboard", version="")
    does (`uboost retrain --logger tensorboard`): a new event file per run in OUT/tensorboard."""
    import itertools

    from pytorch_lightning.loggers.logger import Logger

    class FolderLogger(Logger):
        name, version = "tensorboard", ""
        runs = itertools.count()

        def __init__(self):
            super().__init__()
            self.file = None

        def _write(self, line):
            folder = out / "tensorboard"
            if self.file is None:
                folder.mkdir(parents=True, exist_ok=True)
                self.file = folder / f"events.out.fake.{next(self.runs)}.{id(self)}"
            with open(self.file, "a") as f:
                f.write(line + "\n")

        def log_metrics(self, metrics, step=None):
            self._write(f"{step} {sorted(metrics)}")

        def log_hyperparams(self, params, *args, **kwargs):
            self._write("hparams")

    return FolderLogger()


def test_what_retrain_loggers_write_is_listed_replaced_and_forced_away(cli, tmp_path):
    """`retrain --logger tensorboard|wandb|mlflow` writes RETRAIN/tensorboard|wandb|mlruns: listed in
    the run's manifest, replaced by a fresh retrain, and removed by `search --force`; a user's
    file there stays."""
    from uboost.retrain import RetrainConfig, retrain

    out = tmp_path / "proj"
    assert cli("search", *TINY, "--out", out).code == 0
    config = RetrainConfig(epochs=1, max_samples=64, batch_size=32)
    retrain(out, config, logger=_folder_logger(out / "retrain"))
    first = sorted((out / "retrain" / "tensorboard").iterdir())
    assert first and {f"retrain/tensorboard/{p.name}" for p in first} <= _manifest.owned(out)
    (out / "retrain" / "tensorboard" / "mine.txt").write_text("user notes")

    retrain(out, config, logger=_folder_logger(out / "retrain"))  # a fresh retrain: one run in TensorBoard
    second = {p.name for p in (out / "retrain" / "tensorboard").iterdir()}
    assert not second & {p.name for p in first} and "mine.txt" in second and len(second) == 2
    unlisted = set(tree(out)) - _manifest.owned(out) - {"retrain/tensorboard/mine.txt"} - _manifest.BOOKKEEPING
    assert not unlisted, unlisted

    assert cli("search", *TINY, "--out", out, "--force").code == 0
    assert [p.relative_to(out).as_posix() for p in (out / "retrain").rglob("*")] == ["retrain/tensorboard",
                                                                                      "retrain/tensorboard/mine.txt"]
    assert (out / "retrain" / "tensorboard" / "mine.txt").read_text() == "user notes"


@pytest.mark.parametrize("kind, folder", [("tensorboard", "tensorboard"), ("mlflow", "mlruns"), ("wandb", "wandb")])
def test_cli_retrain_logger_output_goes_with_force(cli, tmp_path, kind, folder):
    from uboost.loggers import check_kind

    try:
        check_kind(kind)
    except Exception:
        pytest.skip(f"{kind} is not installed")
    out = tmp_path / "proj"
    assert cli("search", *TINY, "--out", out).code == 0
    assert cli("retrain", out, "--epochs", "1", "--max-samples", "64", "--logger", kind).code == 0
    assert (out / "retrain" / folder).is_dir()
    assert cli("search", *TINY, "--out", out, "--force").code == 0
    assert not (out / "retrain").exists()


def test_search_force_never_replaces_another_commands_output(cli, tmp_path):
    """QA: `search --force` over a frontier's folder, a retrain's --out or a tune study deleted them (README: --force
    replaces only an earlier output of the same kind). Refused, --force or not; a search's own run still goes."""
    run = tmp_path / "run"
    assert cli("search", *TINY, "--out", run).code == 0
    front, retrained, study = tmp_path / "front", tmp_path / "retrained", tmp_path / "study"
    assert cli("frontier", run, "--points", "2", "--out", front).code == 0
    assert cli("retrain", run, "--epochs", "1", "--max-samples", "64", "--out", retrained).code == 0
    _study(study)
    assert cli("retrain", run, "--epochs", "1", "--max-samples", "64").code == 0  # RUN/retrain: in the run's manifest
    for folder, owner in ((front, "uboost frontier"), (front / "p00", "uboost export"), (retrained, "uboost retrain"),
                          (run / "retrain", "uboost retrain (into retrain)"), (study, "uboost tune")):
        before = tree(folder)
        for force in ((), ("--force",)):
            one_line_error(cli("search", *TINY, "--out", folder, *force), "holds the results of " + owner,
                           "choose another output")
        assert tree(folder) == before
    user = tmp_path / "user"
    files = _user_files(user)
    one_line_error(cli("search", *TINY, "--out", user), "files uboost did not write", "--force")  # not --resume
    assert cli("search", *TINY, "--out", user, "--force").code == 0 and (user / "result.json").is_file()
    assert {k: v for k, v in tree(user).items() if k in files} == files
    trial = study / "trials" / "uboost" / "0000"
    trial.mkdir(parents=True)
    (trial / "keep.txt").write_text("the study's")
    one_line_error(cli("search", *TINY, "--out", trial, "--force"), "lies in the tune study", "choose another output")
    assert (trial / "keep.txt").read_text() == "the study's" and not (trial / "config.json").exists()
    assert cli("search", *TINY, "--out", run, "--force").code == 0  # its own earlier search
