"""CSV streamed in chunks and ``source: parquet`` by row group: the streamed table (a scratch file
on disk) holds the in-memory values, so the fitted statistics, splits and training runs are equal;
the Parquet reader agrees with the CSV reader on the same table."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from tests.clihelp import Cli, read_json
from trainctl.config.data import csv, parquet
from trainctl.data import load_data, tables
from trainctl.data.tables import DiskTable
from trainctl.errors import ConfigError, DataError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

N = 3000
NAMES = ["a", "b", "c", "d", "e"]


def _frame(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=(N, len(NAMES))) * [1, 10, 100, 0.1, 3] + [0, 5, -50, 1, 2], 6)
    x[:, 4] = rng.integers(0, 7, N)  # an integer column
    labels = np.array(["cat", "dog", "eel"])[rng.integers(0, 3, N)]
    return x, labels


def _write_csv(path: Path, x: np.ndarray, labels: np.ndarray) -> None:
    lines = [",".join(["label", *NAMES])]
    lines += [",".join([lab, *(repr(float(v)) for v in row)]) for lab, row in zip(labels, x, strict=True)]
    lines.insert(7, "")  # a blank line is skipped, as the in-memory reader does
    path.write_text("\n".join(lines) + "\n")


def _write_parquet(path: Path, x: np.ndarray, labels: np.ndarray, group: int = 700) -> None:
    cols = {n: x[:, k] for k, n in enumerate(NAMES)}
    cols["e"] = x[:, 4].astype(np.int32)
    table = pa.table({"label": labels, **cols})
    pq.write_table(table, path, row_group_size=group)


STEPS = [["standardize"], [{"clip": [-3, 40]}, "normalize"]]


@pytest.mark.parametrize("steps", STEPS, ids=["standardize", "clip-normalize"])
def test_csv_streamed_in_chunks_equals_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, steps: list) -> None:
    monkeypatch.setattr(tables, "CHUNK_CELLS", 6 * 128)  # 128 rows per chunk: many chunks
    x, labels = _frame()
    _write_csv(tmp_path / "t.csv", x, labels)
    out = {}
    for cache in ("memory", "none"):
        spec = csv(source="csv", path="t.csv", target="label", x=steps, test_split=0.2, cache=cache)
        ds = load_data(spec, base_dir=tmp_path, seed=5)
        assert ds.streamed == (cache == "none")
        xt = ds.x_train if cache == "memory" else ds.preprocessor.transform_x(ds.x_train[np.arange(len(ds.y_train))])
        out[cache] = ds.preprocessor.to_json(), xt, ds.y_train, ds.y_test, ds.class_names
    mem, stream = out["memory"], out["none"]
    assert mem[0] == stream[0]  # statistics fitted in the streaming pass: the in-memory ones, bit for bit
    for a, b in zip(mem[1:4], stream[1:4], strict=True):
        assert np.array_equal(a, b)
    assert stream[4] == ["cat", "dog", "eel"]
    # the statistics against numpy on the training rows
    if steps == ["standardize"]:
        fitted = mem[0]["x"][0]
        rows = np.sort(
            np.asarray(
                load_data(
                    csv(source="csv", path="t.csv", target="label", test_split=0.2, cache="memory"),
                    base_dir=tmp_path,
                    seed=5,
                ).x_train,
                dtype=np.float64,
            ),
            axis=0,
        )
        assert np.allclose(fitted["mean"]["values"], rows.mean(axis=0), rtol=1e-6)
        assert np.allclose(fitted["std"]["values"], rows.std(axis=0), rtol=1e-5)


def test_parquet_by_row_group_equals_the_csv_reader(tmp_path: Path) -> None:
    x, labels = _frame(1)
    _write_csv(tmp_path / "t.csv", x, labels)
    _write_parquet(tmp_path / "t.parquet", x, labels)
    assert pq.ParquetFile(tmp_path / "t.parquet").num_row_groups == 5
    ref = load_data(
        csv(source="csv", path="t.csv", target="label", x=["standardize"], test_split=0.25, cache="memory"),
        base_dir=tmp_path,
        seed=2,
    )
    for cache in ("memory", "none"):
        spec = parquet(
            source="parquet", path="t.parquet", target="label", x=["standardize"], test_split=0.25, cache=cache
        )
        ds = load_data(spec, base_dir=tmp_path, seed=2)
        assert ds.streamed == (cache == "none")
        xt = ds.x_train if cache == "memory" else ds.preprocessor.transform_x(ds.x_train[np.arange(len(ds.y_train))])
        assert ds.preprocessor.to_json() == ref.preprocessor.to_json()
        assert np.array_equal(xt, ref.x_train) and np.array_equal(ds.y_train, ref.y_train)
        assert np.array_equal(ds.y_test, ref.y_test) and ds.class_names == ref.class_names


def test_parquet_features_by_name_and_index_numeric_target(tmp_path: Path) -> None:
    x, _ = _frame(2)
    table = pa.table({"f0": x[:, 0], "y": x[:, 1], "f1": x[:, 2].astype(np.float32)})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=1000)
    ds = load_data(
        parquet(source="parquet", path="t.parquet", target="y", features=[2, "f0"], cache="none"),
        base_dir=tmp_path,
        seed=0,
    )
    assert ds.task_hint == "regression" and ds.y_train.shape == (N, 1)
    want = np.stack([x[:, 2].astype(np.float32).astype(np.float64), x[:, 0]], axis=1).astype(np.float32)
    assert np.array_equal(ds.preprocessor.transform_x(ds.x_train[np.arange(N)]), want)
    assert np.array_equal(ds.y_train[:, 0], x[:, 1].astype(np.float32))


def test_disk_table_is_unlinked_and_reads_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    x = np.random.default_rng(0).normal(size=(1000, 3))
    table = DiskTable.spool(iter([x[:10], x[10:999], x[999:]]), "test")
    assert list(tmp_path.iterdir()) == []  # no name on disk: nothing is left behind, even after kill -9
    idx = np.random.default_rng(1).permutation(1000)[:200]
    assert np.array_equal(table[idx], x[idx]) and np.array_equal(table[5:600], x[5:600])
    assert np.array_equal(np.asarray(table), x) and np.array_equal(table[-1], x[-1])


def test_missing_pyarrow_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    x, labels = _frame()
    _write_parquet(tmp_path / "t.parquet", x, labels)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ConfigError, match="pyarrow") as info:
        load_data(parquet(source="parquet", path="t.parquet", target="label"), base_dir=tmp_path, seed=0)
    assert "trainctl[parquet]" in info.value.render()


def test_parquet_text_feature_is_a_data_error(tmp_path: Path) -> None:
    pq.write_table(pa.table({"y": [1, 0, 1], "name": ["a", "b", "c"], "v": [1.0, 2.0, 3.0]}), tmp_path / "t.parquet")
    with pytest.raises(
        DataError, match=r"expected numbers in feature column 'name' of .*t\.parquet, received type string"
    ):
        load_data(parquet(source="parquet", path="t.parquet", target="y"), base_dir=tmp_path, seed=0)
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match=r"expected a Parquet file, received an unreadable one: .*bad\.parquet"):
        load_data(parquet(source="parquet", path="bad.parquet", target="y"), base_dir=tmp_path, seed=0)


CONFIG = """
seed: 4
data:
  {{source: {source}, path: {path}, target: label, x: [standardize], test_split: 0.2,
   cache: {cache}, workers: {workers}}}
model:
  layers:
    - {{type: Dense, units: 8, activation: relu, input_shape: [5]}}
    - {{type: Dense, units: 3, activation: softmax}}
compile: {{optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy]}}
fit: {{epochs: 2, batch_size: 100, validation_split: 0.1}}
"""


def test_streamed_tables_train_as_in_memory(cli: Cli, tmp_path: Path) -> None:
    x, labels = _frame(3)
    _write_csv(tmp_path / "t.csv", x, labels)
    _write_parquet(tmp_path / "t.parquet", x, labels)
    runs = []
    for i, (source, path, cache, workers) in enumerate(
        [("csv", "t.csv", "memory", 0), ("csv", "t.csv", "none", 2), ("parquet", "t.parquet", "none", 0)]
    ):
        cfg = tmp_path / f"c{i}.yaml"
        cfg.write_text(CONFIG.format(source=source, path=path, cache=cache, workers=workers))
        res = cli("train", cfg, "--runs-dir", tmp_path / f"runs{i}", "--json")
        assert res.exit_code == 0, res.stderr
        run = next((tmp_path / f"runs{i}").iterdir())
        assert read_json(run / "run.json")["data"]["cache"] == cache
        history = read_json(run / "history.json")
        history.pop("epoch_time", None)
        runs.append(history)
    assert runs[0] == runs[1] == runs[2]


def test_predict_reads_parquet_as_the_same_csv(cli: Cli, tmp_path: Path) -> None:
    """``trainctl predict RUN t.parquet`` equals ``predict RUN t.csv`` on the same table, with or
    without the target column (predict needs none); a text feature column is exit 3."""
    x, labels = _frame(5)
    _write_csv(tmp_path / "t.csv", x, labels)
    _write_parquet(tmp_path / "t.parquet", x, labels, group=400)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG.format(source="parquet", path="t.parquet", cache="memory", workers=0))
    res = cli("train", cfg, "--runs-dir", tmp_path / "runs", "fit.epochs=1", "--json")
    assert res.exit_code == 0, res.stderr
    run = next((tmp_path / "runs").iterdir())
    pq.write_table(pq.read_table(tmp_path / "t.parquet").drop(["label"]), tmp_path / "x.parquet", row_group_size=999)
    out = {}
    for name in ("t.csv", "t.parquet", "x.parquet"):
        res = cli("predict", run, tmp_path / name, "--output", tmp_path / f"{name}.npy")
        assert res.exit_code == 0, res.stderr
        out[name] = np.load(tmp_path / f"{name}.npy")
    assert out["t.csv"].shape == (N, 3)
    assert np.array_equal(out["t.csv"], out["t.parquet"]) and np.array_equal(out["t.csv"], out["x.parquet"])
    pq.write_table(pa.table({"a": ["x"] * 3, **{n: [1.0, 2.0, 3.0] for n in NAMES[1:]}}), tmp_path / "s.parquet")
    res = cli("predict", run, tmp_path / "s.parquet")
    assert res.exit_code == 3
    assert "expected numbers in feature column 'a'" in res.stderr


def test_streamed_csv_with_another_delimiter_names_data_delimiter(tmp_path: Path) -> None:
    """The streamed reader refuses a header that splits into one column as the in-memory one does."""
    (tmp_path / "t.csv").write_text("a;b\n1;2\n3;4\n")
    with pytest.raises(DataError, match="one column 'a;b' when splitting on ','") as e:
        load_data(csv(source="csv", path="t.csv", target=0, cache="none"), base_dir=tmp_path, seed=0)
    assert e.value.key == "data.delimiter"
