"""Issue 27, a new round of adversarial cases: the bad inputs a careless user or script gives every
command. Each must end well: exit 0 with correct output, a usage error (exit 2, click's own
message) for a value of the wrong type, or exit 1 with ONE red line -- never a traceback, a hang,
or a lost file.

Each row is ``(id, argv, expected)``; ``expected`` is ``"ok"``, ``"usage"`` or a fragment the one
error line must contain. In ``argv`` ``{run}`` is a private copy of the tiny run, ``{tmp}`` a
scratch directory, ``{file}`` a plain file, ``{empty}`` an empty directory, ``{loop}`` a symlink
loop, ``{latin1}`` a latin-1 text file; the run directory's bytes are compared before and after."""

from __future__ import annotations

import os

import pytest

from tests.reliability.conftest import TINY, one_line_error, tree

T = " ".join(TINY)
TUNE = f"{T} --rows 8 --cols 8 --trials 1"

CASES = [
    # search: numbers
    ("search-epochs-0", f"search {T} --epochs 0 --out {{tmp}}/o", "epochs"),
    ("search-batch-0", f"search {T} --batch-size 0 --out {{tmp}}/o", "--batch-size"),
    ("search-lambda-nan", f"search {T} --latency-weight nan --out {{tmp}}/o", "--latency-weight"),
    ("search-lambda-inf", f"search {T} --latency-weight inf --out {{tmp}}/o", "--latency-weight"),
    ("search-lambda-neg", f"search {T} --latency-weight -1 --out {{tmp}}/o", "--latency-weight"),
    ("search-beta-nan", f"search {T} --utilization-weight nan --out {{tmp}}/o", "--utilization-weight"),
    ("search-temperature-0", f"search {T} --temperature 0 --out {{tmp}}/o", "temperature"),
    ("search-arch-lr-inf", f"search {T} --arch-lr inf --out {{tmp}}/o", "--arch-lr"),
    ("search-target-nan", f"search {T} --target-latency-ms nan --out {{tmp}}/o", "--target-latency-ms"),
    ("search-target-neg", f"search {T} --target-latency-ms -1 --out {{tmp}}/o", "--target-latency-ms"),
    ("search-floor-1", f"search {T} --budget-floor 1 --out {{tmp}}/o", "--budget-floor"),
    ("search-commit-nan", f"search {T} --budget-commit nan --out {{tmp}}/o", "--budget-commit"),
    ("search-budget-lr-inf", f"search {T} --budget-lr inf --out {{tmp}}/o", "--budget-lr"),
    ("search-sram-0", f"search {T} --sram-kb 0 --out {{tmp}}/o", "sram"),
    ("search-dram-nan", f"search {T} --dram-bw-words nan --out {{tmp}}/o", "dram"),
    ("search-dram-neg", f"search {T} --dram-bw-words -1 --out {{tmp}}/o", "dram"),
    ("search-image-size-3", f"search {T} --image-size 3 --out {{tmp}}/o", "--image-size"),
    ("search-warmup-all", f"search {T} --warmup-epochs 1 --out {{tmp}}/o", "--warmup-epochs"),
    ("search-devices-0", f"search {T} --devices 0 --out {{tmp}}/o", "devices"),
    ("search-epochs-float", f"search {T} --epochs 1.5 --out {{tmp}}/o", "usage"),
    ("search-seed-huge", f"search {T} --seed 99999999999999999999999 --out {{tmp}}/o", "seed"),
    # search: names and shapes
    ("search-array-0", f"search {T} --array 0x16 --out {{tmp}}/o", "array"),
    ("search-array-junk", f"search {T} --array 16x --out {{tmp}}/o", "array"),
    ("search-array-huge", f"search {T} --array 99999999999x99999999999 --out {{tmp}}/o", "array"),
    ("search-dataflow", f"search {T} --dataflow xx --out {{tmp}}/o", "dataflow"),
    ("search-space", f"search {T} --space nope --out {{tmp}}/o", "nope"),
    ("search-dataset", f"search {T} --dataset mnist --out {{tmp}}/o", "mnist"),
    ("search-cost-model", f"search {T} --cost-model nope --out {{tmp}}/o", "nope"),
    ("search-cost-mode", f"search {T} --cost-mode nope --out {{tmp}}/o", "nope"),
    ("search-sampling", f"search {T} --sampling nope --out {{tmp}}/o", "sampling"),
    ("search-logger", f"search {T} --logger nope --out {{tmp}}/o", "nope"),
    ("search-channels-junk", "search --space darts-cifar --channels a:b --out {tmp}/o", "channels"),
    ("search-channels-reversed", "search --space darts-cifar --channels 16:8:4 --out {tmp}/o", "channels"),
    ("search-width-0", "search --space darts-cifar --width 0 --out {tmp}/o", "width"),
    ("search-cells-0", "search --space darts-cifar --cells 0 --out {tmp}/o", "cells"),
    ("export-floor-alone", "export {run} --budget-floor 7 --out {tmp}/e.json", "--budget-floor shapes a budget export"),
    ("frontier-samples-alone", "frontier {run} --max-samples 50 --out {tmp}/f", "--max-samples limits the retraining"),
    ("search-lenet-width", "search --space lenet --width 8 --out {tmp}/o", "space 'lenet' has no option 'width'"),
    ("tabulate-lenet-cells", "hw tabulate lenet --cells 3", "space 'lenet' has no option 'cells' (its options: widths, kernels, hidden)"),
    # search: files
    ("search-folder-empty", f"search {T} --dataset folder:{{empty}} --out {{tmp}}/o", "no usable images"),
    ("search-folder-file", f"search {T} --dataset folder:{{file}} --out {{tmp}}/o", "not a directory"),
    ("search-folder-loop", f"search {T} --dataset folder:{{loop}} --out {{tmp}}/o", "loop"),
    ("search-config-dir", f"search {T} --config {{empty}} --out {{tmp}}/o", "config file"),
    ("search-config-loop", f"search {T} --config {{loop}} --out {{tmp}}/o", "config file"),
    ("search-config-missing", f"search {T} --config {{tmp}}/nope.toml --out {{tmp}}/o", "not found"),
    ("search-config-latin1", f"search {T} --config {{latin1}} --out {{tmp}}/o", "UTF-8"),
    ("search-out-file", f"search {T} --out {{file}}", "not a directory"),
    ("search-out-loop", f"search {T} --out {{loop}}", "loop"),
    ("search-out-under-file", f"search {T} --out {{file}}/run", "Not a directory"),
    ("search-resume-empty", "search --out {empty} --resume", "nothing to resume"),
    ("search-resume-missing", "search --out {tmp}/nope --resume", "nothing to resume"),
    ("search-over-run", f"search {T} --out {{run}}", "--force"),
    ("search-resume-changed", "search --out {run} --resume --epochs 7", "differ"),
    ("search-cell-arch-missing", "search --space darts-cifar --cell-arch {tmp}/nope.json --out {tmp}/o", "nope.json"),
    ("search-cell-arch-dir", "search --space darts-cifar --cell-arch {empty} --out {tmp}/o", "arch.json"),
    ("search-cell-arch-lenet", "search --space darts-cifar --cell-arch {run} --out {tmp}/o", "--cell-arch"),
    ("search-unicode-out", f"search {T} --out {{tmp}}/ru\u00df-\u4e2d-\U0001f600", "ok"),
    # retrain
    ("retrain-missing", "retrain {tmp}/nope", "nope"),
    ("retrain-empty-dir", "retrain {empty}", "no arch.json"),
    ("retrain-plain-file", "retrain {file}", "run directory"),
    ("retrain-epochs-0", "retrain {run} --epochs 0", "epochs"),
    ("retrain-lr-nan", "retrain {run} --lr nan", "--lr must"),  # the flag typed (the field was named)
    ("retrain-lr-inf", "retrain {run} --lr inf", "--lr must"),  # the flag typed (the field was named)
    ("retrain-batch-0", "retrain {run} --batch-size 0", "--batch-size"),
    ("retrain-schedule", "retrain {run} --schedule nope", "schedule"),
    ("retrain-array-0", "retrain {run} --array 0x0", "array"),
    ("retrain-dataflow", "retrain {run} --dataflow xx", "dataflow"),
    ("retrain-out-file", "retrain {run} --epochs 1 --out {file}", "not a directory"),
    ("retrain-resume-none", "retrain {run} --resume --epochs 1", "no retrain checkpoint"),
    ("retrain-dataset", "retrain {run} --dataset nope --epochs 1", "nope"),
    ("retrain-accelerator", "retrain {run} --accelerator tpu --epochs 1", "accelerator"),
    # export
    ("export-format", "export {run} --format nope", "nope"),
    ("export-missing", "export {tmp}/nope", "nope"),
    ("export-out-dir", "export {run} --out {empty}", "is a directory"),
    ("export-out-under-file", "export {run} --out {file}/x.json", "cannot write"),
    ("export-target-nan", "export {run} --target-latency-ms nan --out {tmp}/e", "target-latency-ms"),
    ("export-target-0", "export {run} --target-latency-ms 0 --out {tmp}/e", "target-latency-ms"),
    ("export-target-inf", "export {run} --target-latency-ms inf --out {tmp}/e", "target-latency-ms"),
    ("export-target-tiny", "export {run} --target-latency-ms 1e-12 --out {tmp}/e", "ms"),
    ("export-target-no-out", "export {run} --target-latency-ms 1", "--out"),
    ("export-target-onnx", "export {run} --target-latency-ms 1 --format onnx --out {tmp}/e", "run directory"),
    ("export-floor-nan", "export {run} --target-latency-ms 1 --budget-floor nan --out {tmp}/e", "budget-floor"),
    ("export-floor-big", "export {run} --target-latency-ms 1 --budget-floor 1.5 --out {tmp}/e", "budget-floor"),
    ("export-target-onto-run", "export {run} --target-latency-ms 1 --out {run}", "--out"),
    ("export-json-unicode", "export {run} --out {tmp}/\u00e9\u00e8.json", "ok"),
    # profile
    ("profile-model", "profile nosuchnet", "nosuchnet"),
    ("profile-module-factory", "profile os:nope", "nope"),
    ("profile-array", "profile {run} --array abc", "abc"),
    ("profile-batch-0", "profile {run} --batch 0", "batch"),
    ("profile-clock-nan", "profile {run} --clock-hz nan", "clock"),
    ("profile-clock-0", "profile {run} --clock-hz 0", "clock"),
    ("profile-input-junk", "profile {run} --input abc", "input shape"),
    ("profile-input-0", "profile {run} --input 0x8x8", "input shape"),
    ("profile-input-2d", "profile {run} --input 3x8", "input"),
    ("profile-dataflow", "profile {run} --dataflow xx", "dataflow"),
    ("profile-lookup-no-table", "profile {run} --cost-model lookup", "table"),
    ("profile-lookup-empty", "profile {run} --cost-model lookup --table {file}", "table"),
    ("profile-lookup-dir", "profile {run} --cost-model lookup --table {empty}", "table"),
    ("profile-lookup-latin1", "profile {run} --cost-model lookup --table {latin1}", "table"),
    ("profile-sram-neg", "profile {run} --sram-kb -1", "sram"),
    ("profile-json", "profile {run} --json -a 8x8", "ok"),
    # tune
    ("tune-lambda-reversed", f"tune {TUNE} --lambda-range 10:0.01 --out {{tmp}}/t", "lambda"),
    ("tune-lambda-nan", f"tune {TUNE} --lambda-range nan:1 --out {{tmp}}/t", "lambda"),
    ("tune-lambda-zero", f"tune {TUNE} --lambda-range 0:1 --out {{tmp}}/t", "lambda"),
    ("tune-lambda-junk", f"tune {TUNE} --lambda-range a:b --out {{tmp}}/t", "lambda"),
    ("tune-rows-0", f"tune {T} --rows 0 --trials 1 --out {{tmp}}/t", "rows"),
    ("tune-rows-empty", f"tune {T} --rows , --trials 1 --out {{tmp}}/t", "rows"),
    ("tune-rows-reversed", f"tune {T} --rows 8:4 --trials 1 --out {{tmp}}/t", "rows"),
    ("tune-mode", f"tune {TUNE} --mode nope --out {{tmp}}/t", "nope"),
    ("tune-budget-mode-no-ms", f"tune {TUNE} --mode budget --out {{tmp}}/t", "budget"),
    ("tune-budget-nan", f"tune {TUNE} --mode budget --budget-ms nan --out {{tmp}}/t", "budget"),
    ("tune-trials-neg", f"tune {T} --trials -1 --out {{tmp}}/t", "trials"),
    ("tune-area-0", f"tune {TUNE} --area-budget 0 --out {{tmp}}/t", "area"),
    ("tune-dataflows", f"tune {TUNE} --dataflows xx --out {{tmp}}/t", "xx"),
    ("tune-beta-nan", f"tune {TUNE} --utilization-weight-range nan:1 --out {{tmp}}/t", "utilization"),
    ("tune-temperature-expected", f"tune {TUNE} --temperature-range 1:5 --out {{tmp}}/t", "temperature"),
    ("tune-storage-suffix", f"tune {TUNE} --storage {{tmp}}/s.txt --out {{tmp}}/t", "storage"),
    ("tune-storage-url", f"tune {TUNE} --storage nosuchdb://x --out {{tmp}}/t", "storage"),
    ("tune-report-empty", "tune --trials 0 --out {empty}", "no study"),
    ("tune-export-empty", "tune --export best --out {empty}", "no study"),
    ("tune-seed-neg", f"tune {TUNE} --seed -1 --out {{tmp}}/t", "seed"),
    ("tune-out-file", f"tune {TUNE} --out {{file}}", "file"),
    # frontier
    ("frontier-points-1", "frontier {run} --points 1 --out {tmp}/f", "points"),
    ("frontier-points-neg", "frontier {run} --points -5 --out {tmp}/f", "points"),
    ("frontier-targets-junk", "frontier {run} --targets a,b --out {tmp}/f", "targets"),
    ("frontier-targets-nan", "frontier {run} --targets nan --out {tmp}/f", "target latency"),
    ("frontier-targets-inf", "frontier {run} --targets inf --out {tmp}/f", "target latency"),
    ("frontier-targets-empty", "frontier {run} --targets , --out {tmp}/f", "targets"),
    ("frontier-targets-infeasible", "frontier {run} --targets 1e-9 --out {tmp}/f", "ms"),
    ("frontier-retrain-neg", "frontier {run} --retrain-epochs -1 --out {tmp}/f", "retrain-epochs"),
    ("frontier-floor-nan", "frontier {run} --budget-floor nan --out {tmp}/f", "budget-floor"),
    ("frontier-not-a-run", "frontier {empty}", "config.json"),
    ("frontier-missing", "frontier {tmp}/nope", "nope"),
    ("frontier-out-file", "frontier {run} --points 2 --out {file}", "not a directory"),
    ("frontier-targets", "frontier {run} --out {tmp}/f --targets 0.6,0.5", "ok"),
    ("frontier-targets-huge", "frontier {run} --targets 1e308 --out {tmp}/f", "at most"),
    ("frontier-alphas-empty", "frontier {noalphas} --out {tmp}/f", "not valid JSON"),
    # huge and edge numbers that are fine
    ("export-target-huge", "export {run} --target-latency-ms 1e308 --out {tmp}/e", "at most"),
    ("export-target-max", "export {run} --target-latency-ms 1e9 --out {tmp}/e", "ok"),
    ("search-target-huge", f"search {T} --target-latency-ms 1e308 --out {{tmp}}/o", "--target-latency-ms"),
    ("search-lambda-huge", f"search {T} --latency-weight 1e308 --out {{tmp}}/o", "latency weight"),
    ("search-max-samples-huge", f"search {T} --max-samples 100000000000000000000 --out {{tmp}}/o", "ok"),
    ("search-empty-toml", f"search {T} --config {{file}} --out {{tmp}}/o", "ok"),
    ("profile-batch-huge", "profile {run} --batch 1000000000000", "ok"),
    ("profile-unicode-plot", "profile {run} --plot {tmp}/üñî.png", "ok"),
    ("profile-arch-json", "profile {run}/arch.json", "ok"),
    # empty and damaged files of a run
    ("retrain-arch-empty", "retrain {emptyarch} --epochs 1", "not valid JSON"),
    ("retrain-bare-arch", "retrain {tmp}/bare/arch.json --epochs 1", "--space"),
    ("export-arch-list", "export {listarch}", "JSON object"),
    # hw, spaces, the app itself
    ("hw-unknown", "hw nope", "usage"),
    ("hw-tabulate-space", "hw tabulate nope --cost-model systolic", "nope"),
    ("hw-tabulate-array", "hw tabulate lenet --array 0x0 --cost-model systolic", "array"),
    ("hw-tabulate-out-dir", "hw tabulate lenet --cost-model systolic --out {empty}", "is a directory"),
    ("spaces-extra", "spaces extra", "usage"),
    ("unknown-command", "nope", "usage"),
]


@pytest.fixture
def places(run_copy, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("")
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    (tmp_path / "latin1").write_bytes("layer,cycles\ncaf\u00e9,1\n".encode("latin-1"))
    damaged = {}
    for name, file, text in (("noalphas", "alphas.json", ""), ("emptyarch", "arch.json", ""), ("listarch", "arch.json", "[]")):
        (tmp_path / name).mkdir()
        for each in ("config.json", "arch.json", "alphas.json"):
            (tmp_path / name / each).write_bytes((run_copy / each).read_bytes())
        (tmp_path / name / file).write_text(text)
        damaged[name] = tmp_path / name
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "arch.json").write_bytes((run_copy / "arch.json").read_bytes())
    return {"run": run_copy, "tmp": tmp_path, "file": tmp_path / "file", "empty": tmp_path / "empty",
            "loop": tmp_path / "loop", "latin1": tmp_path / "latin1", **damaged}


@pytest.mark.parametrize("argv,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_ends_well(cli, places, argv, expected):
    args = [part.format(**places) for part in argv.split(" ")]
    before = tree(places["run"])
    result = cli(*args)
    assert "Traceback" not in result.out + result.err
    if expected == "ok":
        assert result.code == 0, result.err
        for flag in ("--out", "--plot"):  # what it was asked to write is there
            if flag in args:
                assert os.path.exists(args[args.index(flag) + 1]), (flag, result.out)
    elif expected == "usage":  # click's own message for a value of the wrong type
        assert result.code == 2, (result.code, result.err)
    else:
        one_line_error(result, expected)
    after = tree(places["run"])
    assert {k: v for k, v in after.items() if k in before} == before, "a file of the run changed"
    assert places["file"].read_text() == ""


def _interrupt_at(marker: str, argv: list[str]):
    """Run ``uboost ARGV`` and press Ctrl-C (SIGINT) when a stdout line contains ``marker``."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src, "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "uboost", *map(str, argv)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    for line in proc.stdout:
        if marker in line:
            proc.send_signal(signal.SIGINT)
            break
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


@pytest.mark.slow  # two subprocesses that import torch and NNI (~30 s each here)
@pytest.mark.parametrize("marker", ["uboost search", "Epoch"])
def test_ctrl_c_during_a_search_says_what_to_do_next(cli, tmp_path, marker):
    """Before anything is written: 'run the same command again', and it runs; once a checkpoint is
    there: the exact --resume command, and it finishes the run."""
    out = tmp_path / "run"
    argv = ["search", *TINY[:-6], "--epochs", "3", "--max-samples", "64", "--batch-size", "32", "--out", out]
    code, err = _interrupt_at(marker, argv)
    lines = [l for l in err.strip().splitlines() if l.strip()]
    if lines and lines[0].startswith("Ctrl-C: stopping after this batch"):  # in training: the notice as it lands
        lines = lines[1:]
    assert code == 130 and "Traceback" not in err, err
    assert len(lines) == 1, err
    if "--resume" in lines[0]:
        assert cli("search", "--out", out, "--resume").code == 0
    else:
        assert "again" in lines[0], lines
        assert cli(*argv).code == 0
    assert (out / "arch.json").is_file()


@pytest.mark.parametrize("command", ["frontier", "export"])
def test_a_projection_into_a_directory_another_process_writes(cli, tiny_run, tmp_path, lock_holder, command):
    """Two commands into one output at once: the second stops in one line naming the holder; the
    first one's directory is untouched."""
    busy = tmp_path / "f" / "p00" if command == "frontier" else tmp_path / "e"
    holder = lock_holder(busy)
    args = ["--points", "2", "--out", tmp_path / "f"] if command == "frontier" else ["--target-latency-ms", "1", "--out", busy]
    one_line_error(cli(command, tiny_run, *args), "in use by PID", str(holder.pid))
    assert sorted(p.name for p in busy.iterdir()) == [".lock"]
