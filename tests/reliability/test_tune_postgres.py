"""A real PostgreSQL server on 127.0.0.1 (Debian's `postgresql` package), started and stopped by the
test itself: two `uboost tune` workers lose and duplicate no trial; a server stopped mid-trial loses
no result. Skipped only when the server binaries (or psycopg) are not installed."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from uboost.tuning import load_study
from uboost.tuning.recovery import PENDING

pytestmark = pytest.mark.slow

TINY = ["--space", "lenet", "--dataset", "digits", "--image-size", "8", "--max-samples", "128", "--batch-size", "32"]


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


class Server:
    def __init__(self) -> None:
        self.initdb, self.pg_ctl = _bin("initdb"), _bin("pg_ctl")
        if not (self.initdb and self.pg_ctl):
            pytest.skip("PostgreSQL server binaries are not installed (Debian: apt-get install postgresql)")
        pytest.importorskip("psycopg", reason="needs uboost[postgres]")
        self.root = Path(tempfile.mkdtemp(prefix="uboost-pg-"))
        self.data = self.root / "data"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(self.root, "postgres", "postgres")
        self._run(self.initdb, "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync")

    def _run(self, *args) -> None:
        cmd = [str(a) for a in args]
        if os.geteuid() == 0:
            cmd = ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(f"'{c}'" for c in cmd)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._run(self.pg_ctl, "-D", self.data, "-l", self.root / "server.log", "-w", "-t", "60", "start",
                  "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off")

    def stop(self) -> None:
        self._run(self.pg_ctl, "-D", self.data, "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def postgres():
    server = Server()
    server.start()
    try:
        yield server
    finally:
        server.remove()


def _env():
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", PYTHONWARNINGS="ignore")
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")])
    return env


def _uboost(*args) -> list[str]:
    return [sys.executable, "-c", "import sys; from uboost.cli import main; sys.exit(main())", "tune", *map(str, args)]


def test_two_workers_on_postgres_lose_and_duplicate_no_trial(postgres, tmp_path):
    out = tmp_path / "tune"
    procs = [subprocess.Popen(_uboost(*TINY, "--epochs", "1", "--rows", "8,16", "--cols", "8,16", "--trials", 3,
                                      "--seed", seed, "--out", out, "--storage", postgres.url),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()) for seed in (1, 2)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        assert "Traceback" not in err
    trials = load_study(out, storage=postgres.url).trials
    assert sorted(t.number for t in trials) == list(range(6))  # none lost, numbers distinct
    assert all(t.state.name == "COMPLETE" for t in trials)
    points = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(points)) == 6  # no point proposed twice (different seeds: different streams)
    assert len({t.user_attrs["worker"] for t in trials}) == 2
    assert len({t.user_attrs["run_dir"] for t in trials}) == 6


def test_postgres_stopped_mid_trial_keeps_the_result_and_exits_in_one_line(postgres, tmp_path):
    out = tmp_path / "tune"
    proc = subprocess.Popen(_uboost(*TINY, "--epochs", "6", "--rows", "8", "--cols", "8", "--trials", 2, "--seed", 0,
                                    "--out", out, "--storage", postgres.url),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        deadline = time.time() + 300
        run_dir = None
        while time.time() < deadline and proc.poll() is None and run_dir is None:
            try:
                running = [t for t in load_study(out, storage=postgres.url).trials if t.state.name == "RUNNING"]
            except Exception:  # noqa: BLE001 - the study may not exist yet
                running = []
            if running and running[0].user_attrs.get("run_dir"):
                run_dir = Path(running[0].user_attrs["run_dir"])
            time.sleep(0.2)
        assert run_dir is not None, proc.communicate(timeout=60)
        postgres.stop()  # the search goes on; its result has nowhere to go
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "is unavailable" in err and "the result of trial 0 is kept in" in err, err
    assert (run_dir / PENDING).is_file()

    postgres.start()
    report = subprocess.run(_uboost("--trials", 0, "--out", out, "--storage", postgres.url), capture_output=True, text=True,
                            env=_env(), timeout=300)
    assert report.returncode == 0, report.stderr
    (trial,) = load_study(out, storage=postgres.url).trials
    assert trial.state.name == "COMPLETE" and trial.user_attrs["recorded_late"] is True
    assert not (run_dir / PENDING).exists()
