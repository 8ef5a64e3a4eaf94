"""Streaming writers: what they write must read back equal with numpy, csv and json."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from trainctl.data.outputs import columns_for, open_writer, output_format
from trainctl.errors import ConfigError

RNG = np.random.default_rng(5)


def write_chunks(fmt: str, fh, arr: np.ndarray, *, rows: int | None, columns: list[str], size: int = 7) -> int:
    w = open_writer(fmt, fh, columns=columns, dtype=arr.dtype, row_shape=arr.shape[1:], rows=rows)
    for i in range(0, len(arr), size):
        w.write(arr[i : i + size])
    w.close()
    return w.rows_written


@pytest.mark.parametrize("known", [True, False])
@pytest.mark.parametrize("shape", [(30, 4), (30,), (30, 2, 3), (0, 4)])
def test_npy_streamed_reads_back_with_np_load(tmp_path: Path, known: bool, shape: tuple[int, ...]) -> None:
    arr = RNG.standard_normal(shape).astype(np.float32)
    with (tmp_path / "o.npy").open("wb") as fh:
        n = write_chunks(".npy", fh, arr, rows=len(arr) if known else None, columns=[])
    assert n == len(arr)
    back = np.load(tmp_path / "o.npy", allow_pickle=False)
    assert back.dtype == np.float32 and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)
    head = (tmp_path / "o.npy").read_bytes()[:10]
    assert (10 + int.from_bytes(head[8:10], "little")) % 64 == 0  # numpy's alignment


def test_npy_unknown_row_count_grows_past_the_placeholder(tmp_path: Path) -> None:
    arr = np.arange(123_457, dtype=np.int64)  # more digits than the "0" written first
    with (tmp_path / "o.npy").open("wb") as fh:
        write_chunks(".npy", fh, arr, rows=None, columns=[], size=50_000)
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"), arr)


def test_npy_strings(tmp_path: Path) -> None:
    arr: np.ndarray = np.asarray(["setosa", "versicolor", "virginica"])[[0, 2, 1, 1]]
    with (tmp_path / "o.npy").open("wb") as fh:
        write_chunks(".npy", fh, arr, rows=4, columns=[], size=3)
    assert np.load(tmp_path / "o.npy", allow_pickle=False).tolist() == arr.tolist()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_csv_floats_read_back_bit_exact(dtype: type) -> None:
    arr: np.ndarray = (RNG.standard_normal((25, 3)) * 10.0 ** RNG.integers(-8, 8, (25, 3))).astype(dtype)
    buf = io.StringIO()
    write_chunks(".csv", buf, arr, rows=None, columns=["a", "b", "c"])
    rows = list(csv.reader(io.StringIO(buf.getvalue())))
    assert rows[0] == ["a", "b", "c"]
    np.testing.assert_array_equal(np.array(rows[1:], dtype=np.float64).astype(dtype), arr)


def test_csv_ints_and_quoted_names() -> None:
    buf = io.StringIO()
    write_chunks(".csv", buf, np.array([3, 0, 7]), rows=3, columns=["class"], size=2)
    assert buf.getvalue() == "class\n3\n0\n7\n"
    buf = io.StringIO()
    write_chunks(".csv", buf, np.asarray(["T-shirt/top", 'say "hi", then']), rows=2, columns=["class"])
    assert list(csv.reader(io.StringIO(buf.getvalue()))) == [["class"], ["T-shirt/top"], ['say "hi", then']]


def test_jsonl_rows_are_objects_keyed_like_csv() -> None:
    arr = RNG.standard_normal((9, 2)).astype(np.float32)
    buf = io.StringIO()
    write_chunks(".jsonl", buf, arr, rows=9, columns=["cat", "dog"], size=4)
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert [list(r) for r in lines] == [["cat", "dog"]] * 9
    np.testing.assert_array_equal(np.array([[r["cat"], r["dog"]] for r in lines], dtype=np.float32), arr)


def test_output_format_and_columns() -> None:
    assert output_format(None) == ".csv" and output_format(Path("-")) == ".csv"
    assert output_format(Path("p.NPY")) == ".npy" and output_format(Path("a/b.jsonl")) == ".jsonl"
    with pytest.raises(ConfigError, match=r"expected an --output file ending in .*received 'p\.txt'"):
        output_format(Path("p.txt"))
    assert columns_for((3,), ["a", "b", "c"]) == ["a", "b", "c"]
    assert columns_for((3,), ["a", "b"]) == ["output_0", "output_1", "output_2"]
    assert columns_for((1,), None) == ["output"] and columns_for((), None, prefix="class") == ["class"]
    assert columns_for((2, 2), None) == ["output_0", "output_1", "output_2", "output_3"]
