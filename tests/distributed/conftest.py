"""Helpers for multi-process tests: every run is real processes on 127.0.0.1 (gloo), on a free port."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("_search_script.py")
# 160 digits: 128 train the weights, 32 the architecture; both split evenly over 2 ranks (no padding)
TINY = {"space": "no-norm", "dataset": "digits", "image_size": 8, "max_samples": 160, "accelerator": "cpu"}
TINY_CLI = ["--space", "lenet", "--dataset", "digits", "--image-size", "8", "--max-samples", "96", "--batch-size", "16",
            "--accelerator", "cpu"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(**extra) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(free_port()), "UBOOST_DDP_TIMEOUT_S": "30", "PYTHONWARNINGS": "ignore"}
    for key in ("LOCAL_RANK", "RANK", "NODE_RANK", "WORLD_SIZE", "GROUP_RANK", "LOCAL_WORLD_SIZE", "SLURM_NTASKS"):
        env.pop(key, None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Run:
    """A test search started in its own process group (so Ctrl-C can reach every rank)."""

    def __init__(self, out: Path, report: Path, config: dict, *, resume=False, env=None, prefix=()):
        report.mkdir(parents=True, exist_ok=True)
        self.out, self.report = out, report
        argv = [*prefix, str(SCRIPT), str(out), str(report), json.dumps(config)] + (["--resume"] if resume else [])
        if not prefix:
            argv = [sys.executable, *argv]
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=environment(**(env or {})), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)

    def wait(self, timeout: float):
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            out, err = self.proc.communicate()
            pytest.fail(f"run did not finish within {timeout} s:\n{err[-3000:]}")
        return self.proc.returncode, out, err

    def wait_for(self, name: str, timeout: float) -> Path:
        path = self.report / name
        deadline = time.monotonic() + timeout
        while not path.exists():
            if self.proc.poll() is not None:
                pytest.fail(f"run ended ({self.proc.returncode}) before {name}:\n{self.proc.stderr.read()[-3000:]}")
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"no {name} within {timeout} s")
            time.sleep(0.2)
        time.sleep(0.5)
        return path

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def rank(self, r: int) -> dict:
        return json.loads((self.report / f"rank{r}.json").read_text())


@pytest.fixture
def launch():
    runs = []

    def start(*args, **kwargs) -> Run:
        run = Run(*args, **kwargs)
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.proc.poll() is None:
            run.kill()


def error_lines(err: str) -> list[str]:
    return [line for line in err.strip().splitlines() if line.strip()]
