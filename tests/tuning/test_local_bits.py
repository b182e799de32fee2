"""Bitwidths as local-search choices (`uboost tune --local-search N` on a study with --bits): genomes by hand, and a
bits study whose local search narrows a layer, retrains it quantization-aware and adds it as a trial."""

from __future__ import annotations

import json

import optuna
import pytest

from tests.cli.conftest import cli  # noqa: F401 - `cli` is a fixture
from tests.tuning.test_local_search import BUDGET, NAMES, SMALL, SPACE
from uboost import runs
from uboost.exceptions import ConfigError
from uboost.quant import read_precision
from uboost.search import SearchConfig, build_cost_model
from uboost.tuning import create_study, export_trial
from uboost.tuning import local_bits as lb
from uboost.tuning import local_search as ls
from uboost.tuning import local_trials

ARCH = {"conv1_width": 8, "conv2_width": 4}
EIGHT = {name: {"weight_bits": 8, "act_bits": 8} for name in ("conv1", "conv2", "fc1")}


def test_a_coupled_genome_has_one_width_per_layer_and_splits_back():
    moves = lb.BitsMoves(SMALL.replace(bits=(2, 4, 8)))
    genome = moves.genome({"arch": ARCH, "precision": {**EIGHT, "conv2": {"weight_bits": 4, "act_bits": 4}}})
    assert genome == {**ARCH, "bits:conv1": 8, "bits:conv2": 4, "bits:fc1": 8}
    assert moves.split(genome) == (ARCH, {"conv1": (8, 8), "conv2": (4, 4), "fc1": (8, 8)})
    assert moves.choices(genome) == {f"bits:{n}": [2, 4, 8] for n in ("conv1", "conv2", "fc1")}
    with pytest.raises(ConfigError, match="couples them"):
        moves.genome({"arch": ARCH, "precision": {"conv1": {"weight_bits": 4, "act_bits": 8}}})


def test_decoupled_operands_vary_apart_and_an_unsearched_operand_stays_at_8():
    moves = lb.BitsMoves(SMALL.replace(weight_bits=(4, 8)))  # activations not searched: 8, no choice
    genome = moves.genome({"arch": ARCH, "precision": {"conv1": {"weight_bits": 4, "act_bits": 8}}})
    assert genome == {**ARCH, "weight_bits:conv1": 4, "act_bits:conv1": 8}
    assert moves.choices(genome) == {"weight_bits:conv1": [4, 8]}
    assert moves.split({**ARCH, "weight_bits:conv1": 8, "act_bits:conv1": 8}) == (ARCH, {"conv1": (8, 8)})


def test_after_an_architecture_change_kept_layers_keep_their_widths_and_new_ones_take_the_widest():
    moves = lb.BitsMoves(SMALL.replace(bits=(2, 4), pin_bits={"head*": 8}))
    genome = {**ARCH, "bits:conv1": 2, "bits:gone": 2}
    settled = moves.settle(genome, ["conv1", "new", "head.fc"])
    assert settled == {**ARCH, "bits:conv1": 2, "bits:new": 4, "bits:head.fc": 8}  # 4: the widest choice; 8: pinned
    assert moves.choices(settled) == {"bits:conv1": [2, 4], "bits:new": [2, 4]}  # a pinned layer is not varied
    assert lb.BitsMoves.for_config(SMALL) is None


# one network per architecture (every choice of the space has one value): the only moves are widths
FIXED = SMALL.replace(space_options={"widths": [8], "kernels": [3], "hidden": [16]}, bits=(4, 8))


def _bits_study(tmp_path, precision: dict):
    """A bits study whose one finished trial is lenet at ``precision``, priced on its best accelerator."""
    study = create_study(tmp_path, objectives="accuracy,latency,energy")
    space = SPACE.for_cost_mode(FIXED.cost_mode)
    distributions = space.distributions()
    moves = lb.BitsMoves(FIXED)
    arch = {"conv1_width": 8, "conv1_kernel": 3, "conv2_width": 8, "conv2_kernel": 3, "fc1_width": 16}
    genome = moves.genome({"arch": arch, "precision": precision})
    pricer = local_trials.Pricer(FIXED, space, NAMES, "exhaustive", bits=moves)
    attrs = {k: v for k, v in pricer.attrs(genome, None).items() if not k.startswith("_")}
    attrs.update(arch=arch, precision=precision, accuracy=0.9, search_config=FIXED.to_dict())
    params = {"rows": 4, "cols": 4, "dataflow": "ws", "latency_weight": 1.0, "ifmap_sram_kb": 2, "filter_sram_kb": 2, "ofmap_sram_kb": 2}
    study.add_trial(optuna.trial.create_trial(params={k: params[k] for k in distributions}, distributions=distributions,
                                              values=[0.9, attrs["latency_ms"], attrs["energy_uj"]], user_attrs=attrs))
    return study, genome


def test_a_bits_study_narrows_one_layer_and_retrains_it_at_those_widths(tmp_path):
    precision = {name: {"weight_bits": 8, "act_bits": 8} for name in ("conv1", "conv2", "fc1", "fc2")}
    study, genome = _bits_study(tmp_path, precision)
    assert local_trials.space_choices(FIXED) == {k: [v] for k, v in study.trials[0].user_attrs["arch"].items()}
    added = local_trials.run_local_search(study, 2, base=FIXED, tune_space=SPACE, out_root=tmp_path, retrain_epochs=1,
                                          objectives="accuracy,latency,energy", inner_accelerator="exhaustive")
    assert len(added) == 2
    for trial in added:
        a = trial.user_attrs
        move = a[ls.ATTR]
        assert move["label"].startswith("bits:") and (move["from"], move["to"]) == (8, 4)
        layer = move["label"].split(":", 1)[1]
        parent = study.trials[move["parent"]].user_attrs
        assert a["arch"] == parent["arch"]  # the network is the parent's; one layer's width changed
        changed = {n for n in a["precision"] if a["precision"][n] != parent["precision"][n]}
        assert changed == {layer} and a["precision"][layer] == {"weight_bits": 4, "act_bits": 4}
        run_dir = tmp_path / a["run_dir"]
        assert read_precision(run_dir / runs.PRECISION) == {n: (v["weight_bits"], v["act_bits"]) for n, v in a["precision"].items()}
        retrained = json.loads((run_dir / runs.RETRAIN / "retrain.json").read_text())
        assert retrained["quantized"] is True and a["accuracy"] == retrained["test_acc"]
        config = SearchConfig.from_dict(a["config"])  # priced at its widths on the accelerator the trial names
        shapes = local_trials.Pricer(FIXED, SPACE, NAMES, "off", bits=lb.BitsMoves(FIXED)).layers(
            {**a["arch"], **lb.BitsMoves(FIXED).entries(read_precision(run_dir / runs.PRECISION))})
        assert {(s.name, s.weight_bits, s.act_bits) for s in shapes} >= {(layer, 4, 4)}
        report = build_cost_model(config).evaluate(shapes)
        assert report.latency_ms == pytest.approx(a["latency_ms"]) and report.energy_uj == pytest.approx(a["energy_uj"])
        assert a["area_mm2"] <= BUDGET
    edp = [t.user_attrs["latency_ms"] * t.user_attrs["energy_uj"] for t in (study.trials[0], *added)]
    assert edp[2] < edp[1] < edp[0]  # each narrowed layer: less energy (MACs and traffic at 4 bits), no more latency
    target = export_trial(study, added[-1].number, tmp_path / "export")  # exported with its widths
    assert read_precision(target / runs.PRECISION) == read_precision(tmp_path / added[-1].user_attrs["run_dir"] / runs.PRECISION)


def test_a_bits_studys_neighbors_are_one_architecture_choice_or_one_layers_width():
    base = SMALL.replace(bits=(4, 8))
    moves = lb.BitsMoves(base)
    pricer = local_trials.Pricer(base, SPACE.for_cost_mode(base.cost_mode), NAMES, "off", bits=moves)
    arch = {"conv1_width": 8, "conv1_kernel": 5, "conv2_width": 8, "conv2_kernel": 5, "fc1_width": 16}
    genome = {**arch, "bits:conv1": 8, "bits:conv2": 4, "bits:fc1": 8, "bits:fc2": 8}
    found = pricer.moves(local_trials.space_choices(base))(genome)
    labels = sorted(label for _, label, _, _ in found)
    assert labels == sorted(["conv1_width", "conv1_kernel", "conv2_width", "conv2_kernel",
                             "bits:conv1", "bits:conv2", "bits:fc1", "bits:fc2"])
    for neighbor, label, old, new in found:
        assert [k for k in genome if genome[k] != neighbor[k]] == [label] and (genome[label], neighbor[label]) == (old, new)
        assert set(neighbor) == set(genome)  # lenet keeps its layer names: every width carried over
    shapes = {s.name: (s.weight_bits, s.act_bits) for s in pricer.layers(genome)}
    assert shapes == {"conv1": (8, 8), "conv2": (4, 4), "fc1": (8, 8), "fc2": (8, 8)}


def test_tune_runs_a_local_search_on_a_bits_study(cli, tmp_path):
    from tests.tuning.test_cosearch import TINY
    from uboost.tuning import load_study

    out = tmp_path / "t"
    result = cli("tune", *TINY, "--rows", "8", "--cols", "8", "--retrain-epochs", "1", "--out", out, "--seed", "0",
                 "--trials", "1", "--bits", "4,8", "--local-search", "1")
    assert result.code == 0, (result.out, result.err)
    local = [t for t in load_study(out).trials if ls.ATTR in t.user_attrs]
    assert len(local) == 1, result.out
    a = local[0].user_attrs
    assert set(a["precision"]) == {"conv1", "conv2", "fc1", "fc2"}  # every layer priced and retrained at its width
    assert read_precision(tmp_path / a["run_dir"] / runs.PRECISION) == {n: (v["weight_bits"], v["act_bits"])
                                                                         for n, v in a["precision"].items()}
    exported = cli("tune", "--out", out, "--export", str(local[0].number))  # it comes with the trial's retrain:
    assert exported.code == 0 and "--force" in exported.out, exported.out  # the next step it names must run
    target = out / f"export-{local[0].number}"
    assert (target / "retrain" / "model.pt").is_file() and not list(target.rglob("*.ckpt"))  # no checkpoint copied
    r = cli("retrain", target, "--epochs", "1", "--force"); assert r.code == 0, (r.out, r.err)


def test_a_bits_study_tells_apart_one_network_at_two_widths():
    from tests.tuning.test_local_search import Trial

    moves = lb.BitsMoves(SMALL.replace(bits=(4, 8)))
    narrow = {**EIGHT, "conv2": {"weight_bits": 4, "act_bits": 4}}
    trials = [Trial(0, ARCH, 0.9, 2.0, precision=EIGHT), Trial(1, ARCH, 0.8, 1.0, precision=narrow),
              Trial(2, ARCH, 0.7, 1.5, precision=narrow)]
    assert len(ls.records(trials, "latency")) == 1  # by the architecture alone: one network
    recs = sorted(ls.records(trials, "latency", moves.genome), key=lambda r: r.cost)
    assert [(r.arch["bits:conv2"], r.cost, r.trial.number) for r in recs] == [(4, 1.0, 1), (8, 2.0, 0)]
    assert recs[0].accuracy == pytest.approx(0.75)  # the mean of the two trials at those widths
