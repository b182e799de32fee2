"""`uboost search --widen all`: channel counts and bits raised jointly at export (uboost.strategy.widening)."""

import json

from tests.cli.conftest import TINY, one_line_error


def test_a_bits_search_widens_all_by_default_and_exports_a_network_no_dearer_than_the_argmax(cli, tmp_path):
    out = tmp_path / "run"
    result = cli("search", *TINY, "--bits", "2,4,8", "--pe", "bitfusion", "--out", out)  # --widen all: the default with bits
    assert result.code == 0, result.err
    facts = json.loads((out / "result.json").read_text())
    assert json.loads((out / "config.json").read_text())["widen"] == "all"
    # exactly what widen_free makes of the run's argmax (its final alphas) on its array: the labels raised
    from uboost.frontier import load_projector
    from uboost.quant import precision_dict
    from uboost.strategy.precision import split_precision
    from uboost.strategy.widening import widen_free

    source = load_projector(out)
    expected = widen_free(source.projector, source.supernet, source.argmax_arch)
    raised = sorted(k for k in expected if expected[k] != source.argmax_arch[k])
    assert raised and facts["widened"] == raised  # something is free on this array (here bits:fc1, 2 -> 4)
    assert facts["widened_values"] == {k: [source.argmax_arch[k], expected[k]] for k in raised}
    nni_arch, bits = split_precision(source.supernet, expected)
    assert json.loads((out / "arch.json").read_text()) == nni_arch
    assert json.loads((out / "precision.json").read_text()) == precision_dict(bits)
    assert sorted(facts["widened_values"]) == facts["widened"]  # label: [from, to]
    assert all(a != b for a, b in facts["widened_values"].values())
    assert ("changed at export (--widen all)" in result.out) == bool(facts["widened"])
    assert facts["latency_ms"] <= facts["argmax_latency_ms"] * (1 + 1e-9)  # widening never costs latency
    arch, precision = json.loads((out / "arch.json").read_text()), json.loads((out / "precision.json").read_text())
    assert set(arch) == {"conv1_width", "conv1_kernel", "conv2_width", "conv2_kernel", "fc1_width"}
    assert set(precision) == {"conv1", "conv2", "fc1", "fc2"}


def test_an_unknown_widen_mode_is_one_red_line_and_writes_nothing(cli, tmp_path):
    one_line_error(cli("search", *TINY, "--widen", "everything", "--out", tmp_path / "bad"), "widen must be one of bits, all")
    assert not (tmp_path / "bad").exists()


def test_frontier_points_widen_as_the_search_did(cli, tmp_path):
    """The frontier's cheapest point, narrow by construction, comes out widened (a 128x128 array has
    widths to spare), exactly as widen_free widens the projection; never above its budget."""
    from tests.cli.conftest import tiny_search
    from uboost.frontier import load_projector
    from uboost.strategy.widening import widen_free

    run = tiny_search(tmp_path / "run", array="128x128", widen="all")
    alphas = json.loads((run / "alphas.json").read_text())
    for label in ("conv1_width", "conv2_width", "fc1_width"):  # a search that preferred the narrowest widths
        alphas[label] = [5.0] + [0.0] * (len(alphas[label]) - 1)
    (run / "alphas.json").write_text(json.dumps(alphas))
    source = load_projector(run)
    cheapest = source.projector.cheapest()
    expected = widen_free(source.projector, source.supernet, cheapest.arch)
    assert expected != cheapest.arch  # something is free on this array
    out = tmp_path / "front"
    result = cli("frontier", run, "--points", "2", "--out", out)
    assert result.code == 0, result.err
    first = sorted(out.glob("p*"))[0]
    assert json.loads((first / "arch.json").read_text()) == expected
    written = json.loads((first / "result.json").read_text())
    assert written["latency_ms"] <= written["target_latency_ms"] * (1 + 1e-12)


def test_changed_at_export_lists_only_the_networks_own_bits(cli, tmp_path):
    """On darts-cifar the table listed ~300 'raised' bits labels, almost all of candidate ops the exported network
    does not keep (free values the widening sets): only the exported layers' bits are changes."""
    from uboost.frontier import load_projector
    from uboost.strategy.precision import bits_labels_used, is_bits_label

    out = tmp_path / "run"
    result = cli("search", "--space", "darts-cifar", "--dataset", "digits", "--image-size", "8", "--epochs", "1",
                 "--max-samples", "64", "--batch-size", "32", "--bits", "2,8", "--pe", "bitfusion", "--out", out)
    assert result.code == 0, result.err
    facts = json.loads((out / "result.json").read_text())
    source = load_projector(out)
    used = bits_labels_used(source.supernet, source.argmax_arch)
    every = [k for k in source.argmax_arch if is_bits_label(k)]
    assert len(every) > 3 * len(used)  # most bits labels belong to candidates the network does not keep
    assert all(k in used for k in facts["widened"] if is_bits_label(k))
    assert sorted(facts["widened_values"]) == facts["widened"]
