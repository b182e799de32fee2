"""``runs.searched_config``: the one check that a directory is a finished search (frontier and predict use it)."""

import json

import pytest

from uboost import runs
from uboost.exceptions import RunDirError


def _run(tmp_path, *files, result=None):
    root = tmp_path / "run"
    root.mkdir()
    for name in files:
        (root / name).write_text(json.dumps({"space": "lenet"}) if name == runs.CONFIG else "{}")
    if result is not None:
        (root / runs.RESULT).write_text(json.dumps(result))
    return root


def test_a_finished_search_gives_its_stored_config(tmp_path):
    root = _run(tmp_path, runs.CONFIG, runs.ARCH, runs.ALPHAS)
    assert runs.searched_config(root) == {"space": "lenet"}


@pytest.mark.parametrize("files, result, words", [
    ((), None, "not a uboost search run"),                                     # a folder with nothing of a run
    ((runs.CONFIG,), None, "did not finish"),                                 # a search stopped before its results
    ((runs.CONFIG, runs.ARCH), {"projected_from": "/somewhere/search"}, "exported from the search /somewhere/search"),
    ((runs.CONFIG, runs.ARCH), None, "older uboost"),                         # a network without alphas, no export record
])
def test_what_is_not_a_finished_search_is_one_line_saying_what_it_is(tmp_path, files, result, words):
    root = _run(tmp_path, *files, result=result)
    with pytest.raises(RunDirError, match=words) as caught:
        runs.searched_config(root)
    assert "\n" not in str(caught.value)


def test_a_missing_directory_is_named(tmp_path):
    with pytest.raises(RunDirError, match="expected a search run directory"):
        runs.searched_config(tmp_path / "nowhere")


def test_a_torn_config_is_one_line_not_a_json_traceback(tmp_path):
    root = _run(tmp_path, runs.ARCH, runs.ALPHAS)
    (root / runs.CONFIG).write_text('{"space": ')
    with pytest.raises(RunDirError, match="not valid JSON"):
        runs.searched_config(root)
