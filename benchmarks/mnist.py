"""MNIST for the benchmark scripts, with numpy only: the hand loop, both Keras sides (tf-keras runs
in another venv, without torch) and the harness read the same rows through this one reader.
The harness must not import torch: a child's peak RSS starts at its parent's."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

CNN_ROWS = 12000  # the cnn workload's slice of the training images


def idx(path: Path) -> np.ndarray:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def _file(name: str, root: str | None = None) -> Path:
    return Path(root or os.environ["TRAINCTL_DATA_DIR"]) / "mnist" / f"{name}-ubyte.gz"


def train_images(root: str | None = None) -> np.ndarray:
    return idx(_file("train-images-idx3", root))


def train_labels(root: str | None = None) -> np.ndarray:
    return idx(_file("train-labels-idx1", root)).astype(np.int64)


def all_images(root: str | None = None) -> np.ndarray:
    """All 70k images (training, then test), for the predict workload."""
    return np.concatenate([train_images(root), idx(_file("t10k-images-idx3", root))])


def mlp_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(60000, 784) float32 in [0, 1] and one-hot float32 labels: the mlp workload before its split."""
    x = train_images().reshape(-1, 784).astype(np.float32) / 255.0
    return x, np.eye(10, dtype=np.float32)[train_labels()]


def cnn_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(12000, 28, 28) float32 in [0, 1] and int64 labels: the cnn workload before its split."""
    return train_images()[:CNN_ROWS].astype(np.float32) / 255.0, train_labels()[:CNN_ROWS]
