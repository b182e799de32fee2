"""Datasets a search runs on: bundled ``digits`` (the offline default), CIFAR-10/100, image folders.

Every loader returns ``(train, test)`` torch datasets yielding ``(image, label)`` with ``image`` a
normalized float tensor ``C x H x W`` and ``label`` an ``int``. :func:`dataset_spec` tells the
shape and class count without loading the data, so a search space can be sized to it.

torchvision and scikit-learn are imported inside the functions that need them, and nothing
touches the network unless ``download=True`` is passed.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from uboost.exceptions import ConfigError, DataError, unknown_name

logger = logging.getLogger(__name__)

FOLDER_PREFIX = "folder:"
DATASETS = ("digits", "cifar10", "cifar100", FOLDER_PREFIX + "PATH")
"""Valid dataset names; ``folder:PATH`` is a torchvision ImageFolder at PATH."""

TEST_FRACTION = 0.2
"""Share of the data held out as test split where a dataset has no split of its own."""

_BUILTIN = ("digits", "cifar10", "cifar100")
_DIGITS_SIZE = 8
_CIFAR_SIZE = 32
_CIFAR = {  # name -> (title, torchvision class, classes, mean, std)
    "cifar10": ("CIFAR-10", "CIFAR10", 10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ("CIFAR-100", "CIFAR100", 100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
_IMAGENET_MEAN = (0.485, 0.456, 0.406)  # the usual statistics for arbitrary RGB photos
_IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True, kw_only=True)
class DataSpec:
    """What a network needs to know about a dataset: ``input_shape`` is ``(C, H, W)``."""

    name: str
    num_classes: int
    input_shape: tuple[int, int, int]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"name must be a non-empty string, got {self.name!r}")
        if not _is_positive_int(self.num_classes):
            raise ConfigError(f"num_classes must be a positive integer, got {self.num_classes!r}")
        shape = self.input_shape
        if not (isinstance(shape, tuple) and len(shape) == 3 and all(_is_positive_int(d) for d in shape)):
            raise ConfigError(f"input_shape must be a tuple (C, H, W) of positive integers, got {shape!r}")


def parse_dataset(name: str) -> str:
    """Canonical dataset name (``"CIFAR-10"`` -> ``"cifar10"``, ``"folder:PATH"`` kept as is)."""
    text = str(name).strip()
    if text.lower().startswith(FOLDER_PREFIX):
        path = text[len(FOLDER_PREFIX) :].strip()
        if not path:
            raise ConfigError(f"dataset {text!r} needs a path: expected folder:PATH, e.g. folder:/data/flowers")
        return FOLDER_PREFIX + path
    key = text.lower().replace("-", "").replace("_", "")
    if key in _BUILTIN:
        return key
    raise unknown_name("dataset", text, DATASETS)


def dataset_spec(
    name: str,
    *,
    data_dir: str | Path | None = None,
    image_size: int | None = None,
    channels: int | None = None,
) -> DataSpec:
    """Classes and input shape of ``name`` as :func:`load_datasets` would return it.

    Cheap: nothing is loaded, except that a ``folder:`` dataset is scanned for its classes and
    its first image's size. ``data_dir`` is unused by the built-in datasets (their shapes are
    fixed). ``image_size`` and ``channels`` give the shape after the same conversions.
    """
    canonical = parse_dataset(name)
    _check_options(image_size, channels)
    if canonical == "digits":
        num_classes, shape = 10, (1, _DIGITS_SIZE, _DIGITS_SIZE)
    elif canonical in _CIFAR:
        num_classes, shape = _CIFAR[canonical][2], (3, _CIFAR_SIZE, _CIFAR_SIZE)
    else:
        from uboost._image_folders import _first_image_hw, _folder_layout, _image_folder

        train_dir, _ = _folder_layout(_folder_path(canonical))
        probe = _image_folder(train_dir)
        num_classes, shape = len(probe.classes), (3, *_first_image_hw(probe))
    c, h, w = shape
    if image_size is not None:
        h = w = image_size
    return DataSpec(name=canonical, num_classes=num_classes, input_shape=(channels or c, h, w))


def load_datasets(
    name: str,
    *,
    data_dir: str | Path | None = None,
    download: bool = False,
    image_size: int | None = None,
    channels: int | None = None,
    augment: bool = False,
    seed: int = 0,
) -> tuple[Dataset, Dataset]:
    """Load ``(train, test)`` for ``name`` (see :data:`DATASETS`).

    ``image_size`` resizes to a square (bilinear); ``channels`` (1 or 3) averages RGB to gray or
    repeats gray to RGB. ``augment`` adds a random crop (padding ``size / 8``, i.e. 4 at 32x32)
    and, except for digits, a horizontal flip to the train split. ``seed`` fixes the train/test
    split of datasets that lack one (digits, a single image folder); CIFAR keeps its own split.
    ``data_dir`` is where CIFAR is looked for (default ``~/.cache/uboost/data``).
    """
    canonical = parse_dataset(name)
    _check_options(image_size, channels)
    if canonical == "digits":
        train, test = _load_digits(image_size=image_size, channels=channels, augment=augment, seed=seed)
    elif canonical in _CIFAR:
        train, test = _load_cifar(
            canonical, data_dir, download=download, image_size=image_size, channels=channels, augment=augment
        )
    else:
        train, test = _load_folder(
            _folder_path(canonical), image_size=image_size, channels=channels, augment=augment, seed=seed
        )
    logger.info("dataset %s: %d train / %d test samples", canonical, len(train), len(test))  # type: ignore[arg-type]
    return train, test


def make_loaders(
    train: Dataset, test: Dataset, *, batch_size: int, num_workers: int = 0, seed: int = 0
) -> tuple[DataLoader, DataLoader]:
    """``(train_loader, test_loader)``; the train order is shuffled by a generator seeded with ``seed``."""
    if not _is_positive_int(batch_size):
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ConfigError(f"num_workers must be a non-negative integer, got {num_workers!r}")
    from uboost.resumable_loader import ResumableLoader

    generator = torch.Generator().manual_seed(seed)
    train_loader = ResumableLoader(  # a Ctrl-C'd epoch resumes its own order (uboost.resumable_loader)
        train, batch_size=batch_size, shuffle=True, generator=generator, num_workers=num_workers, drop_last=False
    )
    test_loader = DataLoader(test, batch_size=batch_size, shuffle=False, num_workers=num_workers, drop_last=False)
    return train_loader, test_loader


# --- datasets and transforms ------------------------------------------------------------------


class _TensorImages(TensorDataset):
    """In-memory images ``N x C x H x W`` and labels; optional per-item tensor transform."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Callable | None = None) -> None:
        super().__init__(images, labels)
        self.transform = transform

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.tensors[0][index]
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.tensors[1][index])


class _PadCrop:
    """Random crop of a ``C x H x W`` tensor padded by ``padding`` with a per-channel ``fill``."""

    def __init__(self, padding: int, fill: torch.Tensor) -> None:
        self.padding = padding
        self.fill = fill

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        c, h, w = image.shape
        p = self.padding
        canvas = self.fill.view(c, 1, 1).expand(c, h + 2 * p, w + 2 * p).clone()
        canvas[:, p : p + h, p : p + w] = image
        top, left = (int(v) for v in torch.randint(0, 2 * p + 1, (2,)))
        return canvas[:, top : top + h, left : left + w]


class _ToChannels:
    """Average RGB to one channel or repeat one channel to three."""

    def __init__(self, channels: int) -> None:
        self.channels = channels

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return _convert_channels(image, self.channels, dim=0)


def _convert_channels(images: torch.Tensor, channels: int, *, dim: int) -> torch.Tensor:
    have = images.shape[dim]
    if have == channels:
        return images
    if channels == 1:
        return images.mean(dim=dim, keepdim=True)
    if have == 1:
        return images.repeat_interleave(channels, dim=dim)
    raise DataError(f"cannot convert {have}-channel images to {channels} channels; expected 1 or 3")


def _stats_for(mean: Sequence[float], std: Sequence[float], channels: int) -> tuple[list[float], list[float]]:
    """Per-channel mean/std after channel conversion (averaged for gray: approximate for std)."""
    if len(mean) == channels:
        return list(mean), list(std)
    if channels == 1:
        return [sum(mean) / len(mean)], [sum(std) / len(std)]
    return list(mean) * channels, list(std) * channels


def _crop_padding(size: int) -> int:
    return max(1, round(size / 8))


def _pil_transform(
    *, size: tuple[int, int], channels: int, mean: Sequence[float], std: Sequence[float], augment: bool
) -> Callable:
    from torchvision import transforms as T

    steps: list[Any] = [T.Resize(size, antialias=True)]  # bilinear; returns the image as is at its size
    if augment:
        steps += [T.RandomCrop(size, padding=_crop_padding(min(size))), T.RandomHorizontalFlip()]
    steps += [T.ToTensor(), _ToChannels(channels), T.Normalize(*_stats_for(mean, std, channels))]
    return T.Compose(steps)


# --- digits -----------------------------------------------------------------------------------


def _load_digits(
    *, image_size: int | None, channels: int | None, augment: bool, seed: int
) -> tuple[Dataset, Dataset]:
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = torch.from_numpy(bunch.images).float().div_(16.0).unsqueeze(1)  # N x 1 x 8 x 8 in [0, 1]
    labels = torch.from_numpy(bunch.target).long()
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=TEST_FRACTION, random_state=seed, stratify=bunch.target
    )
    size = image_size or _DIGITS_SIZE
    if size != _DIGITS_SIZE:
        images = torch.nn.functional.interpolate(
            images, size=(size, size), mode="bilinear", align_corners=False, antialias=size < _DIGITS_SIZE
        )
    images = _convert_channels(images, channels or 1, dim=1)
    train_x, test_x = images[torch.from_numpy(train_idx)], images[torch.from_numpy(test_idx)]
    mean = train_x.mean(dim=(0, 2, 3))
    std = train_x.std(dim=(0, 2, 3)).clamp_min(1e-8)

    def normalize(x: torch.Tensor) -> torch.Tensor:
        return ((x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)).contiguous()

    crop = _PadCrop(_crop_padding(size), fill=-mean / std) if augment else None  # pad with blank paper
    train = _TensorImages(normalize(train_x), labels[torch.from_numpy(train_idx)], transform=crop)
    test = _TensorImages(normalize(test_x), labels[torch.from_numpy(test_idx)])
    return train, test


# --- CIFAR ------------------------------------------------------------------------------------


def _load_cifar(
    name: str,
    data_dir: str | Path | None,
    *,
    download: bool,
    image_size: int | None,
    channels: int | None,
    augment: bool,
) -> tuple[Dataset, Dataset]:
    from torchvision import datasets

    title, class_name, _, mean, std = _CIFAR[name]
    cls = getattr(datasets, class_name)
    root = _cifar_root(name, data_dir, download=download)
    folder = root / cls.base_folder
    size = image_size or _CIFAR_SIZE

    def transform(train: bool) -> Callable:  # resizing to the native size is a no-op
        options = {"size": (size, size), "channels": channels or 3, "mean": mean, "std": std}
        return _pil_transform(augment=train and augment, **options)

    if download:
        logger.info("downloading %s to %s if missing", title, root)
    try:
        train = cls(str(root), train=True, transform=transform(True), download=download)
        test = cls(str(root), train=False, transform=transform(False), download=False)
    except RuntimeError as err:  # torchvision: "Dataset not found or corrupted"
        raise DataError(f"{title} in {folder} is incomplete or corrupted ({err}); re-extract it or pass --download") from err
    except OSError as err:  # download failure (URLError) or unreadable file
        raise DataError(f"could not {'download' if download else 'read'} {title} in {folder}: {err}") from err
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError) as err:  # not a CIFAR pickle
        raise DataError(f"{title} files in {folder} are not in the CIFAR pickle format: {err!r}") from err
    return train, test


def _cifar_root(name: str, data_dir: str | Path | None, *, download: bool) -> Path:
    """The directory holding CIFAR's extracted folder; a :class:`DataError` naming what is missing (unless
    ``download``): the files are checked, nothing is read."""
    from torchvision import datasets

    title, class_name = _CIFAR[name][:2]
    cls = getattr(datasets, class_name)
    root = Path(data_dir).expanduser() if data_dir is not None else Path.home() / ".cache" / "uboost" / "data"
    if root.name == cls.base_folder:  # the user pointed at the extracted folder itself
        root = root.parent
    folder = root / cls.base_folder
    files = [f for f, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
    missing = [f for f in files if not (folder / f).is_file()]
    if missing and not download:
        found = f"{folder} lacks {', '.join(missing)}" if folder.is_dir() else f"no {cls.base_folder}/ in {root}"
        raise DataError(
            f"{title} not found ({found}); pass --data-dir DIR pointing at the directory that contains "
            f"the extracted {cls.base_folder}/, or --download to fetch it"
        )
    return root


def check_available(name: str, *, data_dir: str | Path | None = None, download: bool = False) -> None:
    """Whether ``name``'s files are where :func:`load_datasets` will look, checked without reading them (CIFAR's
    batch files, an image folder's layout); a :class:`DataError` says what is missing."""
    canonical = parse_dataset(name)
    if canonical in _CIFAR:
        _cifar_root(canonical, data_dir, download=download)
    elif canonical != "digits":
        from uboost._image_folders import _folder_layout

        _folder_layout(_folder_path(canonical))


# --- image folders (scanned in uboost._image_folders) ----------------------------------------


def _folder_path(canonical: str) -> Path:
    return Path(canonical[len(FOLDER_PREFIX) :]).expanduser()


def _load_folder(
    path: Path, *, image_size: int | None, channels: int | None, augment: bool, seed: int
) -> tuple[Dataset, Dataset]:
    from uboost._image_folders import _first_image_hw, _folder_layout, _image_folder, _shuffled, _split_folder, _with_transform

    train_dir, test_dir = _folder_layout(path)
    scanned = _image_folder(train_dir)
    size = (image_size, image_size) if image_size else _first_image_hw(scanned)  # one size for batching
    options = {"size": size, "channels": channels or 3, "mean": _IMAGENET_MEAN, "std": _IMAGENET_STD}
    train = _with_transform(scanned, _pil_transform(augment=augment, **options))
    test_transform = _pil_transform(augment=False, **options)
    if test_dir is not None:
        test = _with_transform(_image_folder(test_dir), test_transform)
        if test.classes != train.classes:
            raise DataError(
                f"image folder {path}: {test_dir.name}/ classes {test.classes} differ from train/ classes {train.classes}"
            )
        # in a seeded order, as the split of a single folder is: ImageFolder lists by class, so --max-samples' first
        # N images were one or two classes (training and validation alike)
        return _shuffled(train, seed), _shuffled(test, seed + 1)

    return _split_folder(path, train, _with_transform(scanned, test_transform), seed=seed, test_fraction=TEST_FRACTION)



# --- validation -------------------------------------------------------------------------------


def _is_positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _check_options(image_size: int | None, channels: int | None) -> None:
    if image_size is not None and not _is_positive_int(image_size):
        raise ConfigError(f"image_size must be a positive integer or None, got {image_size!r}")
    if channels is not None and (isinstance(channels, bool) or channels not in (1, 3)):
        raise ConfigError(f"channels must be 1 or 3 (or None to keep the dataset's), got {channels!r}")
