"""``uboost predict`` and ``--objective predicted-accuracy`` on a finished tiny lenet search."""

import json
import shutil

import pytest

from tests.cli.conftest import one_line_error, tiny_search

SAMPLES = 8


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A tiny lenet search (1 epoch, 64 digits) with its predictor built and saved."""
    from uboost.predict import build_predictor

    out = tiny_search(tmp_path_factory.mktemp("predict") / "run", array="8x8")
    predictor = build_predictor(out, samples=SAMPLES, seed=3)
    return out, predictor


def copy_run(run, tmp_path, name="copy"):
    target = tmp_path / name
    shutil.copytree(run, target)
    return target


def test_the_predictor_is_deterministic_saved_and_listed_in_the_manifest(searched):
    from uboost.predict import build_predictor, load_predictor

    run, predictor = searched
    again = build_predictor(run, samples=SAMPLES, seed=3, save=False)
    assert again.table == predictor.table and again.meta["measured"] == predictor.meta["measured"]
    other = build_predictor(run, samples=SAMPLES, seed=4, save=False)
    assert other.meta["measured"] != predictor.meta["measured"]
    assert load_predictor(run).table == predictor.table  # the saved table reads back as built
    measured = predictor.meta["measured"]
    assert len(measured) == SAMPLES and all(0.0 <= m["accuracy"] <= 1.0 for m in measured)
    # accuracies are counts over the search's validation split (20 % of the 64 training digits)
    assert predictor.meta["validation_images"] == 13
    assert all(abs(m["accuracy"] * 13 - round(m["accuracy"] * 13)) < 1e-9 for m in measured)
    manifest = json.loads((run / ".uboost-manifest.json").read_text())
    assert "predictor.json" in manifest["files"] and manifest["owners"]["predictor.json"] == "predict"


def test_inherited_accuracy_is_the_pinned_sub_network_with_recalibrated_batch_norm(searched):
    """The measured accuracy is the one of the frozen network carrying the supernet's weights."""
    import torch

    from uboost.predict.supernet import load_trained_supernet, pinned
    from uboost.strategy.architecture import argmax_indices

    run, predictor = searched
    net = load_trained_supernet(run, seed=3)
    alphas = [c.alpha.detach().clone() for c in net.choices]
    conv = net.supernet.conv1.weight.detach().clone()
    net.fine_tune_uniform(predictor.meta["fine_tune_epochs"], seed=3)  # as the predictor did
    assert predictor.meta["fine_tune_epochs"] == 1
    assert all(torch.equal(a, c.alpha) for a, c in zip(alphas, net.choices))  # the weights train, the alphas stay
    assert not torch.equal(conv, net.supernet.conv1.weight)
    by_id = argmax_indices(net.choices, net.nodes)
    center = {c.label: by_id[id(c.alpha)] for c in net.choices}
    assert net.accuracy(center) == predictor.meta["measured"][0]["accuracy"]  # the argmax is measured first
    before = [c.alpha.detach().clone() for c in net.choices]
    with pinned(net.choices, center, net.supernet):
        assert all(float(torch.softmax(c.alpha.reshape(-1), 0)[center[c.label]]) == 1.0 for c in net.choices)
    assert all(torch.equal(a, c.alpha) for a, c in zip(before, net.choices))  # restored afterwards
    # batch norm holds the statistics of the last measured network's recalibration batch
    bn = net.supernet.bn1
    width = net.choices[[c.label for c in net.choices].index("conv1_width")].values[center["conv1_width"]]
    assert float(bn.running_var[width:].abs().sum()) == 0.0  # channels the network does not have: no statistics


def test_predict_prints_the_prediction_and_the_exact_cost(cli, searched):
    run, predictor = searched
    result = cli("predict", run, "--json")
    assert result.code == 0, result.err
    row = json.loads(result.out)
    hardware = json.loads((run / "hardware.json").read_text())["total"]  # the search's argmax on the run's array
    assert row["cycles"] == hardware["cycles"] and row["latency_ms"] == pytest.approx(hardware["latency_ms"])
    assert row["arch"] == json.loads((run / "arch.json").read_text())
    assert row["predicted_accuracy_unclipped"] == pytest.approx(predictor.table.base)  # the argmax is the table's base
    assert row["predicted_accuracy"] == min(1.0, max(0.0, row["predicted_accuracy_unclipped"]))
    assert row["uncertainty"] == predictor.table.loo_rmse and row["predictor"]["built_now"] is False
    table = cli("predict", run)
    assert table.code == 0 and "predicted accuracy" in table.out and "cycles" in table.out
    assert "(seed 3, 1 uniform fine-tune epoch)," in " ".join(table.out.split())  # was "1 ... epochs"


def test_other_settings_build_the_predictor_again_only_with_rebuild(cli, searched, tmp_path):
    """QA: other settings replaced RUN/predictor.json in silence (export and frontier read it); now --rebuild."""
    run, predictor = searched
    copy = copy_run(run, tmp_path)
    same = json.loads(cli("predict", copy, "--seed", 3, "--samples", SAMPLES, "--json").out)
    assert same["predictor"]["built_now"] is False  # the settings it was built with
    before = (copy / "predictor.json").read_bytes()
    refused = cli("predict", copy, "--seed", 3, "--samples", SAMPLES + 2, "--fine-tune-epochs", 0, "--json")
    assert refused.code == 1 and refused.err.count("\n") == 1, refused.err
    assert f"samples {SAMPLES} -> {SAMPLES + 2}" in refused.err and "--rebuild" in refused.err
    assert (copy / "predictor.json").read_bytes() == before
    other = json.loads(cli("predict", copy, "--seed", 3, "--samples", SAMPLES + 2, "--fine-tune-epochs", 0, "--rebuild",
                           "--json").out)
    assert other["predictor"]["built_now"] is True and other["predictor"]["samples"] == SAMPLES + 2
    saved = json.loads((copy / "predictor.json").read_text())
    assert saved["samples"] == SAMPLES + 2 and saved["fine_tune_epochs"] == 0


def test_predict_any_architecture_of_the_space(cli, searched, tmp_path):
    run, predictor = searched
    arch = json.loads((run / "arch.json").read_text())
    arch["conv1_width"] = 32 if arch["conv1_width"] != 32 else 4
    path = tmp_path / "other.json"
    path.write_text(json.dumps(arch))
    row = json.loads(cli("predict", run, "--arch", path, "--json").out)
    expected = predictor.table.base + predictor.table.delta["conv1_width"][[4, 8, 16, 24, 32].index(arch["conv1_width"])]
    assert row["predicted_accuracy_unclipped"] == pytest.approx(expected)
    folder = tmp_path / "other-run"  # a run directory, as retrain, export and profile take it
    folder.mkdir()
    (folder / "arch.json").write_text(json.dumps(arch))
    assert json.loads(cli("predict", run, "--arch", folder, "--json").out)["predicted_accuracy_unclipped"] == pytest.approx(expected)


@pytest.mark.parametrize("change", [{"conv1_width": 7}, {"nope": 1}, "drop"], ids=["value", "label", "missing"])
def test_an_architecture_outside_the_space_is_one_line_and_nothing_is_written(cli, searched, tmp_path, change):
    run, _ = searched
    copy = copy_run(run, tmp_path)
    (copy / "predictor.json").unlink()
    arch = json.loads((copy / "arch.json").read_text())
    if change == "drop":
        arch.pop("fc1_width")
    else:
        arch.update(change)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(arch))
    one_line_error(cli("predict", copy, "--arch", path), "architecture")
    assert not (copy / "predictor.json").exists()


@pytest.mark.parametrize("edit", [{"clock_hz": 0}, {"array": "0x16"}], ids=["clock", "array"])
def test_an_arch_run_that_cannot_be_priced_is_one_line_and_nothing_is_written(cli, searched, tmp_path, edit):
    """The table was built and predictor.json written before the --arch run's config was priced."""
    run, _ = searched
    copy = copy_run(run, tmp_path)
    (copy / "predictor.json").unlink()
    other = tmp_path / "other-run"  # an export / frontier point of its own: its config prices the network
    other.mkdir()
    (other / "arch.json").write_text((copy / "arch.json").read_text())
    (other / "config.json").write_text(json.dumps({**json.loads((copy / "config.json").read_text()), **edit}))
    one_line_error(cli("predict", copy, "--arch", other), next(iter(edit)))
    assert not (copy / "predictor.json").exists()


def test_a_run_without_a_supernet_checkpoint_or_alphas_is_one_line(cli, searched, tmp_path):
    run, _ = searched
    no_ckpt = copy_run(run, tmp_path, "no-ckpt")
    shutil.rmtree(no_ckpt / "checkpoints")
    (no_ckpt / "predictor.json").unlink()
    one_line_error(cli("predict", no_ckpt, "--rebuild"), "no supernet checkpoint")
    assert not (no_ckpt / "predictor.json").exists()
    no_alphas = copy_run(run, tmp_path, "no-alphas")
    (no_alphas / "alphas.json").unlink()
    one_line_error(cli("predict", no_alphas), "alphas.json")


def test_a_bits_search_is_refused_in_one_line_by_every_predictor_path(cli, searched, tmp_path):
    run, _ = searched
    bits = copy_run(run, tmp_path, "bits")
    (bits / "predictor.json").unlink()
    config = json.loads((bits / "config.json").read_text())
    (bits / "config.json").write_text(json.dumps({**config, "bits": [4, 8]}))
    one_line_error(cli("predict", bits), "searched bitwidths (--bits 4,8)", "no bits axis")
    one_line_error(cli("frontier", bits, "--objective", "predicted-accuracy", "--points", "2", "--out", tmp_path / "f"),
                   "no bits axis")
    assert not (bits / "predictor.json").exists() and not (tmp_path / "f").exists()


def test_a_corrupt_or_stale_table_is_one_line(cli, searched, tmp_path):
    run, _ = searched
    corrupt = copy_run(run, tmp_path, "corrupt")
    data = json.loads((corrupt / "predictor.json").read_text())
    data["table"]["base"] = "high"
    (corrupt / "predictor.json").write_text(json.dumps(data))
    one_line_error(cli("predict", corrupt), "corrupt")
    (corrupt / "predictor.json").write_text("{not json")
    one_line_error(cli("predict", corrupt), "predictor table")
    stale = copy_run(run, tmp_path, "stale")
    alphas = json.loads((stale / "alphas.json").read_text())
    alphas["fc1_width"][0] += 1.0
    (stale / "alphas.json").write_text(json.dumps(alphas))
    one_line_error(cli("predict", stale), "other alphas", "--rebuild")


@pytest.mark.parametrize("edit, fragment", [
    ({"format": 2}, "has format 2; this uboost reads format 1"),
    ({"format": True}, "has format True"),
    ({"model": "mlp"}, "holds a 'mlp' model, not a 'block-additive' table"),
    ({"model": None}, "holds a None model"),
    ("negative counts", "bad counts (one non-negative integer per value)"),
], ids=["format", "bool-format", "model", "no-model", "counts"])
def test_a_table_of_another_format_or_model_or_with_negative_counts_is_one_line(cli, searched, tmp_path, edit, fragment):
    run, _ = searched
    copy = copy_run(run, tmp_path)
    data = json.loads((copy / "predictor.json").read_text())
    assert data["format"] == 1 and data["model"] == "block-additive"  # what is written
    if edit == "negative counts":
        term = next(iter(data["table"]["terms"].values()))
        term["counts"][0] = -3
    else:
        data.update(edit)
    (copy / "predictor.json").write_text(json.dumps(data))
    one_line_error(cli("predict", copy), fragment, "--rebuild")


def test_a_table_saved_before_the_format_field_still_loads(cli, searched, tmp_path):
    from uboost.predict import load_predictor

    run, predictor = searched
    copy = copy_run(run, tmp_path)
    data = json.loads((copy / "predictor.json").read_text())
    del data["format"]
    (copy / "predictor.json").write_text(json.dumps(data))
    loaded = load_predictor(copy)
    assert loaded.table == predictor.table and "format" not in loaded.meta
    assert loaded.to_dict()["format"] == 1
    row = json.loads(cli("predict", copy, "--json").out)
    assert row["predictor"]["built_now"] is False


@pytest.mark.parametrize("edit", ["cut", "reorder"])
def test_a_table_whose_values_are_not_the_spaces_is_one_line(cli, searched, tmp_path, edit):
    """Cut to fewer values: an IndexError traceback (for an arch using a cut value) or a number; reordered: deltas
    applied to other widths. The table names its values; they must be the space's."""
    run, _ = searched
    copy = copy_run(run, tmp_path)
    data = json.loads((copy / "predictor.json").read_text())
    label, term = next((k, t) for k, t in data["table"]["terms"].items() if len(t["values"]) > 2)
    for key in ("values", "delta", "counts"):
        if term.get(key):
            term[key] = term[key][:-1] if edit == "cut" else term[key][::-1]
    (copy / "predictor.json").write_text(json.dumps(data))
    one_line_error(cli("predict", copy), "does not describe this run's space")


def test_a_search_replaced_while_the_table_is_measured_does_not_get_the_old_table(searched, tmp_path, monkeypatch):
    """The digest was read after measuring: a search --force meanwhile got a table of the replaced search."""
    from uboost.exceptions import RunDirError
    from uboost.predict import build_predictor, predictor as predictor_module

    run, _ = searched
    copy = copy_run(run, tmp_path)
    (copy / "predictor.json").unlink()
    measure = predictor_module.fit_additive

    def replaced_meanwhile(*args, **kwargs):
        alphas = json.loads((copy / "alphas.json").read_text())
        first = next(iter(alphas))
        alphas[first][0] += 1.0  # the new search's alphas
        (copy / "alphas.json").write_text(json.dumps(alphas))
        return measure(*args, **kwargs)

    monkeypatch.setattr(predictor_module, "fit_additive", replaced_meanwhile)
    with pytest.raises(RunDirError, match="changed while its sub-networks were measured"):
        build_predictor(copy, samples=SAMPLES, seed=3)
    assert not (copy / "predictor.json").exists()


@pytest.fixture(scope="module")
def disagreeing(searched, tmp_path_factory):
    """A copy of the run whose predictor is built on a synthetic accuracy additive over the choices that
    prefers what the search preferred least (``0.5 - 0.02 x`` the log-probability of each choice): the
    projection's two objectives disagree, so an export that ignores the predictor is seen. Returns the
    run, its predictor and every network of the space as ``(predicted accuracy, latency ms, cycles)``."""
    import itertools

    import torch

    from uboost.frontier import load_projector
    from uboost.predict import build_predictor
    from uboost.predict.supernet import TrainedSupernet

    run = copy_run(searched[0], tmp_path_factory.mktemp("disagreeing"))
    alphas = json.loads((run / "alphas.json").read_text())
    terms = {label: (-0.02 * torch.log_softmax(torch.tensor(a, dtype=torch.float64).reshape(-1), 0)).tolist()
             for label, a in alphas.items()}

    def additive(self, network):
        return 0.5 + sum(terms[label][k] for label, k in network.items())

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TrainedSupernet, "accuracy", additive)
        predictor = build_predictor(run, samples=40, fine_tune_epochs=0)
    assert predictor.table.loo_rmse < 1e-9  # the table is the synthetic accuracy exactly
    projector = load_projector(run).projector
    choices = projector.program.choices
    networks = []
    for combo in itertools.product(*(range(len(c.values)) for c in choices)):
        latency, _ = projector.cost_of({id(c.alpha): k for c, k in zip(choices, combo)})
        by_label = {c.label: k for c, k in zip(choices, combo)}
        networks.append((predictor.table.predict(by_label), latency))
    return run, predictor, networks


def best_predicted(networks, target_ms, lowest_ms=0.0):
    """The brute-force maximum of the predicted accuracy over the networks in ``[lowest_ms, target_ms]``."""
    return max(acc for acc, ms in networks if lowest_ms * (1 - 1e-9) <= ms <= target_ms * (1 + 1e-9))


def test_export_maximizes_predicted_accuracy_within_the_budget(cli, disagreeing, tmp_path):
    run, _, networks = disagreeing
    low, high = min(ms for _, ms in networks), max(ms for _, ms in networks)
    target = low + 0.6 * (high - low)
    by_pref = cli("export", run, "--target-latency-ms", target, "--out", tmp_path / "pref")
    by_acc = cli("export", run, "--target-latency-ms", target, "--out", tmp_path / "acc", "--objective", "predicted-accuracy")
    assert by_pref.code == 0 and by_acc.code == 0, by_acc.err
    assert "predicted accuracy" in by_acc.out
    acc = json.loads((tmp_path / "acc" / "result.json").read_text())
    pref = json.loads((tmp_path / "pref" / "result.json").read_text())
    assert acc["objective"] == "predicted-accuracy" and acc["latency_ms"] <= target
    assert "predicted_accuracy" not in pref
    # the default --budget-floor 0.9: the best network using at least 90 % of the budget (there is one here)
    assert any(target * 0.9 <= ms <= target for _, ms in networks)
    assert acc["predicted_accuracy_unclipped"] == pytest.approx(best_predicted(networks, target, 0.9 * target), abs=1e-12)
    predicted_acc = json.loads(cli("predict", run, "--arch", tmp_path / "acc" / "arch.json", "--json").out)
    assert predicted_acc["predicted_accuracy_unclipped"] == pytest.approx(acc["predicted_accuracy_unclipped"])  # of what it wrote
    predicted_pref = json.loads(cli("predict", run, "--arch", tmp_path / "pref" / "arch.json", "--json").out)
    assert acc["predicted_accuracy_unclipped"] > predicted_pref["predicted_accuracy_unclipped"] + 1e-6  # the objectives differ
    assert acc["preference"] < pref["preference"] - 1e-6  # and the other way round


def test_frontier_with_predicted_accuracy_and_bad_objectives(cli, disagreeing, tmp_path):
    run, _, networks = disagreeing
    result = cli("frontier", run, "--points", 3, "--out", tmp_path / "front", "--objective", "predicted-accuracy",
                 "--budget-floor", 0)
    assert result.code == 0, result.err
    assert "pred." in result.out  # the predicted-accuracy column (its header wraps in a narrow terminal)
    points = [json.loads((tmp_path / "front" / f"p{i:02d}" / "result.json").read_text()) for i in range(3)]
    lowest = 0.0
    for p in points:  # each the best within its budget, no cheaper than the point before (the frontier is monotone)
        assert p["predicted_accuracy_unclipped"] == pytest.approx(best_predicted(networks, p["target_latency_ms"], lowest),
                                                                  abs=1e-12)
        lowest = p["latency_ms"]
    one_line_error(cli("frontier", run, "--objective", "accuracy", "--out", tmp_path / "x"), "objective")
    assert not (tmp_path / "x").exists()
    one_line_error(cli("export", run, "--objective", "predicted-accuracy"), "--target-latency-ms")


def test_projecting_on_predicted_accuracy_without_a_predictor_is_one_line(cli, searched, tmp_path):
    run, _ = searched
    bare = copy_run(run, tmp_path, "bare")
    (bare / "predictor.json").unlink()
    one_line_error(cli("export", bare, "--target-latency-ms", 1.0, "--out", tmp_path / "e", "--objective",
                       "predicted-accuracy"), "uboost predict")
    assert not (tmp_path / "e").exists()


def test_search_force_removes_the_predictor(searched, tmp_path):
    from uboost.predict import PREDICTOR, build_predictor
    from uboost.search import SearchConfig, run_search

    run, _ = searched
    copy = copy_run(run, tmp_path, "forced")
    assert (copy / PREDICTOR).is_file()
    config = SearchConfig.from_dict(json.loads((copy / "config.json").read_text()))
    run_search(config, copy, force=True)
    assert not (copy / PREDICTOR).exists()
    with pytest.raises(Exception, match="samples"):
        build_predictor(copy, samples=1)


def test_the_whole_build_recovers_an_additive_accuracy_exactly(searched, monkeypatch):
    """With an accuracy that is additive over (choice, value), the measured-and-fitted table is exact
    on every network of the space, not only on the measured ones."""
    import itertools

    import numpy as np

    from uboost.predict import build_predictor
    from uboost.predict.supernet import TrainedSupernet

    run, _ = searched
    rng = np.random.default_rng(0)
    values = {"conv1_width": 5, "conv1_kernel": 2, "conv2_width": 5, "conv2_kernel": 2, "fc1_width": 3}
    terms = {label: rng.normal(0, 0.05, n) for label, n in values.items()}

    def additive(self, network):
        return 0.5 + sum(terms[label][k] for label, k in network.items())

    monkeypatch.setattr(TrainedSupernet, "accuracy", additive)
    predictor = build_predictor(run, samples=40, fine_tune_epochs=0, save=False)
    assert predictor.table.loo_rmse < 1e-9
    for combo in itertools.product(*(range(n) for n in values.values())):  # all 300 networks
        network = dict(zip(values, combo))
        assert predictor.table.predict(network) == pytest.approx(additive(None, network), abs=1e-9)


def test_predict_prices_an_auto_operating_point_run_at_the_point_its_search_chose(cli, searched, tmp_path):
    """It priced at the table's fastest clock (900 MHz) while result.json and profile said 600 MHz."""
    run, _ = searched
    copy = copy_run(run, tmp_path)
    config = json.loads((copy / "config.json").read_text())
    config.update(operating_points="rk3576-npu", operating_point="auto", clock_hz=9e8)
    (copy / "config.json").write_text(json.dumps(config))
    result = json.loads((copy / "result.json").read_text())
    result["operating_point"] = {"freq_hz": 6e8, "voltage_v": 0.725}
    (copy / "result.json").write_text(json.dumps(result))
    row = json.loads(cli("predict", copy, "--json").out)
    assert row["latency_ms"] == pytest.approx(row["cycles"] / 6e8 * 1e3)
    profiled = json.loads(cli("profile", copy, "--json").out)
    assert row["latency_ms"] == pytest.approx(profiled["reports"][0]["total"]["latency_ms"])


@pytest.mark.parametrize("bad", [-1, 0, 2.5, True])
def test_bad_recalibration_images_are_one_config_error(searched, tmp_path, bad):
    """QA: -1 used all images but one, 0 was a ValueError from unpacking, 2.5 a TypeError from slicing."""
    from uboost.exceptions import ConfigError
    from uboost.predict import build_predictor

    run, _ = searched
    with pytest.raises(ConfigError, match="recalibration_images must be an integer >= 1"):
        build_predictor(run, recalibration_images=bad)


def test_an_architecture_that_is_not_a_dict_is_named_so(searched):
    """QA: a list of values said "the architecture has no value for 'conv1_width'"."""
    from uboost.exceptions import ConfigError

    _, predictor = searched
    with pytest.raises(ConfigError, match="an architecture is a dict of label -> value"):
        predictor.predict_arch([8, 3, 16])
