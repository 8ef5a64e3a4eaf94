"""Both lazily read row arrays (``.npy`` shards concatenated, the CSV/Parquet scratch table) index
exactly as the numpy array they stand for, through the one shared ``DiskRows.__getitem__``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trainctl.data.shards import Concat
from trainctl.data.tables import DiskTable

X = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)


def concat(tmp_path: Path) -> Any:
    parts = []
    for k, (a, b) in enumerate([(0, 7), (7, 8), (8, 30), (30, 50)]):
        np.save(tmp_path / f"x{k}.npy", X[a:b])
        parts.append(np.load(tmp_path / f"x{k}.npy", mmap_mode="r"))
    return Concat(parts, [f"x{k}.npy" for k in range(4)])


def table(tmp_path: Path) -> Any:
    tempfile.tempdir = str(tmp_path)
    try:
        return DiskTable.spool(iter([X[:13], X[13:]]), "t")
    finally:
        tempfile.tempdir = None


KEYS: list[Any] = [
    0, -1, -50, 49, np.int64(3),
    slice(None), slice(5, 5), slice(40, 10), slice(-8, None), slice(None, None, 3), slice(45, 2, -4), slice(2, 999),
    [7, 7, 0, -1, -50, 8], np.array([], dtype=np.int64), np.arange(50)[::-1], np.array([[1, 2], [3, 4]]),
]  # fmt: skip


@pytest.mark.parametrize("make", [concat, table], ids=["shards", "table"])
def test_rows_index_as_numpy(tmp_path: Path, make: Any) -> None:
    rows = make(tmp_path)
    assert len(rows) == 50 and rows.shape == X.shape
    for key in KEYS:
        want = X[key] if not isinstance(key, np.ndarray) or key.ndim == 1 else X[key.reshape(-1)]
        got = rows[key]
        assert got.dtype == X.dtype and np.array_equal(got, want), key
    for bad in (50, -51, [0, 50], np.array([-51])):
        with pytest.raises(IndexError):
            rows[bad]
