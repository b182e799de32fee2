"""Issue 27, data loss (round three): a file output named on the command line (profile --plot /
--energy-plot, hw tabulate --out) never replaces an existing file without --force."""

import pytest

from tests.reliability.conftest import one_line_error

NET = ["torchvision.models:resnet18", "--input", "3x16x16"]


@pytest.mark.parametrize("option", ["--plot", "--energy-plot"])
def test_profile_plot_keeps_an_existing_file(cli, tmp_path, option):
    precious = tmp_path / "thesis.png"
    precious.write_text("years of work")
    one_line_error(cli("profile", *NET, option, precious), "already exists", "--force")
    assert precious.read_text() == "years of work"
    assert cli("profile", *NET, option, precious, "--force").code == 0
    assert precious.read_bytes().startswith(b"\x89PNG")


def test_hw_tabulate_keeps_an_existing_file(cli, tmp_path):
    precious = tmp_path / "table.csv"
    precious.write_text("mine")
    args = ["hw", "tabulate", "lenet", "--array", "8x8", "--cost-model", "systolic", "--out", precious]
    one_line_error(cli(*args), "already exists", "--force")
    assert precious.read_text() == "mine"
    assert cli(*args, "--force").code == 0
    assert precious.read_text().startswith("layer,kind,batch")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # written atomically, no temp left
