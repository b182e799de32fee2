"""benchmarks/bench_fronts.py on a memory-bounded pair: ``systolic-mem`` is an entry only there, the frontier projects
the memory-aware search, and every network is priced by SCALE-Sim's USER mode (skipped where SCALE-Sim is not set up;
``.ci/run`` sets it up)."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_fronts  # noqa: E402

BOUNDED = "lenet-16x16-16kB"


def test_the_memory_model_is_an_entry_only_where_memory_is_bounded():
    models = ["systolic", "flops", "systolic-mem"]
    assert bench_fronts.models_for(BOUNDED, models) == models
    assert bench_fronts.models_for("lenet-16x16", models) == ["systolic", "flops"]
    assert (bench_fronts.frontier_model(BOUNDED), bench_fronts.frontier_model("darts-cifar-16x16")) == ("systolic-mem", "systolic")
    config, entry = bench_fronts.search_config(BOUNDED, "systolic-mem", 0.1, 0)
    assert (entry, config.cost_model, config.sram_kb, config.dram_bw_words) == ("systolic-mem", "systolic-mem", 16, 4.0)
    assert config.hardware_spec().memory_bound and not bench_fronts.search_config("lenet-16x16", "systolic", 0.1, 0)[0].hardware_spec().memory_bound
    assert bench_fronts.lambdas_for(BOUNDED, None) == list(bench_fronts.LAMBDAS["lenet"])
    assert BOUNDED in bench_fronts.parse_args([]).spaces  # a default run covers it
    memory_priced = {m for m, changes in bench_fronts.MODELS.items() if changes.get("cost_model") == "systolic-mem"}
    assert memory_priced == set(bench_fronts.MEMORY_MODELS) and len(memory_priced) == 8  # study entries too: never run unbounded
    assert bench_fronts.models_for("darts-cifar-32x32", sorted(memory_priced)) == []


def test_a_bounded_pair_prices_each_network_with_scalesim_user_mode(tmp_path):
    from uboost import hardware, runs
    from uboost.exceptions import HardwareError
    from uboost.hardware.scalesim_runner import find_python
    from uboost.search import build_space

    try:
        find_python()
    except HardwareError as exc:
        pytest.skip(f"SCALE-Sim is not set up here: {exc}")
    widest = {"conv1_kernel": 5, "conv1_width": 32, "conv2_kernel": 5, "conv2_width": 32, "fc1_width": 128}
    (tmp_path / runs.ARCH).write_text(json.dumps(widest))
    config, _ = bench_fronts.search_config(BOUNDED, "flops", 0.1, 0)
    priced = bench_fronts.price(tmp_path, config)
    space, shape, _ = build_space(config)
    network, spec = runs.freeze_arch(space, widest), config.hardware_spec()
    truth = hardware.create("scalesim", spec=spec).evaluate(network, shape)
    assert priced["latency_us"] == pytest.approx(1e3 * truth.latency_ms) and priced["cycles"] == pytest.approx(truth.cycles)
    compute = 1e3 * hardware.create("systolic", spec=spec).evaluate(network, shape).latency_ms
    assert priced["compute_latency_us"] == pytest.approx(compute)
    assert priced["latency_us"] > 3 * compute  # this network stalls: the front's latency is not the compute-only one
    assert priced["latency_us"] <= bench_fronts.REFERENCE[BOUNDED][1]  # the costliest network counts on the latency axis
    assert priced["mem_latency_us"] == pytest.approx(1e3 * hardware.create("systolic-mem", spec=spec).evaluate(network, shape).latency_ms)
    unbounded, _ = bench_fronts.search_config("lenet-16x16", "flops", 0.1, 0)
    plain = bench_fronts.price(tmp_path, unbounded)
    assert plain["latency_us"] == pytest.approx(compute) and "compute_latency_us" not in plain


def test_a_bounded_pair_without_scalesim_stops_in_one_line_before_any_search(tmp_path, monkeypatch, capsys):
    from uboost.hardware import scalesim_runner

    monkeypatch.setenv(scalesim_runner.PYTHON_ENV, str(tmp_path / "no-python"))
    with pytest.raises(SystemExit) as exc:
        bench_fronts.main(["--spaces", BOUNDED, "--seeds", "0", "--out", str(tmp_path / "runs"), "--summary", str(tmp_path / "s")])
    assert "lenet-16x16-16kB" in str(exc.value) and "setup-scalesim" in str(exc.value)
    assert not (tmp_path / "runs").exists()


def test_a_memory_model_asked_for_on_an_unbounded_pair_is_skipped_with_a_note(tmp_path, capsys):
    bench_fronts.main(["--spaces", "lenet-16x16", "--models", "systolic-mem", "--seeds", "0", "--lambdas", "0",
                       "--frontiers", "", "--out", str(tmp_path / "runs"), "--summary", str(tmp_path / "s")])
    out = capsys.readouterr().out
    assert "systolic-mem skipped on lenet-16x16" in out and BOUNDED in out
    assert not list((tmp_path / "runs").glob("**/point.json"))
