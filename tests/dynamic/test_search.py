"""Policy search: exact enumeration, Pareto points non-dominated, worst-case bound, Optuna resumable."""

import numpy as np
import pytest

from uboost.dynamic.policy import ExitPolicy, decide, outcome
from uboost.dynamic.pricing import ExitCosts
from uboost.dynamic.search import pareto, search_policies
from uboost.exceptions import ConfigError
from tests.dynamic.conftest import assert_priced


def data(seed=0, n=200):
    rng = np.random.default_rng(seed)
    confidence = rng.uniform(0.2, 1.0, size=(n, 2))
    # confident heads are right more often, the final classifier is right 90 % of the time
    correct = np.stack([rng.uniform(size=n) < confidence[:, 0], rng.uniform(size=n) < confidence[:, 1] + 0.1,
                        rng.uniform(size=n) < 0.9], 1)
    costs = ExitCosts(("a", "b"), np.array([6e8, 9e8]), np.array([0.7, 0.9]), np.array([[100.0, 200.0, 300.0]] * 2),
                      np.array([[1.0, 2.0, 3.0], [1.5, 3.0, 4.5]]), np.array([[10.0, 20.0]] * 2), np.array([[0.1, 0.2], [0.15, 0.3]]))
    return confidence, correct, costs


def dominates(a, b):
    x = (-a["accuracy"], a["expected_energy_uj"], a["expected_latency_ms"])
    y = (-b["accuracy"], b["expected_energy_uj"], b["expected_latency_ms"])
    return all(i <= j for i, j in zip(x, y)) and any(i < j for i, j in zip(x, y))


def test_decide_takes_the_first_confident_kept_exit():
    conf = np.array([[0.9, 0.99], [0.5, 0.99], [0.5, 0.5], [0.95, 0.1]])
    assert decide(conf, [0.8, 0.9]).tolist() == [0, 1, 2, 0]
    assert decide(conf, [None, 0.9]).tolist() == [1, 1, 2, 2]
    accuracy, shares = outcome(conf, np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]], dtype=bool), [0.8, 0.9])
    assert accuracy == 0.75 and shares.tolist() == [0.5, 0.25, 0.25]  # samples 0-2 right at their exits, 3 wrong


def test_pareto_points_are_non_dominated_and_cover_the_rest():
    confidence, correct, costs = data()
    found = search_policies(confidence, correct, costs, grid=(0.5, 0.7, 0.9))
    assert len(found) == 4 * 4 * 2  # (3 thresholds + dropped) ** 2 exits x 2 operating points
    assert_priced(found, costs)  # each candidate priced at its own shares, kept exits and operating point
    # an exit that keeps a share of the inputs saves them the rest of the backbone: cheaper than the full path
    saving = [r for r in found if any(t is not None and s > 0 for t, s in zip(r["thresholds"], r["shares"]))]
    assert saving and all(r["expected_energy_uj"] < r["worst_energy_uj"] and r["expected_latency_ms"] < r["worst_latency_ms"]
                          for r in saving)
    front = pareto(found)
    assert 1 < len(front) < len(found)
    for a in front:
        assert not any(dominates(b, a) for b in found)
    for b in found:  # every other candidate is dominated by, or ties with, a front point
        assert any(dominates(a, b) or a is b or (a["accuracy"], a["expected_energy_uj"], a["expected_latency_ms"])
                   == (b["accuracy"], b["expected_energy_uj"], b["expected_latency_ms"]) for a in front)


def test_worst_case_bound_and_exit_restrictions():
    confidence, correct, costs = data()
    bound = 620 / 9e8 * 1e3  # room for one head at 900 MHz, none at 600
    found = search_policies(confidence, correct, costs, grid=(0.5, 0.9), max_worst_latency_ms=bound)
    assert found and all(r["worst_latency_ms"] <= bound for r in found)
    assert all(sum(t is not None for t in r["thresholds"]) <= 1 for r in found)
    assert {r["point"] for r in found if any(t is not None for t in r["thresholds"])} == {1}
    dvfs_only = search_policies(confidence, correct, costs, grid=(0.5,), exits=[])
    assert [r["thresholds"] for r in dvfs_only] == [[None, None]] * 2


def test_optuna_study_is_resumable(tmp_path):
    pytest.importorskip("optuna")
    confidence, correct, costs = data()
    first = search_policies(confidence, correct, costs, grid=(0.5, 0.7, 0.9), method="optuna", trials=6, out=tmp_path, seed=1)
    assert (tmp_path / "study.journal").is_file() and len(first) == 6 + 2  # and the static network at both points
    again = search_policies(confidence, correct, costs, grid=(0.5, 0.7, 0.9), method="optuna", trials=4, out=tmp_path, seed=2)
    assert len(again) == 10 + 2  # the second call continued the stored study
    assert_priced(again, costs)  # the stored trials scored again, each at its own point
    for a in pareto(again):
        assert not any(dominates(b, a) for b in again)
    with pytest.raises(ConfigError, match="other exits, thresholds or operating points"):
        search_policies(confidence, correct, costs, grid=(0.5, 0.8), method="optuna", trials=1, out=tmp_path)


def test_a_continued_optuna_study_judges_every_trial_on_todays_bound(tmp_path):
    pytest.importorskip("optuna")
    confidence, correct, costs = data()
    loose = search_policies(confidence, correct, costs, grid=(0.5, 0.7, 0.9), method="optuna", trials=12, out=tmp_path, seed=1)
    bound = 620 / 9e8 * 1e3
    assert any(r["worst_latency_ms"] > bound for r in loose)  # so the tighter bound has trials to drop
    tight = search_policies(confidence, correct, costs, grid=(0.5, 0.7, 0.9), method="optuna", trials=1, out=tmp_path,
                            seed=2, max_worst_latency_ms=bound)
    assert tight and all(r["worst_latency_ms"] <= bound for r in tight)
    again = search_policies(confidence, correct, costs, grid=(0.5, 0.7, 0.9), method="optuna", trials=0, out=tmp_path)
    assert len(again) == 13 + 2  # loosened again: every trial counts, those run under the bound too


def test_the_static_network_is_a_candidate_of_the_optuna_search_whatever_it_sampled(tmp_path):
    """A bound only the network without exits meets: a study that never sampled it said "no policy meets"."""
    pytest.importorskip("optuna")
    confidence, correct, costs = data()
    from uboost.dynamic.search import evaluate

    bound = evaluate([None, None], 1, confidence, correct, costs)["worst_latency_ms"]  # no exit, 900 MHz: a kept exit adds its head
    found = search_policies(confidence, correct, costs, grid=(0.5,), method="optuna", trials=1, out=tmp_path, seed=0,
                            max_worst_latency_ms=bound)
    assert found and all(r["worst_latency_ms"] <= bound * (1 + 1e-12) for r in found)


def _optuna_worker(out: str, seed: int) -> int:
    confidence, correct, costs = data()
    return len(search_policies(confidence, correct, costs, grid=(0.5, 0.7, 0.9), method="optuna", trials=5,
                               out=out, seed=seed))


def test_optuna_study_is_shared_by_concurrent_processes(tmp_path):
    """Parallel like ``uboost tune``: processes on one output directory add to one study."""
    pytest.importorskip("optuna")
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(2) as pool:
        seen = pool.starmap(_optuna_worker, [(str(tmp_path), 1), (str(tmp_path), 2)])
    assert max(seen) == 10 + 2 and min(seen) >= 5 + 2  # the later one saw every trial of both (+ the static network)
    confidence, correct, costs = data()
    assert len(search_policies(confidence, correct, costs, grid=(0.5, 0.7, 0.9), method="optuna", trials=0,
                               out=tmp_path)) == 10 + 2


def test_bad_thresholds_and_policies():
    confidence, correct, costs = data()
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        search_policies(confidence, correct, costs, grid=(0.5, 1.2))
    with pytest.raises(ConfigError, match="positive"):
        search_policies(confidence, correct, costs, max_worst_latency_ms=-1.0)
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        ExitPolicy(positions=("a",), thresholds=(2.0,), freq_hz=1e9, voltage_v=0.8)
    policy = ExitPolicy(positions=("a", "b"), thresholds=(0.9, None), freq_hz=6e8, voltage_v=0.7, metrics={"accuracy": 0.5})
    assert ExitPolicy.from_dict(policy.to_dict()) == policy
