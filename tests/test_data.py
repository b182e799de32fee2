"""Tests for uboost.data: digits, CIFAR (tiny on-disk fixtures from conftest), image folders, loaders."""

from __future__ import annotations

import dataclasses
import pickle
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from uboost.data import DATASETS, DataSpec, dataset_spec, load_datasets, make_loaders, parse_dataset
from uboost.exceptions import ConfigError, DataError, RegistryError, UBoostError

DIGITS_TOTAL = 1797
CIFAR10_MEAN = torch.tensor([0.4914, 0.4822, 0.4465]).view(3, 1, 1)
CIFAR10_STD = torch.tensor([0.2470, 0.2435, 0.2616]).view(3, 1, 1)


def _stack(dataset) -> tuple[torch.Tensor, list[int]]:
    images, labels = zip(*(dataset[i] for i in range(len(dataset))))
    return torch.stack(images), list(labels)


# --- names and specs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "canonical"),
    [("digits", "digits"), (" CIFAR-10 ", "cifar10"), ("cifar_100", "cifar100"), ("folder:/data/x", "folder:/data/x")],
)
def test_parse_dataset_canonical(given, canonical):
    assert parse_dataset(given) == canonical


def test_unknown_dataset_lists_choices():
    with pytest.raises(RegistryError) as info:
        parse_dataset("mnist")
    message = str(info.value)
    assert "'mnist'" in message
    for choice in ("digits", "cifar10", "cifar100", "folder:PATH"):
        assert choice in message
    assert isinstance(info.value, UBoostError)


def test_unknown_dataset_rejected_by_loaders():
    with pytest.raises(RegistryError, match="cifar100"):
        load_datasets("imagenet")
    with pytest.raises(RegistryError):
        dataset_spec("imagenet")


def test_folder_without_path_is_config_error():
    with pytest.raises(ConfigError, match="folder:PATH"):
        parse_dataset("folder:  ")


def test_datasets_constant_names_all_kinds():
    assert set(DATASETS) == {"digits", "cifar10", "cifar100", "folder:PATH"}


@pytest.mark.parametrize(
    ("name", "kwargs", "expected"),
    [
        ("digits", {}, (10, (1, 8, 8))),
        ("digits", {"image_size": 32, "channels": 3}, (10, (3, 32, 32))),
        ("cifar10", {}, (10, (3, 32, 32))),
        ("cifar100", {"channels": 1, "image_size": 16}, (100, (1, 16, 16))),
    ],
)
def test_dataset_spec_builtin(name, kwargs, expected, tmp_path):
    # CIFAR specs need no files: tmp_path is empty
    spec = dataset_spec(name, data_dir=tmp_path, **kwargs)
    assert (spec.num_classes, spec.input_shape) == expected
    assert spec.name == name


def test_dataspec_is_frozen_keyword_only_and_validated():
    spec = DataSpec(name="x", num_classes=3, input_shape=(1, 4, 4))
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.num_classes = 4  # type: ignore[misc]
    with pytest.raises(TypeError):
        DataSpec("x", 3, (1, 4, 4))  # type: ignore[misc]
    with pytest.raises(ConfigError, match="num_classes"):
        DataSpec(name="x", num_classes=0, input_shape=(1, 4, 4))
    with pytest.raises(ConfigError, match="input_shape"):
        DataSpec(name="x", num_classes=3, input_shape=(4, 4))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="input_shape"):
        DataSpec(name="x", num_classes=3, input_shape=[1, 4, 4])  # type: ignore[arg-type]


@pytest.mark.parametrize(("option", "value"), [("channels", 2), ("channels", True), ("image_size", 0), ("image_size", 3.5)])
def test_bad_options_are_config_errors(option, value):
    with pytest.raises(ConfigError, match=option):
        load_datasets("digits", **{option: value})


def test_import_is_lazy():
    code = "import sys, uboost.data; print('torchvision' in sys.modules, 'sklearn' in sys.modules)"
    src = str(Path(__file__).resolve().parents[1] / "src")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": src}, check=True)
    assert out.stdout.split() == ["False", "False"]


# --- digits -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    return load_datasets("digits")


def test_digits_shapes_labels_and_split(digits):
    train, test = digits
    assert len(train) + len(test) == DIGITS_TOTAL
    assert len(test) == 360  # ceil(0.2 * 1797)
    image, label = train[0]
    assert image.dtype == torch.float32 and image.shape == (1, 8, 8)
    assert type(label) is int
    train_counts = Counter(_stack(train)[1])
    test_counts = Counter(_stack(test)[1])
    assert set(train_counts) == set(test_counts) == set(range(10))
    for cls in range(10):  # stratified: each class is split about 80/20
        share = test_counts[cls] / (train_counts[cls] + test_counts[cls])
        assert abs(share - 0.2) < 0.02


def test_digits_train_is_normalized(digits):
    images, _ = _stack(digits[0])
    assert abs(images.mean().item()) < 1e-4
    assert images.std().item() == pytest.approx(1.0, abs=1e-3)


def test_digits_same_seed_same_split(digits):
    train_a, test_a = digits
    train_b, test_b = load_datasets("digits", seed=0)
    assert torch.equal(train_a.tensors[0], train_b.tensors[0])
    assert torch.equal(test_a.tensors[1], test_b.tensors[1])


def test_digits_other_seed_other_split(digits):
    _, test_a = digits
    _, test_b = load_datasets("digits", seed=1)
    assert len(test_a) == len(test_b)
    assert not torch.equal(test_a.tensors[0], test_b.tensors[0])


def test_digits_resize_to_rgb_32_matches_bilinear_golden():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    train, test = load_datasets("digits", image_size=32, channels=3, seed=3)
    image, _ = test[0]
    assert image.shape == (3, 32, 32)
    assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])  # gray repeated
    # independent recomputation of the documented pipeline: /16, bilinear 32x32, train mean/std
    bunch = load_digits()
    idx = np.arange(DIGITS_TOTAL)
    train_idx, test_idx = train_test_split(idx, test_size=0.2, random_state=3, stratify=bunch.target)
    raw = torch.from_numpy(bunch.images).float().unsqueeze(1) / 16
    big = torch.nn.functional.interpolate(raw, size=(32, 32), mode="bilinear", align_corners=False)
    mean, std = big[train_idx].mean(), big[train_idx].std()
    expected = ((big[test_idx] - mean) / std).expand(-1, 3, -1, -1)
    assert torch.allclose(test.tensors[0], expected, atol=1e-5)
    assert test.tensors[1].tolist() == bunch.target[test_idx].tolist()
    assert torch.equal(test[5][0], expected[5])


def test_digits_augment_is_a_shift_not_a_flip(digits):
    train, _ = digits
    augmented, _ = load_datasets("digits", augment=True)
    torch.manual_seed(0)
    padding = 1  # 8 / 8
    background = train.tensors[0].min().item()  # blank paper after normalization
    changed = 0
    for i in range(40):
        original, label = train[i]
        shifted, aug_label = augmented[i]
        assert shifted.shape == original.shape and aug_label == label
        changed += not torch.equal(shifted, original)
        padded = torch.nn.functional.pad(original, (padding,) * 4, value=background)
        windows = [
            padded[:, top : top + 8, left : left + 8]
            for top in range(2 * padding + 1)
            for left in range(2 * padding + 1)
        ]
        assert any(torch.allclose(shifted, w, atol=1e-6) for w in windows)
    assert changed > 10


# --- CIFAR ------------------------------------------------------------------------------------


def test_tiny_cifar10_files_read_like_the_real_ones(tiny_cifar10):
    # the CIFAR page's recipe: pickle.load(fo, encoding='bytes') -> b'data', b'labels'
    with open(tiny_cifar10.root / "cifar-10-batches-py" / "data_batch_1", "rb") as fo:
        batch = pickle.load(fo, encoding="bytes")
    assert batch[b"data"].dtype == np.uint8 and batch[b"data"].shape == (4, 3072)
    assert batch[b"labels"] == tiny_cifar10.train_labels[:4]


def test_cifar10_loads_counts_shapes_labels_pixels(tiny_cifar10):
    train, test = load_datasets("cifar10", data_dir=tiny_cifar10.root)
    assert (len(train), len(test)) == (20, 6)
    images, labels = _stack(train)
    assert images.shape == (20, 3, 32, 32) and images.dtype == torch.float32
    assert labels == tiny_cifar10.train_labels
    assert all(type(label) is int for label in labels)
    _, test_labels = _stack(test)
    assert test_labels == tiny_cifar10.test_labels
    pixels = torch.from_numpy(tiny_cifar10.train_images).permute(0, 3, 1, 2).float() / 255
    assert torch.allclose(images * CIFAR10_STD + CIFAR10_MEAN, pixels, atol=1e-5)
    assert train.classes[0] == "airplane"


def test_cifar10_accepts_the_extracted_folder_itself(tiny_cifar10):
    train, _ = load_datasets("cifar10", data_dir=tiny_cifar10.root / "cifar-10-batches-py")
    assert len(train) == 20


def test_cifar10_resize_and_gray(tiny_cifar10):
    train, test = load_datasets("cifar10", data_dir=tiny_cifar10.root, image_size=16, channels=1)
    assert train[0][0].shape == (1, 16, 16)
    assert test[0][0].shape == (1, 16, 16)
    spec = dataset_spec("cifar10", data_dir=tiny_cifar10.root, image_size=16, channels=1)
    assert spec.input_shape == tuple(train[0][0].shape)


def test_cifar10_augment_changes_train_images_only(tiny_cifar10):
    plain_train, plain_test = load_datasets("cifar10", data_dir=tiny_cifar10.root)
    aug_train, aug_test = load_datasets("cifar10", data_dir=tiny_cifar10.root, augment=True)
    torch.manual_seed(0)
    changed = 0
    for i in range(len(plain_train)):
        aug, label = aug_train[i]
        assert aug.shape == (3, 32, 32) and label == plain_train[i][1]
        changed += not torch.equal(aug, plain_train[i][0])
    assert changed >= len(plain_train) // 2
    for i in range(len(plain_test)):
        assert torch.equal(aug_test[i][0], plain_test[i][0])


def test_cifar100_loads_fine_labels(tiny_cifar100):
    train, test = load_datasets("cifar100", data_dir=tiny_cifar100.root)
    assert (len(train), len(test)) == (12, 5)
    images, labels = _stack(train)
    assert images.shape == (12, 3, 32, 32)
    assert labels == tiny_cifar100.train_labels
    assert _stack(test)[1] == tiny_cifar100.test_labels
    assert len(train.classes) == 100


def test_cifar100_augment_keeps_shape(tiny_cifar100):
    plain, _ = load_datasets("cifar100", data_dir=tiny_cifar100.root)
    aug, _ = load_datasets("cifar100", data_dir=tiny_cifar100.root, augment=True, image_size=24)
    torch.manual_seed(1)
    images, labels = _stack(aug)
    assert images.shape == (12, 3, 24, 24)
    assert labels == tiny_cifar100.train_labels
    resized, _ = load_datasets("cifar100", data_dir=tiny_cifar100.root, image_size=24)
    assert not torch.equal(images, _stack(resized)[0])
    assert plain[0][0].shape == (3, 32, 32)


@pytest.mark.parametrize(("name", "folder"), [("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python")])
def test_missing_cifar_says_how_to_fix(name, folder, tmp_path):
    with pytest.raises(DataError) as info:
        load_datasets(name, data_dir=tmp_path / "nowhere")
    message = str(info.value)
    assert "--data-dir" in message and "--download" in message and folder in message
    assert "\n" not in message


def test_real_md5_check_rejects_tiny_files_as_data_error(tiny_cifar10, monkeypatch):
    monkeypatch.undo()  # drop the fixture's MD5 bypass: torchvision's own check now runs
    with pytest.raises(DataError, match="corrupted"):
        load_datasets("cifar10", data_dir=tiny_cifar10.root)


def test_corrupt_cifar_is_data_error(tiny_cifar10):
    (tiny_cifar10.root / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="CIFAR-10"):
        load_datasets("cifar10", data_dir=tiny_cifar10.root)


# --- image folders ----------------------------------------------------------------------------


def _write_pngs(folder: Path, count: int, *, seed: int, size=(10, 12)) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        pixels = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)  # H x W x 3
        Image.fromarray(pixels).save(folder / f"{i}.png")


def test_folder_with_train_and_val(tmp_path):
    for k, (split, count) in enumerate((("train", 3), ("val", 2))):
        for j, cls in enumerate(("cat", "dog")):
            _write_pngs(tmp_path / split / cls, count, seed=10 * k + j)
    name = f"folder:{tmp_path}"
    train, test = load_datasets(name)
    assert (len(train), len(test)) == (6, 4)
    images, labels = _stack(train)
    assert images.shape == (6, 3, 10, 12)
    assert sorted(labels) == [0, 0, 0, 1, 1, 1]  # classes sorted: cat, dog
    assert sorted(_stack(test)[1]) == [0, 0, 1, 1]
    assert dataset_spec(name) == DataSpec(name=name, num_classes=2, input_shape=(3, 10, 12))
    resized, _ = load_datasets(name, image_size=8, channels=1, augment=True)
    assert resized[0][0].shape == (1, 8, 8)


def test_a_train_and_val_folder_is_in_a_seeded_order_so_its_first_images_hold_every_class(tmp_path):
    """ImageFolder lists by class: --max-samples' first N images were one or two classes, for training and validation."""
    for split, count in (("train", 10), ("val", 4)):
        for j, cls in enumerate("abcd"):
            _write_pngs(tmp_path / split / cls, count, seed=j, size=(4, 4))
    train, test = load_datasets(f"folder:{tmp_path}", seed=0)
    first = [train[i][1] for i in range(12)]
    assert len(set(first)) == 4 and len(set(test[i][1] for i in range(8))) >= 3
    again, _ = load_datasets(f"folder:{tmp_path}", seed=0)
    assert [again[i][1] for i in range(12)] == first  # seeded
    assert sorted(train[i][1] for i in range(len(train))) == [c for c in range(4) for _ in range(10)]  # every image once


def test_search_and_retrain_read_non_square_images_at_the_spaces_input(tmp_path, monkeypatch):
    """The loaders were asked for W x W: a 12 x 24 folder trained on 24 x 24 images, priced and exported at 12 x 24."""
    import uboost.data as data
    from uboost.retrain import RetrainConfig, retrain
    from uboost.search import SearchConfig, run_search

    for j, cls in enumerate("ab"):
        _write_pngs(tmp_path / "images" / cls, 12, seed=j, size=(12, 24))
    seen, load = [], data.load_datasets

    def recording(*args, **kwargs):
        train, test = load(*args, **kwargs)
        seen.append((tuple(train[0][0].shape), kwargs.get("seed")))
        return train, test

    monkeypatch.setattr(data, "load_datasets", recording)
    config = SearchConfig(space="lenet", dataset=f"folder:{tmp_path / 'images'}", epochs=1, batch_size=8, seed=3,
                          accelerator="cpu")
    run_search(config, tmp_path / "run")
    retrain(tmp_path / "run", RetrainConfig(epochs=1, batch_size=8, seed=5, accelerator="cpu"))
    # both at the space's 12 x 24; the retrain split with the search's seed (its own seed 5 shuffles and initializes)
    assert seen == [((1, 12, 24), 3), ((1, 12, 24), 3)]


def test_folder_test_subfolder_and_mismatched_classes(tmp_path):
    _write_pngs(tmp_path / "train" / "a", 2, seed=1)
    _write_pngs(tmp_path / "train" / "b", 2, seed=2)
    _write_pngs(tmp_path / "test" / "a", 1, seed=3)
    with pytest.raises(DataError, match="classes"):
        load_datasets(f"folder:{tmp_path}")
    _write_pngs(tmp_path / "test" / "b", 1, seed=4)
    _, test = load_datasets(f"folder:{tmp_path}")
    assert _stack(test)[1] == [0, 1]


def test_single_folder_is_split_deterministically(tmp_path):
    for k, cls in enumerate(("x", "y", "z")):
        _write_pngs(tmp_path / cls, 5, seed=k)
    name = f"folder:{tmp_path}"
    train, test = load_datasets(name, seed=7)
    assert (len(train), len(test)) == (12, 3)
    assert sorted(_stack(test)[1]) == [0, 1, 2]  # stratified
    again_train, again_test = load_datasets(name, seed=7)
    assert train.indices == again_train.indices and test.indices == again_test.indices
    assert not set(train.indices) & set(test.indices)
    assert dataset_spec(name).num_classes == 3


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_datasets(f"folder:{tmp_path / 'missing'}")
    with pytest.raises(DataError, match="no usable images"):
        load_datasets(f"folder:{tmp_path}")  # empty
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(DataError, match="no usable images"):
        dataset_spec(f"folder:{tmp_path}")
    (tmp_path / "train").mkdir()
    with pytest.raises(DataError, match="val/"):
        load_datasets(f"folder:{tmp_path}")


def test_single_folder_too_small_to_split(tmp_path):
    _write_pngs(tmp_path / "a", 1, seed=0)
    _write_pngs(tmp_path / "b", 1, seed=1)
    with pytest.raises(DataError, match="cannot split"):
        load_datasets(f"folder:{tmp_path}")


# --- loaders ----------------------------------------------------------------------------------


def _order(loader) -> list[int]:
    return [label for _, labels in loader for label in labels.tolist()]


def test_make_loaders_seeded_order(digits):
    train, test = digits
    a, test_loader = make_loaders(train, test, batch_size=100, seed=5)
    b, _ = make_loaders(train, test, batch_size=100, seed=5)
    c, _ = make_loaders(train, test, batch_size=100, seed=6)
    order_a = _order(a)
    assert order_a == _order(b)
    assert order_a != _order(c)
    assert len(order_a) == len(train)  # drop_last=False: the last partial batch is kept
    assert len(a) == -(-len(train) // 100)
    assert order_a != train.tensors[1].tolist()  # shuffled
    assert _order(test_loader) == test.tensors[1].tolist()  # test keeps its order
    x, y = next(iter(a))
    assert x.shape == (100, 1, 8, 8) and y.dtype == torch.int64


@pytest.mark.parametrize(("kwargs", "field"), [({"batch_size": 0}, "batch_size"), ({"batch_size": 4, "num_workers": -1}, "num_workers")])
def test_make_loaders_validates(digits, kwargs, field):
    with pytest.raises(ConfigError, match=field):
        make_loaders(*digits, **kwargs)


def test_corrupt_images_in_a_folder_are_skipped_with_a_warning(tmp_path, caplog):
    for cls in ("a", "b"):
        _write_pngs(tmp_path / "train" / cls, 3, seed=len(cls))
        _write_pngs(tmp_path / "val" / cls, 2, seed=5)
    (tmp_path / "train" / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    (tmp_path / "train" / "b" / "empty.jpg").write_bytes(b"")
    with caplog.at_level("WARNING", logger="uboost.data"):
        train, test = load_datasets(f"folder:{tmp_path}")
    assert (len(train), len(test)) == (6, 4)  # the two damaged files are not samples
    images, _ = _stack(train)  # every remaining sample loads: training cannot crash on them
    assert images.shape[0] == 6
    assert "skipped 2 unreadable" in caplog.text


def test_an_image_that_fails_to_decode_later_is_a_one_line_data_error(tmp_path):
    for cls in ("a", "b"):
        _write_pngs(tmp_path / "train" / cls, 2, seed=1)
        _write_pngs(tmp_path / "val" / cls, 1, seed=2)
    train, _ = load_datasets(f"folder:{tmp_path}")
    victim = tmp_path / "train" / "a" / "0.png"
    victim.write_bytes(victim.read_bytes()[:60])  # truncated after the scan (e.g. a network file system)
    with pytest.raises(DataError, match="cannot decode image .*0.png"):
        [train[i] for i in range(len(train))]  # in a seeded order: reading every image reaches it


def test_hidden_folders_are_not_classes(tmp_path):
    """A stray .ipynb_checkpoints/ became class 0 and moved every label."""
    for cls in ("cat", "dog", ".ipynb_checkpoints"):
        _write_pngs(tmp_path / cls, 6, seed=1, size=(4, 4))
    assert dataset_spec(f"folder:{tmp_path}").num_classes == 2
    train, test = load_datasets(f"folder:{tmp_path}")
    assert len(train) + len(test) == 12


def test_a_16_bit_grayscale_image_keeps_its_range(tmp_path):
    """PIL's convert("RGB") clips 16-bit values at 255: a ramp read back 98 % white."""
    from PIL import Image

    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(6):
            ramp = (np.arange(16 * 16).reshape(16, 16) * 256 + i).astype(np.uint16)
            Image.fromarray(ramp).save(tmp_path / cls / f"{i}.png")
    from uboost._image_folders import _load_rgb

    pixels = np.asarray(_load_rgb(str(tmp_path / "a" / "0.png")))
    assert pixels.shape == (16, 16, 3) and pixels.min() == 0 and pixels.max() == 255
    assert (pixels == 255).mean() < 0.01  # was ~0.98
