"""Co-search in `uboost tune`: the accelerator space, the area budget as a constraint, objectives, the cost cache."""

from __future__ import annotations

import json

import optuna
import pytest

from tests.cli.conftest import cli, one_line_error  # noqa: F401 - `cli` is a fixture
from uboost import runs
from uboost.exceptions import ConfigError
from uboost.hardware import HardwareSpec
from uboost.hardware.layers import LayerShape, LayerTable
from uboost.hardware.systolic_mem import MemorySystolicArray
from uboost.search import SearchConfig
from uboost.tuning import (
    AREA_CONSTRAINT, AcceleratorSpace, CachedCostModel, TuneSpace, area_of, check_objectives, create_study, export_trial,
    objective, run_study,
)

# recpipe12 (hardware/area.py): 506,891 um^2 per 32x32 array, 29,142 um^2 per 32 kB, no fixed part
PE_MM2, KB_MM2 = 0.506891 / 1024, 0.029142 / 32
BASE = SearchConfig(space="lenet", space_options={"widths": [4, 8], "hidden": [16]}, dataset="digits", image_size=8,
                    epochs=1, max_samples=128, batch_size=32, cost_model="systolic-mem", sram_kb=2, dram_bw_words=4.0,
                    hardware={"area": "recpipe12"})
TINY = ["--space", "lenet", "--dataset", "digits", "--image-size", "8", "--epochs", "1", "--max-samples", "64", "--batch-size", "32"]
LAYERS = [
    LayerShape(name="c", kind="conv", in_channels=3, out_channels=8, kernel_h=3, kernel_w=3, in_h=10, in_w=10, out_h=8, out_w=8),
    LayerShape(name="f", kind="linear", in_channels=64, out_channels=10),
]


def test_objectives_are_two_or_three_known_names():
    assert check_objectives(None) == ("accuracy", "latency")
    assert check_objectives("accuracy, energy,AREA") == ("accuracy", "energy", "area")
    for bad, fragment in (("accuracy,speed", "unknown objective 'speed'"), ("accuracy", "two or three"),
                          ("accuracy,latency,energy,area", "got 4"), ("area,area", "distinct")):
        with pytest.raises(ConfigError, match=fragment):
            check_objectives(bad)


def test_a_missing_objective_value_is_one_line_naming_it():
    from uboost.tuning.objectives import values_from

    assert values_from({"accuracy": 0.5, "area_mm2": 2}, ["accuracy", "area_mm2"]) == [0.5, 2.0]
    for attrs in ({"accuracy": 0.5}, {"accuracy": 0.5, "area_mm2": None}):
        with pytest.raises(ConfigError, match=r"^the trial has no value for its objective area_mm2 \(got None\)$"):
            values_from(attrs, ["accuracy", "area_mm2"])


def test_accelerator_point_configures_buffers_bandwidth_clock_and_pe():
    space = AcceleratorSpace(ifmap_sram_kb=[2, 8], filter_sram_kb=[4], ofmap_sram_kb=[8, 16], dram_bw_words=[2, 8],
                             clock_hz=[600e6, 800e6], pe_modes=["fixed", "bit-serial"])
    base = BASE.replace(operating_points="rk3576-npu", clock_hz=900e6)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    tune = TuneSpace(rows=(8, 16), cols=(8,), accelerator=space)
    for _ in range(8):
        trial = study.ask()
        cfg = tune.apply(base, tune.suggest(trial))
        spec, p = cfg.hardware_spec(), trial.params
        assert spec.buffer_kb == (p["ifmap_sram_kb"], 4, p["ofmap_sram_kb"]) and spec.dram_words_per_cycle == p["dram_bw_words"]
        assert spec.clock_hz == p["clock_hz"] and spec.voltage == {600e6: 0.725, 800e6: 0.800}[p["clock_hz"]]  # rk3576 table
        assert spec.pe == p["pe"] and spec.array == f"{p['rows']}x8"
        study.tell(trial, 0.0)
    point = dict(ifmap_sram_kb=2, filter_sram_kb=4, ofmap_sram_kb=8)
    cfg = space.configure(BASE.replace(array="16x8"), point)
    assert area_of(cfg) == pytest.approx(128 * PE_MM2 + 14 * KB_MM2, rel=1e-12)  # 0.07611 mm^2, by hand
    assert set(tune.distributions()) >= {"ifmap_sram_kb", "dram_bw_words", "clock_hz", "pe"}
    json.dumps(tune.to_dict())
    assert "accelerator" not in TuneSpace().to_dict()  # earlier studies' stored space is unchanged


def test_spaces_no_trial_could_run_are_refused():
    with pytest.raises(ConfigError, match="smallest is 0.03"):
        TuneSpace(rows=(8, 16), cols=(8,), accelerator=AcceleratorSpace(area_budget_mm2=0.03)).check_accelerator(BASE)
    smallest = 64 * PE_MM2 + 6 * KB_MM2  # 8x8, three 2 kB buffers
    TuneSpace(rows=(8, 16), cols=(8,), accelerator=AcceleratorSpace(area_budget_mm2=smallest * 1.0001)).check_accelerator(BASE)
    with pytest.raises(ConfigError, match="no PE area for 'bitfusion'"):  # no cited area for BitFusion PEs
        AcceleratorSpace(pe_modes=["fixed", "bitfusion"], area_budget_mm2=10).check(BASE, rows=(8,), cols=(8,))
    with pytest.raises(ConfigError, match="sized buffers"):
        AcceleratorSpace(area_budget_mm2=10).check(BASE.replace(sram_kb=None), rows=(8,), cols=(8,))
    with pytest.raises(ConfigError, match="900 MHz is not in the table"):
        AcceleratorSpace(clock_hz=[900e6]).check(BASE.replace(operating_points="rk356x-gpu", clock_hz=800e6), rows=(8,), cols=(8,))
    with pytest.raises(ConfigError, match="positive whole numbers"):
        AcceleratorSpace(ifmap_sram_kb=[-8])


class Counting(MemorySystolicArray):
    calls = 0

    def cycles(self, layers, **kwargs):
        Counting.calls += 1
        return super().cycles(layers, **kwargs)

    def accesses(self, layers, **kwargs):
        Counting.calls += 1
        return super().accesses(layers, **kwargs)


def test_cost_cache_prices_an_accelerator_once(tmp_path):
    spec = HardwareSpec(rows=8, cols=8, sram_kb=2, dram_bw_words=2.0)
    exact = MemorySystolicArray(spec).evaluate(LAYERS)
    Counting.calls = 0
    first = CachedCostModel(Counting(spec), tmp_path).evaluate(LAYERS)
    assert Counting.calls > 0 and (first.cycles, first.energy_uj) == (exact.cycles, exact.energy_uj)
    Counting.calls = 0
    again = CachedCostModel(Counting(spec), tmp_path)  # a new trial process: only the table on disk is shared
    report = again.evaluate(LAYERS)
    assert Counting.calls == 0 and (again.hits, again.misses) == (4, 0)  # 2 layers x (cycles, words)
    assert (report.cycles, report.energy_uj, report.words) == (exact.cycles, exact.energy_uj, exact.words)
    other = CachedCostModel(Counting(HardwareSpec(rows=8, cols=8, sram_kb=4, dram_bw_words=2.0)), tmp_path)
    other.cycles(LayerTable.from_shapes(LAYERS))
    assert Counting.calls == 1 and len(list(tmp_path.glob("*.json"))) == 2  # another accelerator, another table
    soft = again.cycles(LayerTable.from_shapes(LAYERS), in_channels=LayerTable.from_shapes(LAYERS).in_channels * 0.5)
    assert Counting.calls == 2 and soft.shape == (2,)  # soft channels are no shapes: priced by the model
    from uboost.hardware.operating import OperatingPoint, at_point

    moved = again.spec = at_point(spec, OperatingPoint(freq_hz=5e8, voltage_v=0.7))  # pricing at another point
    assert again.spec is moved and again.key != other.key and again.path != CachedCostModel(Counting(spec), tmp_path).path


def test_a_lookup_table_edited_between_studies_is_priced_again_not_served_from_the_cache(tmp_path):
    """The cache key is the model and its spec: for a lookup model its rows too, or an edited table's old cycles
    would come back."""
    from uboost.hardware.lookup import LookupTable
    from uboost.hardware.systolic import SystolicArray

    spec = HardwareSpec(rows=8, cols=8)
    table = LookupTable.example(spec, LAYERS)
    layers = LayerTable.from_shapes(LAYERS)
    first = CachedCostModel(table, tmp_path).cycles(layers)
    assert first.tolist() == SystolicArray(spec).cycles(layers).tolist()
    edited = LookupTable(spec, table=[{**row, "cycles": 2 * float(row["cycles"])} for row in table._rows])
    cached = CachedCostModel(edited, tmp_path)
    assert cached.cycles(layers).tolist() == (2 * first).tolist() and (cached.hits, cached.misses) == (0, 2)
    assert CachedCostModel(LookupTable(spec, table=table._rows), tmp_path).key == CachedCostModel(table, tmp_path).key


def test_an_accelerator_over_the_budget_is_recorded_infeasible_without_a_search(tmp_path):
    budget = 64 * PE_MM2 + 6 * KB_MM2 + 1e-4  # 8x8 fits, 16x8 does not
    tune = TuneSpace(rows=(8, 16), cols=(8,), temperature=None, accelerator=AcceleratorSpace(area_budget_mm2=budget))
    study = create_study(tmp_path, objectives="accuracy,energy,area", sampler="nsga3")
    for _ in range(2):
        study.enqueue_trial({"rows": 16, "cols": 8, "latency_weight": 1.0})
    study.optimize(lambda t: objective(t, base=BASE, tune_space=tune, out_root=tmp_path, objectives="accuracy,energy,area"), n_trials=2)
    area = 128 * PE_MM2 + 6 * KB_MM2
    for t in study.trials:
        assert t.state.name == "COMPLETE" and t.values == [0.0, float("inf"), pytest.approx(area)]
        assert t.constraints[AREA_CONSTRAINT] == pytest.approx(area - budget) and t.user_attrs["skipped"] == "area_budget_mm2"
    assert study.best_trials == []  # infeasible trials are never best, even when they are the only ones
    assert not (tmp_path / "trials").exists()  # and never paid for a search
    assert isinstance(study.sampler, optuna.samplers.NSGAIIISampler) and study.metric_names == ["accuracy", "energy_uj", "area_mm2"]
    with pytest.raises(ConfigError, match="optimizes accuracy, energy_uj, area_mm2, not accuracy, latency_ms"):
        create_study(tmp_path)


@pytest.mark.slow  # ~30 s on the shared 2-core machine: two real searches in trial processes
def test_area_budget_cache_and_export_of_a_pareto_point(cli, tmp_path):
    """Real tiny searches: 16x8 is over the budget (never searched, never best); the two 8x8 trials share
    one accelerator, so the second prices nothing; a Pareto point exports with its accelerator."""
    budget = 64 * PE_MM2 + 6 * KB_MM2 + 1e-4  # 8x8 fits, 16x8 does not
    tune = TuneSpace(rows=(8, 16), cols=(8,), temperature=None, accelerator=AcceleratorSpace(area_budget_mm2=budget))
    study = run_study(base=BASE, tune_space=tune, out_root=tmp_path, n_trials=2, seed=3, objectives="accuracy,latency,area",
                      population_size=2)
    trials = study.trials
    over = [t for t in trials if t.params["rows"] == 16]
    ran = [t for t in trials if "arch" in t.user_attrs]
    assert len(ran) == 2 and over, [t.params for t in trials]
    for t in over:
        assert t.state.name == "COMPLETE" and t.user_attrs["skipped"] == "area_budget_mm2"
        assert t.constraints[AREA_CONSTRAINT] == pytest.approx(128 * PE_MM2 + 6 * KB_MM2 - budget) and t.values[0] == 0.0
        assert "run_dir" not in t.user_attrs  # no search, no directory
    best = study.best_trials
    assert best and all(t.params["rows"] == 8 and t.constraints[AREA_CONSTRAINT] <= 0 for t in best)
    assert study.metric_names == ["accuracy", "latency_ms", "area_mm2"]
    first, second = sorted(ran, key=lambda t: t.number)
    assert first.user_attrs["cost_cache"]["misses"] > 0 and second.user_attrs["cost_cache"]["misses"] == 0
    assert second.user_attrs["cost_cache"]["hits"] > 0 and second.user_attrs["cost_cache"]["key"] == first.user_attrs["cost_cache"]["key"]
    assert second.values == [second.user_attrs["accuracy"], second.user_attrs["latency_ms"], second.user_attrs["area_mm2"]]

    target = export_trial(study, best[0].number, tmp_path / "export")
    config = SearchConfig.from_dict(runs.load_run(target).config)
    spec = config.hardware_spec()
    assert (spec.array, spec.buffer_kb, spec.dram_words_per_cycle) == ("8x8", (2, 2, 2), 4.0)
    assert config.area_table().name == "recpipe12" and area_of(config) == pytest.approx(best[0].user_attrs["area_mm2"])
    assert json.loads((target / "tune.json").read_text())["area_mm2"] == best[0].user_attrs["area_mm2"]
    profiled = cli("profile", target)  # `profile RUN` prices on the exported accelerator and its area table
    assert profiled.code == 0, profiled.err
    text = " ".join(profiled.out.split())
    assert f"area {best[0].user_attrs['area_mm2']:.4g} mm²" in text and "recpipe12" in text, text[-600:]


@pytest.mark.parametrize("args,fragment", [
    (["--area-budget-mm2", "0.01", "--sram-kb", "4", "--tech", "recpipe12"], "no accelerator of the space fits the area budget of 0.01"),
    (["--ifmap-sram-kb-choices", "-8,16"], "must be positive sizes"),
    (["--sram-kb", "-3"], "--sram-kb must be a positive whole number"),
    (["--area-budget-mm2", "-1"], "must be a positive number of mm²"),
    (["--objectives", "accuracy,speed"], "unknown objective 'speed'"),
    (["--objectives", "accuracy,latency,energy,area"], "give two or three objectives"),
    (["--sampler", "nsga4"], "unknown sampler"),
    (["--sampler", "nsga3", "--mode", "budget", "--budget-ms", "1"], "samples with TPE"),  # was accepted and ignored
    (["--area-budget-mm2", "10", "--sram-kb", "4", "--pe-modes", "fixed,bitfusion"], "no PE area for 'bitfusion'"),
    (["--search-operating-point"], "needs an operating-point table"),
])
def test_bad_cosearch_input_is_one_red_line_and_writes_nothing(cli, tmp_path, args, fragment):
    one_line_error(cli("tune", *TINY, "--trials", "1", "--out", tmp_path / "t", *args), fragment)
    assert not (tmp_path / "t").exists()


def test_a_study_continued_under_another_area_budget_is_judged_on_the_budget_it_has_now(tmp_path, cli):
    """Each trial's area constraint was stored once, under the budget of its run: continued at 0.133 mm², a
    0.1358 mm² trial stayed "best" and was exported; a report or export with --area-budget-mm2 ignored it."""
    import optuna

    from uboost import tuning

    study = tuning.create_study(tmp_path / "t", objectives="accuracy,latency", seed=0)
    for number, (accuracy, area) in enumerate([(0.95, 0.1358), (0.90, 0.120)]):
        attrs = {"accuracy": accuracy, "latency_ms": 0.001 * (number + 1), "area_mm2": area, "cycles": 100, "utilization": 0.5,
                 "area_over_budget_mm2": area - 0.14, "array": "8x8", "dataflow": "ws"}  # both within the first run's 0.14
        study.add_trial(optuna.trial.create_trial(values=[accuracy, attrs["latency_ms"]], user_attrs=attrs))
    space = {"accelerator": {"area_budget_mm2": 0.14}}
    study.set_user_attr("uboost_space", space)
    assert tuning.best_trial(study).number == 0
    study.set_user_attr("uboost_space", {"accelerator": {"area_budget_mm2": 0.133}})  # what a continued run stores
    assert tuning.best_trial(study).number == 1 and [t.number for t in tuning.pareto_front(study)] == [1]
    study.set_user_attr("uboost_space", space)
    assert tuning.best_trial(study, area_budget_mm2=0.13).number == 1  # a report's or an export's own budget
    result = cli("tune", "--trials", "0", "--out", tmp_path / "t", "--area-budget-mm2", "0.13")
    assert result.code == 0, result.err
    assert "* best: trial 1" in result.out


def test_tune_says_its_area_prices_8_bit_fixed_pes_when_it_searches_wider_bits():
    """QA: `tune --bits 16 --area-budget-mm2 ...` checked the budget against 8-bit PE areas in silence (profile says so)."""
    from uboost.cli._tune_table import _wide_fixed_area_note
    from uboost.search_config import SearchConfig
    from uboost.tuning import AcceleratorSpace, TuneSpace

    wide, narrow = SearchConfig(space="lenet", bits=(8, 16)), SearchConfig(space="lenet", bits=(4, 8))
    plain = TuneSpace()
    assert "fixed 8-bit PEs" in _wide_fixed_area_note(wide, plain, True) and "16 bits" in _wide_fixed_area_note(wide, plain, True)
    assert _wide_fixed_area_note(wide, plain, False) is None  # no area priced
    assert _wide_fixed_area_note(narrow, plain, True) is None
    fusion = TuneSpace(accelerator=AcceleratorSpace(pe_modes=("bitfusion",)))
    assert _wide_fixed_area_note(SearchConfig(space="lenet", bits=(4, 8), pe="bitfusion"), fusion, True) is None
