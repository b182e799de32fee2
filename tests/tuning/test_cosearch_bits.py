"""Co-search with the network's bitwidths: the inner choice prices the searched bits, export carries them, `tune --bits`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import optuna
import pytest

from tests.cli.conftest import cli, one_line_error  # noqa: F401 - `cli` is a fixture
from tests.tuning.test_cosearch import BASE, TINY
from tests.tuning.test_inner_accelerator import BASE_PTS, BUDGET, NET, _every_accelerator, _space, one_inner_trial
from uboost import runs
from uboost.search import SearchConfig, build_cost_model
from uboost.tuning import create_study, export_trial
from uboost.tuning import inner_accelerator as inner

NET4 = [dataclasses.replace(layer, weight_bits=4, act_bits=4) for layer in NET]
MIXED = [NET4[0], *NET[1:]]  # first layer at 4 bits, the others at 8
PRECISION = {"conv1": {"weight_bits": 4, "act_bits": 4}, "fc1": {"weight_bits": 8, "act_bits": 8}}


@pytest.mark.parametrize("net", [NET4, MIXED], ids=["4-bit", "mixed"])
def test_the_inner_choice_prices_the_network_at_its_bits(net):
    space = _space()
    eight = inner.choose(NET, space, BASE_PTS)  # fills the process's memo at 8 bits first: rows must not be shared
    choice = inner.choose(net, space, BASE_PTS)
    priced = [(build_cost_model(cfg).evaluate(net).edp_uj_ms, area, cfg) for _, area, cfg in _every_accelerator() if area <= BUDGET]
    value, area, best = min(priced, key=lambda v: v[:2])  # brute force at the network's bits, the ordinary path
    assert choice.config == best and choice.value == pytest.approx(value, rel=1e-12) and choice.area_mm2 == pytest.approx(area)
    assert [(l.layer.weight_bits, l.layer.act_bits) for l in choice.report.layers] == [(l.weight_bits, l.act_bits) for l in net]
    assert choice.value < eight.value  # narrower operands: less energy (and fewer stalls) on any accelerator
    on_same = build_cost_model(choice.config).evaluate(NET)
    if net is NET4:  # horowitz45: a 4x4-bit MAC is (16 + 32) / (64 + 32) of an 8x8-bit one (32-bit accumulator), by hand
        assert choice.report.energy_breakdown_uj["mac"] == pytest.approx(0.5 * on_same.energy_breakdown_uj["mac"], rel=1e-12)
        assert choice.report.cycles <= on_same.cycles  # fixed PEs: same compute; buffers hold twice the elements


def test_unbounded_buffers_move_half_the_bits_at_4_bits():
    cfg = BASE_PTS.replace(array="8x8", dataflow="os", sram_kb=None)
    four, eight = (build_cost_model(cfg).evaluate(n) for n in (NET4, NET))
    assert four.cycles == eight.cycles and four.words == eight.words  # elements moved: the same; fixed PEs: same cycles
    for part in ("mac", "sram", "dram"):  # each element is half the bits (the MAC: by hand, above)
        assert four.energy_breakdown_uj[part] == pytest.approx(0.5 * eight.energy_breakdown_uj[part], rel=1e-12)


def test_export_writes_the_trials_bits_from_the_storage(tmp_path):
    study = create_study(tmp_path, objectives="accuracy,latency")
    attrs = {"arch": {"a": 1}, "accuracy": 0.9, "latency_ms": 0.01, "config": BASE.replace(bits=(4, 8)).to_dict(),
             "precision": PRECISION, "run_dir": str(tmp_path / "ran-elsewhere")}  # no local run directory
    study.add_trial(optuna.trial.create_trial(values=[0.9, 0.01], user_attrs=attrs))
    plain = {k: v for k, v in attrs.items() if k != "precision"}
    study.add_trial(optuna.trial.create_trial(values=[0.8, 0.01], user_attrs={**plain, "config": BASE.to_dict()}))
    target = export_trial(study, 0, tmp_path / "export")
    assert json.loads((target / runs.PRECISION).read_text()) == PRECISION
    assert json.loads((target / runs.CONFIG).read_text())["bits"] == [4, 8]
    assert not (export_trial(study, 1, tmp_path / "export-8bit") / runs.PRECISION).exists()


@pytest.mark.parametrize("bits,fragment", [("4,x", "--bits must be comma-separated whole numbers"),
                                           ("1,8", "--bits must be whole numbers from 2 to 16")])
def test_bad_tune_bits_are_one_red_line_and_write_nothing(cli, tmp_path, bits, fragment):
    one_line_error(cli("tune", *TINY, "--trials", "1", "--out", tmp_path / "t", "--bits", bits), fragment)
    assert not (tmp_path / "t").exists()


def test_tune_bits_reach_every_trials_config(cli, tmp_path, monkeypatch):
    from uboost import tuning

    seen = []
    monkeypatch.setattr(tuning, "check_config", lambda base, **_: None)  # the trial-process config check: slow, not tested here
    monkeypatch.setattr(tuning, "run_study", lambda *, base, **_: seen.append(base))
    config = tmp_path / "search.toml"
    config.write_text("[search]\nbits = [2, 8]\n")
    for out, extra, expected in (("a", ["--bits", "4,8"], (4, 8)), ("b", ["--config", config], (2, 8)),
                                 ("c", ["--config", config, "--bits", "4,8"], (4, 8)), ("d", [], None)):
        result = cli("tune", *TINY, "--trials", "1", "--out", tmp_path / out, *extra)
        assert result.code == 0, result.err
        assert seen[-1].bits == expected  # the flag overrides the file, as for `uboost search`


@pytest.mark.slow  # ~20-40 s: one real tiny search with bits + a 1-epoch quantization-aware retrain in a trial process
def test_a_bits_trial_is_retrained_and_priced_at_its_bits(tmp_path):
    from uboost.networks import load_frozen_network

    trial = one_inner_trial(tmp_path, BASE.replace(bits=(4, 8)), retrain_epochs=1)
    a = trial.user_attrs
    assert trial.state.name == "COMPLETE", a.get("fail_reason")
    run_dir = Path(a["run_dir"])
    bits = {name: (e["weight_bits"], e["act_bits"]) for name, e in a["precision"].items()}
    assert set(bits.values()) <= {(4, 4), (8, 8)} and json.loads((run_dir / runs.PRECISION).read_text()) == a["precision"]
    retrained = json.loads((run_dir / "retrain" / "retrain.json").read_text())
    assert retrained["quantized"] is True and a["accuracy"] == pytest.approx(retrained["test_acc"])  # the quantized network's
    network = load_frozen_network(run_dir)  # at its precision.json
    report = build_cost_model(SearchConfig.from_dict(a["config"])).evaluate(network.module, network.input_shape)
    assert [(l.layer.weight_bits, l.layer.act_bits) for l in report.layers] == list(bits.values())
    assert (a["latency_ms"], a["energy_uj"]) == pytest.approx((report.latency_ms, report.energy_uj), rel=1e-9)
