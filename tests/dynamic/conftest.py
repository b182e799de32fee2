import pytest

from tests.cli.conftest import cli, tiny_search  # noqa: F401  (cli: the CLI runner fixture)


@pytest.fixture(scope="session")
def retrained_run(tmp_path_factory):
    """A tiny lenet search on 8x8 digits, retrained for one epoch (RUN/retrain/model.pt)."""
    from uboost.retrain import RetrainConfig, retrain

    out = tiny_search(tmp_path_factory.mktemp("dynamic") / "tiny", accelerator="cpu")
    retrain(out, RetrainConfig(epochs=1, max_samples=128, accelerator="cpu", augment=False))
    return out
