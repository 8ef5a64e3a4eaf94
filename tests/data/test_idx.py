"""The IDX reader against files written independently (struct) by the test."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from datahelp import idx_bytes, source

from trainctl.data import idx, load_data
from trainctl.errors import ConfigError, DataError

RNG = np.random.default_rng(3)
IMAGES = RNG.integers(0, 256, (7, 5, 4)).astype(np.uint8)
LABELS = RNG.integers(0, 10, 7).astype(np.uint8)


@pytest.mark.parametrize("gz", [True, False])
def test_reads_images_and_labels(write_idx, gz: bool) -> None:
    x, y = idx.read_images_labels(write_idx("i", IMAGES, gz=gz), write_idx("l", LABELS, gz=gz))
    np.testing.assert_array_equal(x, IMAGES)
    np.testing.assert_array_equal(y, LABELS)
    assert x.dtype == np.uint8 and y.dtype == np.int64 and x.flags.writeable


def test_big_endian_int_payload(tmp_path: Path) -> None:
    values = [1, -2, 70000]
    data = struct.pack(">BBBB", 0, 0, 0x0C, 1) + struct.pack(">I", 3) + struct.pack(">3i", *values)
    (tmp_path / "ints").write_bytes(data)
    assert idx.read_idx(tmp_path / "ints").tolist() == values


def test_wrong_magic_names_file_and_hints_at_swapped_files(write_idx) -> None:
    labels = write_idx("labels.gz", LABELS)
    with pytest.raises(DataError, match=r"expected IDX magic number 2051 \(images file\) .*received 2049") as e:
        idx.read_idx(labels, expect_magic=idx.IMAGES_MAGIC)
    assert str(labels) in str(e.value) and "swapped" in (e.value.hint or "")


def test_truncated_and_padded_files(tmp_path: Path) -> None:
    good = idx_bytes(IMAGES)
    (tmp_path / "short").write_bytes(good[:-3])
    with pytest.raises(DataError, match=rf"expected {len(good)} bytes .*received {len(good) - 3} \(file truncated\)"):
        idx.read_idx(tmp_path / "short")
    (tmp_path / "long").write_bytes(good + b"\0")
    with pytest.raises(DataError, match="trailing bytes"):
        idx.read_idx(tmp_path / "long")
    (tmp_path / "tiny").write_bytes(good[:6])
    with pytest.raises(DataError, match="16-byte IDX header"):
        idx.read_idx(tmp_path / "tiny")


def test_not_idx_and_corrupt_gzip(tmp_path: Path) -> None:
    (tmp_path / "text").write_bytes(b"hello, world")
    with pytest.raises(DataError, match="expected an IDX file"):
        idx.read_idx(tmp_path / "text")
    broken = gzip.compress(idx_bytes(IMAGES))
    (tmp_path / "broken.gz").write_bytes(broken[: len(broken) // 2])
    with pytest.raises(DataError, match="corrupt") as e:
        idx.read_idx(tmp_path / "broken.gz")
    assert "broken.gz" in str(e.value)


def test_count_mismatch(write_idx) -> None:
    with pytest.raises(DataError, match=r"7 images .* 6 labels"):
        idx.read_images_labels(write_idx("i", IMAGES), write_idx("l", LABELS[:6]))


def test_idx_source_with_test_files_and_steps(write_idx, tmp_path: Path) -> None:
    write_idx("d/tr-img.gz", IMAGES)
    write_idx("d/tr-lab.gz", LABELS)
    write_idx("d/te-img", IMAGES[:3], gz=False)
    write_idx("d/te-lab", LABELS[:3], gz=False)
    spec = source(
        source="idx", images="d/tr-img.gz", labels="d/tr-lab.gz", test_images="d/te-img",
        test_labels="d/te-lab", x=[{"scale": 255}, "flatten"],
    )  # fmt: skip
    ds = load_data(spec, base_dir=tmp_path, seed=0)
    np.testing.assert_array_equal(ds.x_train, IMAGES.reshape(7, 20).astype(np.float32) / 255)
    np.testing.assert_array_equal(ds.y_test, LABELS[:3].astype(np.int64))
    assert ds.task_hint == "classification"
    with pytest.raises(ConfigError) as e:
        load_data(spec.model_copy(update={"test_split": 0.2}), base_dir=tmp_path, seed=0)
    assert e.value.key == "data.test_split"


def test_idx_source_missing_test_labels_is_a_config_error(write_idx, tmp_path: Path) -> None:
    write_idx("a.gz", IMAGES)
    write_idx("b.gz", LABELS)
    spec = source(source="idx", images="a.gz", labels="b.gz", test_images="a.gz")
    with pytest.raises(ConfigError) as e:
        load_data(spec, base_dir=tmp_path, seed=0)
    assert e.value.key == "data.test_labels"
