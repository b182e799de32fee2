"""A frontier or exits folder an interrupted command left half-written (some points written, or old points beside
new heads) is marked, and `switch` / `export` refuse it in one line until the command runs again. Before, `switch`
accepted a frontier whose later points were missing or from the replaced frontier."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.cli.conftest import one_line_error
from uboost import runs
from uboost.dynamic.switcher import Switcher
from uboost.exceptions import RunDirError


def test_writing_leaves_its_mark_when_the_block_stops_and_clears_it_when_it_ends(tmp_path):
    with runs.writing(tmp_path, "uboost frontier"):
        assert (tmp_path / runs.INCOMPLETE).is_file()
    runs.check_complete(tmp_path, "again")  # ended: no mark
    with pytest.raises(KeyboardInterrupt), runs.writing(tmp_path, "uboost frontier"):
        raise KeyboardInterrupt
    with pytest.raises(RunDirError, match="is incomplete: uboost frontier stopped before it finished writing it; again"):
        runs.check_complete(tmp_path, "again")
    assert str(tmp_path / runs.INCOMPLETE) in {str(tmp_path / f) for f in runs._manifest.owned(tmp_path)}  # --force clears it


def test_an_interrupted_frontier_is_refused_by_switch_until_it_is_made_again(cli, tiny_run, tmp_path, monkeypatch):
    import uboost.frontier as frontier_module

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    out = tmp_path / "fr"
    real, calls = frontier_module.export_projection, []

    def stopped_at_the_second_point(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(frontier_module, "export_projection", stopped_at_the_second_point)
    assert cli("frontier", run, "--points", "3", "--span", "space", "--out", out).code == 130
    assert (out / "p00" / "result.json").is_file() and not (out / "p01" / "result.json").exists()
    with pytest.raises(RunDirError, match="incomplete.*uboost frontier.*--force"):
        Switcher.from_frontier(out)
    one_line_error(cli("switch", out, "--latency-ms", "1"), "incomplete")
    (out / "p01").mkdir(exist_ok=True)  # a point folder the kill left without its files
    one_line_error(cli("retrain", out / "p01"), "interrupted before it finished writing its points", "--force")
    monkeypatch.setattr(frontier_module, "export_projection", real)
    assert cli("frontier", run, "--points", "3", "--span", "space", "--out", out, "--force").code == 0
    assert not (out / runs.INCOMPLETE).exists()
    assert len(Switcher.from_frontier(out).points) == 3


def test_an_exits_folder_marked_incomplete_is_refused_by_switch_and_export(tmp_path):
    from uboost.dynamic.export import dynamic_source

    (tmp_path / "points").mkdir()
    (tmp_path / "exits.json").write_text(json.dumps({"pareto": []}))  # the replaced exits' summary, still there
    (tmp_path / "points" / "p00.json").write_text("{}")
    (tmp_path / runs.INCOMPLETE).write_text("uboost exits stopped before it finished writing this folder\n")
    with pytest.raises(RunDirError, match="incomplete: uboost exits stopped"):
        Switcher.from_exits(tmp_path)
    with pytest.raises(RunDirError, match="incomplete"):
        dynamic_source(tmp_path)
    with pytest.raises(RunDirError, match="incomplete"):
        dynamic_source(tmp_path / "points" / "p00.json")


def test_a_finished_search_has_its_layer_table_before_the_files_that_say_finished(tiny_run):
    """hardware.txt was written by the CLI after run_search returned: a kill in between left a run that `--resume`
    called finished, without the per-layer table it names (and a Python search never had one)."""
    table, arch = tiny_run / "hardware.txt", tiny_run / "arch.json"
    assert table.is_file() and "conv1" in table.read_text()
    assert table.stat().st_mtime_ns <= (tiny_run / "result.json").stat().st_mtime_ns <= arch.stat().st_mtime_ns
