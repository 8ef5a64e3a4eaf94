"""Streaming writers for ``trainctl predict``: rows go out chunk by chunk, in ``.csv``, ``.npy`` or ``.jsonl``.

A writer never holds more than the chunk it is given. ``.npy`` is written as a header plus raw
row bytes; when the row count is not known up front (CSV or stdin input) the header reserves room
for it and is rewritten at the end, so the file is still streamed, not collected. Files are made
atomic by the caller (``trainctl.atomic.atomic_path``).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from trainctl.errors import ConfigError

FORMATS = (".csv", ".npy", ".jsonl")


def output_format(path: Path | None) -> str:
    """``.csv``/``.npy``/``.jsonl`` from the suffix; no file (stdout) is CSV."""
    if path is None or str(path) == "-":
        return ".csv"
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ConfigError(
            f"expected an --output file ending in {', '.join(FORMATS)}, received {str(path)!r}",
            key="--output",
        )
    return suffix


def columns_for(row_shape: tuple[int, ...], names: Sequence[str] | None, prefix: str = "output") -> list[str]:
    """CSV/JSONL column names: the class names when they label the last axis, else ``output_<i>``."""
    width = math.prod(row_shape)
    if names is not None and len(row_shape) == 1 and len(names) == width:
        return [str(n) for n in names]
    if width == 1:
        return [prefix]
    return [f"{prefix}_{i}" for i in range(width)]


class Writer:
    """Base: ``write`` a chunk of rows (axis 0), then ``close``. Rows of any rank are flattened for text."""

    rows_written = 0

    def write(self, chunk: np.ndarray) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finish the file (the stream itself belongs to the caller)."""


def _float_format(dtype: np.dtype) -> str:
    """Enough digits to read back the same float: 9 for float32, 17 for float64."""
    return "%.17g" if dtype == np.float64 else "%.9g"


class CsvWriter(Writer):
    def __init__(self, fh: IO[str], columns: Sequence[str]) -> None:
        self.fh, self.columns = fh, list(columns)
        csv.writer(fh, lineterminator="\n").writerow(self.columns)

    def write(self, chunk: np.ndarray) -> None:
        if not len(chunk):
            return
        flat = chunk.reshape(len(chunk), -1)
        if flat.dtype.kind in "US":
            csv.writer(self.fh, lineterminator="\n").writerows(flat.tolist())
        else:
            fmt = _float_format(flat.dtype) if flat.dtype.kind == "f" else "%d"
            np.savetxt(self.fh, flat, fmt=fmt, delimiter=",")
        self.rows_written += len(chunk)


class JsonlWriter(Writer):
    """One JSON object per row, keyed like the CSV columns (so both formats read back alike)."""

    def __init__(self, fh: IO[str], columns: Sequence[str]) -> None:
        self.fh, self.columns = fh, list(columns)

    def write(self, chunk: np.ndarray) -> None:
        if not len(chunk):
            return
        flat = chunk.reshape(len(chunk), -1).tolist()  # float32 -> the exact double: reads back equal
        self.fh.write("".join(json.dumps(dict(zip(self.columns, row, strict=True))) + "\n" for row in flat))
        self.rows_written += len(chunk)


_ROW_DIGITS = 20  # room reserved in an .npy header for a row count that is not known yet


def _npy_header(dtype: np.dtype, shape: tuple[int, ...], total: int | None = None) -> bytes:
    """A version 1.0 ``.npy`` header, padded to ``total`` bytes (or to numpy's 64-byte alignment
    with room for a longer row count), so it can be rewritten in place once the rows are counted."""
    descr = np.lib.format.dtype_to_descr(dtype)
    text = repr({"descr": descr, "fortran_order": False, "shape": tuple(shape)})
    prefix = 10  # magic (6) + version (2) + header length (2)
    if total is None:
        total = -(-(prefix + len(text) + _ROW_DIGITS + 1) // 64) * 64
    body = text + " " * (total - prefix - len(text) - 1) + "\n"
    if len(body) + prefix != total or len(body) > 65535:
        raise ValueError("the .npy header does not fit the space reserved for it")
    return np.lib.format.MAGIC_PREFIX + b"\x01\x00" + len(body).to_bytes(2, "little") + body.encode("latin1")


class NpyWriter(Writer):
    """A ``.npy`` array of ``(rows, *row_shape)``; ``rows=None`` rewrites the header on ``close``."""

    def __init__(self, fh: IO[bytes], dtype: np.dtype, row_shape: tuple[int, ...], rows: int | None) -> None:
        self.fh, self.dtype, self.row_shape, self.rows = fh, np.dtype(dtype), tuple(row_shape), rows
        self.header = _npy_header(self.dtype, (rows or 0, *self.row_shape))
        fh.write(self.header)

    def write(self, chunk: np.ndarray) -> None:
        if tuple(chunk.shape[1:]) != self.row_shape:
            raise ValueError(f"expected rows of shape {self.row_shape}, received {tuple(chunk.shape[1:])}")
        self.fh.write(np.ascontiguousarray(chunk, dtype=self.dtype).tobytes())
        self.rows_written += len(chunk)

    def close(self) -> None:
        if self.rows is not None and self.rows == self.rows_written:
            return
        end = self.fh.tell()
        self.fh.seek(0)
        self.fh.write(_npy_header(self.dtype, (self.rows_written, *self.row_shape), total=len(self.header)))
        self.fh.seek(end)


def open_writer(
    fmt: str,
    fh: IO[Any],
    *,
    columns: Sequence[str],
    dtype: np.dtype,
    row_shape: tuple[int, ...],
    rows: int | None,
) -> Writer:
    """A writer for ``fmt`` on an open stream: text for ``.csv``/``.jsonl``, binary for ``.npy``."""
    if fmt == ".npy":
        return NpyWriter(fh, dtype, row_shape, rows)
    if fmt == ".jsonl":
        return JsonlWriter(fh, columns)
    return CsvWriter(fh, columns)


__all__ = ["FORMATS", "CsvWriter", "JsonlWriter", "NpyWriter", "Writer", "columns_for", "open_writer", "output_format"]
