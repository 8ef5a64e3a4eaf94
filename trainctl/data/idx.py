"""IDX files (the MNIST format), parsed with numpy alone.

Layout: a big-endian header ``0x00 0x00 <type> <ndim>`` then ``ndim`` big-endian uint32 sizes,
then the values, row-major. Images use magic 2051 (uint8, 3 dims), labels 2049 (uint8, 1 dim).
Files may be gzip-compressed (recognised by the gzip magic, not by the name). The payload is
read with one ``np.frombuffer``, so 60,000 MNIST images load in well under a second.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from trainctl.errors import DataError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049

# IDX type byte -> numpy dtype (multi-byte types are big-endian in the file)
_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped if it starts with the gzip magic."""
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"expected a valid gzip file, received a corrupt one: {path} ({exc})") from exc


def parse_idx(data: bytes, name: str, *, expect_magic: int | None = None) -> np.ndarray:
    """Decode IDX bytes into an array with native byte order. ``name`` is used in errors."""
    if len(data) < 4:
        raise DataError(f"expected an IDX header of at least 4 bytes in {name}, received {len(data)} bytes")
    magic = int.from_bytes(data[:4], "big")
    zero, type_code, ndim = int.from_bytes(data[:2], "big"), data[2], data[3]
    if expect_magic is not None and magic != expect_magic:
        what = {IMAGES_MAGIC: "images", LABELS_MAGIC: "labels"}.get(expect_magic, "IDX")
        raise DataError(
            f"expected IDX magic number {expect_magic} ({what} file) in {name}, received {magic}",
            hint="are the images and labels files swapped?" if magic in (IMAGES_MAGIC, LABELS_MAGIC) else None,
        )
    if zero != 0 or type_code not in _TYPES or ndim == 0:
        raise DataError(f"expected an IDX file, received a file with magic number {magic} in {name}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(
            f"expected a {header}-byte IDX header ({ndim} dimensions) in {name}, received {len(data)} bytes"
        )
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _TYPES[type_code]
    want = header + math.prod(dims) * dtype.itemsize
    if len(data) != want:
        state = "truncated" if len(data) < want else "has trailing bytes"
        raise DataError(
            f"expected {want} bytes for an IDX array of shape {dims} in {name}, received {len(data)} (file {state})"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    # a copy, so the result is writable (frombuffer views of bytes are read-only, and torch warns)
    return arr.astype(dtype.newbyteorder("="))


def read_idx(path: Path, *, expect_magic: int | None = None) -> np.ndarray:
    """Read an IDX file (raw or .gz); every structural problem is a DataError naming the file."""
    return parse_idx(read_bytes(path), str(path), expect_magic=expect_magic)


def read_images_labels(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    """An images file (magic 2051) and its labels file (magic 2049), checked to have equal counts."""
    x = read_idx(images, expect_magic=IMAGES_MAGIC)
    y = read_idx(labels, expect_magic=LABELS_MAGIC)
    if len(x) != len(y):
        raise DataError(
            f"expected as many labels as images, received {len(x)} images in {images} and {len(y)} labels in {labels}"
        )
    return x, y.astype(np.int64)
