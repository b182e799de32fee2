"""uboost search --bits-noise-weight: bad values are one line with nothing written."""

import pytest

from tests.cli.conftest import one_line_error


@pytest.mark.parametrize("args,message", [
    (["--bits-noise-weight", "1"], "needs a precision search"),
    (["--bits", "2,8", "--bits-noise-weight", "-1"], "non-negative"),
    (["--bits", "2,8", "--bits-noise-weight", "nan"], "non-negative"),
])
def test_a_bad_bits_noise_weight_is_one_line_with_nothing_written(cli, tmp_path, args, message):
    out = tmp_path / "run"
    one_line_error(cli("search", "--space", "lenet", "--dataset", "digits", "--epochs", "1", "--max-samples", "64",
                       *args, "--out", out), message)
    assert not out.exists()
