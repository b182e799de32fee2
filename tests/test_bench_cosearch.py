"""benchmarks/bench_cosearch.py --retrain-seeds: the verdict on the mean of K retrains per trial network
(fast: in-memory studies, retrains stubbed by a table of accuracies per network and seed)."""

import dataclasses
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_cosearch  # noqa: E402

# accuracy of each network's retrain per seed (what the stub returns; 1/360 steps as on digits)
TABLE = {
    "A": {0: 350 / 360, 1: 342 / 360, 2: 341 / 360},  # baseline, lucky with seed 0: 97.2 %, mean 95.6 %
    "B": {0: 346 / 360, 1: 346 / 360, 2: 345 / 360},  # baseline, steady: 96.1 %, mean 96.0 %
    "C": {0: 349 / 360, 1: 338 / 360, 2: 339 / 360},  # co-search, cheap, lucky: 96.9 %, mean 94.6 %
    "D": {0: 347 / 360, 1: 346 / 360, 2: 347 / 360},  # co-search, dearer, steady: 96.4 %, mean 96.3 %
}
# the trials' own retrain settings, as `uboost tune` writes them (batch size and accelerator of the search)
OWN = dict(epochs=5, batch_size=32, max_samples=None, accelerator="cpu")


@pytest.fixture
def retrains(monkeypatch):
    import uboost.retrain

    calls = []

    class Trained:
        def __init__(self, acc):
            self.acc = acc

        def summary(self):
            return {"test_acc": self.acc}

    def retrain(run, config, out=None):
        calls.append((json.loads((Path(run) / "arch.json").read_text())["net"], config))
        acc = TABLE[json.loads((Path(run) / "arch.json").read_text())["net"]][config.seed]
        done = Path(out) if out is not None else Path(run) / "retrain"
        done.mkdir(parents=True, exist_ok=True)
        (done / "retrain.json").write_text(json.dumps({"test_acc": acc, "config": dataclasses.asdict(config)}))
        return Trained(acc)

    monkeypatch.setattr(uboost.retrain, "retrain", retrain)
    monkeypatch.setattr(bench_cosearch, "reprice", lambda studies, ref, pick: {"latency_ms": 1.0, "energy_uj": 1.0, "edp_uj_ms": 1.0})
    return calls


def _study(tmp_path, kind, trials, seed, write=True):
    """An in-memory study of ``trials`` ``(net, edp)``; each trial's run directory holds what `uboost tune`
    leaves: config.json, arch.json and its own retrain (seed = the study's) in retrain/ (written unless
    ``write`` is false: the study loaded again)."""
    import optuna
    from uboost.retrain import RetrainConfig

    config = bench_cosearch.base_config("lenet", sram_kb=4, dram_bw=4.0, epochs=3, max_samples=None, seed=seed).to_dict()
    study = optuna.create_study(directions=["maximize", "minimize"])
    for number, (net, edp) in enumerate(trials):
        run = tmp_path / kind / "trials" / "uboost" / f"{number:04d}"
        acc = TABLE[net][seed]
        if not write:
            study.add_trial(optuna.trial.create_trial(values=[acc, edp], user_attrs={**_attrs(config, acc, edp), "run_dir": str(run)}))
            continue
        (run / "retrain").mkdir(parents=True)
        (run / "config.json").write_text(json.dumps(config))
        (run / "arch.json").write_text(json.dumps({"net": net}))
        (run / "retrain" / "retrain.json").write_text(json.dumps({"test_acc": acc, "config": dataclasses.asdict(RetrainConfig(**OWN, seed=seed))}))
        study.add_trial(optuna.trial.create_trial(values=[acc, edp], user_attrs={**_attrs(config, acc, edp), "run_dir": str(run)}))
    return study


def _attrs(config, acc, edp):
    return {"accuracy": acc, "latency_ms": edp, "energy_uj": 1.0, "config": config, "array": "16x16", "dataflow": "ws", "area_mm2": 0.1}


def _judge(tmp_path, seeds, seed=0, write=True):
    studies = {"baseline": (_study(tmp_path, "baseline", [("A", 10.0), ("B", 12.0), ("A", 10.0)], seed, write), 1.0),
               "cosearch": (_study(tmp_path, "cosearch", [("C", 2.0), ("D", 4.0)], seed, write), 2.0)}
    return bench_cosearch.judged("lenet", 4, 0.1377, None, studies, 0.005, seeds, tmp_path, tmp_path)


def test_one_retrain_seed_is_todays_verdict_on_the_trials_own_retrains(tmp_path, retrains):
    found = _judge(tmp_path, 1)
    assert retrains == [] and "retrains" not in found  # nothing retrained
    # reference: A (97.2 %; trial 0, the first of the two equal A trials); the only co-search trial within 0.5
    # points of it is C (96.9 %, -0.28 points): gain 10 / 2
    assert found["reference"]["trial"] == 0 and found["reference"]["accuracy"] == TABLE["A"][0]
    assert found["pick"]["trial"] == 0 and found["pick_within_tolerance"]
    assert found["edp_gain"] == pytest.approx(5.0) and found["accuracy_delta_points"] == pytest.approx(-100 / 360)
    assert "accuracy_std" not in found["pick"] and "trial_accuracy" not in found["reference"]


def test_three_seeds_judge_on_the_means_and_a_repeated_network_is_retrained_once_per_seed(tmp_path, retrains):
    found = _judge(tmp_path, 3)
    # the trials' own seed-0 retrains are reused; A (two trials), B, C, D each retrained with seeds 1 and 2 only
    assert sorted((net, c.seed) for net, c in retrains) == [(n, s) for n in "ABCD" for s in (1, 2)]
    assert all((c.epochs, c.batch_size, c.max_samples, c.accelerator) == (5, 32, None, "cpu") for _, c in retrains)
    assert found["retrains"]["seeds"] == 3 and found["retrains"]["distinct_retrains"] == 12
    assert found["retrains"]["retrained_now"] == 8
    # means: A 95.6 %, B 96.0 % -> the reference is B; within 0.5 points of 96.0 % is D (96.3 %), not C (94.6 %)
    ref, pick = found["reference"], found["pick"]
    assert ref["trial"] == 1 and ref["accuracy"] == pytest.approx(1037 / 1080)
    assert ref["trial_accuracy"] == TABLE["B"][0] and ref["accuracy_seeds"] == [TABLE["B"][s] for s in range(3)]
    assert ref["accuracy_std"] == pytest.approx((1 / 360) / 3 ** 0.5)
    assert pick["trial"] == 1 and pick["accuracy"] == pytest.approx(1040 / 1080) and found["pick_within_tolerance"]
    assert found["edp_gain"] == pytest.approx(3.0) and found["accuracy_delta_points"] == pytest.approx(100 * 3 / 1080)
    rows = {r["trial"]: r for r in found["baseline"]["trials"]}
    assert rows[0]["accuracy_seeds"] == rows[2]["accuracy_seeds"] == [TABLE["A"][s] for s in range(3)]
    # the repeats sit beside each trial's own retrain, which is left as it was
    first = tmp_path / "baseline" / "trials" / "uboost" / "0000"
    assert sorted(p.name for p in first.iterdir() if p.name.startswith("retrain")) == ["retrain", "retrain-seed1", "retrain-seed2"]
    assert json.loads((first / "retrain" / "retrain.json").read_text())["config"]["seed"] == 0
    again = _judge(tmp_path, 3, write=False)
    assert len(retrains) == 8 and again["retrains"]["retrained_now"] == 0  # the same trials judged again: all reused
    assert again["edp_gain"] == found["edp_gain"] and again["reference"]["accuracy_seeds"] == ref["accuracy_seeds"]


def test_a_study_with_another_seed_keeps_its_retrain_and_reuses_it_as_that_seed(tmp_path, retrains):
    # `uboost tune --seed 1` retrains its trials with seed 1 in retrain/: that is seed 1 of the three;
    # seed 0 goes to retrain-seed0/ rather than replacing it
    found = _judge(tmp_path, 3, seed=1)
    assert sorted((net, c.seed) for net, c in retrains) == [(n, s) for n in "ABCD" for s in (0, 2)]
    first = tmp_path / "baseline" / "trials" / "uboost" / "0000"
    assert sorted(p.name for p in first.iterdir() if p.name.startswith("retrain")) == ["retrain", "retrain-seed0", "retrain-seed2"]
    assert json.loads((first / "retrain" / "retrain.json").read_text())["config"]["seed"] == 1
    assert found["reference"]["accuracy_seeds"] == [TABLE["B"][s] for s in range(3)]
    assert found["reference"]["trial_accuracy"] == TABLE["B"][1]


def test_a_stored_retrain_with_other_settings_is_not_reused(tmp_path, retrains):
    import _reuse

    _judge(tmp_path, 1)  # trials with their own retrain (batch 32) in retrain/
    run = tmp_path / "baseline" / "trials" / "uboost" / "0001"
    settings = {k: v for k, v in OWN.items() if k not in ("epochs", "max_samples")}
    assert _reuse.retrain_acc(run, 5, None, 0, settings) == TABLE["B"][0] and retrains == []
    _reuse.retrain_acc(run, 5, None, 0, {**settings, "batch_size": 64})  # another batch size: retrained, in place
    assert len(retrains) == 1 and retrains[0][1].batch_size == 64


def test_the_baseline_local_search_runs_its_source_study_first_and_adds_neighbors_on_the_default(tmp_path):
    """``--baseline-local-search N`` (real searches and retrains, tiny): the plain baseline study is run first when
    missing, copied to ``baseline-lsN``, and the added neighbor is priced on the 16x16 default; a second run resumes."""
    import subprocess

    from uboost import tuning
    from uboost.search import SearchConfig
    from uboost.tuning.local_search import ATTR, searched

    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_cosearch.py"
    cmd = [sys.executable, str(bench), "--spaces", "lenet", "--sram-kb", "4", "--epochs", "1", "--retrain-epochs", "1",
           "--max-samples", "64", "--baseline-trials", "2", "--baseline-local-search", "1", "--baseline-only",
           "--out", str(tmp_path / "runs"), "--summary", str(tmp_path / "summary")]
    first = subprocess.run(cmd, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-2000:]
    cell = tmp_path / "runs" / "lenet-4kB"
    source, copy = tuning.load_study(cell / "baseline"), tuning.load_study(cell / "baseline-ls1")
    assert len(searched(source)) == 2 == len(source.trials)  # the source study: searches only
    assert [t.params for t in copy.trials[:2]] == [t.params for t in source.trials]
    local = [t for t in copy.trials if ATTR in t.user_attrs]
    assert len(local) == 1 and local[0].number == 2
    attrs = local[0].user_attrs
    parent = copy.trials[attrs[ATTR]["parent"]].user_attrs["arch"]
    assert [k for k in parent if parent[k] != attrs["arch"][k]] == [attrs[ATTR]["label"]]
    base = bench_cosearch.base_config("lenet", sram_kb=4, dram_bw=4.0, epochs=1, max_samples=64, seed=0)
    assert SearchConfig.from_dict(attrs["config"]).hardware_spec() == base.hardware_spec()  # the default, not a co-searched one
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(tuning.load_study(cell / "baseline").trials) == 2 and len(tuning.load_study(cell / "baseline-ls1").trials) == 3


def test_the_baseline_front_leaves_out_a_less_accurate_trial_of_equal_edp(tmp_path, retrains):
    """Pareto dominance (at least as accurate and as cheap, better in one): B is less accurate than A at A's EDP,
    so it is not a baseline front point (a strict EDP comparison kept it)."""
    studies = {"baseline": (_study(tmp_path, "baseline", [("A", 10.0), ("B", 10.0), ("B", 12.0)], 0, False), 1.0),
               "cosearch": (_study(tmp_path, "cosearch", [("C", 2.0), ("D", 4.0)], 0, False), 2.0)}
    found = bench_cosearch.judged("lenet", 4, 0.1377, None, studies, 0.005, 1, tmp_path, tmp_path)
    assert [g["baseline_trial"] for g in found["front_gains"]] == [0]
