"""A network ONNX cannot express is one red line naming the way out, not torch's traceback."""

from tests.cli.conftest import TINY, cli, one_line_error  # noqa: F401 - `cli` is a fixture


def test_an_adaptive_pool_onnx_cannot_express_is_one_line(cli, tmp_path):
    """QA: lenet at 10x10 pools 5x5 maps to 2x2, which ONNX's exporter refuses (126 lines of traceback)."""
    args = [a if a != "8" else "10" for a in TINY]  # --image-size 10
    assert cli("search", *args, "--out", tmp_path / "r").code == 0
    one_line_error(cli("export", tmp_path / "r", "--format", "onnx", "--out", tmp_path / "m.onnx"),
                   "ONNX cannot express this network", "adaptive_avg_pool2d", "--format torchscript")
    assert not (tmp_path / "m.onnx").exists()
    assert cli("export", tmp_path / "r", "--format", "torchscript", "--out", tmp_path / "m.pt").code == 0
