"""``.npy``/``.npz`` shards (a list or a glob) read as one table: the rows, the split, the fitted
steps and training equal the same data written as one file; bad shards exit 3 with the path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.clihelp import Cli, read_json
from trainctl.config.data import npy, npz
from trainctl.data import load_data
from trainctl.data.shards import Concat
from trainctl.errors import DataError

SIZES = (700, 1, 4300, 5000)  # uneven, one a single row; 10k rows in all


def _table(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(sum(SIZES), 3, 2)) * 5 + 2).astype(np.float32)
    return x, rng.integers(0, 3, sum(SIZES))


def _write_npy_shards(folder: Path, x: np.ndarray, y: np.ndarray) -> None:
    folder.mkdir(exist_ok=True)
    start = 0
    for k, n in enumerate(SIZES):
        np.save(folder / f"x_{k:02d}.npy", x[start : start + n])
        np.save(folder / f"y_{k:02d}.npy", y[start : start + n])
        start += n


def test_concat_rows_equal_numpy(tmp_path: Path) -> None:
    x, y = _table()
    _write_npy_shards(tmp_path, x, y)
    parts = [np.load(p, mmap_mode="r") for p in sorted(tmp_path.glob("x_*.npy"))]
    table = Concat(parts, [str(p) for p in sorted(tmp_path.glob("x_*.npy"))])
    assert table.shape == x.shape and len(table) == len(x)
    idx = np.random.default_rng(1).permutation(len(x))[:777]
    assert np.array_equal(table[idx], x[idx])  # shuffled rows across shards, in the asked order
    assert np.array_equal(table[650:5100], x[650:5100])  # a slice over three shards
    assert np.array_equal(table[::7], x[::7]) and np.array_equal(table[-1], x[-1])
    assert np.array_equal(np.asarray(table), x)
    with pytest.raises(IndexError):
        table[np.array([len(x)])]


@pytest.mark.parametrize("cache", ["memory", "none"])
@pytest.mark.parametrize("form", ["glob", "list"])
def test_npy_shards_load_as_the_single_file(tmp_path: Path, cache: str, form: str) -> None:
    x, y = _table()
    _write_npy_shards(tmp_path / "shards", x, y)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    if form == "glob":
        xs, ys = "shards/x_*.npy", "shards/y_*.npy"
    else:
        xs = [f"shards/x_{k:02d}.npy" for k in range(len(SIZES))]
        ys = [f"shards/y_{k:02d}.npy" for k in range(len(SIZES))]
    steps = ["flatten", "standardize"]
    one = load_data(
        npy(source="npy", x="x.npy", y="y.npy", x_steps=steps, test_split=0.2, cache="memory"),
        base_dir=tmp_path,
        seed=3,
    )
    sharded = load_data(
        npy(source="npy", x=xs, y=ys, x_steps=steps, test_split=0.2, cache=cache), base_dir=tmp_path, seed=3
    )
    assert sharded.streamed == (cache == "none")
    assert sharded.preprocessor.to_json() == one.preprocessor.to_json()  # the statistics, to the last bit
    xt = sharded.x_train
    if sharded.streamed:
        xt = sharded.preprocessor.transform_x(xt[np.arange(len(xt))])
        assert isinstance(sharded.x_train.x, Concat)  # the rows stayed on disk
    assert np.array_equal(xt, one.x_train)
    assert np.array_equal(sharded.y_train, one.y_train) and np.array_equal(sharded.y_test, one.y_test)


def test_npz_shards_stream_from_uncompressed_members(tmp_path: Path) -> None:
    x, y = _table()
    start = 0
    for k, n in enumerate(SIZES):
        np.savez(tmp_path / f"part-{k}.npz", x_train=x[start : start + n], y_train=y[start : start + n])
        start += n
    spec = npz(source="npz", paths="part-*.npz", x_test=None, y_test=None, x=["flatten", "normalize"], cache="none")
    ds = load_data(spec, base_dir=tmp_path, seed=0)
    ref = load_data(
        npz(source="npz", paths=[f"part-{k}.npz" for k in range(4)], x=["flatten", "normalize"], cache="memory"),
        base_dir=tmp_path,
        seed=0,
    )
    assert ds.streamed and isinstance(ds.x_train.x, Concat)
    assert all(isinstance(p, np.memmap) for p in ds.x_train.x.parts)
    assert ds.preprocessor.to_json() == ref.preprocessor.to_json()
    idx = np.random.default_rng(2).permutation(len(x))[:500]
    assert np.array_equal(ds.preprocessor.transform_x(ds.x_train[idx]), ref.x_train[idx])
    assert np.array_equal(ds.y_train, y)


def test_compressed_npz_shards_load_in_memory_but_do_not_stream(tmp_path: Path) -> None:
    x, y = _table()
    np.savez_compressed(tmp_path / "a.npz", x_train=x[:10], y_train=y[:10])
    np.savez_compressed(tmp_path / "b.npz", x_train=x[10:30], y_train=y[10:30])
    ds = load_data(npz(source="npz", paths="*.npz", cache="memory"), base_dir=tmp_path, seed=0)
    assert np.array_equal(ds.x_train, x[:30]) and ds.x_test is None
    with pytest.raises(DataError, match=r"a\.npz\[x_train\].*uncompressed"):
        load_data(npz(source="npz", paths="*.npz", cache="none"), base_dir=tmp_path, seed=0)


def test_nan_in_a_shard_is_found_in_chunks(tmp_path: Path) -> None:
    x, y = _table()
    x[6001, 1, 0] = np.nan
    _write_npy_shards(tmp_path, x, y)
    with pytest.raises(DataError, match=r"row 6001, column 1, 0"):
        load_data(npy(source="npy", x="x_*.npy", y="y_*.npy", cache="none"), base_dir=tmp_path, seed=0)


# --- bad input: exit 3 with the path and what was expected ---------------------------------------

CONFIG = """
seed: 1
data: {{source: npy, x: {x}, y: {y}, cache: {cache}, workers: {workers}}}
model:
  layers:
    - {{type: Flatten, input_shape: [3, 2]}}
    - {{type: Dense, units: 3, activation: softmax}}
compile: {{optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy]}}
fit: {{epochs: 2, batch_size: 64}}
"""


def _train(cli: Cli, folder: Path, x: str, y: str, cache: str = "none", workers: int = 0) -> object:
    cfg = folder / "cfg.yaml"
    cfg.write_text(CONFIG.format(x=x, y=y, cache=cache, workers=workers))
    return cli("train", cfg, "--runs-dir", folder / "runs", "--json")


def test_sharded_npy_trains_as_the_single_file(cli: Cli, tmp_path: Path) -> None:
    x, y = _table()
    _write_npy_shards(tmp_path, x, y)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    histories = []
    # streamed shards (2 worker processes) against the single file held in memory
    for xs, ys, cache, workers in (("'x_*.npy'", "'y_*.npy'", "none", 2), ("x.npy", "y.npy", "memory", 0)):
        proc = _train(cli, tmp_path, xs, ys, cache, workers)
        assert proc.exit_code == 0, proc.stderr  # type: ignore[attr-defined]
        run = max((tmp_path / "runs").iterdir(), key=lambda p: p.stat().st_mtime_ns)
        histories.append(read_json(run / "history.json"))
    for h in histories:
        h.pop("epoch_time", None)
    assert histories[0] == histories[1]  # same rows, same seeded order: the same run


@pytest.mark.parametrize(
    ("make", "x", "y", "message"),
    [
        (lambda d: None, "'none_*.npy'", "y.npy", r"matching the glob .*none_\*\.npy, found none"),
        (
            lambda d: np.save(d / "x_01.npy", np.zeros((5, 3, 3), np.float32)),
            "'x_*.npy'",
            "'y_*.npy'",
            r"expected rows of shape \(3, 2\) in every shard \(as in .*x_00\.npy\), received \(3, 3\) in .*x_01\.npy",
        ),
        (
            lambda d: np.save(d / "x_01.npy", np.zeros((5, 3, 2), np.float64)),
            "'x_*.npy'",
            "'y_*.npy'",
            r"expected dtype float32 in every shard .*received float64 in .*x_01\.npy",
        ),
        (
            lambda d: (d / "y_01.npy").unlink(),
            "'x_*.npy'",
            "'y_*.npy'",
            r"expected as many y shards as x shards, received 2 x shards and 1 y shards",
        ),
        (
            lambda d: np.save(d / "y_01.npy", np.zeros(4, np.int64)),
            "'x_*.npy'",
            "'y_*.npy'",
            r"expected as many rows in .*y_01\.npy as in .*x_01\.npy, received 4 and 5",
        ),
    ],
    ids=["glob-matches-nothing", "columns-differ", "dtypes-differ", "shard-count", "rows-differ"],
)
def test_bad_shards_exit_3(cli: Cli, tmp_path: Path, make: object, x: str, y: str, message: str) -> None:
    np.save(tmp_path / "x_00.npy", np.zeros((5, 3, 2), np.float32))
    np.save(tmp_path / "x_01.npy", np.zeros((5, 3, 2), np.float32))
    np.save(tmp_path / "y_00.npy", np.zeros(5, np.int64))
    np.save(tmp_path / "y_01.npy", np.zeros(5, np.int64))
    np.save(tmp_path / "y.npy", np.zeros(10, np.int64))
    make(tmp_path)  # type: ignore[operator]
    proc = _train(cli, tmp_path, x, y)
    assert proc.exit_code == 3, proc.stderr  # type: ignore[attr-defined]
    err = proc.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in err
    import re

    assert re.search(message, " ".join(err.split())), err


def test_bad_npz_shards(tmp_path: Path) -> None:
    x, y = _table()
    np.savez(tmp_path / "a.npz", x_train=x[:10], y_train=y[:10])
    np.savez(tmp_path / "b.npz", x_train=x[10:20], y_train=y[10:19])
    with pytest.raises(DataError, match=r"expected as many rows in .*b\.npz as in .*b\.npz, received 9 and 10"):
        load_data(npz(source="npz", paths="*.npz", cache="none"), base_dir=tmp_path, seed=0)
    np.savez(tmp_path / "b.npz", x=x[10:20], y_train=y[10:20])
    with pytest.raises(DataError, match=r"expected a key 'x_train' in every shard, received none in .*b\.npz"):
        load_data(npz(source="npz", paths="*.npz", cache="none"), base_dir=tmp_path, seed=0)
    np.savez(tmp_path / "b.npz", x_train=x[10:20, :2], y_train=y[10:20])
    with pytest.raises(DataError, match=r"expected rows of shape \(3, 2\) .*received \(2, 2\) in .*b\.npz\[x_train\]"):
        load_data(npz(source="npz", paths=["a.npz", "b.npz"], cache="none"), base_dir=tmp_path, seed=0)
    with pytest.raises(ValueError, match="exactly one of path"):
        npz(source="npz", path="a.npz", paths="*.npz")
