"""Data fixtures: tiny CIFAR-10/100 directories in the real on-disk format.

The real archives hold Python 2 pickles: dicts whose keys and strings are Python 2 ``str``
(``b'data'``, ``b'labels'`` when read with ``encoding='bytes'`` as the CIFAR page shows; plain
``'data'`` when read with ``encoding='latin1'`` as torchvision does), ``data`` a uint8 array
``N x 3072`` (1024 red, 1024 green, 1024 blue values, row-major), labels lists of ints.
:func:`_write_py2_pickle` writes byte strings with the Python 2 ``STRING`` opcodes so both readings
work exactly as on the real files.

torchvision checks the files by MD5 before parsing them: ``CIFAR10._check_integrity`` (the data
batches) and ``CIFAR10._load_meta`` (the meta file) both call ``check_integrity(path, md5)``,
imported into ``torchvision.datasets.cifar``, against the MD5s of the published files. Tiny files
cannot match, so the fixtures replace that one name, in that module only, by a file-exists check;
the rest of the loader (pickle parsing, reshaping, PIL conversion, transforms) runs as shipped.
"""

from __future__ import annotations

import io
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP (see uboost.cli)
import pickle
import signal
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest



def pytest_configure(config):
    """Ctrl-C is Python's (``KeyboardInterrupt``) in the suite and in the processes it starts, even when the suite
    itself was started in the background: a non-interactive shell starts ``cmd &`` with SIGINT ignored, and the
    product rightly leaves an inherited SIG_IGN alone (``uboost.checkpointing`` installs its stop handler only over
    Python's own), so every test that sends a real Ctrl-C failed there (seen in the README's nested suite run)."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # children exec with the default, not ignored


CIFAR10_TRAIN_PER_BATCH = 4  # 5 batches -> 20 training images
CIFAR10_TEST = 6
CIFAR100_TRAIN = 12
CIFAR100_TEST = 5


@dataclass(frozen=True)
class TinyCifar:
    """A tiny CIFAR tree: pass ``root`` as data_dir; images are ``N x 32 x 32 x 3`` uint8 (HWC)."""

    root: Path
    train_images: np.ndarray
    train_labels: list[int]
    test_images: np.ndarray
    test_labels: list[int]


class _Py2Pickler(pickle._Pickler):  # the pure-Python pickler lets us change how bytes are written
    dispatch = dict(pickle._Pickler.dispatch)

    def _save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str


def _write_py2_pickle(path: Path, obj: object) -> None:
    buffer = io.BytesIO()
    _Py2Pickler(buffer, protocol=2).dump(obj)
    path.write_bytes(buffer.getvalue())


def _images(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)


def _rows(images: np.ndarray) -> np.ndarray:
    """HWC images to CIFAR rows: N x 3072, channel planes first."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(len(images), 3072))


def _exists_only(fpath: str, md5: str | None = None) -> bool:
    return os.path.isfile(fpath)


def _skip_md5(monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets.cifar

    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", _exists_only)


@pytest.fixture
def tiny_cifar10(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TinyCifar:
    """``tmp_path/cifar-10-batches-py`` with data_batch_1..5, test_batch and batches.meta."""
    rng = np.random.default_rng(10)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    train_images, train_labels = [], []
    for batch in range(1, 6):
        images = _images(rng, CIFAR10_TRAIN_PER_BATCH)
        labels = [int(v) for v in rng.integers(0, 10, CIFAR10_TRAIN_PER_BATCH)]
        _write_py2_pickle(
            folder / f"data_batch_{batch}",
            {
                b"batch_label": f"training batch {batch} of 5".encode(),
                b"labels": labels,
                b"data": _rows(images),
                b"filenames": [f"img_{batch}_{i}.png".encode() for i in range(len(labels))],
            },
        )
        train_images.append(images)
        train_labels += labels
    test_images = _images(rng, CIFAR10_TEST)
    test_labels = [int(v) for v in rng.integers(0, 10, CIFAR10_TEST)]
    _write_py2_pickle(
        folder / "test_batch",
        {b"batch_label": b"testing batch 1 of 1", b"labels": test_labels, b"data": _rows(test_images)},
    )
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    _write_py2_pickle(folder / "batches.meta", {b"num_cases_per_batch": 10000, b"label_names": names, b"num_vis": 3072})
    _skip_md5(monkeypatch)
    return TinyCifar(tmp_path, np.concatenate(train_images), train_labels, test_images, test_labels)


@pytest.fixture
def tiny_cifar100(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TinyCifar:
    """``tmp_path/cifar-100-python`` with train, test and meta."""
    rng = np.random.default_rng(100)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    splits = {}
    for split, n in (("train", CIFAR100_TRAIN), ("test", CIFAR100_TEST)):
        images = _images(rng, n)
        fine = [int(v) for v in rng.integers(0, 100, n)]
        _write_py2_pickle(
            folder / split,
            {
                b"filenames": [f"{split}_{i}.png".encode() for i in range(n)],
                b"batch_label": f"{split}ing batch 1 of 1".encode(),
                b"fine_labels": fine,
                b"coarse_labels": [label // 5 for label in fine],
                b"data": _rows(images),
            },
        )
        splits[split] = (images, fine)
    meta = {
        b"fine_label_names": [f"fine_{i}".encode() for i in range(100)],
        b"coarse_label_names": [f"coarse_{i}".encode() for i in range(20)],
    }
    _write_py2_pickle(folder / "meta", meta)
    _skip_md5(monkeypatch)
    return TinyCifar(tmp_path, *splits["train"], *splits["test"])
