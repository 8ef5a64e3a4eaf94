"""Fixtures for the data tests."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from datahelp import idx_bytes


@pytest.fixture
def write_idx(tmp_path: Path) -> Callable[..., Path]:
    """``write_idx(name, array, gz=True, folder=None)`` -> path of a new IDX file."""

    def write(name: str, arr: np.ndarray, *, gz: bool = True, folder: Path | None = None) -> Path:
        path = (folder or tmp_path) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = idx_bytes(arr)
        path.write_bytes(gzip.compress(data) if gz else data)
        return path

    return write


@pytest.fixture(autouse=True)
def _no_download(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Any download a test did not set up goes to an unroutable URL and an empty cache."""
    monkeypatch.setenv("TRAINCTL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TRAINCTL_MNIST_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("TRAINCTL_FASHION_MNIST_URL", "http://127.0.0.1:9/")
