"""CSV and Parquet tables, read in chunks: in memory, or streamed into a scratch table on disk.

Both readers yield ``(x, y)`` chunks with the column spec of ``source: csv`` (``target``,
``features`` by name or index): x as float64, y as the target cells. The in-memory path
concatenates the chunks; the streaming path (``data.cache`` resolves to ``none``) writes them, one
chunk at a time, into a :class:`DiskTable`, an unlinked scratch file in ``$TMPDIR``, so a table
bigger than memory is parsed once with bounded memory, and every epoch reads its shuffled rows
with ``pread`` (a global shuffle needs random access, which neither CSV text nor Parquet's
compressed row groups give). Both paths hold the same float64 values, so the fitted statistics and
the batches are the in-memory ones. Parquet is read by row group through pyarrow (the optional
``parquet`` extra), imported only when a Parquet source is used. numpy only otherwise.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from trainctl.bounds import human
from trainctl.data.csvfile import _numeric, check_split, columns, encode_targets
from trainctl.data.rows import DiskRows
from trainctl.errors import DataError, TrainctlError

CHUNK_CELLS = 1_000_000  # CSV cells parsed per chunk (Python strings cost ~60 bytes each)
COUNT_BLOCK = 16 * 2**20  # bytes per read when counting a CSV's lines


# ---------------------------------------------------------------------------------------------
# the scratch table


def _pread(fd: int, view: memoryview, offset: int) -> int:
    got = 0
    while got < len(view):
        n = os.preadv(fd, [view[got:]], offset + got)
        if n == 0:
            break
        got += n
    return got


class DiskTable(DiskRows):
    """Rows of one dtype in a scratch file that was unlinked as soon as it was made: it takes no
    name on disk, goes away with the last process holding it (even after ``kill -9``), and forked
    workers read it through the inherited descriptor with ``pread`` (no shared file offset)."""

    def __init__(self, fd: int, dtype: np.dtype, row_shape: tuple[int, ...], rows: int, name: str) -> None:
        self.fd, self.dtype, self.name = fd, np.dtype(dtype), name
        self.shape: tuple[int, ...] = (rows, *row_shape)
        self.ndim = len(self.shape)
        self.row_bytes = math.prod(row_shape) * self.dtype.itemsize
        self._pid = os.getpid()

    @classmethod
    def spool(cls, chunks: Iterator[np.ndarray], name: str) -> DiskTable:
        """Write ``chunks`` (same row shape and dtype) to a new scratch file, one at a time."""
        fd, path = tempfile.mkstemp(prefix="trainctl-", suffix=".rows")
        os.unlink(path)
        rows, row_shape, dtype = 0, None, None
        try:
            with os.fdopen(os.dup(fd), "wb") as out:
                for chunk in chunks:
                    if row_shape is None:
                        row_shape, dtype = tuple(chunk.shape[1:]), chunk.dtype
                    out.write(np.ascontiguousarray(chunk, dtype=dtype).data)
                    rows += len(chunk)
        except OSError as exc:
            os.close(fd)
            raise DataError(
                f"{name}: could not write the scratch table for streaming to {tempfile.gettempdir()} "
                f"after {rows:,} rows ({exc})",
                hint="set TMPDIR to a folder with room for rows x features x 8 bytes, or data.cache: memory",
            ) from None
        except BaseException:
            os.close(fd)
            raise
        if row_shape is None or dtype is None:
            os.close(fd)
            raise DataError(f"expected at least one data row in {name}, received none")
        return cls(fd, dtype, row_shape, rows, name)

    def nbytes_on_disk(self) -> int:
        return len(self) * self.row_bytes

    def _read(self, start: int, count: int, out: memoryview) -> None:
        if _pread(self.fd, out, start * self.row_bytes) != count * self.row_bytes:
            raise DataError(f"the scratch table of {self.name} ended early (rows {start}..{start + count})")

    def _span(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start, *self.shape[1:]), dtype=self.dtype)
        if stop > start:
            self._read(start, stop - start, memoryview(out.reshape(-1).view(np.uint8)))  # type: ignore[arg-type]
        return out

    def _take(self, idx: np.ndarray) -> np.ndarray:
        out = np.empty((len(idx), *self.shape[1:]), dtype=self.dtype)
        view = memoryview(out.reshape(-1).view(np.uint8))  # type: ignore[arg-type]
        rb = self.row_bytes
        for k, i in enumerate(idx.tolist()):
            self._read(i, 1, view[k * rb : (k + 1) * rb])
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype)

    def __del__(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


# ---------------------------------------------------------------------------------------------
# CSV in chunks (the rules of trainctl.data.csvfile, which reads it whole)


def count_lines(path: Path) -> int:
    """Newlines in ``path`` (at least the data rows, plus the header): a cheap size for the budget."""
    n = 0
    with path.open("rb") as fh:
        while block := fh.read(COUNT_BLOCK):
            n += block.count(b"\n")
    return n + 1


def csv_header(spec: Any, path: Path) -> tuple[list[str], int, list[int]]:
    """``(header, target column, feature columns)``."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            header = [h.strip() for h in next(csv.reader(fh, delimiter=spec.delimiter), [])]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"expected a UTF-8 CSV file, received an unreadable one: {path} ({exc})") from exc
    check_split(spec, header, path)
    if not header:
        raise DataError(f"expected a header row and at least one data row in {path}, received none")
    t, cols = columns(spec, header, path)
    return header, t, cols


def csv_chunks(spec: Any, path: Path, sink: list[np.ndarray]) -> Iterator[np.ndarray]:
    """The feature rows of ``path`` as float64 chunks; the target cells go to ``sink``."""
    header, t, cols = csv_header(spec, path)
    names = [header[j] for j in cols]
    size = max(1, CHUNK_CELLS // len(header))
    rows: list[list[str]] = []
    lines: list[int] = []

    def flush() -> np.ndarray:
        cells = np.char.strip(np.array(rows, dtype=str))
        sink.append(cells[:, t])
        return _numeric(cells[:, cols], names, lines, path)

    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh, delimiter=spec.delimiter)
            next(reader, None)
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    one = len(row) == 1 or len(header) == 1
                    raise DataError(
                        f"expected {len(header)} fields (as in the header) on line {reader.line_num} of "
                        f"{path}, received {len(row)}",
                        key="data.delimiter" if one else None,
                        hint=f"the delimiter is {spec.delimiter!r}" if one else None,
                    )
                rows.append(row)
                lines.append(reader.line_num)
                if len(rows) == size:
                    yield flush()
                    rows, lines = [], []
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"expected a UTF-8 CSV file, received an unreadable one: {path} ({exc})") from exc
    if rows:
        yield flush()


# ---------------------------------------------------------------------------------------------
# Parquet by row group


def pyarrow_parquet(error: type[TrainctlError] | None = None) -> Any:
    """``pyarrow.parquet``, or ``error`` (default: a config error on ``data.source``) naming the extra."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        from trainctl.errors import ConfigError

        hint = "pip install 'trainctl[parquet]' (or pip install 'pyarrow>=14')"
        if error is not None:
            raise error("reading a Parquet file needs pyarrow, which is not installed", hint=hint) from None
        raise ConfigError(
            "source: parquet needs pyarrow, which is not installed", key="data.source", hint=hint
        ) from None
    return pq


def parquet_file(path: Path, missing: type[TrainctlError] | None = None) -> Any:
    """The opened ``pq.ParquetFile`` (its footer only); ``missing``: the error when pyarrow is absent."""
    pq = pyarrow_parquet(missing)
    import pyarrow as pa

    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(f"expected a Parquet file, received an unreadable one: {path} ({exc})") from None


def parquet_layout(spec: Any, path: Path) -> tuple[Any, list[str], int, list[int]]:
    """``(ParquetFile, column names, target column, feature columns)``; features must be numbers."""
    pf = parquet_file(path)
    import pyarrow as pa

    schema = pf.schema_arrow
    header = list(schema.names)
    if len(header) < 2:
        raise DataError(f"expected a target and feature columns in {path}, received columns {header}")
    t, cols = columns(spec, header, path)
    numeric_columns(schema, [header[j] for j in cols], path)
    kind = schema.field(t).type
    if not (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_dictionary(kind)
    ):
        raise DataError(
            f"expected numbers or text in the target column {header[t]!r} of {path}, received type {kind}",
            key="data.target",
        )
    return pf, header, t, cols


def numeric_columns(schema: Any, names: list[str], path: Path) -> None:
    """Feature columns must hold numbers (integers, floats or booleans)."""
    import pyarrow as pa

    for name in names:
        kind = schema.field(name).type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)):
            raise DataError(
                f"expected numbers in feature column {name!r} of {path}, received type {kind}",
                key="data.features",
                hint="encode text columns as numbers, or leave the column out of data.features",
            )


def row_group(pf: Any, g: int, names: list[str], label: str) -> np.ndarray:
    """Row group ``g``'s columns ``names`` as one float64 array (nulls become NaN)."""
    import pyarrow as pa

    try:
        group = pf.read_row_group(g, columns=names)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"expected a readable row group {g} in {label}, received: {exc}") from None
    x = np.empty((group.num_rows, len(names)), dtype=np.float64)
    for k in range(len(names)):
        x[:, k] = _numpy(group.column(k))
    return x


def _numpy(column: Any) -> np.ndarray:
    import pyarrow as pa

    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return np.asarray(column.to_pylist(), dtype=str)
    if pa.types.is_boolean(column.type):
        column = column.cast(pa.int64())
    out = column.to_numpy(zero_copy_only=False)  # nulls become NaN (integers: float NaN)
    return np.asarray(out)


def parquet_chunks(spec: Any, path: Path, sink: list[np.ndarray]) -> Iterator[np.ndarray]:
    """Feature rows of ``path`` as float64, one row group at a time; the target column to ``sink``."""
    import pyarrow as pa

    pf, header, t, cols = parquet_layout(spec, path)
    names = [header[j] for j in cols]
    for g in range(pf.num_row_groups):
        x = row_group(pf, g, names, str(path))  # columns are stored apart: two reads cost no more than one
        if not len(x):
            continue
        try:
            target = pf.read_row_group(g, columns=[header[t]])
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"expected a readable row group {g} in {path}, received: {exc}") from None
        sink.append(_numpy(target.column(0)))
        yield x


# ---------------------------------------------------------------------------------------------
# one entry for both formats


def read_rows(spec: Any, path: Path) -> tuple[Iterator[np.ndarray], list[np.ndarray]]:
    sink: list[np.ndarray] = []
    chunks = parquet_chunks(spec, path, sink) if spec.source == "parquet" else csv_chunks(spec, path, sink)
    return chunks, sink


def table_size(spec: Any, path: Path) -> int:
    """The float32 size of the features once decoded (an upper bound for CSV), for ``cache: auto``."""
    if spec.source == "parquet":
        pf, _, _, cols = parquet_layout(spec, path)
        return int(pf.metadata.num_rows) * len(cols) * 4
    _, _, cols = csv_header(spec, path)
    return count_lines(path) * len(cols) * 4


def _targets(parts: list[np.ndarray], path: Path) -> np.ndarray:
    if not parts:
        raise DataError(f"expected a header row and at least one data row in {path}, received none")
    return np.concatenate(parts)


def encode(y: np.ndarray, y_test: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    """Text targets (CSV cells, Parquet strings) through the CSV rules; Parquet numbers keep their kind."""
    if y.dtype.kind == "U" and (y_test is None or y_test.dtype.kind == "U"):
        return encode_targets(y, y_test)
    if y.dtype.kind == "U" or (y_test is not None and y_test.dtype.kind == "U"):
        raise DataError("expected the target column to be text in both the training and test files, or numbers in both")
    y = y.astype(np.int64) if y.dtype.kind in "iub" else y.astype(np.float64)
    if y_test is None:
        return y, None, None
    y_test = y_test.astype(np.int64) if y_test.dtype.kind in "iub" else y_test.astype(np.float64)
    if y.dtype != y_test.dtype:
        y, y_test = y.astype(np.float64), y_test.astype(np.float64)
    return y, y_test, None


def load_table(
    spec: Any, path: Path, test_path: Path | None, *, stream: bool
) -> tuple[Any, np.ndarray, Any, np.ndarray | None, list[str] | None]:
    """``(x, y, x_test, y_test, class_names)``: x in memory, or (``stream``) a :class:`DiskTable`."""
    out: list[Any] = []
    targets: list[np.ndarray | None] = []
    for p in (path, test_path):
        if p is None:
            out.append(None)
            targets.append(None)
            continue
        chunks, sink = read_rows(spec, p)
        if stream:
            x: Any = DiskTable.spool(chunks, str(p))
        else:
            parts = list(chunks)
            if not parts:
                raise DataError(f"expected a header row and at least one data row in {p}, received none")
            x = parts[0] if len(parts) == 1 else np.concatenate(parts)
        out.append(x)
        targets.append(_targets(sink, p))
    y_text, yt_text = targets
    assert y_text is not None
    y, y_test, names = encode(y_text, yt_text)
    return out[0], y, out[1], y_test, names


def describe(x: Any) -> str:
    return human(x.nbytes_on_disk()) if isinstance(x, DiskTable) else human(x.nbytes)
