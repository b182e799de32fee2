import pytest

from tests.cli.conftest import cli  # noqa: F401  (the CLI runner fixture)


@pytest.fixture(scope="session")
def retrained_run(tmp_path_factory):
    """A tiny lenet search on 8x8 digits, retrained for one epoch (RUN/retrain/model.pt)."""
    from uboost.retrain import RetrainConfig, retrain
    from uboost.search import SearchConfig, run_search

    out = tmp_path_factory.mktemp("dynamic") / "tiny"
    config = SearchConfig(space="lenet", space_options={}, dataset="digits", image_size=8, epochs=1, max_samples=64,
                          batch_size=32, accelerator="cpu")
    run_search(config, out)
    retrain(out, RetrainConfig(epochs=1, max_samples=128, accelerator="cpu", augment=False))
    return out
