"""Issue 27, wrong results: a relative --out (also outside the current directory) is listed in the
manifest relative to the output itself, once, so --force removes exactly the earlier run's files."""

import json

import pytest

from tests.cli.conftest import TINY


@pytest.mark.parametrize("out", ["../x", "runs/x"])
def test_relative_out_is_recorded_once_and_force_clears_it(cli, tmp_path, monkeypatch, out):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    first = cli("search", *TINY, "--out", out)
    assert first.code == 0, first.err
    root = (work / out).resolve()
    manifest = json.loads((root / ".uboost-manifest.json").read_text())
    for rel in manifest["files"] + manifest["dirs"]:
        assert not rel.startswith((".", "/")) and "runs/x/" not in rel, rel
        assert (root / rel).exists() or rel.endswith(("interrupted.ckpt", "precision.json")), rel  # registered, written if needed
    old_nni = {p.name for p in (root / "nni").iterdir() if p.is_dir()}
    assert old_nni

    again = cli("search", *TINY, "--out", out, "--force")
    assert again.code == 0, again.err
    new_nni = {p.name for p in (root / "nni").iterdir() if p.is_dir()}
    assert not (old_nni & new_nni), "the earlier run's NNI folders were left behind"
