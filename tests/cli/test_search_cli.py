import json

import pytest
import torch

from tests.cli.conftest import TINY, one_line_error


def test_search_writes_a_complete_run_directory(cli, tmp_path):
    out = tmp_path / "run"
    result = cli("search", *TINY, "--out", out)
    assert result.code == 0, result.err
    for name in ("config.json", "arch.json", "hardware.json", "hardware.txt", "metrics.csv", "result.json", "utilization.png", "search.png"):
        assert (out / name).is_file(), name
    assert any((out / "checkpoints").glob("*.ckpt"))
    arch = json.loads((out / "arch.json").read_text())
    from uboost.search_spaces import create
    create("lenet", input_shape=(1, 8, 8)).freeze(arch)  # NNI's dict, loadable by space.freeze
    hardware = json.loads((out / "hardware.json").read_text())
    assert hardware["total"]["cycles"] > 0 and len(hardware["layers"]) == 4
    assert "conv1" in (out / "hardware.txt").read_text()
    assert "search result" in result.out and "utilization" in result.out
    # the supernet's accuracy, not the network's (a mixture's can read 41 % for a network that retrains to 98 %)
    assert "validation accuracy (supernet)" in " ".join(result.out.split())
    header = (out / "metrics.csv").read_text().splitlines()[0]
    assert "hw/latency_ms" in header and "val_acc" in header


def test_force_starts_over_and_keeps_foreign_files(cli, tmp_path):
    out = tmp_path / "run"
    assert cli("search", *TINY, "--out", out).code == 0
    (out / "notes.txt").write_text("mine")
    result = cli("search", *TINY, "--out", out, "--force")
    assert result.code == 0, result.err
    assert (out / "arch.json").is_file() and (out / "notes.txt").read_text() == "mine"


def test_same_seed_same_architecture(cli, tmp_path):
    archs = []
    for name in ("a", "b"):
        assert cli("search", *TINY, "--seed", "7", "--out", tmp_path / name).code == 0
        archs.append(json.loads((tmp_path / name / "arch.json").read_text()))
    assert archs[0] == archs[1]


def test_existing_output_is_refused_and_kept(cli, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    result = cli("search", *TINY, "--out", out)
    one_line_error(result, "already exists", "uboost did not write", "--force")
    assert "--resume" not in result.err  # nothing to resume there (QA: the hint led to "nothing to resume")
    assert (out / "keep.txt").read_text() == "precious"


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["--space", "nope"], ["unknown search space 'nope'", "darts-cifar"]),
        (["--dataset", "mnist"], ["unknown dataset 'mnist'", "digits"]),
        (["--cost-model", "magic"], ["unknown cost model 'magic'", "systolic"]),
        (["--array", "0x8"], ["array"]),
        (["--array", "12"], ["ROWSxCOLS"]),
        (["--channels", "16:8:8"], ["channels"]),
        (["--channels", "a:b"], ["START:STOP:STEP"]),
        (["--dataset", "cifar10", "--data-dir", "/nonexistent/dir"], ["--data-dir"]),
        (["--cost-mode", "fast"], ["cost mode"]),
        (["--epochs", "0"], ["epochs"]),
        (["--score-weight", "-1"], ["--score-weight", "non-negative"]),
        (["--sampling", "mixture", "--score-weight", "1"], ["--score-weight", "single-path"]),
        (["--score-weight", "1", "--score-on", "every"], ["--score-on", "all, blind"]),
        (["--score-on", "blind"], ["score_on", "score_weight above 0"]),
    ],
)
def test_bad_search_input_is_one_red_line(cli, tmp_path, args, fragments):
    out = tmp_path / "run"
    one_line_error(cli("search", "--out", out, *args), *fragments)


def test_too_few_images_to_split_are_refused_before_the_run_is_made(cli, tmp_path):
    """QA: --max-samples 1 failed after the run directory was made, and the corrected command was then refused."""
    out = tmp_path / "run"
    one_line_error(cli("search", *[a if a != "64" else "1" for a in TINY], "--out", out), "leaves no data for weights or architecture (1 sample)",
                   "--max-samples")
    assert not out.exists()


@pytest.mark.parametrize("args, fragment", [
    (["--space", "lenet", "--width", "8"], "lenet"), (["--dataset", "mnist"], "mnist"),
    (["--cost-model", "nope"], "unknown cost model"),  # these three printed the header first
    (["--dataset", "cifar10", "--data-dir", "NODATA"], "CIFAR-10 not found"),
    (["--dataset", "folder:NODATA"], "does not exist"),
])
def test_a_bad_space_option_dataset_or_cost_model_is_refused_before_the_header(cli, tmp_path, args, fragment):
    args = [str(tmp_path / "nodata") if a == "NODATA" else a.replace("NODATA", str(tmp_path / "nodata")) for a in args]
    result = cli("search", "--out", tmp_path / "run", *args)
    one_line_error(result, fragment)
    assert not result.out.strip()  # no "uboost search ... -> RUN" line for a search that never starts
    assert not (tmp_path / "run").exists()


def test_nan_loss_stops_with_a_clear_message(cli, tmp_path, monkeypatch):
    import uboost.data as data

    real = data.load_datasets

    def poisoned(*a, **k):
        train, test = real(*a, **k)
        x, y = train.tensors if hasattr(train, "tensors") else (None, None)
        nan = torch.utils.data.TensorDataset(torch.full_like(x, float("nan")), y)
        return nan, test

    monkeypatch.setattr(data, "load_datasets", poisoned)
    out = tmp_path / "run"
    one_line_error(cli("search", *TINY, "--out", out), "loss became nan")
    assert (out / "config.json").is_file()  # what was written stays


def test_interrupt_leaves_a_checkpoint_and_resume_finishes(tmp_path, cli):
    import pytorch_lightning as pl

    from uboost.search import SearchConfig, SearchInterrupted, run_search

    class CtrlC(pl.Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.fit_loop.total_batch_idx == 1:
                raise KeyboardInterrupt

    out = tmp_path / "run"
    config = SearchConfig(space="lenet", space_options={}, image_size=8, epochs=2, max_samples=96, batch_size=32)
    with pytest.raises(SearchInterrupted, match="--resume"):
        run_search(config, out, callbacks=[CtrlC()])
    assert (out / "checkpoints" / "interrupted.ckpt").is_file()
    assert not (out / "arch.json").exists()
    result = cli("search", "--out", out, "--resume")
    assert result.code == 0, result.err
    assert (out / "arch.json").is_file()


def test_resume_with_corrupt_checkpoint(cli, tmp_path):
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "config.json").write_text(json.dumps({"space": "lenet", "space_options": {}, "image_size": 8}))
    (out / "checkpoints" / "last.ckpt").write_bytes(b"not a checkpoint")
    one_line_error(cli("search", "--out", out, "--resume"), "corrupt")
    assert (out / "checkpoints" / "last.ckpt").read_bytes() == b"not a checkpoint"


def test_resume_without_a_run(cli, tmp_path):
    one_line_error(cli("search", "--out", tmp_path / "none", "--resume"), "nothing to resume")


def test_config_file_and_flag_precedence(cli, tmp_path):
    cfg = tmp_path / "search.toml"
    cfg.write_text('space = "lenet"\ndataset = "digits"\nimage_size = 8\nepochs = 1\nmax_samples = 64\nbatch_size = 32\nlatency_weight = 3.0\n')
    out = tmp_path / "run"
    assert cli("search", "--config", cfg, "--latency-weight", "2.5", "--out", out).code == 0
    stored = json.loads((out / "config.json").read_text())
    assert stored["latency_weight"] == 2.5 and stored["space"] == "lenet" and stored["epochs"] == 1
    one_line_error(cli("search", "--config", tmp_path / "missing.toml", "--out", tmp_path / "x"), "config file not found")
    bad = tmp_path / "bad.toml"
    bad.write_text("latency_weight = [")
    one_line_error(cli("search", "--config", bad, "--out", tmp_path / "y"), "cannot read config file")


@pytest.mark.parametrize("toml, fragment", [
    ("data_split = 5\n", "data_split must be a fraction"),
    ('data_split = "x"\n', "data_split must be a fraction"),  # was a TypeError traceback after config.json
    ("latency_weight = true\n", "latency_weight must be a non-negative number"),
    ('download = "false"\n', "download must be true or false"),  # was a download attempt
])
def test_a_bad_config_file_value_is_one_line_and_writes_nothing(cli, tmp_path, toml, fragment):
    config = tmp_path / "c.toml"
    config.write_text(toml)
    out = tmp_path / "o"
    one_line_error(cli("search", *TINY, "--config", config, "--out", out), fragment)
    assert not out.exists()


def test_a_finished_search_is_not_resumed_and_its_result_stays(cli, tmp_path):
    """`--resume` on a finished run rewrote result.json from the last checkpoint, less half its fields."""
    out = tmp_path / "run"
    assert cli("search", *TINY, "--out", out).code == 0
    before = (out / "result.json").read_bytes()
    one_line_error(cli("search", *TINY, "--out", out, "--resume"), "holds a finished search", "nothing to resume", "--force")
    one_line_error(cli("search", *TINY, "--out", out), "it holds a finished search: pass --force")
    assert (out / "result.json").read_bytes() == before


def test_a_resumed_search_reports_on_its_own_settings(cli, tmp_path):
    out = tmp_path / "run"
    assert cli("search", *TINY, "--array", "8x8", "--out", out).code == 0
    (out / "result.json").unlink()  # as if killed after its last checkpoint
    (out / "arch.json").unlink()
    result = cli("search", "--out", out, "--resume")  # no flags: the run's config decides, not the defaults
    assert result.code == 0, result.err
    assert "latency on 8x8 ws" in result.out and "16x16" not in result.out
    assert "lenet" in (out / "hardware.txt").read_text() and "darts-cifar" not in (out / "hardware.txt").read_text()


def test_a_finished_run_is_refused_before_the_header_naming_what_force_would_delete(cli, tiny_run, tmp_path):
    """`search --out RUN --force` deletes what was built on RUN's search too (its retrain, exits, frontier,
    exports); the refusal now says so, and comes before the run header."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    assert cli("export", run).code == 0  # export.json, an output built on the search
    result = cli("search", "--space", "lenet", "--out", run)
    one_line_error(result, "holds a finished search", "--force", "deletes what was built on this search too: export.json")
    assert not result.out.strip()


@pytest.mark.parametrize("flags, fragments", [
    (["--temperature", "3"], ["--temperature", "--cost-mode smooth"]),
    (["--budget-lr", "2"], ["--budget-lr shapes a budget", "--target-latency-ms"]),
    (["--budget-floor", "0.5", "--budget-commit", "0.5"], ["--budget-floor and --budget-commit shape a budget"]),
    (["--utilization-on-bits", "on"], ["--utilization-on-bits", "--bits"]),
])
def test_flags_the_settings_never_read_are_refused(cli, tmp_path, flags, fragments):
    """A QA pass found each saved in config.json with alphas and metrics identical to the search without it."""
    one_line_error(cli("search", *TINY, *flags, "--out", tmp_path / "run"), *fragments)
    assert not (tmp_path / "run").exists()


def test_a_runs_config_json_repeats_the_run_as_config(cli, tmp_path):
    """A QA pass tried `search --config RUN/config.json` to reproduce a run: "Invalid statement" (TOML expected)."""
    assert cli("search", *TINY, "--seed", "1", "--out", tmp_path / "a").code == 0
    result = cli("search", "--config", tmp_path / "a" / "config.json", "--out", tmp_path / "b")
    assert result.code == 0, result.err
    read = lambda run, name: json.loads((tmp_path / run / name).read_text())  # noqa: E731
    assert read("a", "config.json") == read("b", "config.json") and read("a", "alphas.json") == read("b", "alphas.json")
    (tmp_path / "bad.json").write_text("[")
    one_line_error(cli("search", "--config", tmp_path / "bad.json", "--out", tmp_path / "c"), "as JSON")
    (tmp_path / "bad.toml").write_text('{"space": "lenet"}')
    one_line_error(cli("search", "--config", tmp_path / "bad.toml", "--out", tmp_path / "c"), "as TOML (or a run's config.json")
    assert not (tmp_path / "c").exists()


def test_resume_takes_the_stored_partner_of_a_flag_and_config_takes_a_run_directory(cli, tmp_path):
    """QA: `search --out RUN --resume --temperature 3` on a smooth run was refused as if the run were in expected
    mode (the check read the command line's settings, not the run's)."""
    from uboost.search import SearchConfig

    assert cli("search", *TINY, "--cost-mode", "smooth", "--temperature", "3", "--out", tmp_path / "s").code == 0
    result = cli("search", "--out", tmp_path / "s", "--resume", "--temperature", "3")
    assert "smooth ceiling" not in result.err and "nothing to resume" in result.err  # finished: the run's own refusal
    again = cli("search", "--config", tmp_path / "s", "--out", tmp_path / "s2")  # a run directory: its config.json
    assert again.code == 0, again.err
    assert json.loads((tmp_path / "s2" / "config.json").read_text()) == json.loads((tmp_path / "s" / "config.json").read_text())
    one_line_error(cli("tune", "--config", tmp_path / "s" / "config.json", "--trials", "1", "--out", tmp_path / "t"),
                   "tune --config takes a TOML file")
    assert SearchConfig(utilization_on_bits="on").utilization_on_bits is True  # a TOML spells it as the flag does
    assert SearchConfig(utilization_on_bits="off").utilization_on_bits is False
