"""Inner accelerator choice per trial: the same pick as brute force, never over budget, carried by export."""

from __future__ import annotations

import functools
import itertools
import json
import math

import optuna
import pytest
import torch

from tests.cli.conftest import cli, one_line_error  # noqa: F401 - `cli` is a fixture
from tests.tuning.test_cosearch import BASE, KB_MM2, LAYERS, PE_MM2, TINY
from uboost import runs
from uboost.exceptions import ConfigError
from uboost.hardware.layers import LayerShape
from uboost.search import SearchConfig, build_cost_model
from uboost.tuning import AcceleratorSpace, TuneSpace, area_of, create_study, export_trial, objective
from uboost.tuning import inner_accelerator as inner
from uboost.tuning.inner_pricing import InnerPricer, NetworkPricing, pricer_for

BASE_PTS = BASE.replace(operating_points="rk3576-npu", clock_hz=900e6)
CLOCKS = (600e6, 900e6)
# 16x8 with 8 kB buffers is out: 128 PEs + 10 kB fit, 128 PEs + 18 kB do not (recpipe12, by hand)
BUDGET = 128 * PE_MM2 + 12 * KB_MM2
NET = LAYERS + [LayerShape(name="c2", kind="conv", in_channels=8, out_channels=16, kernel_h=3, kernel_w=3,
                           in_h=8, in_w=8, out_h=6, out_w=6)]


def _space(budget=BUDGET) -> TuneSpace:
    return TuneSpace(rows=(4, 8, 16), cols=(4, 8), dataflows=("ws", "os", "is"), temperature=None,
                     accelerator=AcceleratorSpace(ifmap_sram_kb=(2, 8), filter_sram_kb=(2, 8), ofmap_sram_kb=(2,),
                                                  clock_hz=CLOCKS, area_budget_mm2=budget))


@functools.lru_cache(maxsize=1)
def _every_accelerator() -> tuple:
    """Every accelerator of :func:`_space` through the ordinary path (TuneSpace.apply, build_cost_model,
    evaluate), budget or not: ``(objective values, area, config)``."""
    space = _space()
    acc = space.accelerator
    found = []
    for rows, cols, flow, i, f, o, clock in itertools.product(space.rows, space.cols, space.dataflows, acc.ifmap_sram_kb,
                                                              acc.filter_sram_kb, acc.ofmap_sram_kb, acc.clock_hz):
        point = dict(ifmap_sram_kb=i, filter_sram_kb=f, ofmap_sram_kb=o, clock_hz=clock)
        cfg = space.apply(BASE_PTS, {"array": f"{rows}x{cols}", "dataflow": flow, "accelerator_point": point})
        report = build_cost_model(cfg).evaluate(NET)
        found.append(({"edp": report.edp_uj_ms, "latency": report.latency_ms, "energy": report.energy_uj}, area_of(cfg), cfg))
    return tuple(found)


def _brute_force(objective: str, *, budget: bool = True, limit: float = BUDGET):
    """The best accelerator for ``objective`` (ties: the smaller area), and how many fit the budget ``limit``."""
    found = [(values[objective], area, cfg) for values, area, cfg in _every_accelerator() if not budget or area <= limit]
    return min(found, key=lambda v: v[:2]), len(found)


@pytest.mark.parametrize("objective", ["edp", "latency", "energy"])
def test_the_inner_choice_is_brute_force_within_the_budget(objective):
    # the least energy is a 4x4 array with 8 kB buffers: a smaller budget (16 PEs and 12 kB) binds for it
    limit = 16 * PE_MM2 + 12 * KB_MM2 if objective == "energy" else BUDGET
    space = _space(limit)
    (value, area, best), within = _brute_force(objective, limit=limit)
    (free_value, free_area, _), _ = _brute_force(objective, budget=False)
    assert free_area > limit and free_value < value  # the budget binds: ignoring it would pick another design
    for prune in (True, False):
        choice = inner.choose(NET, space, BASE_PTS, objective=objective, prune=prune)
        assert choice.config.hardware_spec() == best.hardware_spec() and choice.config == best
        assert choice.value == pytest.approx(value, rel=1e-12) and choice.area_mm2 == pytest.approx(area, rel=1e-12)
        assert choice.area_mm2 <= limit and (choice.candidates, choice.within_budget) == (3 * 2 * 3 * 2 * 2 * 2, within)
        assert choice.structures == within // len(CLOCKS)  # cycles and words priced once per structure, not per clock
    pruned = inner.choose(NET, space, BASE_PTS, objective=objective)
    assert pruned.priced_structures < pruned.structures  # the lower bounds spare most structures their pricing


def test_the_lower_bound_never_exceeds_the_exact_price():
    space = _space(budget=10.0)
    pool, _ = inner.candidates(space, BASE_PTS)
    for what in ("edp", "latency", "energy"):
        net = NetworkPricing(NET, pricer_for("systolic-mem"), what)
        for cand in pool:
            assert net.lower_bound(cand) <= net.exact([cand])[0] * (1 + 1e-12), (cand.array, cand.dataflow, cand.point)


@pytest.mark.parametrize("bits", [None, (4, 8)], ids=["8-bit", "mixed"])
def test_the_closed_forms_are_energy_breakdown_summed_over_the_layers(bits):
    """The bound sums the layers once per unbounded accelerator and prices each candidate in closed form: the
    value of energy_breakdown's per-layer tensors at the candidate's buffers and operating point (less 1e-9);
    the exact price sums them once per structure the same way."""
    import dataclasses

    from uboost.tuning.inner_pricing import objective_of, unbounded

    net_layers = NET if bits is None else [dataclasses.replace(layer, weight_bits=bits[i % 2], act_bits=bits[(i + 1) % 2])
                                           for i, layer in enumerate(NET)]
    pool, _ = inner.candidates(_space(budget=10.0), BASE_PTS)
    for what in ("edp", "latency", "energy"):
        net = NetworkPricing(net_layers, pricer_for("systolic-mem"), what)
        for cand in pool:
            cycles, words = net.pricer.price(unbounded(cand.spec), net.table, net.keys)
            tensors = objective_of(cand.spec, cycles, words, net.macs(cand.spec), net.table, what)
            assert net.lower_bound(cand) == pytest.approx(tensors, rel=2e-9) and net.lower_bound(cand) <= tensors
            cycles, words = net.pricer.price(cand.spec, net.table, net.keys)  # and the exact price, at the real buffers
            assert net.exact([cand])[0] == pytest.approx(objective_of(cand.spec, cycles, words, net.macs(cand.spec), net.table, what),
                                                         rel=1e-12)


def test_candidates_keep_the_pe_budget_as_well_as_the_mm2_one():
    import dataclasses

    space = dataclasses.replace(_space(budget=10.0), area_budget=32)  # --area-budget 32: rows x cols <= 32 PEs
    pool, total = inner.candidates(space, BASE_PTS)
    everything, _ = inner.candidates(_space(budget=10.0), BASE_PTS)
    assert total == 144 and pool
    assert {c.array for c in pool} == {"4x4", "4x8", "8x4"} and {c.array for c in everything} > {c.array for c in pool}
    assert [c for c in everything if int(c.array.split("x")[0]) * int(c.array.split("x")[1]) <= 32] == pool
    choice = inner.choose(NET, space, BASE_PTS)  # the choice too: the PE budget holds for the kept accelerator
    assert choice.config.hardware_spec().rows * choice.config.hardware_spec().cols <= 32


def test_candidate_specs_are_what_the_trial_config_prices():
    space = _space()
    pool, total = inner.candidates(space, BASE_PTS)
    assert total == 144 and all(c.area_mm2 <= BUDGET for c in pool)
    for cand in pool[::7]:
        cfg = space.apply(BASE_PTS, {"array": cand.array, "dataflow": cand.dataflow, "accelerator_point": cand.point})
        assert cfg.hardware_spec() == cand.spec and area_of(cfg) == pytest.approx(cand.area_mm2, rel=1e-12)


def test_trials_that_sampled_other_accelerators_share_the_candidates_and_others_do_not():
    """The pricer keeps a study's candidates: a trial config that differs only in searched values (array, buffers,
    clock) reuses them; one that differs in an unsearched one (the DRAM bandwidth here) builds its own, which
    price differently."""
    space = _space()
    pricer = InnerPricer("systolic-mem")
    built = []

    def pool(config):
        return pricer.pool(inner._pool_key(space, config), lambda: built.append(config) or inner._structures(pricer, space, config))

    first = pool(BASE_PTS)
    sampled = space.apply(BASE_PTS, {"array": "4x8", "dataflow": "is", "accelerator_point": dict(
        ifmap_sram_kb=8, filter_sram_kb=2, ofmap_sram_kb=2, clock_hz=600e6)})
    assert sampled.hardware_spec() != BASE_PTS.hardware_spec()
    assert pool(sampled) is first and len(built) == 1
    other = BASE_PTS.replace(dram_bw_words=BASE_PTS.dram_bw_words * 2)
    again = pool(other)
    assert len(built) == 2 and [c.spec.dram_bw_words for c in again[0]] != [c.spec.dram_bw_words for c in first[0]]
    assert [c.spec for c in inner.candidates(space, other)[0]] == [c.spec for c in again[0]]


def test_modes_objectives_and_the_enumeration_cap():
    assert inner.check_inner(None, area_budget=True) == "exhaustive" and inner.check_inner(None, area_budget=False) == "off"
    assert inner.check_inner("off", area_budget=True) == "off"
    with pytest.raises(ConfigError, match="unknown inner accelerator choice 'greedy'"):
        inner.check_inner("greedy", area_budget=True)
    assert inner.hardware_objective(["accuracy", "latency_ms", "energy_uj"]) == "edp"
    assert inner.hardware_objective(["accuracy", "latency_ms"]) == "latency"
    assert inner.hardware_objective(["accuracy", "energy_uj", "area_mm2"]) == "energy"
    assert inner.hardware_objective(["accuracy", "area_mm2"]) == "edp"
    huge = TuneSpace(rows=range(1, 513), cols=range(1, 513), temperature=None)
    with pytest.raises(ConfigError, match="would price 262,144 accelerators"):
        inner.check_space(huge, BASE)
    with pytest.raises(ConfigError, match="unknown hardware objective"):
        inner.choose(NET, _space(), BASE_PTS, objective="power")


def test_export_carries_the_chosen_accelerator(tmp_path):
    space = _space()
    searched = space.apply(BASE_PTS, {"array": "4x4", "dataflow": "ws",
                                      "accelerator_point": dict(ifmap_sram_kb=2, filter_sram_kb=2, ofmap_sram_kb=2, clock_hz=600e6)})
    run_dir = tmp_path / "trial"
    run_dir.mkdir()
    names = ["accuracy", "latency_ms", "energy_uj"]
    attrs = inner.trial_attrs([s.to_dict() for s in NET], searched, space, names, run_dir)
    (run_dir / runs.RESULT).write_text(json.dumps({"val_acc": 0.5, "latency_ms": 99.0, "cycles": 99.0, "utilization": 0.99,
                                                   "expected_latency_ms": 98.0}))  # the searched accelerator's numbers
    (_, _, best), _ = _brute_force("edp")
    assert attrs["config"] == best.to_dict() and attrs["search_config"] == searched.to_dict() and attrs["search_array"] == "4x4"
    assert attrs["array"] == best.hardware_spec().array != "4x4" and attrs["area_mm2"] <= BUDGET
    assert attrs["area_over_budget_mm2"] == pytest.approx(attrs["area_mm2"] - BUDGET)
    study = create_study(tmp_path, objectives=",".join(("accuracy", "latency", "energy")))
    values = [0.9, attrs["latency_ms"], attrs["energy_uj"]]
    study.add_trial(optuna.trial.create_trial(values=values, user_attrs={**attrs, "arch": {"a": 1}, "accuracy": 0.9,
                                                                          "run_dir": str(run_dir)}))
    target = export_trial(study, 0, tmp_path / "export")
    config = SearchConfig.from_dict(runs.load_run(target).config)
    assert config.hardware_spec() == best.hardware_spec()
    hardware = json.loads((target / runs.HARDWARE).read_text())
    assert hardware["total"]["latency_ms"] == pytest.approx(attrs["latency_ms"]) and hardware["hardware"]["rows"] == config.hardware_spec().rows
    result = json.loads((target / runs.RESULT).read_text())  # re-priced with the chosen accelerator, as profile would
    assert result["latency_ms"] == hardware["total"]["latency_ms"] and result["cycles"] == hardware["total"]["cycles"]
    assert result["utilization"] == hardware["total"]["utilization"] and result["priced_on"] == config.hardware_spec().array
    assert result["val_acc"] == 0.5  # what the search itself measured stays, its estimates apart: every top-level cost
    # is the chosen accelerator's (the searched one's argmax/expected latency and energy sat beside them, unmarked)
    assert "expected_latency_ms" not in result
    assert result["on_searched_accelerator"] == {"expected_latency_ms": 98.0, "array": "4x4"}
    tune = json.loads((target / "tune.json").read_text())
    assert tune["inner_accelerator"]["objective"] == "edp" and tune["search_array"] == "4x4"
    saved = json.loads((target / inner.INNER_FILE).read_text())
    assert saved["search_config"] == searched.to_dict() and math.isclose(saved["value"], attrs["latency_ms"] * attrs["energy_uj"])


INNER_TRIAL_BUDGET = 64 * PE_MM2 + 12 * KB_MM2


def one_inner_trial(tmp_path, base: SearchConfig, **kwargs):
    """One real tiny trial (searched on 4x4 WS, 2 kB buffers) with the inner choice over 16 accelerators
    within budget, objectives accuracy, latency and energy; ``kwargs`` go to :func:`objective`."""
    space = TuneSpace(rows=(4, 8), cols=(4, 8), dataflows=("ws", "os"), temperature=None,
                      accelerator=AcceleratorSpace(ifmap_sram_kb=(2, 8), filter_sram_kb=(2,), ofmap_sram_kb=(2,),
                                                   area_budget_mm2=INNER_TRIAL_BUDGET))
    study = create_study(tmp_path, objectives="accuracy,latency,energy")
    study.enqueue_trial({"rows": 4, "cols": 4, "dataflow": "ws", "latency_weight": 1.0, "ifmap_sram_kb": 2,
                         "filter_sram_kb": 2, "ofmap_sram_kb": 2})
    study.optimize(lambda t: objective(t, base=base, tune_space=space, out_root=tmp_path, objectives="accuracy,latency,energy",
                                       **kwargs), n_trials=1)
    return study.trials[0]


@pytest.mark.slow  # ~15 s: one real tiny search in a trial process
def test_a_trial_reports_its_inner_choice(tmp_path):
    trial = one_inner_trial(tmp_path, BASE)
    a = trial.user_attrs
    assert trial.state.name == "COMPLETE", a.get("fail_reason")
    assert a["search_array"] == "4x4" and a["array"] != "4x4" and a["inner_accelerator"]["within_budget"] == 16
    assert trial.values[1:] == [a["latency_ms"], a["energy_uj"]] and a["area_mm2"] <= INNER_TRIAL_BUDGET
    assert SearchConfig.from_dict(a["config"]).hardware_spec().array == a["array"]
    assert (tmp_path / "trials").exists() and any(tmp_path.rglob(inner.INNER_FILE))


@pytest.mark.parametrize("args,fragment", [
    (["--area-budget-mm2", "1", "--sram-kb", "4", "--tech", "recpipe12", "--inner-accelerator", "greedy"],
     "unknown inner accelerator choice 'greedy'"),
    (["--area-budget-mm2", "100", "--sram-kb", "4", "--rows", "1:600", "--cols", "1:600"], "would price 360,000 accelerators"),
])
def test_bad_inner_choice_input_is_one_red_line_and_writes_nothing(cli, tmp_path, args, fragment):
    one_line_error(cli("tune", *TINY, "--trials", "1", "--out", tmp_path / "t", *args), fragment)
    assert not (tmp_path / "t").exists()


def test_the_pricer_memo_is_bounded_and_prices_the_same_after_dropping_structures():
    pool, _ = inner.candidates(_space(budget=10.0), BASE_PTS)
    specs = list({InnerPricer("systolic-mem").structure_key(c.spec): c.spec for c in pool}.values())[:6]
    free = InnerPricer("systolic-mem")
    small = InnerPricer("systolic-mem", max_rows=2 * len(NET))  # two structures' rows at most
    table = NetworkPricing(NET, free, "edp")
    for spec in specs + specs[:2]:  # the first two again, after they were dropped
        want_cycles, want_words = free.price(spec, table.table, table.keys)
        cycles, words = small.price(spec, table.table, table.keys)
        assert small.memo_rows <= 2 * len(NET)
        assert torch.equal(cycles, want_cycles) and words.keys() == want_words.keys()
        assert all(torch.equal(words[n], want_words[n]) for n in words)
    assert free.priced_layers == len(specs) * len(NET)  # the unbounded memo priced each structure once
    assert small.priced_layers == (len(specs) + 2) * len(NET)  # the bounded one priced the dropped two again
    small.price(specs[1], table.table, table.keys)  # the last one priced is still held: nothing priced again
    assert small.priced_layers == (len(specs) + 2) * len(NET)


@pytest.mark.parametrize("accelerator", [None, AcceleratorSpace(ifmap_sram_kb=(2, 8))])
def test_an_area_objective_without_a_budget_reports_the_chosen_accelerators_area(tmp_path, accelerator):
    """Area an objective, no mm^2 budget: the trial's area is the chosen accelerator's (it kept the sampled one's)."""
    space = TuneSpace(rows=(4, 16), cols=(4, 16), temperature=None, accelerator=accelerator)
    searched = BASE_PTS.replace(array="16x4")
    attrs = inner.trial_attrs([s.to_dict() for s in NET], searched, space, ["accuracy", "latency_ms", "area_mm2"], tmp_path)
    chosen = SearchConfig.from_dict(attrs["config"])
    assert attrs["array"] == chosen.hardware_spec().array != "16x4"
    assert attrs["area_mm2"] == pytest.approx(area_of(chosen), rel=1e-12)
    # without the area objective nothing is priced for area: the trial sets none
    assert "area_mm2" not in inner.trial_attrs([s.to_dict() for s in NET], searched, space, ["accuracy", "latency_ms"], tmp_path)


def test_export_prices_the_trials_retrain_on_the_chosen_accelerator(tmp_path):
    """The trial's retrain (its child process) priced the network on the searched accelerator: exported beside the
    chosen accelerator's config, hardware.json and result.json, it said another array and latency."""
    space = _space()
    searched = space.apply(BASE_PTS, {"array": "4x4", "dataflow": "ws",
                                      "accelerator_point": dict(ifmap_sram_kb=2, filter_sram_kb=2, ofmap_sram_kb=2, clock_hz=600e6)})
    run_dir = tmp_path / "trial"
    (run_dir / runs.RETRAIN).mkdir(parents=True)
    names = ["accuracy", "latency_ms", "energy_uj"]
    attrs = inner.trial_attrs([s.to_dict() for s in NET], searched, space, names, run_dir)
    on_searched = build_cost_model(searched).evaluate(NET)
    (run_dir / runs.RETRAIN / runs.HARDWARE).write_text(json.dumps(on_searched.to_dict()))
    (run_dir / runs.RETRAIN / "retrain.json").write_text(json.dumps({"test_acc": 0.7, "precision": None, **{
        "cycles": on_searched.cycles, "latency_ms": on_searched.latency_ms, "utilization": on_searched.utilization,
        "macs": on_searched.macs, "array": "4x4", "dataflow": "ws", "cost_model": "systolic-mem"}}))
    (run_dir / runs.RETRAIN / "model.pt").write_bytes(b"weights")
    study = create_study(tmp_path, objectives="accuracy,latency,energy")
    study.add_trial(optuna.trial.create_trial(values=[0.7, attrs["latency_ms"], attrs["energy_uj"]],
                                              user_attrs={**attrs, "arch": {"a": 1}, "accuracy": 0.7, "run_dir": str(run_dir)}))
    target = export_trial(study, 0, tmp_path / "export")
    config = SearchConfig.from_dict(runs.load_run(target).config)
    what_retrain_prices = build_cost_model(config).evaluate(NET)  # `uboost retrain EXPORT --force`, `profile EXPORT`
    assert json.loads((target / runs.RETRAIN / runs.HARDWARE).read_text()) == json.loads((target / runs.HARDWARE).read_text())
    info = json.loads((target / runs.RETRAIN / "retrain.json").read_text())
    assert info["latency_ms"] == pytest.approx(what_retrain_prices.latency_ms) != pytest.approx(on_searched.latency_ms)
    assert info["cycles"] == what_retrain_prices.cycles and info["array"] == config.hardware_spec().array != "4x4"
    assert info["test_acc"] == 0.7 and (target / runs.RETRAIN / "model.pt").read_bytes() == b"weights"  # kept as trained


def test_area_as_an_objective_leaves_the_accelerator_to_the_sampler():
    """Under an mm² budget the inner choice is on by default; with area among the objectives it is off (it would pick the
    largest array within the budget for latency and give every trial one area), unless asked for."""
    from uboost.tuning import TuneSpace
    from uboost.tuning.accelerator_space import AcceleratorSpace
    from uboost.tuning.objective import inner_mode

    space = TuneSpace(rows=(4, 8), cols=(4, 8), accelerator=AcceleratorSpace(area_budget_mm2=0.2, ifmap_sram_kb=(2, 8)))
    assert inner_mode(None, space) == "exhaustive"
    assert inner_mode(None, space, area_objective=True) == "off"
    assert inner_mode("exhaustive", space, area_objective=True) == "exhaustive"
    assert inner_mode(None, TuneSpace(rows=(4, 8), cols=(4, 8))) == "off"
