"""Out-of-core .npy rows: pread gives the rows fancy indexing gives, and the preprocessing fitted
chunk by chunk over a memory map equals the in-memory fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trainctl.config.data import npy
from trainctl.data import load_data
from trainctl.data.dataset import View
from trainctl.data.mapped import read_rows


def test_read_rows_equals_fancy_indexing(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(300, 4, 5)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    idx = np.random.default_rng(1).permutation(300)[:77]
    assert np.array_equal(read_rows(mapped, idx), x[idx])
    assert np.array_equal(View(mapped, np.arange(100, 300))[idx[idx < 200]], x[100:][idx[idx < 200]])


@pytest.mark.parametrize("steps", [["standardize"], [{"scale": 2}, "normalize"], ["flatten", "standardize"]])
def test_streaming_fit_equals_the_in_memory_fit(tmp_path: Path, steps: list) -> None:
    rng = np.random.default_rng(2)
    np.save(tmp_path / "x.npy", (rng.normal(size=(20000, 3, 2)) * 7 + 3).astype(np.float32))  # > one 8192-row chunk
    np.save(tmp_path / "y.npy", rng.integers(0, 3, 20000))
    fitted = {}
    for cache in ("memory", "none"):
        spec = npy(source="npy", x="x.npy", y="y.npy", x_steps=steps, test_split=0.25, cache=cache)
        ds = load_data(spec, base_dir=tmp_path, seed=4)
        assert ds.streamed == (cache == "none")
        x = ds.x_train if cache == "memory" else ds.preprocessor.transform_x(ds.x_train[np.arange(len(ds.y_train))])
        fitted[cache] = (ds.preprocessor.to_json(), x, ds.y_train, ds.y_test)
    mem, stream = fitted["memory"], fitted["none"]
    assert mem[0] == stream[0]  # the same statistics, to the last bit
    assert np.array_equal(mem[1], stream[1]) and np.array_equal(mem[2], stream[2]) and np.array_equal(mem[3], stream[3])
