"""Issue 27, the hangs, tracebacks and vague messages: each is one line and exit 1 (or a bounded,
correct run), and a failed attempt leaves nothing that refuses the corrected command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.conftest import TINY, one_line_error, tree

SRC = str(Path(__file__).resolve().parents[2] / "src")
TUNE = [*TINY, "--rows", "8", "--cols", "8", "--trials", "1"]


# ---------------------------------------------------------------- hangs


def test_a_fifo_named_like_an_image_is_refused_not_waited_on(cli, tmp_path):
    import signal

    folder = tmp_path / "images" / "cat"
    folder.mkdir(parents=True)
    os.mkfifo(folder / "a.png")  # no writer: opening it for reading blocks forever

    def hung(*_):
        raise TimeoutError("the folder scan blocked on the FIFO")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(30)
    try:
        result = cli("search", "--space", "lenet", "--dataset", f"folder:{tmp_path / 'images'}", "--epochs", "1",
                     "--out", tmp_path / "run")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    one_line_error(result, "a.png is a FIFO")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args", [["--points", "10000"], ["--targets", ",".join(["0.5"] * 101)]])
def test_frontier_points_are_bounded_before_any_work(cli, tiny_run, tmp_path, args):
    one_line_error(cli("frontier", tiny_run, *args, "--out", tmp_path / "f"), "at most 100" if "--targets" in args else "2 to 100")
    assert not (tmp_path / "f").exists()


# ---------------------------------------------------------------- tracebacks


@pytest.mark.parametrize("text", ["[1, 2]", "5", '"lenet"', "null"])
@pytest.mark.parametrize("command", ["retrain", "frontier", "profile", "resume"])
def test_a_config_json_that_is_not_an_object(cli, run_copy, tmp_path, text, command):
    (run_copy / "config.json").write_text(text)
    before = tree(run_copy)
    if command == "resume":
        result = cli("search", "--out", run_copy, "--resume", "--epochs", "2")
    else:
        result = cli(command, run_copy, *(["--epochs", "1", "--out", tmp_path / "o"] if command == "retrain" else []))
    one_line_error(result, "object")
    assert tree(run_copy) == before


@pytest.mark.parametrize("command", ["search", "retrain", "export", "tune"])
def test_a_path_component_over_255_bytes(cli, tiny_run, tmp_path, command):
    long = tmp_path / ("x" * 300)
    args = {"search": ["search", *TINY, "--out", long], "retrain": ["retrain", tiny_run, "--epochs", "1", "--out", long / "r"],
            "export": ["export", tiny_run, "--out", tmp_path / ("y" * 300 + ".json")],
            "tune": ["tune", *TUNE, "--out", long]}[command]
    one_line_error(cli(*args), "File name too long")


def test_oserror_anywhere_is_its_errno_message_and_path(cli, monkeypatch, tmp_path):
    import errno

    from uboost import search

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "run" / "last.ckpt"))

    monkeypatch.setattr(search, "run_search", full_disk)
    one_line_error(cli("search", *TINY, "--out", tmp_path / "run"), "No space left on device", "last.ckpt")


@pytest.mark.parametrize("case", ["read-only", "under-a-file", "a-directory", "db-under-a-file"])
def test_tune_storage_that_cannot_be_created(cli, tmp_path, case):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    (tmp_path / "dir.journal").mkdir()
    storage, fragment = {
        "read-only": ("/proc/uboost-test/s.journal", "cannot create storage"),
        "under-a-file": (blocker / "s.journal", "is a file, not a directory"),
        "a-directory": (tmp_path / "dir.journal", "is a directory"),
        "db-under-a-file": (blocker / "s.db", "is a file, not a directory"),
    }[case]
    one_line_error(cli("tune", *TUNE, "--storage", storage, "--out", tmp_path / "t"), fragment)
    assert blocker.read_text() == "x"


@pytest.mark.parametrize("seed", ["4294967296", "-1"])
def test_seeds_outside_numpy_range(cli, tiny_run, tmp_path, seed):
    one_line_error(cli("search", *TINY, "--seed", seed, "--out", tmp_path / "s"), "seed")
    one_line_error(cli("retrain", tiny_run, "--seed", seed, "--epochs", "1", "--out", tmp_path / "r"), "seed")
    assert not (tmp_path / "s").exists() and not (tmp_path / "r").exists()
    from uboost.search import SearchConfig

    assert SearchConfig(space="lenet", seed=2**32 - 1).seed == 2**32 - 1  # the top of the range is fine


@pytest.fixture
def no_gpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_accelerator_gpu_without_a_gpu_writes_nothing_and_the_rerun_works(cli, no_gpu, tiny_run, tmp_path):
    out = tmp_path / "run"
    one_line_error(cli("search", *TINY, "--accelerator", "gpu", "--out", out), "--accelerator gpu", "--accelerator cpu")
    assert not out.exists()
    one_line_error(cli("retrain", tiny_run, "--accelerator", "gpu", "--epochs", "1", "--out", tmp_path / "r"), "--accelerator gpu")
    assert not (tmp_path / "r").exists()
    one_line_error(cli("tune", *TUNE, "--config", _toml(tmp_path, 'accelerator = "cuda"'), "--out", tmp_path / "t"), "cuda")
    assert not (tmp_path / "t").exists()
    assert cli("search", *TINY, "--accelerator", "cpu", "--out", out).code == 0


def _toml(tmp_path, line: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(f"[search]\n{line}\n")
    return path


@pytest.mark.parametrize("command", ["search", "tune"])
def test_toml_that_is_not_utf8(cli, tmp_path, command):
    config = tmp_path / "latin1.toml"
    config.write_bytes("[search]\n# caf\u00e9\nepochs = 1\n".encode("latin-1"))
    one_line_error(cli(command, "--config", config, "--out", tmp_path / "o", *(["--trials", "1"] if command == "tune" else [])), "UTF-8")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("value", [1e308, -1e308, 1e7])
@pytest.mark.parametrize("command", ["frontier", "export"])
def test_alphas_out_of_range(cli, run_copy, tmp_path, value, command):
    path = run_copy / "alphas.json"
    alphas = json.loads(path.read_text())
    label = next(iter(alphas))
    alphas[label][0] = value
    path.write_text(json.dumps(alphas))
    args = ["--out", tmp_path / "o"] if command == "frontier" else ["--target-latency-ms", "1", "--out", tmp_path / "o"]
    one_line_error(cli(command, run_copy, *args), "alphas", label)
    assert not (tmp_path / "o").exists()


def test_large_but_sane_alphas_still_project(cli, run_copy, tmp_path):
    path = run_copy / "alphas.json"
    alphas = json.loads(path.read_text())
    label = next(iter(alphas))
    alphas[label] = [1e4] + [-1e4] * (len(alphas[label]) - 1)  # a fully committed choice
    path.write_text(json.dumps(alphas))
    result = cli("frontier", run_copy, "--points", "2", "--out", tmp_path / "f")
    assert result.code == 0, result.err


def test_a_terminal_that_cannot_encode_the_output(tiny_run, tmp_path, encoding="ascii"):
    """The frontier's table has a 'µs' column and Rich box lines: they degrade, the command works."""
    env = {**os.environ, "PYTHONPATH": SRC, "PYTHONIOENCODING": encoding, "COLUMNS": "200"}
    result = subprocess.run([sys.executable, "-m", "uboost", "frontier", str(tiny_run), "--points", "2", "--out", str(tmp_path / "f")],
                            capture_output=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert b"budget us" in result.stdout and b"Traceback" not in result.stderr
    assert (tmp_path / "f" / "p01" / "arch.json").is_file()


def test_degrade_output_maps_lookalikes(monkeypatch):
    import io

    from uboost.cli import _boundary

    stream = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    monkeypatch.setattr(sys, "stdout", stream)
    _boundary.degrade_output()
    stream.write("λ=1 µs β │")
    stream.flush()
    assert stream.buffer.getvalue() == b"lambda=1 us beta ?"


@pytest.mark.parametrize("error", [MemoryError(), RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: "
                                                                     "can't allocate memory: you tried to allocate 120000000000 bytes.")])
def test_allocation_failures_name_the_option_to_shrink(cli, monkeypatch, tmp_path, error):
    from uboost import search

    def allocate(*args, **kwargs):
        raise error

    monkeypatch.setattr(search, "run_search", allocate)
    one_line_error(cli("search", *TINY, "--out", tmp_path / "run"), "out of memory", "--width")


@pytest.mark.slow  # ~35 s: the supernet allocates gigabytes before the allocation that fails
def test_a_real_huge_width_is_one_line(cli, tmp_path):
    result = cli("search", "--space", "darts-cifar", "--width", "10000000", "--cells", "3", "--dataset", "digits",
                 "--epochs", "1", "--max-samples", "32", "--out", tmp_path / "w")
    one_line_error(result, "out of memory", "--width")
    assert not (tmp_path / "w").exists()


def test_other_runtime_errors_stay_tracebacks(cli, monkeypatch, tmp_path):
    """Only allocation failures are translated: a bug must still show where it is."""
    from uboost import search

    def bug(*args, **kwargs):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(search, "run_search", bug)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        cli("search", *TINY, "--out", tmp_path / "run")


# ---------------------------------------------------------------- vague messages


def test_frontier_and_export_do_not_suggest_a_resume_they_lack(cli, tiny_run, tmp_path):
    assert cli("frontier", tiny_run, "--points", "2", "--out", tmp_path / "f").code == 0
    result = cli("frontier", tiny_run, "--points", "2", "--out", tmp_path / "f")
    one_line_error(result, "--force")
    assert "--resume" not in result.err
    assert cli("export", tiny_run, "--target-latency-ms", "1", "--out", tmp_path / "e").code == 0
    result = cli("export", tiny_run, "--target-latency-ms", "1", "--out", tmp_path / "e")
    one_line_error(result, "--force")
    assert "--resume" not in result.err


def test_an_unfinished_search_names_the_exact_resume_command(cli, run_copy, tmp_path):
    for name in ("arch.json", "alphas.json", "result.json"):
        (run_copy / name).unlink()
    for command in ("frontier", "export", "retrain", "profile"):
        one_line_error(cli(command, run_copy), f"uboost search --out {run_copy} --resume")
    for ckpt in (run_copy / "checkpoints").glob("*.ckpt"):
        ckpt.unlink()
    one_line_error(cli("frontier", run_copy), f"uboost search --out {run_copy} --force")


@pytest.mark.parametrize("args,fragment", [(["--retrain-epochs", "-1"], "--retrain-epochs"), (["--timeout", "-1"], "--timeout"),
                                           (["--timeout", "0"], "--timeout"), (["--timeout", "nan"], "--timeout")])
def test_tune_settings_that_would_fail_every_trial_are_refused_up_front(cli, tmp_path, args, fragment):
    one_line_error(cli("tune", *TUNE, *args, "--out", tmp_path / "t"), fragment)
    assert not (tmp_path / "t").exists()


def test_a_ctrl_c_during_shutdown_after_the_interrupt_line_prints_no_traceback():
    """A second Ctrl-C during a retrain's exit callbacks printed "Exception ignored in atexit callback ...
    KeyboardInterrupt" under the interrupt's line; other errors of those callbacks still show."""
    import subprocess
    import sys

    code = ("import atexit\nfrom uboost.cli._boundary import say_interrupted\n"
            "def stopped(): raise KeyboardInterrupt\ndef broken(): raise ValueError('a real bug')\n"
            "atexit.register(broken)\natexit.register(stopped)\nsay_interrupted()\n")
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stderr
    assert err.startswith("interrupted; run the same command again") and "KeyboardInterrupt" not in err
    assert "ValueError: a real bug" in err


def test_sigterm_in_exits_or_predict_is_a_ctrl_c():
    """`kill PID` on `uboost exits`/`predict` (no Lightning, so no SIGTERM handling of its own) exited 143 without a
    line; it now raises KeyboardInterrupt (the CLI's one line, exit 130), and the earlier handler comes back."""
    import os
    import signal

    from uboost.cli._common import stop_on_sigterm
    from uboost.cli.exits import exits
    from uboost.cli.predict import predict

    assert getattr(exits, "__wrapped__", None) is not None and getattr(predict, "__wrapped__", None) is not None
    before = signal.getsignal(signal.SIGTERM)

    @stop_on_sigterm
    def killed():
        os.kill(os.getpid(), signal.SIGTERM)  # Python runs the handler before the next bytecode
        raise AssertionError("SIGTERM did not stop the command")

    with pytest.raises(KeyboardInterrupt):
        killed()
    assert signal.getsignal(signal.SIGTERM) == before
