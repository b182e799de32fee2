"""Issue 25: the same command under torchrun, and launch settings refused in one line."""

import subprocess
import sys

import pytest

from tests.cli.conftest import cli, one_line_error  # noqa: F401 - fixtures
from tests.distributed.conftest import ROOT, TINY_CLI, environment, free_port


def test_torchrun_starts_two_ranks_of_the_same_command(tmp_path):
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
            "--master_port", str(free_port()), "-m", "uboost", "search", *TINY_CLI, "--epochs", "1", "--devices", "2",
            "--out", str(out)]
    done = subprocess.run(argv, cwd=ROOT, env=environment(), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("search result:") == 1  # rank 1 prints nothing
    for name in ("arch.json", "alphas.json", "result.json", "hardware.txt", "checkpoints/last.ckpt"):
        assert (out / name).is_file(), name
    assert not (out / ".lock").exists()


@pytest.mark.parametrize("flags, fragments", [
    (["--devices", "0"], ["devices must be a positive integer", "0"]),
    (["--strategy", "fsdp"], ["unknown strategy 'fsdp'", "auto, ddp"]),
    (["--precision", "8-bit"], ["unknown precision '8-bit'", "bf16-mixed"]),
    (["--num-nodes", "2"], ["num_nodes=2 needs a launcher", "torchrun", "SLURM"]),
    (["--accelerator", "gpu", "--devices", "2"], ["--accelerator gpu", "GPU"]),
    (["--devices", "100000"], ["devices=100000 CPU processes", "cores"]),
    (["--precision", "16-mixed"], ["16-mixed needs a GPU", "bf16-mixed"]),
])
def test_bad_launch_settings_are_one_line_and_write_nothing(cli, tmp_path, monkeypatch, flags, fragments):  # noqa: F811
    for key in ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "RANK", "LOCAL_RANK", "GROUP_RANK", "LOCAL_WORLD_SIZE", "SLURM_NTASKS"):
        monkeypatch.delenv(key, raising=False)
    if "gpu" in flags:
        import torch

        if torch.cuda.device_count() >= 2:
            pytest.skip("this machine has the GPUs")
    out = tmp_path / "run"
    one_line_error(cli("search", *TINY_CLI, "--accelerator", "cpu", *flags, "--out", out), *fragments)
    assert not out.exists()


def test_torchrun_world_size_must_match_devices(cli, tmp_path, monkeypatch):  # noqa: F811
    for key, value in {"RANK": "0", "GROUP_RANK": "0", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2", "WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "run"
    one_line_error(cli("search", *TINY_CLI, "--devices", "1", "--out", out), "torchrun started 2 processes", "--devices 2")
    assert not out.exists()


TORCHRUN = {"RANK": "0", "GROUP_RANK": "0", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2", "WORLD_SIZE": "2"}
NODES = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}


@pytest.mark.parametrize("env, flags, fragments", [
    (TORCHRUN, ["--devices", "1", "--num-nodes", "2"], ["torchrun started 2 processes per node", "--devices 2"]),
    ({**NODES, "NODE_RANK": "abc"}, ["--num-nodes", "2"], ["NODE_RANK='abc' is not a node rank", "from 0 to 1"]),
    ({**NODES, "NODE_RANK": "-1"}, ["--num-nodes", "2"], ["NODE_RANK='-1'", "from 0 to 1"]),
    ({**NODES, "NODE_RANK": "5"}, ["--num-nodes", "2"], ["NODE_RANK='5'", "from 0 to 1"]),
    ({"NODE_RANK": "1"}, ["--devices", "2"], ["NODE_RANK='1'", "from 0 to 0"]),  # stale, from another run
    ({"LOCAL_RANK": "2"}, ["--devices", "2"], ["LOCAL_RANK='2' is not a local rank", "from 0 to 1"]),
    ({"MASTER_PORT": "abc"}, ["--devices", "2"], ["MASTER_PORT='abc' is not a port", "from 1 to 65535"]),
    ({"MASTER_PORT": "99999"}, ["--devices", "2"], ["MASTER_PORT='99999'", "from 1 to 65535"]),
    ({"UBOOST_DDP_TIMEOUT_S": "soon"}, ["--devices", "2"], ["UBOOST_DDP_TIMEOUT_S must be a number", "'soon'"]),
    ({"UBOOST_DDP_TIMEOUT_S": "0"}, ["--devices", "1", "--strategy", "ddp"], ["UBOOST_DDP_TIMEOUT_S must be positive"]),
])
def test_bad_launcher_variables_are_one_line_and_write_nothing(cli, tmp_path, monkeypatch, env, flags, fragments):  # noqa: F811
    """They ended in tracebacks (an IndexError, a ValueError, gloo's and C++ stacks) or a wait for the collective
    timeout, some after the run directory was written (its config, interrupted.ckpt)."""
    for key in ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "RANK", "LOCAL_RANK", "GROUP_RANK", "LOCAL_WORLD_SIZE",
                "WORLD_SIZE", "SLURM_NTASKS", "UBOOST_DDP_TIMEOUT_S"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "run"
    one_line_error(cli("search", *TINY_CLI, *flags, "--out", out), *fragments)
    assert not out.exists()


def test_bf16_mixed_precision_search_runs_on_the_cpu_and_is_stored(cli, tmp_path):  # noqa: F811
    import json

    out = tmp_path / "run"
    result = cli("search", *TINY_CLI, "--epochs", "1", "--precision", "bf16-mixed", "--out", out)
    assert result.code == 0, result.err
    assert json.loads((out / "config.json").read_text())["precision"] == "bf16-mixed"
    assert (out / "arch.json").is_file()


def test_gpu_defaults_change_nothing_on_the_cpu(monkeypatch):
    import torch

    from uboost.distributed import loader_options, log_every_n_steps

    for accelerator in ("cpu", "auto"):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        assert loader_options(accelerator, 2) == {} and log_every_n_steps(accelerator) == 1
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert loader_options("cpu", 8) == {} and log_every_n_steps("cpu") == 1
    options = loader_options("gpu", 8)
    assert options["pin_memory"] and options["num_workers"] >= 1 and log_every_n_steps("auto") == 25


def _search_in_a_worker(out, queue):
    from uboost.exceptions import ConfigError
    from uboost.search import SearchConfig, run_search

    try:
        run_search(SearchConfig(space="lenet", dataset="digits", image_size=8, accelerator="cpu", devices=2), out)
    except ConfigError as exc:
        queue.put(str(exc))


def test_a_multi_device_search_in_a_worker_process_is_refused(tmp_path):
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    worker = context.Process(target=_search_in_a_worker, args=(str(tmp_path / "run"), queue))
    worker.start()
    worker.join(120)
    assert "in a worker process" in queue.get(timeout=5)
    assert not (tmp_path / "run").exists()
