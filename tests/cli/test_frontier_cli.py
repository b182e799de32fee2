"""``uboost export --target-latency-ms`` and ``uboost frontier`` on a finished tiny search."""

import json

import pytest

from tests.cli.conftest import TINY, one_line_error, tiny_search


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A tiny lenet search with width choices (so budgets bind) and its cheapest / argmax latency."""
    from uboost.frontier import load_projector

    out = tiny_search(tmp_path_factory.mktemp("frontier") / "run", array="8x8")
    source = load_projector(out)
    return out, source.projector.cheapest().latency_ms, source.projector.unconstrained().latency_ms


def test_search_keeps_alphas_and_probabilities(searched):
    run, _, _ = searched
    probs = json.loads((run / "probabilities.json").read_text())
    assert set(probs) == {"conv1_width", "conv1_kernel", "conv2_width", "conv2_kernel", "fc1_width"}
    assert all(sum(p.values()) == pytest.approx(1.0) for p in probs.values())
    result = json.loads((run / "result.json").read_text())
    assert result["argmax_latency_ms"] == pytest.approx(result["latency_ms"])  # the exported network is the argmax
    from uboost.runs import not_the_argmax

    assert not_the_argmax(run) is None  # frontier and predict add no note


def test_export_to_a_budget_writes_a_run_directory_retrain_accepts(cli, searched, tmp_path):
    run, low, high = searched
    target = low + 0.5 * (high - low)
    out = tmp_path / "budget"
    result = cli("export", run, "--target-latency-ms", target, "--out", out)
    assert result.code == 0, result.err
    for name in ("config.json", "arch.json", "hardware.json", "hardware.txt", "result.json"):
        assert (out / name).is_file(), name
    written = json.loads((out / "result.json").read_text())
    assert written["latency_ms"] <= target and written["target_latency_ms"] == target
    assert json.loads((out / "hardware.json").read_text())["total"]["latency_ms"] == pytest.approx(written["latency_ms"])
    retrained = cli("retrain", out, "--epochs", "1", "--max-samples", "64", "--batch-size", "32")
    assert retrained.code == 0, retrained.err
    assert (out / "retrain" / "model.pt").is_file()


def test_budget_below_the_cheapest_network_writes_nothing(cli, searched, tmp_path):
    run, low, _ = searched
    out = tmp_path / "never"
    one_line_error(cli("export", run, "--target-latency-ms", low * 0.5, "--out", out), "cheapest reachable", f"{low:.6g}")
    assert not out.exists()


@pytest.mark.parametrize("bad", ["0", "-1", "nan", "inf"])
def test_bad_budgets_are_one_line_errors(cli, searched, tmp_path, bad):
    run, _, _ = searched
    one_line_error(cli("export", run, "--target-latency-ms", bad, "--out", tmp_path / "x"), "positive number")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("bad", ["1", "-0.1", "nan"])
def test_bad_budget_floors_are_one_line_errors(cli, searched, tmp_path, bad):
    run, low, high = searched
    one_line_error(cli("export", run, "--target-latency-ms", str(high), "--budget-floor", bad, "--out", tmp_path / "x"), "budget-floor")
    one_line_error(cli("frontier", run, "--budget-floor", bad, "--out", tmp_path / "f"), "budget-floor")
    one_line_error(cli("search", "--space", "lenet", "--budget-floor", bad, "--out", tmp_path / "s"), "--budget-floor")  # the flag typed (the field name before)
    assert not any((tmp_path / d).exists() for d in ("x", "f", "s"))


def test_a_run_without_alphas_is_a_one_line_error(cli, searched, tmp_path):
    run, _, _ = searched
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text((run / "config.json").read_text())
    (bare / "arch.json").write_text((run / "arch.json").read_text())
    one_line_error(cli("frontier", bare, "--points", "3"), "alphas.json")
    one_line_error(cli("export", bare, "--target-latency-ms", "1", "--out", tmp_path / "y"), "alphas.json")


def test_frontier_points_are_monotone_and_within_their_budgets(cli, searched, tmp_path):
    run, low, high = searched
    out = tmp_path / "front"
    result = cli("frontier", run, "--points", "5", "--out", out)
    assert result.code == 0, result.err
    points = sorted(out.glob("p*"))
    assert len(points) == 5 and (out / "frontier.png").is_file()
    rows = [json.loads((p / "result.json").read_text()) for p in points]
    latencies = [r["latency_ms"] for r in rows]
    assert latencies == sorted(latencies)
    assert all(r["latency_ms"] <= r["target_latency_ms"] * (1 + 1e-12) for r in rows)
    assert latencies[0] == pytest.approx(low) and latencies[-1] == pytest.approx(high)
    assert rows[-1]["distinct_choices"] == 0  # the unconstrained end is the search's own argmax
    from uboost.frontier import load_projector

    projector = load_projector(run).projector  # each uses >= 90 % of its budget, or of the most any network can
    assert all(r["latency_ms"] >= 0.9 * min(r["target_latency_ms"], projector.highest_under(r["target_latency_ms"]).latency_ms) * (1 - 1e-9)
               for r in rows)
    assert "distinct" in result.out
    # plain upper bounds: a larger budget never lowers the search's preference
    result = cli("frontier", run, "--points", "5", "--budget-floor", "0", "--out", tmp_path / "plain")
    assert result.code == 0, result.err
    plain = [json.loads((p / "result.json").read_text()) for p in sorted((tmp_path / "plain").glob("p*"))]
    preferences = [r["preference"] for r in plain]
    assert preferences == sorted(preferences)
    assert [r["latency_ms"] for r in plain] == sorted(r["latency_ms"] for r in plain)
    # the window only ever raises a point: where the ceiling's optimum is in the window it is the same network
    assert all(w["latency_ms"] >= p["latency_ms"] * (1 - 1e-12) for w, p in zip(rows, plain))


def test_frontier_with_explicit_targets_and_retraining(cli, searched, tmp_path):
    run, low, high = searched
    out = tmp_path / "front2"
    targets = f"{high:.9f},{low:.9f}"
    result = cli("frontier", run, "--targets", targets, "--out", out, "--retrain-epochs", "1", "--max-samples", "64")
    assert result.code == 0, result.err
    for point in ("p00", "p01"):
        assert (out / point / "retrain" / "retrain.json").is_file()
        assert 0.0 <= json.loads((out / point / "result.json").read_text())["test_acc"] <= 1.0
    # --seed seeds the points' retrains (they were always seed 0; a QA pass could not vary them over seeds)
    seeded = tmp_path / "front3"
    result = cli("frontier", run, "--targets", f"{high:.9f}", "--out", seeded, "--retrain-epochs", "1", "--max-samples", "64",
                 "--seed", "3")
    assert result.code == 0, result.err
    assert json.loads((seeded / "p00" / "retrain" / "retrain.json").read_text())["config"]["seed"] == 3
    assert json.loads((seeded / "p00" / "result.json").read_text())["retrain_seed"] == 3
    one_line_error(cli("frontier", run, "--points", "2", "--seed", "3", "--out", tmp_path / "f4"), "--seed seeds the retraining")


@pytest.mark.parametrize("bad", ["0", "-0.5", "nan"])
def test_search_refuses_bad_budgets_in_one_line(cli, tmp_path, bad):
    one_line_error(cli("search", *TINY, "--target-latency-ms", bad, "--out", tmp_path / "b"), "--target-latency-ms")
    assert not (tmp_path / "b").exists()


def test_search_with_an_unreachable_budget_names_the_cheapest_latency(cli, tmp_path):
    result = cli("search", *TINY, "--target-latency-ms", "1e-7", "--out", tmp_path / "b")
    assert result.code == 1 and "cheapest reachable is" in result.err and "Traceback" not in result.err + result.out
    # refused before anything is written: it left config.json and a checkpoint, so the corrected command was refused
    # as "exists" and the hinted --resume failed the same way
    assert not (tmp_path / "b").exists()


def test_search_within_a_budget_exports_a_network_under_it(cli, searched, tmp_path):
    run, low, high = searched
    target = low + 0.3 * (high - low)
    out = tmp_path / "b"
    result = cli("search", *TINY, "--array", "8x8", "--target-latency-ms", f"{target:.9f}", "--out", out)
    assert result.code == 0, result.err
    written = json.loads((out / "result.json").read_text())
    assert written["latency_ms"] <= written["target_latency_ms"]
    assert "budget_multiplier" in written and "argmax_latency_ms" in written
    header = (out / "metrics.csv").read_text().splitlines()[0]
    assert "hw/derived_latency_ms" in header and "hw/budget_multiplier" in header


def test_search_with_a_budget_commits_its_argmax_into_the_window_and_bad_commit_is_one_red_line(cli, searched, tmp_path):
    _, low, high = searched
    target = low + 0.5 * (high - low)
    out = tmp_path / "budgeted"
    # a commit phase of ~10 steps (4 epochs of 3 on 128 images, half of them committing)
    result = cli("search", *TINY, "--array", "8x8", "--epochs", "4", "--max-samples", "128", "--target-latency-ms", target,
                 "--budget-commit", "0.5", "--out", out)
    assert result.code == 0, result.err
    assert json.loads((out / "config.json").read_text())["budget_commit"] == 0.5
    summary = json.loads((out / "result.json").read_text())
    assert summary["argmax_latency_ms"] <= target  # the search's own argmax, before the export's projection
    assert summary["argmax_latency_ms"] == pytest.approx(summary["latency_ms"])  # so the export kept it
    bad = cli("search", *TINY, "--target-latency-ms", target, "--budget-commit", "2", "--out", tmp_path / "bad")
    one_line_error(bad, "--budget-commit")
    assert not (tmp_path / "bad").exists()


def test_frontier_force_with_a_relative_path_drops_the_earlier_points(cli, searched, tmp_path, monkeypatch):
    import shutil

    run, _, _ = searched
    shutil.copytree(run, tmp_path / "r")
    monkeypatch.chdir(tmp_path)  # RUN as a user types it, relative to the current directory
    assert cli("frontier", "r", "--points", "4").code == 0
    assert sorted(p.name for p in (tmp_path / "r" / "frontier").glob("p*")) == ["p00", "p01", "p02", "p03"]
    assert cli("frontier", "r", "--points", "2", "--force").code == 0
    assert sorted(p.name for p in (tmp_path / "r" / "frontier").glob("p*")) == ["p00", "p01"]  # p02, p03 gone
    # the frontier is derived from the search: replacing the search (here a --force search over it, as a tune
    # --export --force does) takes it along; it stayed, its points networks of the earlier search
    (tmp_path / "r" / "frontier" / "p00" / "mine.txt").write_text("a user's file")
    assert cli("search", *TINY, "--out", "r", "--force").code == 0
    assert not (tmp_path / "r" / "frontier" / "p01").exists() and not (tmp_path / "r" / "frontier" / "p00" / "arch.json").exists()
    assert (tmp_path / "r" / "frontier" / "p00" / "mine.txt").read_text() == "a user's file"


def test_force_refuses_before_deleting_a_point_another_process_is_retraining(cli, searched, tmp_path):
    """frontier --force deleted the other points and the busy point's files, then stopped at its lock; search
    --force deleted them under the running retrain (exit 0) and left its outputs unlisted for good."""
    import fcntl
    import os
    import shutil

    run, _, _ = searched
    shutil.copytree(run, tmp_path / "r")
    assert cli("frontier", tmp_path / "r", "--points", "3").code == 0
    points = tmp_path / "r" / "frontier"
    before = sorted(str(p.relative_to(points)) for p in points.rglob("*"))
    fd = os.open(points / "p01" / ".lock", os.O_RDWR | os.O_CREAT)  # a retrain of p01 in another process holds it
    os.pwrite(fd, b"4242\n", 0)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        one_line_error(cli("frontier", tmp_path / "r", "--points", "3", "--force"), "in use by PID 4242")
        one_line_error(cli("search", *TINY, "--out", tmp_path / "r", "--force"), "in use by PID 4242")
        assert sorted(str(p.relative_to(points)) for p in points.rglob("*")) == sorted(before + ["p01/.lock"])
        assert (tmp_path / "r" / "config.json").is_file()
    finally:
        os.close(fd)
    assert cli("frontier", tmp_path / "r", "--points", "3", "--force").code == 0  # free again: replaced


def test_a_frontier_is_not_written_into_a_runs_own_directory(cli, searched, tmp_path):
    """--out OTHER_RUN --force deleted the other search's config, alphas and checkpoints (exit 0)."""
    import shutil

    run, _, _ = searched
    shutil.copytree(run, tmp_path / "other")
    kept = sorted(p.name for p in (tmp_path / "other").iterdir())
    for flags in ([], ["--force"]):
        one_line_error(cli("frontier", run, "--points", "2", "--out", tmp_path / "other", *flags), "holds a run")
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == kept


def test_commands_that_need_a_search_say_what_an_exported_network_or_a_retrain_folder_is(cli, searched, tmp_path):
    run, _, _ = searched
    assert cli("frontier", run, "--points", "2", "--out", tmp_path / "front").code == 0
    point = tmp_path / "front" / "p00"
    one_line_error(cli("frontier", point), "exported from the search", str(run))  # was: "made by an older uboost"
    one_line_error(cli("predict", point), "exported from the search")
    folder = tmp_path / "r" / "retrain"  # a retrain's output, passed where its run was meant
    folder.mkdir(parents=True)
    (folder / "retrain.json").write_text("{}")
    one_line_error(cli("retrain", folder), "a retrain's output", str(tmp_path / "r"))  # was: "uboost search --out ... --resume"


def test_empty_targets_and_a_space_the_run_was_not_searched_on_are_one_red_line(cli, searched, tmp_path):
    run, _, _ = searched
    one_line_error(cli("frontier", run, "--targets", "", "--out", tmp_path / "f"), "--targets must be")  # was: --points
    assert not (tmp_path / "f").exists()
    one_line_error(cli("retrain", run, "--space", "darts-cifar", "--out", tmp_path / "r"), "is for a bare arch.json", "lenet")
    assert not (tmp_path / "r").exists()


def test_a_repeated_budget_is_one_point_and_the_command_says_so(cli, searched, tmp_path):
    run, low, high = searched
    result = cli("frontier", run, "--targets", f"{high},{high}", "--out", tmp_path / "f")
    assert result.code == 0, result.err
    assert sorted(p.name for p in (tmp_path / "f").glob("p*")) == ["p00"]
    assert "1 point, not 2: repeated budgets count once" in " ".join(result.out.split())


def test_a_users_frontier_png_is_never_replaced(cli, searched, tmp_path):
    run, _, _ = searched
    out = tmp_path / "mine"
    out.mkdir()
    (out / "frontier.png").write_text("my plot")
    for force in ([], ["--force"]):
        one_line_error(cli("frontier", run, "--points", "2", "--out", out, *force), "frontier.png", "not written by uboost")
    assert (out / "frontier.png").read_text() == "my plot" and sorted(p.name for p in out.iterdir()) == ["frontier.png"]


def test_points_and_targets_together_are_refused(cli, searched, tmp_path):
    run, _, _ = searched
    one_line_error(cli("frontier", run, "--points", "3", "--targets", "0.001", "--out", tmp_path / "f"), "not both")


def test_an_interrupted_retraining_frontier_resumes_where_it_stopped(cli, searched, tmp_path, monkeypatch):
    import uboost.retrain as retrain_module

    run, _, _ = searched
    out = tmp_path / "f"
    args = ["frontier", run, "--points", "2", "--retrain-epochs", "1", "--max-samples", "64", "--out", out]
    real, calls = retrain_module.retrain, []

    def interrupted_on_the_second(*a, **kw):
        calls.append(kw.get("resume"))
        if len(calls) == 2:
            raise retrain_module.RetrainInterrupted("retraining interrupted")
        return real(*a, **kw)

    monkeypatch.setattr(retrain_module, "retrain", interrupted_on_the_second)
    result = cli(*args)
    assert result.code == 130
    assert f"uboost frontier {run} --points 2 --out {out} --retrain-epochs 1 --max-samples 64 --resume" in result.err
    first = (out / "p00" / "retrain" / "model.pt").read_bytes()
    assert "test_acc" in json.loads((out / "p00" / "result.json").read_text())
    assert "test_acc" not in json.loads((out / "p01" / "result.json").read_text())
    one_line_error(cli(*args), "already exists")  # without --resume: nothing is replaced
    monkeypatch.setattr(retrain_module, "retrain", real)
    assert cli(*args, "--resume").code == 0
    assert (out / "p00" / "retrain" / "model.pt").read_bytes() == first  # kept, not retrained
    assert "test_acc" in json.loads((out / "p01" / "result.json").read_text()) and (out / "frontier.png").is_file()
    one_line_error(cli("frontier", run, "--points", "3", "--retrain-epochs", "1", "--out", out, "--resume"),
                   "other budgets")


def test_a_resume_at_other_retrain_epochs_retrains_the_finished_points_afresh(cli, searched, tmp_path):
    """A point retrained at other settings is not an interrupted retrain: --resume at another --retrain-epochs
    retrains it from the start (it took its finished checkpoint as one to continue, and refused the epochs)."""
    run, _, _ = searched
    out = tmp_path / "f"
    args = ["frontier", run, "--points", "2", "--max-samples", "64", "--out", out]
    assert cli(*args, "--retrain-epochs", "1").code == 0
    result = cli(*args, "--retrain-epochs", "2", "--resume")
    assert result.code == 0, result.err
    for point in ("p00", "p01"):
        assert json.loads((out / point / "result.json").read_text())["retrain_epochs"] == 2
        assert json.loads((out / point / "retrain" / "retrain.json").read_text())["config"]["epochs"] == 2
    # QA: other --max-samples kept the retrains of the earlier ones, shown as if trained at these
    result = cli(*[a if a != "64" else "32" for a in args], "--retrain-epochs", "2", "--resume")
    assert result.code == 0, result.err
    for point in ("p00", "p01"):
        assert json.loads((out / point / "retrain" / "retrain.json").read_text())["config"]["max_samples"] == 32


def test_a_resume_refuses_an_interrupted_point_at_other_settings_before_it_retrains_any(cli, searched, tmp_path):
    """QA: `frontier --resume --retrain-epochs 30` over a frontier interrupted at 40 epochs retrained the finished
    points at 30, then refused the interrupted one's checkpoint, leaving a frontier no suggested command finished."""
    run, _, _ = searched
    out = tmp_path / "f"
    args = ["frontier", run, "--points", "2", "--max-samples", "64", "--out", out]
    assert cli(*args, "--retrain-epochs", "1").code == 0
    (out / "p01" / "retrain" / "retrain.json").unlink()  # p01 as interrupted: its checkpoints, no result
    result = json.loads((out / "p01" / "result.json").read_text())
    del result["test_acc"]
    (out / "p01" / "result.json").write_text(json.dumps(result))
    first = (out / "p00" / "retrain" / "model.pt").read_bytes()
    one_line_error(cli(*args, "--retrain-epochs", "2", "--resume"),
                   "p01's interrupted retrain ran at other settings (epochs 1 -> 2)", "nothing was changed")
    assert (out / "p00" / "retrain" / "model.pt").read_bytes() == first
    assert json.loads((out / "p00" / "result.json").read_text())["retrain_epochs"] == 1
    assert cli(*args, "--retrain-epochs", "1", "--resume").code == 0  # what the message says finishes it
    assert "test_acc" in json.loads((out / "p01" / "result.json").read_text())


def test_a_ctrl_c_outside_the_retrains_handler_names_the_command_that_goes_on(cli, searched, tmp_path, monkeypatch):
    """QA: a Ctrl-C as a point's retrain was starting (before its own handler) said "run the same command again",
    which then refused the folder; it names --resume. One while the points are written says --force (the folder is
    marked incomplete: --resume refuses it)."""
    import uboost.frontier as frontier_module
    import uboost.retrain as retrain_module

    run, _, _ = searched
    out = tmp_path / "f"
    args = ["frontier", run, "--points", "2", "--retrain-epochs", "1", "--max-samples", "64", "--out", out]

    def ctrl_c(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(retrain_module, "retrain", ctrl_c)
    result = cli(*args)
    assert result.code == 130 and "--resume" in result.err and "same command again" not in result.err
    monkeypatch.undo()
    real = frontier_module.frontier

    def stopped_while_writing(*a, **kw):
        real(*a, **kw)
        raise KeyboardInterrupt

    monkeypatch.setattr(frontier_module, "frontier", stopped_while_writing)
    result = cli(*args[:-1], tmp_path / "g")
    assert result.code == 130 and "--force" in result.err and "same command again" not in result.err
    monkeypatch.setattr(frontier_module, "frontier", ctrl_c)  # still projecting: nothing written, nothing to force
    result = cli(*args[:-1], tmp_path / "h")
    assert result.code == 130 and "before it wrote a point; run the same command again" in result.err


def test_result_json_says_whether_the_export_was_projected_from_the_argmax(cli, tmp_path):
    """NNI's export is projected now, and the search compared the projection with it: always "projected": false."""
    args = ["--space", "lenet", "--dataset", "digits", "--image-size", "8", "--max-samples", "96", "--epochs", "1",
            "--batch-size", "32", "--accelerator", "cpu", "--target-latency-ms", "0.002"]
    assert cli("search", *args, "--out", tmp_path / "b").code == 0
    result = json.loads((tmp_path / "b" / "result.json").read_text())
    assert result["argmax_latency_ms"] != result["latency_ms"]  # this search's argmax is below the budget's window
    assert result["projected"] is True and result["latency_ms"] <= 0.002
    # frontier and predict start from the argmax: they say that the run's own network is not it, and how to get it
    # (a QA pass read the run's network missing from its frontier as a contradiction)
    from uboost.runs import not_the_argmax

    assert "projected to its budget 2 µs" in not_the_argmax(tmp_path / "b")
    front = cli("frontier", tmp_path / "b", "--points", "2", "--out", tmp_path / "front")
    assert front.code == 0, front.err
    assert "projected to its budget 2 µs" in front.out and "--targets" in front.out
    predicted = cli("predict", tmp_path / "b", "--samples", "3", "--fine-tune-epochs", "0")
    assert predicted.code == 0, predicted.err
    assert "this is the search's argmax" in predicted.out and f"--arch {tmp_path / 'b'}" in predicted.out.replace("\n", "")


def test_a_frontier_without_matplotlib_names_no_png_and_says_how_to_get_one(cli, searched, tmp_path, monkeypatch):
    """It said "wrote 2 run directories and .../frontier.png" with no PNG written."""
    import sys

    run, _, _ = searched
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails, as where it is not installed
    out = tmp_path / "front"
    result = cli("frontier", run, "--points", "2", "--out", out)
    assert result.code == 0, result.err
    assert not (out / "frontier.png").exists() and "frontier.png" not in result.out
    assert "wrote 2 run directories" in result.out and "pip install 'uboost[plot]'" in " ".join(result.err.split())


def test_the_frontier_plot_names_the_runs_cost_model_not_cycle_exact(cli, searched, tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    labels = []
    set_xlabel = Axes.set_xlabel
    monkeypatch.setattr(Axes, "set_xlabel", lambda ax, text, *a, **k: labels.append(text) or set_xlabel(ax, text, *a, **k))
    run, _, _ = searched
    assert cli("frontier", run, "--points", "2", "--out", tmp_path / "front").code == 0
    assert len(labels) == 1 and "systolic cost model" in labels[0] and "cycle-exact" not in labels[0]
