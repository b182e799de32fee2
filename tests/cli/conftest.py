
import pytest

from uboost.cli import main

TINY = ["--space", "lenet", "--dataset", "digits", "--image-size", "8", "--epochs", "1", "--max-samples", "64", "--batch-size", "32"]


class Result:
    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def cli(capsys):
    """Run the real entry point in-process; returns exit code and captured output."""

    def run(*argv):
        try:
            main([str(a) for a in argv])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def tiny_search(out, **overrides):
    """``TINY`` as a library call: a 1-epoch lenet search on 64 8x8 digits into ``out`` (``overrides``:
    other SearchConfig fields); returns ``out``."""
    from uboost.search import SearchConfig, run_search

    config = SearchConfig(space="lenet", space_options={}, dataset="digits", image_size=8, epochs=1, max_samples=64,
                          batch_size=32, **overrides)
    run_search(config, out)
    return out


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One finished tiny search shared by the export/retrain/profile tests."""
    return tiny_search(tmp_path_factory.mktemp("runs") / "tiny")


def one_line_error(result, *fragments):
    assert result.code == 1, (result.code, result.out, result.err)
    lines = [l for l in result.err.strip().splitlines() if l.strip()]
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err + result.out
    for fragment in fragments:
        assert fragment in result.err, (fragment, result.err)
