"""A search with ``--operating-point auto`` chose a DVFS point with its network: ``frontier`` (without its own
``--operating-point auto``) and ``predict --arch`` price networks at the clock their run chose, as ``profile`` does
(both priced at the table's fastest clock before)."""

import json

import pytest



@pytest.fixture(scope="module")
def auto_run(tmp_path_factory):
    from uboost.search import SearchConfig, run_search

    out = tmp_path_factory.mktemp("auto") / "run"
    run_search(SearchConfig(space="lenet", dataset="digits", image_size=8, epochs=1, max_samples=128, batch_size=32,
                            latency_weight=0.0, utilization_weight=0.0, operating_points="rk3576-npu",
                            operating_point="auto", seed=3), out)
    return out


def _profiled_us(cli, run):
    out = cli("profile", run, "--json")
    assert out.code == 0, out.err
    return json.loads(out.out)["reports"][0]["total"]


def test_result_json_prices_the_argmax_at_the_chosen_point(auto_run):
    """argmax_latency_ms / argmax_energy_uj were the table's fastest clock's beside the chosen point's latency_ms."""
    result = json.loads((auto_run / "result.json").read_text())
    assert result["operating_point"]["index"] < 2 and not result["projected"]  # a slower point, the argmax exported
    assert result["argmax_latency_ms"] == pytest.approx(result["latency_ms"])
    assert result["argmax_energy_uj"] == pytest.approx(result["energy_uj"])


def test_the_frontiers_argmax_point_is_priced_at_the_runs_chosen_clock(cli, auto_run, tmp_path):
    result = json.loads((auto_run / "result.json").read_text())
    assert cli("frontier", auto_run, "--points", "2", "--out", tmp_path / "f").code == 0
    top = json.loads((tmp_path / "f" / "p01" / "result.json").read_text())
    assert top["latency_ms"] == pytest.approx(result["latency_ms"])  # was the 900 MHz latency of a 600 MHz choice
    profiled = _profiled_us(cli, tmp_path / "f" / "p01")
    assert profiled["latency_ms"] == pytest.approx(top["latency_ms"])


def test_a_frontier_on_a_file_without_a_dvfs_table_prices_at_its_clock(cli, auto_run, tmp_path):
    (tmp_path / "acc.toml").write_text("rows = 16\ncols = 16\ndataflow = \"ws\"\nclock_hz = 5e8\n")
    result = cli("frontier", auto_run, "--points", "2", "--out", tmp_path / "f", "--hardware", tmp_path / "acc.toml")
    assert result.code == 0, result.err  # was: "operating_point 'auto' needs an operating-point table"


def test_predict_prices_an_arch_of_another_run_at_that_runs_clock(cli, auto_run, tmp_path):
    from uboost.frontier import load_projector

    exported = tmp_path / "exp"
    faster = 0.9 * load_projector(auto_run).projector.cheapest().latency_ms  # below anything at the run's own clock
    assert cli("export", auto_run, "--target-latency-ms", faster, "--operating-point", "auto", "--out", exported).code == 0
    chosen = json.loads((auto_run / "result.json").read_text())["operating_point"]["freq_hz"]
    assert json.loads((exported / "result.json").read_text())["operating_point"]["freq_hz"] > chosen
    out = cli("predict", auto_run, "--arch", exported, "--samples", "6", "--fine-tune-epochs", "1", "--json")
    assert out.code == 0, out.err
    predicted = json.loads(out.out)
    profiled = _profiled_us(cli, exported)
    assert predicted["latency_ms"] == pytest.approx(profiled["latency_ms"])
    assert predicted["energy_uj"] == pytest.approx(profiled["energy_uj"])


def test_profile_with_another_dvfs_table_keeps_the_runs_own_clock(cli, auto_run, tiny_run):
    """--operating-points moved a run's report to the new table's fastest clock (800 MHz for a 600 MHz run)."""
    chosen = json.loads((auto_run / "result.json").read_text())["operating_point"]["freq_hz"]
    assert chosen < 8e8  # rk356x-gpu runs it
    out = cli("profile", auto_run, "--operating-points", "rk356x-gpu", "--json")
    assert out.code == 0, out.err
    report = json.loads(out.out)["reports"][0]
    assert report["hardware"]["clock_hz"] == chosen
    assert report["total"]["voltage_v"] == pytest.approx(0.825)  # the slowest rk356x-gpu point that runs it
    faster = cli("profile", tiny_run, "--operating-points", "rk356x-gpu", "--json")  # 1 GHz: beyond the table
    assert faster.code == 0, faster.err
    assert json.loads(faster.out)["reports"][0]["hardware"]["clock_hz"] == 8e8
