"""`retrain --data-dir` finds the search's dataset elsewhere; `--dataset` naming the search's own keeps its folder."""

import shutil

import pytest

import uboost.data
from tests.cli.conftest import cli, tiny_run  # noqa: F401 - fixtures


class _Seen(Exception):
    pass


@pytest.mark.parametrize("args, expected", [
    (["--data-dir", "moved"], "moved"),  # QA: ignored without --dataset (the error then asked for --data-dir)
    (["--dataset", "digits"], "searched"),  # QA: --dataset naming the search's own dropped its folder
    (["--dataset", "digits", "--data-dir", "moved"], "moved"),
])
def test_the_retrain_reads_the_data_folder_it_is_given_else_the_searchs(cli, tiny_run, tmp_path, monkeypatch, args, expected):  # noqa: F811
    import json

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("retrain"))
    config = json.loads((run / "config.json").read_text())
    config["data_dir"] = str(tmp_path / "searched")
    (run / "config.json").write_text(json.dumps(config))
    seen = []

    def load_datasets(name, *, data_dir=None, **kwargs):
        seen.append(data_dir)
        raise _Seen

    monkeypatch.setattr(uboost.data, "load_datasets", load_datasets)
    with pytest.raises(_Seen):
        cli("retrain", run, "--epochs", "1", "--out", tmp_path / "r", *[a if a != "moved" else str(tmp_path / "moved") for a in args])
    assert seen and str(seen[0]).endswith(expected)
