"""The Optuna outer loop: real (tiny) searches in child processes, journal storage, CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from tests.cli.conftest import cli, one_line_error  # noqa: F401 - `cli` is a fixture
from uboost import runs
from uboost.exceptions import ConfigError, UBoostError
from uboost.search import SearchConfig
from uboost.tuning import (
    BUDGET_CONSTRAINT, TrialFailed, TuneSpace, create_study, export_trial, load_study, objective, pareto_front,
    run_study,
)

BASE = SearchConfig(space="lenet", space_options={"widths": [4, 8], "hidden": [16]}, dataset="digits", image_size=8,
                    epochs=1, max_samples=128, batch_size=32)
TINY = ["--space", "lenet", "--dataset", "digits", "--image-size", "8", "--epochs", "1", "--max-samples", "128",
        "--batch-size", "32"]
SMALL_ARRAYS = TuneSpace(rows=(8, 16), cols=(8, 16))


@pytest.fixture
def tiny_toml(tmp_path):
    path = tmp_path / "base.toml"
    path.write_text('[search]\nspace_options = { widths = [4, 8], hidden = [16] }\n')
    return path


def _env():
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", PYTHONWARNINGS="ignore")
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
    return env


def _uboost(*args) -> list[str]:
    return [sys.executable, "-c", "import sys; from uboost.cli import main; sys.exit(main())", *map(str, args)]


def assert_measured(trial) -> None:
    """The trial's latency and cycles (its objective value and user attributes) are those its search
    wrote: the run directory's result.json and hardware.json total."""
    a = trial.user_attrs
    run_dir = Path(a["run_dir"])
    result = json.loads((run_dir / "result.json").read_text())
    total = json.loads((run_dir / "hardware.json").read_text())["total"]
    assert a["latency_ms"] > 0 and a["cycles"] > 0
    assert a["latency_ms"] == pytest.approx(result["latency_ms"], rel=1e-12) == total["latency_ms"]
    assert a["cycles"] == pytest.approx(result["cycles"], rel=1e-12) == total["cycles"]


# ----------------------------------------------------------------------------------- space and parsing


def test_tune_space_validates_and_suggests_within_bounds():
    space = TuneSpace(rows=range(8, 33, 8), cols=[8, 16], area_budget=256, dataflows=["ws", "os"], utilization_weight=(0, 2))
    assert space.rows == range(8, 33, 8) and space.cols == (8, 16) and space.dataflows == ("ws", "os")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        changes = space.suggest(trial)
        rows, cols = map(int, changes["array"].split("x"))
        assert rows in (8, 16, 24, 32) and cols in (8, 16) and changes["dataflow"] in ("ws", "os")
        assert 0.01 <= changes["latency_weight"] <= 10 and 1 <= changes["temperature"] <= 50
        assert 0 <= changes["utilization_weight"] <= 2
        assert (space.area_violation(changes["array"]) is None) == (rows * cols <= 256)
        study.tell(trial, 0.0)
    assert space.to_dict()["rows"] == {"low": 8, "high": 32, "step": 8}
    json.dumps(space.to_dict())


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        (dict(latency_weight=(0, 1)), "log scale"),
        (dict(temperature=(5, 1)), "low <= high"),
        (dict(rows=[]), "rows"),
        (dict(cols=[8, -1]), "positive integers"),
        (dict(dataflows=["ws", "xs"]), "unknown dataflow 'xs'"),
        (dict(rows=(16, 32), cols=(16,), area_budget=128), "no array fits the area budget 128"),
        (dict(area_budget=0), "area_budget"),
        (dict(rows=(100000,)), "rows must be at most 65536"),  # every trial would have failed
        (dict(cols=range(8, 70000, 8)), "cols must be at most 65536"),
    ],
)
def test_tune_space_errors_say_what_was_expected(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        TuneSpace(**kwargs)


def test_cli_parsers():
    from uboost.cli.tune import parse_float_range, parse_int_space

    assert parse_float_range("0.01:10", "x") == (0.01, 10.0) and parse_float_range("5", "x") == (5.0, 5.0)
    assert parse_int_space("8,16,32", "x") == (8, 16, 32)
    assert parse_int_space("8:64:8", "x") == range(8, 65, 8) and parse_int_space("4:6", "x") == range(4, 7)
    for bad in ("8:x", "8:4", "1:2:3:4"):
        with pytest.raises(ConfigError):
            parse_int_space(bad, "--rows")
    with pytest.raises(ConfigError, match="LOW:HIGH"):
        parse_float_range("a:b", "--lambda-range")


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["--mode", "budget"], ["needs a latency budget", "--budget-ms"]),
        (["--mode", "fast"], ["unknown mode 'fast'", "pareto"]),
        (["--rows", "8,x"], ["--rows", "8,16,32"]),
        (["--rows", "16", "--cols", "16", "--area-budget", "64"], ["no array fits the area budget 64"]),
        (["--lambda-range", "0:1"], ["log scale"]),
        (["--storage", "study.txt"], ["storage must be"]),
        (["--dataflows", "ws,zz"], ["unknown dataflow 'zz'"]),
        (["--cost-model", "lookup"], ["--cost-model lookup prices from a table, which a search config cannot hold"]),
    ],
)
def test_bad_tune_input_is_one_red_line(cli, tmp_path, args, fragments):
    one_line_error(cli("tune", *TINY, "--trials", "1", "--out", tmp_path / "t", *args), *fragments)


def test_report_and_export_need_an_existing_study(cli, tmp_path):
    one_line_error(cli("tune", "--trials", "0", "--out", tmp_path / "none"), "no study in")
    create_study(tmp_path / "t", mode="pareto")
    one_line_error(cli("tune", "--export", "best", "--out", tmp_path / "t"), "has no finished trial")
    one_line_error(cli("tune", "--export", "0", "--out", tmp_path / "t"), "has no trial 0")
    one_line_error(cli("tune", "--trials", "0", "--out", tmp_path / "t", "--study-name", "other"), "no study named 'other'", "uboost")
    one_line_error(cli("tune", *TINY, "--out", tmp_path / "t", "--mode", "budget", "--budget-ms", "1"), "created in 'pareto' mode")
    for storage, args in ((tmp_path / "s" / "x.db", ["--trials", "0"]), (tmp_path / "s" / "x.journal", ["--export", "0"])):
        one_line_error(cli("tune", *args, "--out", tmp_path / "t", "--storage", storage), "no study storage at", "x.")
        assert not (tmp_path / "s").exists()  # a report or an export creates no storage


def test_a_dataset_that_is_not_there_is_one_red_line_before_the_study_is_made(cli, tmp_path):
    one_line_error(cli("tune", *TINY, "--trials", "1", "--out", tmp_path / "t", "--dataset", "cifar10", "--data-dir",
                       tmp_path / "nodata"), "CIFAR-10 not found")
    one_line_error(cli("tune", *TINY, "--trials", "1", "--out", tmp_path / "t", "--dataset", f"folder:{tmp_path / 'noimages'}"),
                   "does not exist")
    assert not (tmp_path / "t").exists()


def test_continuing_with_other_choices_is_refused_before_any_trial(cli, tmp_path):
    study = create_study(tmp_path)
    space = TuneSpace(rows=(8, 16), cols=(8,))
    study.add_trial(optuna.trial.create_trial(
        params={"latency_weight": 1.0, "temperature": 10.0, "rows": 8, "cols": 8}, distributions=space.distributions(),
        values=[0.5, 0.01], user_attrs={"accuracy": 0.5, "latency_ms": 0.01},
    ))
    one_line_error(cli("tune", *TINY, "--out", tmp_path, "--rows", "8,32", "--cols", "8", "--seed", "1"),
                   "searched rows as choices 8,16, now choices 8,32", "--study-name")
    assert len(load_study(tmp_path).trials) == 1
    assert "uboost_seed_sessions:1" not in load_study(tmp_path).user_attrs  # a refused continuation writes nothing
    one_line_error(cli("tune", *TINY, "--out", tmp_path, "--rows", "8:16", "--cols", "8"), "searched rows as choices 8,16, now range 8:16")


# ------------------------------------------------------------------------------------- real trials


def test_tune_cli_end_to_end_continue_and_export(cli, tmp_path, tiny_toml):
    out = tmp_path / "tune"
    args = ["tune", *TINY, "--config", tiny_toml, "--rows", "8,16", "--cols", "8", "--seed", "0", "--out", out]
    first = cli(*args, "--trials", "2")
    assert first.code == 0, first.err
    assert "Pareto front" in first.out and "trial 0: accuracy" in first.out and "trial 1: accuracy" in first.out
    assert (out / "study.journal").is_file() and (out / "pareto.png").stat().st_size > 0

    study = load_study(out)
    assert study.metric_names == ["accuracy", "latency_ms"]
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    trials = study.trials
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    for t in trials:
        a = t.user_attrs
        assert isinstance(a["arch"], dict) and set(a["arch"]) >= {"conv1_width", "conv2_width"}
        assert 0 < a["utilization"] <= 1
        assert_measured(t)
        assert t.values == [a["accuracy"], a["latency_ms"]] and a["accuracy"] == a["val_acc"]
        assert a["array"] == f"{t.params['rows']}x{t.params['cols']}" and a["dataflow"] == "ws"
        assert a["config"]["space_options"] == {"widths": [4, 8], "hidden": [16]}
        assert a["config"]["latency_weight"] == t.params["latency_weight"]
        assert Path(a["run_dir"]).is_dir() and json.loads((Path(a["run_dir"]) / "arch.json").read_text()) == a["arch"]

    again = cli(*args, "--trials", "1")  # same storage + study name: continues
    assert again.code == 0, again.err
    assert "continuing: 2 trials" in again.out
    assert [t.number for t in load_study(out).trials] == [0, 1, 2]

    exported = cli("tune", "--out", out, "--export", "best")
    assert exported.code == 0, exported.err
    best = max(pareto_front(load_study(out)), key=lambda t: (t.user_attrs["accuracy"], -t.user_attrs["latency_ms"], -t.number))
    target = out / f"export-{best.number}"
    run = runs.load_run(target)
    assert run.arch == best.user_attrs["arch"] and SearchConfig.from_dict(run.config).array == best.user_attrs["array"]
    assert json.loads((target / "tune.json").read_text())["trial"] == best.number
    assert not (target / "checkpoints").exists()
    from uboost.networks import load_frozen_network

    network = load_frozen_network(target)  # what `uboost retrain` builds from it
    import torch

    assert network.input_shape == (1, 8, 8) and network.module(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    one_line_error(cli("tune", "--out", out, "--export", "best"), "already exists", "--force")
    assert cli("tune", "--out", out, "--export", "best", "--force").code == 0
    trial0 = Path(load_study(out).trials[0].user_attrs["run_dir"])  # another trial's own run directory: never cleared
    files = sorted(p.relative_to(trial0) for p in trial0.rglob("*"))
    one_line_error(cli("tune", "--out", out, "--export", "1", "--export-to", trial0, "--force"), "holds the results of uboost search", "0000")
    assert sorted(p.relative_to(trial0) for p in trial0.rglob("*")) == files and any((trial0 / "checkpoints").iterdir())


def test_python_api_in_a_users_own_study(tmp_path):
    study = create_study(tmp_path, seed=1)
    study.optimize(
        lambda t: objective(t, space="lenet", space_options={"widths": [4, 8], "hidden": [16]}, dataset="digits",
                            image_size=8, epochs=1, max_samples=128, batch_size=32, out_root=tmp_path,
                            tune_space=TuneSpace(rows=(8,), cols=(8, 16))),
        n_trials=1, catch=(UBoostError,),
    )
    (trial,) = study.trials
    assert trial.state.name == "COMPLETE", trial.user_attrs.get("fail_reason")
    assert trial.user_attrs["run_dir"] == str((tmp_path / "trials" / "uboost" / "0000").resolve())
    assert_measured(trial)
    assert trial.values == [trial.user_attrs["accuracy"], trial.user_attrs["latency_ms"]]
    single = optuna.create_study(direction="maximize")
    with pytest.raises(ConfigError, match="directions"):
        single.optimize(lambda t: objective(t, base=BASE, out_root=tmp_path), n_trials=1)


@pytest.mark.slow
def test_spawn_start_method(tmp_path):
    study = run_study(base=BASE, tune_space=SMALL_ARRAYS, out_root=tmp_path, n_trials=1, seed=0, start_method="spawn")
    assert [t.state.name for t in study.trials] == ["COMPLETE"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class _BreaksTrialOne(TuneSpace):
    """Trial 1 gets a cost model the child cannot build: a failure inside the search process."""

    def suggest(self, trial):
        changes = super().suggest(trial)
        if trial.number == 1:
            changes["cost_model"] = "nope"
        return changes


def test_failing_trials_are_recorded_and_the_study_goes_on(tmp_path):
    study = create_study(tmp_path, seed=0)
    study.enqueue_trial({"rows": 16, "cols": 16})  # over the area budget: fails without running
    study.enqueue_trial({"rows": 8, "cols": 8})  # the child fails (unknown cost model)
    study = run_study(base=BASE, tune_space=_BreaksTrialOne(rows=(8, 16), cols=(8, 16), area_budget=128),
                      out_root=tmp_path, n_trials=2, study=study)
    states = [t.state.name for t in study.trials]
    assert states[:2] == ["FAIL", "FAIL"] and states[-1] == "COMPLETE", states
    skipped, broken = study.trials[:2]
    assert skipped.user_attrs["skipped"] == "area_budget" and "over the area budget of 128" in skipped.user_attrs["fail_reason"]
    assert "run_dir" not in skipped.user_attrs  # nothing was run
    assert "unknown cost model 'nope'" in broken.user_attrs["fail_reason"]
    assert_measured(study.trials[-1])
    # n_trials counts searches that ran (the failed one included), not area-budget skips
    assert sum(not t.user_attrs.get("skipped") for t in study.trials) == 2


class _PruneTrialOne(optuna.pruners.BasePruner):
    def prune(self, study, trial):
        return trial.number == 1


def test_budget_mode_constraint_reports_and_pruning(tmp_path):
    base = BASE.replace(epochs=12)  # long enough that only pruning can stop trial 1 early
    started = time.perf_counter()
    study = run_study(base=base.replace(epochs=2), tune_space=SMALL_ARRAYS, out_root=tmp_path, n_trials=1, mode="budget",
                      budget_ms=1e-4, seed=0, pruner=_PruneTrialOne())
    study = run_study(base=base, tune_space=SMALL_ARRAYS, out_root=tmp_path, n_trials=1, mode="budget",
                      budget_ms=1e-4, seed=0, pruner=_PruneTrialOne())
    done, pruned = study.trials
    assert study.metric_names == ["accuracy"]
    assert done.state.name == "COMPLETE" and sorted(done.intermediate_values) == [0, 1]
    assert_measured(done)
    over = done.user_attrs["latency_ms"] - 1e-4
    assert done.user_attrs[BUDGET_CONSTRAINT] == pytest.approx(over) and over > 0  # tiny budget: infeasible
    if hasattr(done, "constraints"):
        assert done.constraints == {BUDGET_CONSTRAINT: pytest.approx(over)}
    assert pruned.state.name == "PRUNED" and pruned.user_attrs["pruned_at_epoch"] == 0
    assert list(pruned.intermediate_values) == [0]
    assert not (Path(pruned.user_attrs["run_dir"]) / "arch.json").exists()  # killed mid-search
    assert time.perf_counter() - started < 60
    with pytest.raises(ConfigError, match="no finished trial within the latency budget"):
        export_trial(study, "best", out_root=tmp_path)  # the only finished trial is over budget


def _finished_trial(study, space: TuneSpace) -> None:
    study.add_trial(optuna.trial.create_trial(
        params={"latency_weight": 1.0, "temperature": 10.0, "rows": 8, "cols": 8}, distributions=space.distributions(),
        values=[0.5, 0.01], user_attrs={"accuracy": 0.5, "latency_ms": 0.01, "cycles": 10.0, "utilization": 0.5},
    ))


def _trials_so_far(out) -> list:
    """The study's trials while tune writes it: none before its journal holds the study (the file is created first,
    and read in between the study is not there yet: a race CI hit)."""
    from uboost.exceptions import ConfigError

    try:
        return load_study(out).trials if (out / "study.journal").is_file() else []
    except ConfigError:
        return []


def _stop_tune_in_a_trial(out, stop, *, phase: str = "searching", earlier: int = 0):
    """Run a small `uboost tune` (3 trials of 50 epochs) into ``out``; once the trial after the ``earlier`` ones is
    starting or searching (``phase``), call ``stop(proc)``. Returns (exit code, stdout, stderr) when every process of
    the tree has let go of the pipes."""
    proc = subprocess.Popen(
        _uboost("tune", *TINY, "--epochs", "50", "--max-samples", "512", "--rows", "8,16", "--cols", "8,16", "--trials", "3", "--out", out),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), start_new_session=True,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            trials = _trials_so_far(out)
            if len(trials) > earlier:
                run_dir = trials[-1].user_attrs.get("run_dir")
                if phase == "starting" or (run_dir and (Path(run_dir) / "config.json").exists()):
                    break
            time.sleep(0.1)
        stop(proc)
        out_text, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, out_text, err


@pytest.mark.parametrize("phase", ["starting", pytest.param("searching", marks=pytest.mark.slow)])
def test_ctrl_c_stops_cleanly_and_keeps_finished_trials(tmp_path, phase):
    """Ctrl-C while the trial's process is starting / while its search runs: exit 130, the finished
    trial kept, the running one FAIL, no process left behind."""
    out = tmp_path / "tune"
    _finished_trial(create_study(out), SMALL_ARRAYS)
    # what a terminal does: the whole group, forkserver and search included
    code, out_text, err = _stop_tune_in_a_trial(out, lambda proc: os.killpg(proc.pid, signal.SIGINT), phase=phase, earlier=1)
    assert code == 130, err
    assert "interrupted" in err and "Traceback" not in err + out_text
    assert "Pareto front" in out_text  # the finished trial is reported
    states = [(t.state.name, t.user_attrs.get("fail_reason")) for t in load_study(out).trials]
    assert states == [("COMPLETE", None), ("FAIL", "interrupted (Ctrl-C)")]
    # the earlier trial is not this process's: none of the 3 searches asked is done
    assert "3 of the 3 searches asked are left: the same command with --trials 3" in " ".join(err.split())


def test_sigterm_to_the_tune_process_stops_it_as_a_ctrl_c(tmp_path):
    """`kill PID` (or a scheduler's stop) on the tune process alone: it died with exit 143 and left its trial RUNNING,
    failed as a dead worker's by the next run. Now it is the Ctrl-C path: exit 130, the trial FAIL as interrupted
    (queued again by the next run), its search process stopped."""
    out = tmp_path / "tune"
    code, out_text, err = _stop_tune_in_a_trial(out, lambda proc: proc.send_signal(signal.SIGTERM))  # the tune process only
    assert code == 130, err
    assert "interrupted" in err and "Traceback" not in err + out_text
    assert [(t.state.name, t.user_attrs.get("fail_reason")) for t in load_study(out).trials] == [("FAIL", "interrupted (Ctrl-C)")]


_WORKER = """
import sys, time
from pathlib import Path
from uboost import UBoostError
from uboost.tuning import TuneSpace, create_study, objective

out, n = Path(sys.argv[1]), int(sys.argv[2])
study = create_study(out)
(out / f"ready-{sys.argv[3]}").touch()
while not (out / "go").exists():
    time.sleep(0.01)
space = TuneSpace(rows=(8, 64), cols=(8, 64), area_budget=64)
study.optimize(lambda t: objective(t, space="lenet", dataset="digits", out_root=out, tune_space=space),
               n_trials=n, catch=(UBoostError,))
"""


def test_two_processes_share_one_journal_storage(tmp_path):
    """Two processes optimize one journal study at once: every queued trial is taken exactly once,
    trial numbers are distinct and none is lost. (The trials fail fast on the area budget, so this
    tests the storage path; the slow test below runs real searches.)"""
    out, per_worker = tmp_path / "tune", 25
    study = create_study(out)
    for _ in range(2 * per_worker):
        study.enqueue_trial({"rows": 64, "cols": 64, "latency_weight": 1.0, "temperature": 10.0})
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(out), str(per_worker), str(i)], env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    deadline = time.time() + 120
    while len(list(out.glob("ready-*"))) < 2 and time.time() < deadline and all(p.poll() is None for p in procs):
        time.sleep(0.05)
    (out / "go").touch()
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    trials = load_study(out).trials
    assert len(trials) == 2 * per_worker
    assert sorted(t.number for t in trials) == list(range(2 * per_worker))
    assert all(t.state.name == "FAIL" and t.user_attrs["skipped"] == "area_budget" for t in trials)
    workers = [t.user_attrs["worker"] for t in trials]
    assert sorted(workers.count(w) for w in set(workers)) == [per_worker, per_worker]


def _two_workers(out: Path, trials: int, extra: list[str]) -> list[subprocess.CompletedProcess]:
    procs = [
        subprocess.Popen(_uboost("tune", *TINY, "--rows", "8,16", "--cols", "8,16", "--trials", trials, "--seed", seed,
                                 "--out", out, *extra),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
        for seed in (1, 2)
    ]
    results = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=600)
        results.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return results


def _check_parallel_study(out: Path, expected_searches: int) -> None:
    trials = load_study(out).trials
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(len(trials)))  # distinct, none lost
    assert len({t._trial_id for t in trials}) == len(trials)
    assert all(t.state.name in ("COMPLETE", "FAIL") for t in trials)  # no trial left RUNNING
    assert sum(not t.user_attrs.get("skipped") for t in trials) == expected_searches
    workers = {t.user_attrs["worker"] for t in trials if "worker" in t.user_attrs}
    assert len(workers) == 2
    dirs = [t.user_attrs["run_dir"] for t in trials if "run_dir" in t.user_attrs]
    assert len(set(dirs)) == len(dirs)


@pytest.mark.slow
def test_two_uboost_tune_processes_share_one_journal(tmp_path):
    """Two `uboost tune` processes running real searches on one journal file at the same time."""
    out = tmp_path / "tune"
    results = _two_workers(out, 2, ["--area-budget", "128"])
    for r in results:
        assert r.returncode == 0, r.stderr
    _check_parallel_study(out, expected_searches=4)
    assert all(t.state.name == "COMPLETE" for t in load_study(out).trials if not t.user_attrs.get("skipped"))


@pytest.mark.slow
def test_two_processes_share_one_sqlite_database(tmp_path):
    out = tmp_path / "tune"
    results = _two_workers(out, 3, ["--storage", f"sqlite:///{tmp_path / 'study.db'}", "--epochs", "2"])
    for r in results:
        assert r.returncode == 0, r.stderr
    trials = load_study(out, storage=f"sqlite:///{tmp_path / 'study.db'}").trials
    assert len(trials) == 6 and sorted(t.number for t in trials) == list(range(6))
    assert all(t.state.name == "COMPLETE" for t in trials)
    done = subprocess.run(_uboost("tune", "--out", out, "--storage", f"sqlite:///{tmp_path / 'study.db'}", "--export", "best",
                                  "--export-to", tmp_path / "best"), env=_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    retrained = subprocess.run(_uboost("retrain", tmp_path / "best", "--epochs", "1", "--max-samples", "64"), env=_env(),
                               capture_output=True, text=True)
    assert retrained.returncode == 0, retrained.stderr
    assert json.loads((tmp_path / "best" / "retrain" / "retrain.json").read_text())["cycles"] > 0


def test_trial_failed_is_a_uboost_error():
    assert issubclass(TrialFailed, UBoostError)


def test_the_report_shows_the_chosen_accelerator_not_the_sampled_one():
    from types import SimpleNamespace

    from uboost.cli.tune import _accelerator_text, _chosen_params

    chosen = BASE.replace(sram_kb=4, dram_bw_words=4.0).to_dict()  # what the inner choice kept and priced
    sampled = {"latency_weight": 0.5, "ifmap_sram_kb": 16, "filter_sram_kb": 16, "dram_bw_words": 16.0}
    trial = SimpleNamespace(params=sampled, user_attrs={"inner_accelerator": {"objective": "edp"}, "config": chosen})
    assert _chosen_params(trial) == {"latency_weight": 0.5, "ifmap_sram_kb": 4, "filter_sram_kb": 4, "dram_bw_words": 4.0}
    assert _accelerator_text(_chosen_params(trial)) == "4/4/- kB, 4 w/c"
    searched = SimpleNamespace(params=sampled, user_attrs={"config": chosen})  # no inner choice: the sampled one ran
    assert _chosen_params(searched) == sampled


def test_a_report_budget_judges_the_front_and_the_best_alike(cli, tmp_path):
    """--trials 0 --budget-ms tightens (the front had an over-budget trial, "best" had none) or loosens (a
    budget-mode study's trials run under a tighter budget count again) what is within it."""
    out = tmp_path / "tune"
    study = create_study(out)
    for latency, accuracy, over in ((0.003, 0.9, 0.0024), (0.0005, 0.6, -0.0001)):  # ran under a 0.0006 ms budget
        study.add_trial(optuna.trial.create_trial(
            params={"latency_weight": 1.0, "temperature": 10.0, "rows": 8, "cols": 8}, distributions=SMALL_ARRAYS.distributions(),
            values=[accuracy, latency], user_attrs={"accuracy": accuracy, "latency_ms": latency, "cycles": 10.0,
                                                    "utilization": 0.5, BUDGET_CONSTRAINT: over}))
    assert [t.number for t in pareto_front(study)] == [1]
    assert [t.number for t in pareto_front(study, budget_ms=0.01)] == [1, 0]  # loosened: trial 0 is within it
    tight = cli("tune", "--trials", "0", "--out", out, "--budget-ms", "0.0001")
    assert tight.code == 0 and "no finished trial is within the 0.0001 ms latency budget: the fastest, trial 1" in tight.out
    loose = cli("tune", "--trials", "0", "--out", out, "--budget-ms", "0.01")
    assert loose.code == 0 and "best: trial 0" in loose.out


def test_report_options_that_would_be_ignored_are_refused(cli, tmp_path):
    out = tmp_path / "tune"
    study = create_study(out, mode="pareto")
    _finished_trial(study, SMALL_ARRAYS)
    one_line_error(cli("tune", "--trials", "0", "--out", out, "--objectives", "accuracy,energy"),
                   "was searched over accuracy, latency", "drop --objectives")
    assert cli("tune", "--trials", "0", "--out", out, "--objectives", "accuracy,latency").code == 0
    one_line_error(cli("tune", *TINY, "--trials", "1", "--out", tmp_path / "t2", "--export-to", tmp_path / "x"),
                   "--export-to names where --export N writes")
    assert not (tmp_path / "t2").exists()
    one_line_error(cli("tune", *TINY, "--trials", "1", "--out", tmp_path / "t3", "--study-name", " "), "must not be empty")
    assert not (tmp_path / "t3").exists()


def test_exports_of_two_studies_in_one_folder_do_not_collide(tmp_path):
    out = tmp_path / "tune"
    for name in ("uboost", "other study"):
        study = create_study(out, study_name=name)
        study.add_trial(optuna.trial.create_trial(
            params={"latency_weight": 1.0, "temperature": 10.0, "rows": 8, "cols": 8}, distributions=SMALL_ARRAYS.distributions(),
            values=[0.5, 0.01], user_attrs={"accuracy": 0.5, "latency_ms": 0.01, "cycles": 10.0, "utilization": 0.5,
                                            "arch": {"a": 1}, "config": {"space": "lenet"}}))
    first = export_trial(load_study(out), 0, out_root=out)
    second = export_trial(load_study(out, study_name="other study"), 0, out_root=out)
    assert first.name == "export-0" and second.name.startswith("export-other_study-") and second.name.endswith("-0")


def test_an_export_of_trial_n_keeps_to_the_budgets_given_with_it(cli, tmp_path):
    """`tune --export 3 --area-budget-mm2 0.15` exported a 0.18 mm² trial (and --budget-ms a slower one) in silence,
    though the error text says an export of trial N takes those budgets; `--export best` kept to them."""
    out = tmp_path / "t"
    study = create_study(out)
    for latency, area in ((0.001, 0.1), (0.002, 0.2)):
        study.add_trial(optuna.trial.create_trial(
            params={"latency_weight": 1.0, "temperature": 10.0, "rows": 8, "cols": 8}, distributions=SMALL_ARRAYS.distributions(),
            values=[0.5 + latency * 100, latency], user_attrs={"accuracy": 0.5 + latency * 100, "latency_ms": latency, "area_mm2": area,
                                                              "cycles": 10.0, "utilization": 0.5, "arch": {"a": 1}, "config": {"space": "lenet"}}))
    one_line_error(cli("tune", "--out", out, "--export", "1", "--area-budget-mm2", "0.15"),
                   "trial 1 is outside the budgets given", "area 0.2 mm² is over --area-budget-mm2 0.15", "--export best (trial 0)")
    one_line_error(cli("tune", "--out", out, "--export", "1", "--budget-ms", "0.0015"),
                   "latency 2 µs is over --budget-ms 0.0015", "--export best (trial 0)")
    assert not list(out.glob("export-*"))
    assert cli("tune", "--out", out, "--export", "1", "--area-budget-mm2", "0.25").code == 0  # within: exported
    assert (out / "export-1").is_dir()


@pytest.mark.parametrize("option, value", [("--hardware", "acc.toml"), ("--tech", "tpu28"), ("--epochs", "9")])
def test_a_report_or_an_export_refuses_options_that_only_set_what_trials_run(cli, tmp_path, option, value):
    """`tune --export best --hardware ss.cfg --tech tpu28 --epochs 9` wrote the trial unchanged, silently."""
    for args in (["--export", "best"], ["--trials", "0"]):
        one_line_error(cli("tune", "--out", tmp_path / "t", *args, option, value), f"{option} sets what trials run", f"drop {option}")
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize("other", [dict(objectives="accuracy,latency,area"), dict(mode="budget")])
def test_a_refused_continuation_writes_nothing_to_the_journal(tmp_path, other):
    """Optuna's create_study(load_if_exists=True) appended a "create study" record before the objectives were compared."""
    from uboost.tuning import create_study

    create_study(tmp_path)
    journal = tmp_path / "study.journal"
    before = journal.read_bytes()
    with pytest.raises(ConfigError, match="optimizes accuracy, latency_ms, not|created in 'pareto' mode"):
        create_study(tmp_path, **other)
    assert journal.read_bytes() == before
    create_study(tmp_path)  # nor does a continuation with the same objectives
    assert journal.read_bytes() == before
