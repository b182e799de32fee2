"""``uboost search/export/frontier`` with energy: the energy term, energy budgets (alone and with
latency), the operating point chosen with the network, and bad input."""

import csv
import json

import pytest

from tests.cli.conftest import TINY, one_line_error, tiny_search


@pytest.fixture(scope="module")
def energy_run(tmp_path_factory):
    """A tiny lenet search with an energy term, and its least-energy / argmax energy."""
    from uboost.frontier import load_projector

    out = tiny_search(tmp_path_factory.mktemp("energy") / "run", array="8x8", energy_weight=2.0)
    source = load_projector(out)
    return out, source.projector.cheapest("energy").energy_uj, source.projector.unconstrained().energy_uj


def every_pair(run, auto: bool = False) -> list[dict]:
    """Every network of the (lenet) space with its preference (the sum of its choices' log-probabilities
    under the run's alphas) and its latency and energy from the projector's rows: at the run's clock, or
    with ``auto`` at every operating point of its table (``point``: the index)."""
    import itertools

    import torch

    from uboost.frontier import load_projector

    source = load_projector(run)
    program = source.projector.program
    assert not program.nodes  # plain choices: the preference is a sum of log-softmaxes
    projectors = source.point_projectors() if auto else [source.projector]
    logp = [torch.log_softmax(c.alpha.detach().double().reshape(-1), 0).tolist() for c in program.choices]
    rows = []
    for combo in itertools.product(*(range(len(c.values)) for c in program.choices)):
        indices = {id(c.alpha): k for c, k in zip(program.choices, combo)}
        arch = {c.label: c.values[k] for c, k in zip(program.choices, combo)}
        preference = sum(lp[k] for lp, k in zip(logp, combo))
        for point, projector in enumerate(projectors):
            latency, energy = projector.cost_of(indices)
            rows.append(dict(point=point if auto else None, arch=arch, preference=preference, latency=latency, energy=energy))
    return rows


def best_per_point(rows, budgets) -> dict:
    """Brute force of the export's rule: ``point -> the most preferred network`` within every ``(metric, target,
    floor)`` budget, in the window ``[floor x target, target]`` of the one with a floor, or under the most
    expensive network that fits where none reaches the window (points where nothing fits are left out)."""
    windowed = [b for b in budgets if b[2] > 0]
    assert len(windowed) <= 1  # one window at most, as budgets_for and the frontier make them
    best = {}
    for point in sorted({r["point"] for r in rows}, key=lambda p: -1 if p is None else p):
        fits = [r for r in rows if r["point"] == point and all(r[m] <= t * (1 + 1e-9) for m, t, _ in budgets)]
        if fits and windowed:
            metric, target, floor = windowed[0]
            top = target if any(r[metric] >= floor * target for r in fits) else max(r[metric] for r in fits)
            fits = [r for r in fits if r[metric] >= floor * top * (1 - 1e-9)]
        if fits:
            best[point] = max(fits, key=lambda r: r["preference"])
    return best


def assert_best_pair(rows, budgets, preference, point=None) -> None:
    """The exported ``(network preference, operating point)`` is the most preferred pair within ``budgets``."""
    best = best_per_point(rows, budgets)
    assert best, "nothing fits"
    top = max(r["preference"] for r in best.values())
    assert preference == pytest.approx(top, abs=1e-9)
    assert point in {p for p, r in best.items() if r["preference"] >= top - 1e-9}


def preference_of(rows, arch: dict) -> float:
    return next(r["preference"] for r in rows if r["arch"] == {k: arch[k] for k in r["arch"]})


def test_energy_weight_search_records_and_logs_energy(energy_run):
    run, low, high = energy_run
    result = json.loads((run / "result.json").read_text())
    hardware = json.loads((run / "hardware.json").read_text())
    assert result["energy_uj"] == pytest.approx(hardware["total"]["energy_uj"])
    assert result["energy_uj"] == pytest.approx(sum(result["energy_breakdown_uj"].values()))
    assert set(result["energy_breakdown_uj"]) == {"mac", "sram", "dram", "leakage"}
    assert result["argmax_energy_uj"] == pytest.approx(result["energy_uj"])  # the exported network is the argmax
    assert result["energy_ref_uj"] > result["energy_uj"] > 0  # the uniform supernet (every candidate) costs more
    assert json.loads((run / "config.json").read_text())["energy_weight"] == 2.0
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert {"hw/energy_uj", "hw/derived_energy_uj", "hw/energy_ref_uj", "hw/sampled_energy_uj"} <= set(rows[0])
    assert any(r["hw/derived_energy_uj"] for r in rows)


def test_export_to_an_energy_budget_and_to_both(cli, energy_run, tmp_path):
    run, low, high = energy_run
    target = low + 0.5 * (high - low)
    result = cli("export", run, "--target-energy-uj", target, "--out", tmp_path / "e")
    assert result.code == 0, result.err
    written = json.loads((tmp_path / "e" / "result.json").read_text())
    assert written["energy_uj"] <= target and written["target_energy_uj"] == target
    hardware = json.loads((tmp_path / "e" / "hardware.json").read_text())
    assert hardware["total"]["energy_uj"] == pytest.approx(written["energy_uj"])
    # with a latency budget too, both hold: a cap under the energy export's latency that a network within the
    # energy budget meets (brute force), so the latency budget binds and the export must find that network
    rows = every_pair(run)
    fastest = min(r["latency"] for r in rows if r["energy"] <= target)
    assert fastest < written["latency_ms"] * 0.99
    latency = (fastest + written["latency_ms"]) / 2
    both = cli("export", run, "--target-energy-uj", target, "--target-latency-ms", latency, "--out", tmp_path / "b")
    assert both.code == 0, both.err
    written = json.loads((tmp_path / "b" / "result.json").read_text())
    assert written["energy_uj"] <= target and written["latency_ms"] <= latency
    assert written["target_energy_uj"] == target and written["target_latency_ms"] == latency
    assert_best_pair(rows, [("latency", latency, 0.9), ("energy", target, 0.0)], written["preference"])


def test_export_to_both_budgets_that_no_network_meets_together_names_the_least_energy(cli, energy_run, tmp_path):
    run, low, high = energy_run
    rows = every_pair(run)
    target = low + 0.5 * (high - low)
    under = min(r["latency"] for r in rows) * 0.9  # below the fastest network of the space
    one_line_error(cli("export", run, "--target-energy-uj", target, "--target-latency-ms", under, "--out", tmp_path / "b"),
                   "no architecture fits", "least energy")
    assert not (tmp_path / "b").exists()


def test_energy_frontier_is_monotone_and_within_its_budgets(cli, energy_run, tmp_path):
    run, low, high = energy_run
    out = tmp_path / "front"
    result = cli("frontier", run, "--metric", "energy", "--points", "3", "--out", out)
    assert result.code == 0, result.err
    points = [json.loads((out / f"p{i:02d}" / "result.json").read_text()) for i in range(3)]
    energies = [p["energy_uj"] for p in points]
    assert energies == sorted(energies)
    assert all(p["energy_uj"] <= p["target_energy_uj"] * (1 + 1e-9) for p in points)
    assert energies[0] == pytest.approx(low) and energies[-1] == pytest.approx(high)


# between the cheapest network's latency at 900 MHz (0.00081 ms) and at 700 MHz (0.00104 ms) on the 8x8 array:
# only the two fastest points of rk3576-npu can meet it (checked where it is used)
AUTO_LATENCY_MS = 0.001


@pytest.fixture(scope="module")
def auto_run(energy_run, tmp_path_factory):
    """A tiny search under latency and energy budgets at once, its operating point chosen with the network."""
    from uboost.cli import main

    run, low, high = energy_run
    target_uj = low + 0.4 * (high - low)
    out = tmp_path_factory.mktemp("auto") / "run"
    try:
        main(["search", *TINY, "--array", "8x8", "--operating-points", "rk3576-npu", "--operating-point", "auto",
              "--target-energy-uj", str(target_uj), "--target-latency-ms", str(AUTO_LATENCY_MS), "--out", str(out)])
    except SystemExit as exc:
        assert not exc.code, exc.code
    return out, target_uj


POINTS = [[600e6, 0.725], [700e6, 0.775], [800e6, 0.8], [900e6, 0.85]]  # rk3576-npu


def test_search_with_both_budgets_and_operating_point_auto(auto_run):
    out, target_uj = auto_run
    written = json.loads((out / "result.json").read_text())
    hardware = json.loads((out / "hardware.json").read_text())
    point = written["operating_point"]
    assert [point["freq_hz"], point["voltage_v"]] in POINTS
    assert hardware["hardware"]["clock_hz"] == point["freq_hz"] and hardware["total"]["voltage_v"] == point["voltage_v"]
    assert written["energy_uj"] <= target_uj and written["latency_ms"] <= AUTO_LATENCY_MS
    # the most preferred (network, point) pair under the final alphas, the slower points out of reach
    pairs = every_pair(out, auto=True)
    assert min(r["latency"] for r in pairs if r["point"] in (0, 1)) > AUTO_LATENCY_MS
    arch = json.loads((out / "arch.json").read_text())
    assert_best_pair(pairs, [("latency", AUTO_LATENCY_MS, 0.9), ("energy", target_uj, 0.0)], preference_of(pairs, arch),
                     point["index"])
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert {"hw/budget_multiplier", "hw/energy_multiplier", "hw/operating_point"} <= set(rows[0])
    assert "energy_multiplier" in written and "budget_multiplier" in written


def test_profile_and_retrain_price_an_auto_run_at_its_chosen_point(cli, auto_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(auto_run[0], run)
    written = json.loads((run / "result.json").read_text())
    profiled = json.loads(cli("profile", run, "--json").out)["reports"][0]
    assert profiled["hardware"]["clock_hz"] == written["operating_point"]["freq_hz"]  # was the table's default clock
    assert profiled["total"]["latency_ms"] == pytest.approx(written["latency_ms"], rel=1e-12)
    assert profiled["total"]["energy_uj"] == pytest.approx(written["energy_uj"], rel=1e-12)
    assert cli("retrain", run, "--epochs", "1", "--max-samples", "64").code == 0
    retrained = json.loads((run / "retrain" / "retrain.json").read_text())
    assert retrained["latency_ms"] == pytest.approx(written["latency_ms"], rel=1e-12)
    assert json.loads((run / "config.json").read_text())["operating_point"] == "auto"  # kept for --resume
    # at another clock, the table's voltage there (not the chosen point's); above the table, refused
    other = json.loads(cli("profile", run, "--json", "--clock-hz", "9e8").out)["reports"][0]
    assert other["total"]["voltage_v"] == 0.85 and other["hardware"]["clock_hz"] == 9e8
    one_line_error(cli("profile", run, "--clock-hz", "1e9"), "above the fastest operating point")


def choice_that_matters(pairs, target_uj) -> tuple[float, dict]:
    """``(latency cap, best pair)``: the first cap on a grid between the cheapest network's latency at the fastest
    point and at the slowest where the best pair within it and ``target_uj`` is one point's alone, and not the
    slowest point that has a network within them (a chooser taking the first feasible point, or only the
    table's first, would then differ)."""
    points = sorted({r["point"] for r in pairs})
    low = min(r["latency"] for r in pairs if r["point"] == points[-1])
    high = min(r["latency"] for r in pairs if r["point"] == points[0])
    for k in range(1, 20):
        cap = low + k / 20 * (high - low)
        best = best_per_point(pairs, [("latency", cap, 0.9), ("energy", target_uj, 0.0)])
        ranked = sorted(best.values(), key=lambda r: -r["preference"])
        if len(ranked) > 1 and ranked[0]["preference"] > ranked[1]["preference"] + 1e-6 and ranked[0]["point"] != min(best):
            return cap, ranked[0]
    raise AssertionError("no latency cap where the operating point matters")


def test_export_operating_point_auto_runs_the_exported_network_there(cli, energy_run, auto_run, tmp_path):
    run, low, high = energy_run
    one_line_error(cli("export", run, "--operating-point", "auto", "--out", tmp_path / "x"), "operating-point table")
    assert not (tmp_path / "x").exists()  # the energy-weight run has no operating-point table
    searched, target_uj = auto_run
    # without --out: the message names what was asked (it said "a budget export" with no budget given; QA)
    one_line_error(cli("export", searched, "--operating-point", "auto"), "an export at a chosen operating point writes a run directory")
    result = cli("export", searched, "--operating-point", "auto", "--target-energy-uj", target_uj, "--out", tmp_path / "y")
    assert result.code == 0, result.err
    written = json.loads((tmp_path / "y" / "result.json").read_text())
    config = json.loads((tmp_path / "y" / "config.json").read_text())
    point = written["operating_point"]
    assert [point["freq_hz"], point["voltage_v"]] in POINTS and written["energy_uj"] <= target_uj
    assert (config["clock_hz"], config["voltage_v"], config["operating_point"]) == (point["freq_hz"], point["voltage_v"], None)
    pairs = every_pair(searched, auto=True)
    assert_best_pair(pairs, [("energy", target_uj, 0.9)], written["preference"], point["index"])
    # a latency cap the slowest point cannot meet, where the best pair is not at the slowest point that can
    latency, best = choice_that_matters(pairs, target_uj)
    result = cli("export", searched, "--operating-point", "auto", "--target-energy-uj", target_uj, "--target-latency-ms",
                 latency, "--out", tmp_path / "z")
    assert result.code == 0, result.err
    capped = json.loads((tmp_path / "z" / "result.json").read_text())
    assert capped["operating_point"]["index"] == best["point"] and capped["preference"] == pytest.approx(best["preference"])
    assert capped["latency_ms"] <= latency and capped["energy_uj"] <= target_uj
    # the exported run is priced at its point again by profile's own code path
    from uboost.search import SearchConfig, build_cost_model, build_space
    from uboost import runs

    cfg = SearchConfig.from_dict(config)
    space, shape, _ = build_space(cfg)
    again = build_cost_model(cfg).evaluate(runs.freeze_arch(space, json.loads((tmp_path / "y" / "arch.json").read_text())), shape)
    assert again.energy_uj == pytest.approx(written["energy_uj"]) and again.latency_ms == pytest.approx(written["latency_ms"])


@pytest.mark.parametrize("args,fragments", [
    (["--target-energy-uj", "-1"], ["--target-energy-uj", "positive"]),
    (["--target-energy-uj", "nan"], ["--target-energy-uj", "positive"]),
    (["--target-energy-uj", "0"], ["--target-energy-uj", "positive"]),
    (["--energy-weight", "-1"], ["--energy-weight"]),
    (["--energy-weight", "nan"], ["--energy-weight"]),
    (["--operating-point", "auto"], ["operating-point table"]),
    (["--operating-point", "fast"], ["--operating-point", "auto"]),
    (["--operating-points", "nope"], ["nope"]),
    (["--voltage-v", "0"], ["--voltage-v"]),
    (["--voltage-v", "nan"], ["--voltage-v"]),
    (["--voltage-v", "725"], ["between 0.1 and 5 volts", "did you give mV"]),
    (["--energy", "nope"], ["nope"]),
    (["--operating-points", "rk3576-npu", "--clock-hz", "2e9"], ["above the fastest operating point"]),
])
def test_bad_energy_search_input_is_one_red_line_and_writes_nothing(cli, tmp_path, args, fragments):
    out = tmp_path / "run"
    one_line_error(cli("search", *TINY, "--out", out, *args), *fragments)
    assert not out.exists()


@pytest.mark.parametrize("args,fragments", [
    (["export", "--target-energy-uj", "nan", "--out", "X"], ["--target-energy-uj", "positive"]),
    (["export", "--target-energy-uj", "-2", "--out", "X"], ["--target-energy-uj", "positive"]),
    (["frontier", "--metric", "power", "--out", "X"], ["--metric"]),
    (["frontier", "--metric", "energy", "--targets", "1,nan", "--out", "X"], ["target energy", "positive"]),
    (["frontier", "--metric", "energy", "--target-energy-uj", "1", "--out", "X"], ["--target-energy-uj"]),
    (["frontier", "--target-energy-uj", "-1", "--out", "X"], ["--target-energy-uj", "positive"]),
])
def test_bad_energy_export_input_is_one_red_line_and_writes_nothing(cli, energy_run, tmp_path, args, fragments):
    run, _, _ = energy_run
    command, *rest = args
    out = tmp_path / "x"
    one_line_error(cli(command, run, *[str(out) if a == "X" else a for a in rest]), *fragments)
    assert not out.exists()


def test_search_with_an_unreachable_energy_budget_names_the_least_energy(cli, tmp_path):
    result = cli("search", *TINY, "--target-energy-uj", "1e-6", "--out", tmp_path / "b")
    assert result.code == 1 and "least energy" in result.err and "Traceback" not in result.err + result.out


def test_energy_frontier_with_operating_point_auto_and_a_latency_cap(cli, auto_run, tmp_path):
    run, target_uj = auto_run
    pairs = every_pair(run, auto=True)
    latency, _ = choice_that_matters(pairs, target_uj)
    out = tmp_path / "front"
    result = cli("frontier", run, "--metric", "energy", "--points", "2", "--target-latency-ms", latency,
                 "--operating-point", "auto", "--out", out)
    assert result.code == 0, result.err
    for i in range(2):
        written = json.loads((out / f"p{i:02d}" / "result.json").read_text())
        point = written["operating_point"]
        assert [point["freq_hz"], point["voltage_v"]] in POINTS
        assert written["energy_uj"] <= written["target_energy_uj"] * (1 + 1e-9) and written["latency_ms"] <= latency
        # each point the best pair in its energy window under the cap (with auto, only the window holds)
        assert_best_pair(pairs, [("energy", written["target_energy_uj"], 0.9), ("latency", latency, 0.0)],
                         written["preference"], point["index"])


def test_the_search_summary_names_a_custom_energy_table(cli, tmp_path):
    table = tmp_path / "mine.toml"
    table.write_text('base = "horowitz45"\ndram_pj_per_bit = 5.0\n')
    result = cli("search", *TINY, "--energy", table, "--out", tmp_path / "run")
    assert result.code == 0, result.err
    assert "energy (horowitz45+mine)" in result.out and "v_ref" not in result.out  # was the whole table as a dict


@pytest.mark.parametrize("fields, text", [
    ({}, "lambda=1 beta=1"),
    ({"target_latency_ms": 0.02}, "latency budget 0.02 ms beta=1"),
    ({"energy_weight": 0.5}, "lambda=1 beta=1 gamma=0.5"),
    ({"target_latency_ms": 0.02, "target_energy_uj": 3.0, "energy_weight": 0.5}, "latency budget 0.02 ms beta=1 energy budget 3 µJ"),
])
def test_the_search_header_names_the_budget_that_replaces_lambda_or_gamma(fields, text):
    from uboost.cli.search import _weights_text
    from uboost.search import SearchConfig

    cfg = SearchConfig(**{"latency_weight": 1.0, "utilization_weight": 1.0, **fields})
    assert _weights_text(cfg) == text
