"""Switcher: the most accurate point within budget, never over it; frontier and exits directories."""

import json
import random
import time

import pytest

from uboost.dynamic.switcher import NoPointFits, SwitchPoint, Switcher
from uboost.exceptions import ConfigError, RunDirError


def points(n=50, seed=0):
    rng = random.Random(seed)
    return [SwitchPoint(f"p{i:02d}", rng.uniform(0.5, 1.0), rng.uniform(0.1, 2.0), rng.uniform(1, 10)) for i in range(n)]


def test_select_is_the_best_within_budget_never_over():
    pts = points()
    switcher = Switcher(pts)
    rng = random.Random(1)
    for _ in range(300):
        latency = rng.uniform(0.0, 2.2)
        energy = rng.choice([None, rng.uniform(0, 11)])
        fitting = [p for p in pts if p.latency_ms <= latency and (energy is None or p.energy_uj <= energy)]
        if not fitting:
            with pytest.raises(NoPointFits, match="no point fits"):
                switcher.select(latency_ms=latency, energy_uj=energy)
            continue
        chosen = switcher.select(latency_ms=latency, energy_uj=energy)
        assert chosen.latency_ms <= latency and (energy is None or chosen.energy_uj <= energy)
        assert chosen.accuracy == max(p.accuracy for p in fitting)


def test_an_energy_budget_no_point_fits_names_the_least_energy_point():
    switcher = Switcher([SwitchPoint("fast", 0.9, 0.1, 5.0), SwitchPoint("frugal", 0.8, 0.3, 2.0)])
    with pytest.raises(NoPointFits, match=r"the fastest, fast, needs 0.1 ms and 5 µJ; the least energy, frugal, needs 2 µJ"):
        switcher.select(energy_uj=1.0)
    with pytest.raises(NoPointFits) as latency_only:
        switcher.select(latency_ms=0.05)
    assert "least energy" not in str(latency_only.value)


def test_points_must_be_finite_and_some_may_lack_energy():
    with pytest.raises(ConfigError, match="point 'b': latency_ms must be a finite number"):
        Switcher([SwitchPoint("a", 0.99, 5.0), SwitchPoint("b", 0.5, float("nan")), SwitchPoint("c", 0.9, 1.0)])
    with pytest.raises(ConfigError, match="accuracy"):
        Switcher([SwitchPoint("a", float("inf"), 5.0)])
    by_preference = Switcher([SwitchPoint("a", -2.85, 1.0), SwitchPoint("b", -0.5, 2.0)])  # log-probabilities
    assert by_preference.select(latency_ms=2.0).name == "b"
    mixed = Switcher([SwitchPoint("a", 0.9, 1.0, 2.0), SwitchPoint("b", 0.95, 2.0, None)])
    with pytest.raises(NoPointFits, match="no point fits latency <= 1.5 ms, energy <= 1 µJ"):  # was a TypeError
        mixed.select(latency_ms=1.5, energy_uj=1.0)


def test_select_takes_microseconds():
    switcher = Switcher(points(1000))
    start = time.perf_counter()
    for i in range(2000):
        switcher.select(latency_ms=0.5 + i / 2000)
    assert (time.perf_counter() - start) / 2000 < 50e-6


def test_bad_budgets_and_empty_input():
    switcher = Switcher(points(3))
    with pytest.raises(ConfigError, match="non-negative"):
        switcher.select(latency_ms=-1.0)
    with pytest.raises(ConfigError, match="at least one point"):
        Switcher([])


def write_point(root, name, latency, acc=None, energy=None, preference=-1.0):
    d = root / name
    d.mkdir(parents=True)
    result = {"latency_ms": latency, "preference": preference}
    if acc is not None:
        result["test_acc"] = acc
    (d / "result.json").write_text(json.dumps(result))
    if energy is not None:
        (d / "hardware.json").write_text(json.dumps({"total": {"energy_uj": energy}}))


def test_from_frontier_directory(tmp_path):
    for i, (lat, acc, e) in enumerate([(0.1, 0.8, 1.0), (0.2, 0.9, 2.0), (0.3, 0.85, 3.0)]):
        write_point(tmp_path, f"p{i:02d}", lat, acc, e)
    switcher = Switcher.from_frontier(tmp_path)
    assert switcher.select(latency_ms=0.25).name == "p01"
    assert switcher.select(latency_ms=1.0, energy_uj=1.5).name == "p00"
    assert switcher.select(latency_ms=0.15).name == "p00"
    with pytest.raises(NoPointFits):
        switcher.select(latency_ms=0.05)
    with pytest.raises(RunDirError, match="no frontier points"):
        Switcher.from_frontier(tmp_path / "p00")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    with pytest.raises(RunDirError, match=f"is a search run, not a frontier: make one with `uboost frontier {run}` \\(into {run / 'frontier'}"):
        Switcher.from_frontier(run)
    (run / "exits").mkdir()  # an empty folder is not an exits folder: not named
    with pytest.raises(RunDirError, match="make one with"):
        Switcher.from_frontier(run)
    (run / "exits" / "exits.json").write_text("{}")  # QA: with its exits (or frontier) made, it names those
    with pytest.raises(RunDirError, match=f"not a frontier: switch on `uboost switch {run / 'exits'}`"):
        Switcher.from_frontier(run)
    (run / "exits" / "exits.json").unlink()
    (run / "exits" / "study.journal").write_text("")  # an exits search stopped by Ctrl-C: said so
    with pytest.raises(RunDirError, match="holds an interrupted `uboost exits`"):
        Switcher.from_frontier(run / "exits")


@pytest.mark.parametrize("content, fragment", [
    ("{}", "latency_ms must be a number, got None"),
    ("[]", "must hold a JSON object, got list"),
    ('{"latency_ms": "fast"}', "latency_ms must be a number, got 'fast'"),
    ('{"latency_ms": 0.1, "test_acc": "high"}', "test_acc must be a number"),
    pytest.param('{"latency_ms": 1' + 400 * "0" + "}", "latency_ms must be a number, got 1000",
                 id="10**400"),  # was an OverflowError traceback
])
def test_a_damaged_point_result_is_one_error_naming_the_file(tmp_path, content, fragment):
    write_point(tmp_path, "p00", 0.1, 0.8)
    (tmp_path / "p01").mkdir()
    (tmp_path / "p01" / "result.json").write_text(content)  # was a KeyError / AttributeError / ValueError traceback
    with pytest.raises(RunDirError, match=fragment) as err:
        Switcher.from_frontier(tmp_path)
    assert "p01" in str(err.value)


def test_a_point_retrained_since_the_frontier_switches_on_its_new_model(tmp_path):
    """`frontier --retrain-epochs` copies test_acc into result.json; a later `retrain --force` rewrites only
    retrain/retrain.json: the switch read result.json first and ranked by the replaced model's accuracy."""
    write_point(tmp_path, "p00", 0.1, 0.8)
    write_point(tmp_path, "p01", 0.2, 0.9)
    (tmp_path / "p01" / "retrain").mkdir()
    (tmp_path / "p01" / "retrain" / "retrain.json").write_text(json.dumps({"test_acc": 0.5}))
    point = Switcher.from_frontier(tmp_path).select(latency_ms=0.25)
    assert (point.name, point.accuracy) == ("p00", 0.8)


def test_a_frontier_never_retrained_switches_on_the_search_preference(tmp_path):
    """The README's `uboost switch RUN/frontier`: no test accuracy, log-probabilities (< 0) rank the points."""
    write_point(tmp_path, "p00", 0.1, preference=-2.85)
    write_point(tmp_path, "p01", 0.2, preference=-0.4)
    assert Switcher.from_frontier(tmp_path).select(latency_ms=0.25).name == "p01"


def test_a_frontier_with_predicted_accuracies_switches_on_them(tmp_path):
    """QA: a frontier made with --objective predicted-accuracy (each point's result.json holds predicted_accuracy)
    switched on the search's preference; it switches on what the frontier chose by. A retrain's test accuracy wins."""
    for name, latency, preference, predicted in (("p00", 0.1, -2.0, 0.60), ("p01", 0.2, -0.5, 0.64), ("p02", 0.3, -2.5, 0.68)):
        write_point(tmp_path, name, latency, preference=preference)
        result = json.loads((tmp_path / name / "result.json").read_text())
        (tmp_path / name / "result.json").write_text(json.dumps({**result, "predicted_accuracy": predicted}))
    switcher = Switcher.from_frontier(tmp_path)
    assert switcher.accuracy_name == "predicted accuracy"
    assert switcher.select(latency_ms=0.35).name == "p02" and switcher.select(latency_ms=0.25).name == "p01"
    (tmp_path / "p01" / "result.json").write_text(json.dumps({"latency_ms": 0.2, "preference": -0.5}))  # one lost it
    with pytest.raises(RunDirError, match="p01 have no predicted_accuracy"):
        Switcher.from_frontier(tmp_path)


def test_a_missing_frontier_folder_says_how_to_make_one(tmp_path):
    with pytest.raises(RunDirError, match="it does not exist; make one with `uboost frontier RUN --out"):
        Switcher.from_frontier(tmp_path / "nowhere")


def test_a_policy_file_or_a_missing_folder_points_at_a_command_that_works(tmp_path, cli):
    """The hint was `uboost frontier RUN --out p00.json` (a file), and frontier-only for a missing exits folder."""
    from tests.cli.conftest import one_line_error

    point = tmp_path / "exits" / "points" / "p00.json"
    point.parent.mkdir(parents=True)
    point.write_text("{}")
    one_line_error(cli("switch", point, "--latency-ms", "1"), f"uboost switch {tmp_path / 'exits'}")
    one_line_error(cli("switch", tmp_path / "gone", "--latency-ms", "1"), "uboost exits RUN --out")


def write_exits(root, metrics):
    """An exits directory by hand: exits.json (no model fingerprint: taken as it is), p00 sound, p01 with ``metrics``."""
    (root / "points").mkdir(parents=True)
    (root / "exits.json").write_text(json.dumps({"run": str(root / "run")}))
    for name, m in (("p00", {"accuracy": 0.8, "expected_latency_ms": 0.1, "expected_energy_uj": 1.0}), ("p01", metrics)):
        policy = {"positions": ["pool"], "thresholds": [0.9], "freq_hz": 6e8, "voltage_v": 0.7, "metrics": m}
        (root / "points" / f"{name}.json").write_text(json.dumps(policy))


SOUND = {"accuracy": 0.9, "expected_latency_ms": 0.2, "expected_energy_uj": 2.0}


@pytest.mark.parametrize("metrics, summary, fragment", [
    ({**SOUND, "accuracy": None}, None, "p01.json: metrics.accuracy must be a number, got None"),
    ({k: v for k, v in SOUND.items() if k != "accuracy"}, None, "metrics.accuracy must be a number, got None"),
    ({**SOUND, "accuracy": "x"}, None, "metrics.accuracy must be a number, got 'x'"),
    ({**SOUND, "expected_latency_ms": None}, None, "metrics.expected_latency_ms must be a number, got None"),
    ({**SOUND, "expected_energy_uj": "x"}, None, "metrics.expected_energy_uj must be a number"),
    ([1, 2], None, "p01.json: metrics must be a JSON object, got list"),
    (5, None, "p01.json: metrics must be a JSON object, got int"),
    (SOUND, [1], "exits.json must hold a JSON object, got list; train the exits again"),
])
def test_a_damaged_exits_directory_is_one_line(tmp_path, cli, metrics, summary, fragment):
    """Each was a KeyError / ValueError / TypeError / AttributeError traceback from `uboost switch`."""
    from tests.cli.conftest import one_line_error

    write_exits(tmp_path / "exits", metrics)
    if summary is not None:
        (tmp_path / "exits" / "exits.json").write_text(json.dumps(summary))
    one_line_error(cli("switch", tmp_path / "exits", "--latency-ms", "1"), fragment)


def test_an_exits_point_without_energy_switches_on_latency(tmp_path):
    write_exits(tmp_path / "exits", {k: v for k, v in SOUND.items() if k != "expected_energy_uj"})
    assert Switcher.from_directory(tmp_path / "exits").select(latency_ms=1).name == "p01"


def test_points_that_are_not_switch_points_are_one_config_error():
    """QA: Switcher([("a", 0.9, 0.1)]) was an AttributeError."""
    with pytest.raises(ConfigError, match="SwitchPoint"):
        Switcher([("a", 0.9, 0.1)])

