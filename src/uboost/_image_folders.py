"""Image-folder datasets (``folder:PATH``): one subfolder per class, or ``train/`` and ``val/`` of them --
scanned, checked and split here; :func:`uboost.data.load_datasets` adds the transforms."""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path
from typing import Any, Callable

from torch.utils.data import Dataset, Subset

from uboost.exceptions import DataError

logger = logging.getLogger("uboost.data")



def _folder_layout(path: Path) -> tuple[Path, Path | None]:
    """``(train_dir, test_dir)``; ``test_dir`` is None for a single folder to be split."""
    if not path.is_dir():
        raise DataError(f"image folder {path} does not exist or is not a directory")
    train_dir = path / "train"
    if not train_dir.is_dir():
        return path, None
    for name in ("val", "test"):
        if (path / name).is_dir():
            return train_dir, path / name
    raise DataError(f"image folder {path} has train/ but no val/ or test/ subfolder")


def _check_regular(path: str) -> None:
    """Refuse a FIFO, socket or device named like an image: opening it would block forever (a FIFO
    without a writer) or read without end (``/dev/zero``). ``stat`` follows links and never blocks."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # a dangling link or a loop: PIL's open fails on it and the file is skipped as unreadable
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file"
        raise DataError(f"image folder entry {path} is {kind}, not an image file; remove it from the folder")


def _readable_image(path: str, bad: list[str]) -> bool:
    """An image file PIL can identify (reads the header only); others go to ``bad``."""
    from PIL import Image
    from torchvision.datasets.folder import IMG_EXTENSIONS

    if not path.lower().endswith(IMG_EXTENSIONS):
        return False
    _check_regular(path)
    try:
        with Image.open(path) as image:
            image.verify()
    except Exception:  # PIL raises many types for damaged files (OSError, SyntaxError, ValueError...)
        bad.append(path)
        return False
    return True


def _load_rgb(path: str) -> Any:
    """ImageFolder's loader, with a one-line error naming a file that fails to decode mid-training."""
    from PIL import Image

    try:
        with open(path, "rb") as f, Image.open(f) as image:
            if image.mode.startswith("I;16"):  # 16-bit gray: convert() clips at 255 (a ramp read back 98 % white)
                import numpy as np

                image = Image.fromarray((np.asarray(image, dtype=np.uint16) >> 8).astype(np.uint8))  # L
            return image.convert("RGB")
    except Exception as err:
        raise DataError(f"cannot decode image {path} ({type(err).__name__}: {err}); remove or replace it") from err


def _image_folder(root: Path) -> Any:
    from torchvision.datasets import ImageFolder

    class VisibleClasses(ImageFolder):  # .ipynb_checkpoints/, .git/: not classes (one became class 0, every label moved)
        def find_classes(self, directory):
            classes = sorted(e.name for e in os.scandir(directory) if e.is_dir() and not e.name.startswith("."))
            if not classes:
                raise FileNotFoundError(f"Couldn't find any class folder in {directory}.")
            return classes, {name: i for i, name in enumerate(classes)}

    bad: list[str] = []
    try:
        folder = VisibleClasses(str(root), loader=_load_rgb, is_valid_file=lambda p: _readable_image(p, bad))
    except FileNotFoundError as err:  # no class folders, or a class folder without images
        raise DataError(
            f"image folder {root} has no usable images: expected one subfolder per class holding images ({err})"
        ) from err
    if bad:  # skipped, not fatal: one damaged file should not stop a search over thousands
        logger.warning("image folder %s: skipped %d unreadable image file(s), e.g. %s", root, len(bad), bad[0])
    return folder


def _first_image_hw(folder: Any) -> tuple[int, int]:
    from PIL import Image

    path = folder.samples[0][0]
    try:
        with Image.open(path) as image:
            width, height = image.size
    except OSError as err:
        raise DataError(f"cannot read image {path}: {err}") from err
    return height, width


def _with_transform(folder: Any, transform: Callable) -> Any:
    from torchvision.datasets.vision import StandardTransform

    clone = copy.copy(folder)  # shares the scanned sample list
    clone.transform = transform
    clone.transforms = StandardTransform(transform, None)
    return clone


def _shuffled(dataset: Any, seed: int) -> Dataset:
    import numpy as np

    return Subset(dataset, np.random.default_rng(seed).permutation(len(dataset)).tolist())


def _split_folder(path: Path, train: Any, test: Any, *, seed: int, test_fraction: float) -> tuple[Dataset, Dataset]:
    import numpy as np
    from sklearn.model_selection import train_test_split

    targets = np.asarray(train.targets)
    try:
        train_idx, test_idx = train_test_split(
            np.arange(len(targets)), test_size=test_fraction, random_state=seed, stratify=targets
        )
    except ValueError as err:
        raise DataError(
            f"image folder {path}: cannot split {len(targets)} images of {len(train.classes)} classes into "
            f"train and test with every class in both; add images or provide train/ and val/ subfolders ({err})"
        ) from err
    return Subset(train, train_idx.tolist()), Subset(test, test_idx.tolist())


