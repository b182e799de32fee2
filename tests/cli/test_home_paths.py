"""A path given with a literal ``~`` (``--out=~/x``, a quoted ``'~/x'``: no shell expands it) means the home folder,
as the shell would have made it. It used to create a folder named ``~`` in the working directory while Lightning,
which expands ``~`` itself, wrote hparams.yaml and metrics rows into the user's home folder."""

from __future__ import annotations

import json


def test_a_tilde_in_out_and_run_paths_is_the_home_folder(cli, tiny_run, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    assert cli("export", tiny_run, "--out", "~/arch.json").code == 0  # an --out
    assert json.loads((home / "arch.json").read_text()) == json.loads((tiny_run / "arch.json").read_text())
    (home / "run").symlink_to(tiny_run)
    result = cli("profile", "~/run", "--plot", "~/util.png")  # a run given as text, and another path option
    assert result.code == 0, result.err
    assert (home / "util.png").is_file()
    assert not (tmp_path / "~").exists()
