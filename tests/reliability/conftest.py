"""Adversarial cases of issue 13: nothing lost, nothing executed, no traceback."""

import shutil
import subprocess
import sys

import pytest

from tests.cli.conftest import TINY, cli, one_line_error, tiny_run  # noqa: F401 - fixtures

EVIL_MARKER = "PWNED"


class Evil:
    """Unpickling this runs code: it creates ``path``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (exec, (f"open({self.path!r}, 'w').close()",))


def write_evil(path, marker, *, wrap=True):
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {}, "payload": Evil(marker)} if wrap else Evil(marker), path)
    return path


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    """A private copy of the finished tiny run (tests may damage it)."""
    target = tmp_path / "run"
    shutil.copytree(tiny_run, target)
    return target


def tree(root):
    """Every file under ``root`` with its bytes, for 'nothing lost' checks."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def lock_holder():
    """Start a separate process that holds the lock of a directory until it is stopped."""
    procs = []

    def start(path):
        code = ("import sys, time\nfrom uboost.runs import run_lock\n"
                "with run_lock(sys.argv[1]):\n    print('locked', flush=True)\n    time.sleep(120)\n")
        proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "locked"
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.fixture
def fits(monkeypatch):
    """Every Lightning fit of the test, in order: the global step its training started at and the training batches
    it ran. A resume that trained again from the start (its checkpoint ignored) repeats a seeded run exactly, so
    "equals the uninterrupted run" cannot tell it from a real resume: these counts can."""
    import pytorch_lightning as pl

    record, original = [], pl.Trainer.fit

    class Count(pl.Callback):
        def __init__(self, entry):
            self.entry = entry

        def on_train_start(self, trainer, module):
            self.entry["start"] = trainer.global_step

        def on_train_batch_end(self, trainer, *args):
            self.entry["batches"] += 1

    def fit(self, *args, **kwargs):
        entry = {"start": None, "batches": 0}
        record.append(entry)
        self.callbacks.insert(0, Count(entry))  # before any callback that stops the fit at a batch's end
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pl.Trainer, "fit", fit)
    return record


def assert_resumed_the_rest(fits, marks):
    """The resumed fits trained exactly what the cut ones left of the uninterrupted ones, not again from the start.
    ``marks``: ``len(fits)`` before the uninterrupted run, after it, after the cut one and after the resume."""
    whole, cut, resumed = (sum(entry["batches"] for entry in fits[a:b]) for a, b in zip(marks, marks[1:]))
    assert cut > 0 and cut + resumed == whole, (cut, resumed, whole)
