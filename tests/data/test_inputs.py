"""Streaming input readers: chunks must join to exactly what the whole-file readers give."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pytest
from datahelp import idx_bytes

from trainctl.data import idx
from trainctl.data.inputs import (
    CsvReader,
    IdxReader,
    ImageFolderReader,
    InputOptions,
    NpyReader,
    NpzReader,
    open_input,
    read_all,
)
from trainctl.errors import DataError, DataFileNotFound

RNG = np.random.default_rng(11)
IMAGES = RNG.integers(0, 256, (23, 6, 5)).astype(np.uint8)


def chunks(reader, size: int) -> list[np.ndarray]:
    return list(reader.chunks(size))


@pytest.mark.parametrize("gz", [True, False])
def test_idx_stream_equals_read_idx(write_idx, gz: bool) -> None:
    path = write_idx("imgs", IMAGES, gz=gz)
    reader = open_input(path)
    assert isinstance(reader, IdxReader) and reader.rows == 23
    parts = chunks(reader, 5)  # 23 rows: 5, 5, 5, 5, 3
    assert [len(p) for p in parts] == [5, 5, 5, 5, 3]
    np.testing.assert_array_equal(np.concatenate(parts), idx.read_idx(path))


def test_idx_truncated_and_trailing_bytes(tmp_path: Path) -> None:
    good = idx_bytes(IMAGES)
    (tmp_path / "short.gz").write_bytes(gzip.compress(good[:-7]))
    with pytest.raises(DataError, match=r"expected 23 rows of shape \(6, 5\) .*truncated"):
        chunks(open_input(tmp_path / "short.gz"), 4)
    (tmp_path / "long").write_bytes(good + b"\x00")
    with pytest.raises(DataError, match="trailing bytes"):
        chunks(open_input(tmp_path / "long"), 100)


def test_idx_big_endian_floats(tmp_path: Path) -> None:
    values = RNG.standard_normal((4, 3)).astype(">f4")
    data = bytes([0, 0, 0x0D, 2]) + np.array([4, 3], dtype=">u4").tobytes() + values.tobytes()
    (tmp_path / "floats.idx").write_bytes(data)
    out = np.concatenate(chunks(open_input(tmp_path / "floats.idx"), 3))
    assert out.dtype == np.float32 and out.dtype.isnative
    np.testing.assert_array_equal(out, values.astype(np.float32))


@pytest.mark.parametrize("dtype", ["<f4", ">f8", "<i2", "|u1"])
def test_npy_stream_equals_np_load(tmp_path: Path, dtype: str) -> None:
    arr = (RNG.standard_normal((17, 3, 2)) * 50).astype(dtype)
    np.save(tmp_path / "a.npy", arr)
    reader = open_input(tmp_path / "a.npy")
    assert isinstance(reader, NpyReader) and reader.rows == 17
    parts = chunks(reader, 4)
    assert [len(p) for p in parts] == [4, 4, 4, 4, 1]
    joined = np.concatenate(parts)
    assert joined.dtype.isnative and joined.flags.writeable
    np.testing.assert_array_equal(joined, arr)


def test_npy_fortran_order_and_1d(tmp_path: Path) -> None:
    arr = np.asfortranarray(RNG.standard_normal((9, 4)).astype(np.float32))
    np.save(tmp_path / "f.npy", arr)
    np.testing.assert_array_equal(np.concatenate(chunks(open_input(tmp_path / "f.npy"), 2)), arr)
    np.save(tmp_path / "v.npy", np.arange(5.0))
    np.testing.assert_array_equal(np.concatenate(chunks(open_input(tmp_path / "v.npy"), 2)), np.arange(5.0))


def test_npy_refuses_pickles_scalars_and_truncation(tmp_path: Path) -> None:
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"obj\.npy"):
        open_input(tmp_path / "obj.npy")
    np.save(tmp_path / "s.npy", np.float32(3))
    with pytest.raises(DataError, match="scalar"):
        open_input(tmp_path / "s.npy")
    np.save(tmp_path / "t.npy", np.ones((10, 4), np.float32))
    raw = (tmp_path / "t.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(raw[:-20])
    with pytest.raises(DataError):
        chunks(open_input(tmp_path / "t.npy"), 3)


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_key_preference_and_stream(tmp_path: Path, compressed: bool) -> None:
    save = np.savez_compressed if compressed else np.savez
    a, b = RNG.standard_normal((11, 3)), RNG.standard_normal((6, 3)).astype(np.float32)
    save(tmp_path / "both.npz", x_train=a, x_test=b, y_test=np.arange(6))
    reader = open_input(tmp_path / "both.npz")
    assert isinstance(reader, NpzReader) and reader.key == "x_test" and reader.rows == 6
    np.testing.assert_array_equal(np.concatenate(chunks(reader, 4)), b)
    save(tmp_path / "x.npz", x=a, y=np.arange(11))
    np.testing.assert_array_equal(np.concatenate(chunks(open_input(tmp_path / "x.npz"), 5)), a)
    save(tmp_path / "one.npz", features=a)
    np.testing.assert_array_equal(np.concatenate(chunks(open_input(tmp_path / "one.npz"), 5)), a)
    save(tmp_path / "two.npz", p=a, q=a)
    with pytest.raises(DataError, match="received keys p, q"):
        open_input(tmp_path / "two.npz")


CSV = "sepal_length,sepal_width,species,petal_length\n5.1,3.5,0,1.4\n4.9, 3.0 ,1,1.3\n\n6.2,2.9,2,4.3\n"


def test_csv_header_selects_training_features_by_name(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text(CSV)
    opts = InputOptions(features=["petal_length", "sepal_length"], target="species")
    out = read_all(open_input(tmp_path / "in.csv", opts))
    np.testing.assert_array_equal(out, [[1.4, 5.1], [1.3, 4.9], [4.3, 6.2]])
    assert out.dtype == np.float64
    # no `features` in the run: every column except the target, when the target is there
    out = read_all(open_input(tmp_path / "in.csv", InputOptions(target="species")))
    np.testing.assert_array_equal(out, [[5.1, 3.5, 1.4], [4.9, 3.0, 1.3], [6.2, 2.9, 4.3]])


def test_csv_without_header_and_from_a_stream() -> None:
    text = "1,2\n3,4\n5,6\n"
    reader = open_input(io.StringIO(text))
    assert isinstance(reader, CsvReader) and reader.rows is None and reader.name == "<stdin>"
    parts = chunks(reader, 2)
    assert [p.tolist() for p in parts] == [[[1, 2], [3, 4]], [[5, 6]]]


def test_csv_errors_name_the_place(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,oops\n")
    with pytest.raises(DataError, match=r"received 'oops' on line 3, column 2"):
        read_all(open_input(tmp_path / "bad.csv"))
    (tmp_path / "ragged.csv").write_text("a,b\n1,2\n3\n")
    with pytest.raises(DataError, match="expected 2 fields on line 3"):
        read_all(open_input(tmp_path / "ragged.csv"))
    (tmp_path / "cols.csv").write_text("sepal_lenght,b\n1,2\n")
    with pytest.raises(DataError, match="expected a column named 'sepal_length'") as e:
        read_all(open_input(tmp_path / "cols.csv", InputOptions(features=["sepal_length"])))
    assert "did you mean 'sepal_lenght'" in (e.value.hint or "")


def _png(path: Path, arr: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(arr).save(path)


def test_image_folder_sorted_gray_and_rgb(tmp_path: Path) -> None:
    pytest.importorskip("PIL")
    gray = RNG.integers(0, 256, (3, 4, 5)).astype(np.uint8)
    for name, img in zip(["b.png", "c.png", "a.png"], gray, strict=True):
        _png(tmp_path / name, img)
    (tmp_path / "notes.txt").write_text("ignored")
    reader = open_input(tmp_path)
    assert isinstance(reader, ImageFolderReader) and reader.rows == 3
    np.testing.assert_array_equal(np.concatenate(chunks(reader, 2)), gray[[2, 0, 1]])  # a, b, c

    rgb = RNG.integers(0, 256, (4, 5, 3)).astype(np.uint8)
    (tmp_path / "rgb").mkdir()
    _png(tmp_path / "rgb" / "x.png", rgb)
    as_rgb = read_all(open_input(tmp_path / "rgb", InputOptions(image_mode="RGB")))
    np.testing.assert_array_equal(as_rgb[0], rgb)
    luma = rgb @ np.array([299, 587, 114]) / 1000  # ITU-R 601-2, Pillow's documented "L" conversion
    as_gray = read_all(open_input(tmp_path / "rgb"))[0].astype(np.float64)
    assert np.abs(as_gray - luma).max() <= 1.0


def test_image_folder_sizes_must_agree(tmp_path: Path) -> None:
    pytest.importorskip("PIL")
    _png(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    _png(tmp_path / "b.png", np.zeros((5, 4), np.uint8))
    with pytest.raises(DataError, match=r"expected every image to be 4x4 .*received 4x5 in .*b\.png"):
        read_all(open_input(tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="found none"):
        open_input(tmp_path / "empty")


def test_missing_and_unknown_inputs(tmp_path: Path) -> None:
    np.save(tmp_path / "inputs.npy", np.zeros((2, 2)))
    with pytest.raises(DataFileNotFound, match="expected an input file or folder") as e:
        open_input(tmp_path / "input.npy")
    assert "inputs.npy" in (e.value.hint or "")
    (tmp_path / "model.bin").write_bytes(b"\x01\x02\x03\x04\x05")
    with pytest.raises(DataError, match=r"expected \.npy, \.npz, \.csv, \.parquet, an IDX file"):
        open_input(tmp_path / "model.bin")
