"""A retrain starts from weights that depend on the network and the seed, not on the space that found it."""

import json

import pytest
import torch

from tests.cli.conftest import TINY


def _frozen(widths):
    from uboost import runs
    from uboost.search import SearchConfig, build_space

    torch.manual_seed(0)  # as retrain: seeded, the space built, then frozen (from where the space left the stream)
    space, _, _ = build_space(SearchConfig(space="lenet", dataset="digits", image_size=8,
                                           space_options={"widths": widths}))
    return runs.freeze_arch(space, {"conv1_width": 8, "conv1_kernel": 3, "conv2_width": 8, "conv2_kernel": 5, "fc1_width": 32})


def test_the_same_network_from_two_spaces_is_initialized_alike_only_after_reinitialize():
    from uboost.networks import reinitialize

    a, b = _frozen([4, 8, 16]), _frozen([8])
    assert a.conv1.weight.shape == b.conv1.weight.shape
    assert not torch.equal(a.conv1.weight, b.conv1.weight)  # the space's stream decided the weights
    a, b = reinitialize(a, 3), reinitialize(b, 3)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name
    assert not torch.equal(reinitialize(_frozen([8]), 4).conv1.weight, b.conv1.weight)  # the seed does


@pytest.mark.parametrize("default_init", [True, False])
def test_retrain_of_one_network_found_in_two_spaces_gives_the_same_model(cli, tmp_path, monkeypatch, default_init):
    """Only in a space that declares torch's default initialization (uboost's own): another space's constructor
    may have an initializer of its own (NNI's hub spaces do), which the retrain keeps."""
    from uboost.search_spaces.lenet import LeNetSpace

    monkeypatch.setattr(LeNetSpace, "default_init", default_init)
    arch = {"conv1_width": 8, "conv1_kernel": 3, "conv2_width": 8, "conv2_kernel": 3, "fc1_width": 32}
    models = []
    for name, widths in (("wide", "[4, 8, 16]"), ("narrow", "[8]")):
        (tmp_path / f"{name}.toml").write_text(f"[space_options]\nwidths = {widths}\n")
        run = tmp_path / name
        assert cli("search", *TINY, "--config", tmp_path / f"{name}.toml", "--out", run).code == 0
        (run / "arch.json").write_text(json.dumps(arch))
        assert cli("retrain", run, "--epochs", "1", "--max-samples", "64").code == 0
        models.append(torch.load(run / "retrain" / "model.pt", weights_only=True))
    assert models[0].keys() == models[1].keys()
    same = [torch.equal(models[0][key], models[1][key]) for key in models[0]]
    assert all(same) if default_init else not all(same)
