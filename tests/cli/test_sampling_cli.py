"""``--sampling single-path|mixture`` on ``uboost search`` and ``uboost tune``."""

import csv
import json

from tests.cli.conftest import TINY, one_line_error


def test_search_single_path_records_the_mode_and_the_sampled_latency(cli, tmp_path):
    out = tmp_path / "run"
    result = cli("search", *TINY, "--sampling", "single-path", "--out", out)
    assert result.code == 0, result.err
    assert json.loads((out / "config.json").read_text())["sampling"] == "single-path"
    with open(out / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("hw/sampled_latency_ms")]
    assert rows and all(float(r["hw/sampled_latency_ms"]) > 0 for r in rows)
    assert (out / "arch.json").is_file()


def test_bad_sampling_is_one_red_line(cli, tmp_path):
    one_line_error(cli("search", *TINY, "--sampling", "two-path", "--out", tmp_path / "a"), "sampling", "single-path")
    one_line_error(cli("tune", "--sampling", "two-path", "--trials", "1", "--out", tmp_path / "t"), "sampling", "single-path")


def test_no_sharpen_prices_the_plain_softmax_and_the_default_sharpens(cli, tmp_path):
    for flags, tau in (((), 0.1), (("--no-sharpen",), 1.0)):
        out = tmp_path / f"run{len(flags)}"
        result = cli("search", *TINY, *flags, "--out", out)
        assert result.code == 0, result.err
        assert json.loads((out / "config.json").read_text())["sharpen"] == (not flags)
        assert abs(json.loads((out / "result.json").read_text())["distribution_tau"] - tau) < 1e-6


def test_warmup_epochs_reach_the_run_and_bad_values_are_one_red_line(cli, tmp_path):
    out = tmp_path / "warm"
    result = cli("search", *TINY, "--epochs", "2", "--warmup-epochs", "1", "--out", out)
    assert result.code == 0, result.err
    assert json.loads((out / "config.json").read_text())["warmup_epochs"] == 1
    with open(out / "metrics.csv", newline="") as f:
        taus = [float(r["gumbel_tau"]) for r in csv.DictReader(f) if r.get("gumbel_tau")]
    assert taus[0] == 1.0 and abs(taus[-1] - 0.1) < 1e-6  # the schedule runs in full after the warm-up
    bad = cli("search", *TINY, "--epochs", "2", "--warmup-epochs", "2", "--out", tmp_path / "bad")
    one_line_error(bad, "--warmup-epochs")
    assert not (tmp_path / "bad").exists()


def test_gumbel_tau_sets_the_schedule_and_bad_values_are_one_red_line(cli, tmp_path):
    out = tmp_path / "tau"
    result = cli("search", *TINY, "--gumbel-tau", "2,0.5", "--out", out)
    assert result.code == 0, result.err
    assert json.loads((out / "config.json").read_text())["gumbel_tau"] == [2.0, 0.5]
    with open(out / "metrics.csv", newline="") as f:
        taus = [float(r["gumbel_tau"]) for r in csv.DictReader(f) if r.get("gumbel_tau")]
    assert taus[0] == 2.0 and abs(taus[-1] - 0.5) < 1e-6  # from START to END over the architecture's steps
    assert abs(json.loads((out / "result.json").read_text())["distribution_tau"] - 0.5) < 1e-6  # sharpen prices it
    for text, words in (("0.1,1", "start >= end"), ("1", "start >= end"), ("1,0", "start >= end"),
                        ("1,nan", "start >= end"), ("a,b", "START,END")):
        bad = tmp_path / f"bad{len(words)}"
        one_line_error(cli("search", *TINY, "--gumbel-tau", text, "--out", bad), "--gumbel-tau", words)
        assert not bad.exists()


def test_resume_with_the_same_gumbel_tau_and_bits_is_not_a_change(cli, tmp_path):
    out = tmp_path / "run"
    flags = [*TINY, "--bits", "4,8", "--gumbel-tau", "2,0.5", "--out", out]
    assert cli("search", *flags).code == 0
    for name in ("result.json", "arch.json"):  # as if killed after its last checkpoint: a finished run is not resumed
        (out / name).unlink()
    again = cli("search", *flags, "--resume")  # the flags as stored (lists in config.json): nothing differs
    assert again.code == 0, again.err
    changed = cli("search", *TINY, "--bits", "4,8", "--gumbel-tau", "2,0.4", "--out", out, "--resume")
    one_line_error(changed, "gumbel_tau [2.0, 0.5] -> [2.0, 0.4]")
