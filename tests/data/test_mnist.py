"""MNIST and Fashion-MNIST from the real IDX files, checked against their published facts
(shared/datasets/*/README.md: label counts, mean pixel, sha256 of the decompressed files)."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest
from datahelp import source

from trainctl.data import Dataset, download, load_data
from trainctl.errors import DataFileNotFound

MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_IMAGES_SHA256 = "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"


_CACHE: dict[str, Dataset] = {}


@pytest.fixture
def mnist(shared_datasets: Path) -> Dataset:
    """Loaded once per module (60k images); ``cast: uint8`` keeps the arrays exactly as
    ``keras.datasets.mnist.load_data()`` returns them."""
    if "mnist" not in _CACHE:
        spec = source(source="mnist", path="mnist", download=False, x=[{"cast": "uint8"}])
        _CACHE["mnist"] = load_data(spec, base_dir=shared_datasets, seed=0)
    return _CACHE["mnist"]


def test_mnist_layout_matches_keras(mnist: Dataset) -> None:
    assert mnist.x_train.shape == (60000, 28, 28) and mnist.x_train.dtype == np.uint8
    assert mnist.x_test.shape == (10000, 28, 28) and mnist.y_test.shape == (10000,)
    assert mnist.y_train.dtype == np.int64
    assert mnist.class_names == [str(i) for i in range(10)] and mnist.task_hint == "classification"


def test_mnist_label_counts_and_pixels_match_the_published_facts(mnist: Dataset) -> None:
    assert np.bincount(mnist.y_test).tolist() == MNIST_TEST_COUNTS
    assert np.bincount(mnist.y_train).tolist() == MNIST_TRAIN_COUNTS
    assert round(float(mnist.x_train.mean(dtype=np.float64)), 4) == 33.3184
    assert round(float(mnist.x_test.mean(dtype=np.float64)), 4) == 33.7912
    raw = struct.pack(">4I", 2051, 10000, 28, 28) + mnist.x_test.tobytes()
    assert hashlib.sha256(raw).hexdigest() == MNIST_TEST_IMAGES_SHA256


def test_mnist_found_through_trainctl_data_dir(shared_datasets: Path, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRAINCTL_DATA_DIR", str(shared_datasets))
    found = download.locate("mnist", None, base_dir=tmp_path, download=False)
    assert found[download.TEST_LABELS] == shared_datasets / "mnist" / download.TEST_LABELS


def test_fashion_mnist_facts(shared_datasets: Path, monkeypatch) -> None:
    monkeypatch.setenv("TRAINCTL_DATA_DIR", str(shared_datasets))
    ds = load_data(source(source="fashion_mnist", download=False, x=[{"cast": "uint8"}]), base_dir=".", seed=0)
    assert np.bincount(ds.y_test).tolist() == [1000] * 10
    assert np.bincount(ds.y_train).tolist() == [6000] * 10
    assert round(float(ds.x_train.mean(dtype=np.float64)), 4) == 72.9404
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"


def test_not_found_without_download(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRAINCTL_DATA_DIR", str(tmp_path / "nothing"))
    with pytest.raises(DataFileNotFound) as e:
        load_data(source(source="mnist", download=False), base_dir=tmp_path, seed=0)
    assert e.value.key == "data.download" and "download: true" in (e.value.hint or "")
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / download.TRAIN_IMAGES).write_bytes(b"")
    with pytest.raises(DataFileNotFound) as e:
        load_data(source(source="mnist", path="partial"), base_dir=tmp_path, seed=0)
    assert e.value.key == "data.path" and download.TEST_LABELS in str(e.value)
