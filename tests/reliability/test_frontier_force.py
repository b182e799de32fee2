"""Issue 27, wrong results: frontier --force with fewer points leaves none of the earlier frontier's
points behind (a user's own file there stays)."""

from tests.cli.test_frontier_cli import searched  # noqa: F401 - fixture
from tests.reliability.conftest import one_line_error


def test_frontier_force_with_fewer_points_removes_the_stale_points(cli, searched, tmp_path):  # noqa: F811
    run, _, _ = searched
    out = tmp_path / "front"
    assert cli("frontier", run, "--points", "4", "--out", out).code == 0
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["p00", "p01", "p02", "p03"]
    (out / "p03" / "notes.txt").write_text("mine")
    one_line_error(cli("frontier", run, "--points", "2", "--out", out), "--force")
    assert cli("frontier", run, "--points", "2", "--out", out, "--force").code == 0
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["p00", "p01", "p03"]
    assert [p.name for p in (out / "p03").iterdir()] == ["notes.txt"]  # the user's file, alone
    assert (out / "p01" / "arch.json").is_file() and (out / "frontier.png").is_file()
