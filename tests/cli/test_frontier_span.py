"""``uboost frontier --span space``: budgets from the cheapest to the costliest network of the space, geometrically
spaced (the whole trade-off from one search), and its bad combinations as one red line."""

import json

import pytest

from tests.cli.conftest import one_line_error, tiny_search


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    from uboost.frontier import load_projector

    out = tiny_search(tmp_path_factory.mktemp("span") / "run", array="8x8")
    projector = load_projector(out).projector
    return out, projector.cheapest().latency_ms, projector.unconstrained().latency_ms, projector.highest_under().latency_ms


def test_a_space_span_runs_from_the_cheapest_to_the_costliest_network_geometrically(cli, searched, tmp_path):
    run, low, argmax, costliest = searched
    assert low < argmax < costliest  # the tiny search's own network is neither end of its space
    out = tmp_path / "wide"
    result = cli("frontier", run, "--points", "4", "--span", "space", "--out", out)
    assert result.code == 0, result.err
    rows = [json.loads((p / "result.json").read_text()) for p in sorted(out.glob("p*"))]
    targets = [r["target_latency_ms"] for r in rows]
    assert len(rows) == 4 and targets[0] == pytest.approx(low) and targets[-1] == pytest.approx(costliest)
    ratios = [b / a for a, b in zip(targets, targets[1:])]
    assert ratios == pytest.approx([ratios[0]] * 3) and ratios[0] > 1  # geometric, not even
    latencies = [r["latency_ms"] for r in rows]
    assert latencies == sorted(latencies) and all(r["latency_ms"] <= r["target_latency_ms"] * (1 + 1e-12) for r in rows)
    assert latencies[-1] > argmax  # past the search's own network, where the default span stops
    default = tmp_path / "own"
    assert cli("frontier", run, "--points", "4", "--out", default).code == 0
    assert max(json.loads((p / "result.json").read_text())["latency_ms"] for p in default.glob("p*")) == pytest.approx(argmax)


@pytest.mark.parametrize("args, words", [
    (("--span", "everything"), ("--span", "search or space")),
    (("--span", "space", "--targets", "0.001,0.002"), ("not both",)),
])
def test_a_bad_span_is_one_red_line_and_writes_nothing(cli, searched, tmp_path, args, words):
    run = searched[0]
    one_line_error(cli("frontier", run, *args, "--out", tmp_path / "f"), *words)
    assert not (tmp_path / "f").exists()


def test_an_energy_sweep_spans_the_space_too(cli, searched, tmp_path):
    from uboost.frontier import load_projector

    run = searched[0]
    projector = load_projector(run).projector
    low, high = projector.cheapest("energy").energy_uj, projector.highest_under(metric="energy").energy_uj
    out = tmp_path / "energy"
    result = cli("frontier", run, "--metric", "energy", "--points", "3", "--span", "space", "--out", out)
    assert result.code == 0, result.err
    targets = sorted(json.loads((p / "result.json").read_text())["target_energy_uj"] for p in out.glob("p*"))
    assert targets == pytest.approx([low, (low * high) ** 0.5, high])
