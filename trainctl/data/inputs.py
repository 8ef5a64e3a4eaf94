"""Streaming readers for ``trainctl predict``: raw samples in chunks of rows, never the whole file.

Each reader knows its row count when the format says it up front (``.npy``, ``.npz``, IDX, an
image folder) and yields ``np.ndarray`` chunks of at most ``size`` rows, in file order, before any
preprocessing. Binary formats are read with plain ``readinto`` calls after parsing the header:
pages of a memory map count towards the process's resident memory until it unmaps them, so a
mapped 200 MB ``.npy`` would cost 200 MB of RSS; a read buffer costs one chunk.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import math
import warnings
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from tokenize import TokenError
from typing import IO, Any, Protocol

import numpy as np

from trainctl.bounds import MAX_FORTRAN_BYTES, check_declared, check_pixels, check_zip_member, human, read_exact
from trainctl.config.base import did_you_mean
from trainctl.errors import DataError, DataFileNotFound

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")
CSV_SUFFIXES = (".csv", ".tsv", ".txt")


class Reader(Protocol):
    """Raw samples in chunks. ``rows`` is None when the format does not say it up front."""

    name: str
    rows: int | None

    def chunks(self, size: int) -> Iterator[np.ndarray]: ...


@dataclass(frozen=True)
class InputOptions:
    """How to read what the run was trained on: CSV columns, image colour mode."""

    features: Sequence[str | int] | None = None  # CSV columns to keep, by header name or index
    target: str | int | None = None  # a CSV column dropped when present (the training target)
    delimiter: str = ","
    image_mode: str = "L"  # Pillow mode: "L" grayscale or "RGB"


# ---------------------------------------------------------------------------------------------
# fixed-size rows from a binary stream (npy, npz member, IDX)


def _native(dtype: np.dtype) -> np.dtype:
    return dtype.newbyteorder("=") if dtype.byteorder not in ("=", "|") else dtype


def _read_rows(
    fh: IO[bytes], dtype: np.dtype, row_shape: tuple[int, ...], rows: int, size: int, name: str
) -> Iterator[np.ndarray]:
    """``rows`` C-ordered rows of ``row_shape`` from ``fh``, ``size`` at a time, in native byte order."""
    row_bytes = math.prod(row_shape) * dtype.itemsize
    for start in range(0, rows, size):
        n = min(size, rows - start)
        # writable, so torch does not warn about read-only memory; grows only as bytes arrive, so
        # a header claiming more rows than the (gzip) stream holds never allocates the claim
        buf = read_exact(fh, n * row_bytes)
        got = len(buf)
        if got != n * row_bytes:
            raise DataError(
                f"expected {rows} rows of shape {row_shape} in {name}, received a file that ends after "
                f"{start + (got or 0) // max(row_bytes, 1)} (file truncated)"
            )
        chunk = np.frombuffer(buf, dtype=dtype).reshape(n, *row_shape)
        yield chunk if dtype.isnative else chunk.astype(_native(dtype))


def _check_numeric(dtype: np.dtype, name: str) -> None:
    if not (np.issubdtype(dtype, np.number) or dtype == np.bool_) or dtype.kind == "c":
        raise DataError(f"expected a numeric array in {name}, received dtype {dtype}")


# numpy parses the .npy header dict with ast.literal_eval: a damaged one raises SyntaxError or
# tokenize's TokenError besides ValueError (found by tests/data/test_fuzz_inputs.py)
_NPY_ERRORS = (ValueError, OSError, EOFError, SyntaxError, TokenError, zlib.error)


def _npy_header(fh: IO[bytes], name: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Parse a ``.npy`` header from a stream (no pickle is ever read: object arrays are refused)."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        shape, fortran, dtype = fmt.read_array_header_1_0(fh) if version == (1, 0) else fmt.read_array_header_2_0(fh)
    except _NPY_ERRORS as exc:
        raise DataError(f"expected a .npy array in {name}, received an unreadable one ({exc})") from None
    if dtype.hasobject:
        raise DataError(f"expected a numeric array in {name}, received Python objects (pickles are never loaded)")
    if len(shape) == 0:
        raise DataError(f"expected an array with a batch axis in {name}, received a scalar")
    _check_numeric(dtype, name)
    return tuple(shape), bool(fortran), dtype


class NpyReader:
    """A ``.npy`` file: ``np.load(mmap_mode="r", allow_pickle=False)`` checks it, reads stream rows."""

    def __init__(self, path: Path) -> None:
        self.path, self.name = path, str(path)
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except _NPY_ERRORS as exc:
            raise DataError(f"expected a .npy array in {path}, received an unreadable one ({exc})") from None
        if not isinstance(arr, np.ndarray):
            raise DataError(f"expected a single array (.npy) in {path}, received an archive")
        if arr.ndim == 0:
            raise DataError(f"expected an array with a batch axis in {path}, received a scalar")
        _check_numeric(arr.dtype, self.name)
        self.shape: tuple[int, ...] = tuple(arr.shape)
        self.dtype = arr.dtype
        self.offset = int(getattr(arr, "offset", 0))
        self.fortran = arr.ndim > 1 and bool(arr.flags.f_contiguous) and not arr.flags.c_contiguous
        self.rows: int | None = self.shape[0]
        del arr

    def chunks(self, size: int) -> Iterator[np.ndarray]:
        if self.fortran:  # rows are strided in Fortran order: read it whole, within a budget (rare)
            nbytes = math.prod(self.shape) * self.dtype.itemsize
            if nbytes > MAX_FORTRAN_BYTES:
                raise DataError(
                    f"{self.name}: a Fortran-order array of {human(nbytes)} would have to be read whole; "
                    f"expected at most {human(MAX_FORTRAN_BYTES)}",
                    hint="save it in C order: np.save(path, np.ascontiguousarray(x))",
                )
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                raw = read_exact(fh, nbytes)
            if len(raw) != nbytes:
                raise DataError(f"expected {nbytes} bytes of data in {self.name}, received {len(raw)} (truncated)")
            arr = np.frombuffer(raw, dtype=self.dtype).reshape(self.shape[::-1]).T
            for i in range(0, self.shape[0], size):
                yield np.ascontiguousarray(arr[i : i + size], dtype=_native(self.dtype))
            return
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            yield from _read_rows(fh, self.dtype, self.shape[1:], self.shape[0], size, self.name)


@contextlib.contextmanager
def _zip_errors(name: str) -> Iterator[None]:
    """A damaged member (bad local header, corrupt deflate stream, CRC mismatch) is a DataError."""
    try:
        yield
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error, NotImplementedError) as exc:
        # NotImplementedError: zipfile's answer to an unknown compression method or zip version
        raise DataError(f"expected an .npz archive in {name}, received a damaged one ({exc})") from None


class NpzReader:
    """One array of an ``.npz`` archive (``x_test``, else ``x``, else the only one), streamed from the zip."""

    KEYS = ("x_test", "x")

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with zipfile.ZipFile(path) as zf:
                keys = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
        except (zipfile.BadZipFile, OSError, NotImplementedError) as exc:
            raise DataError(f"expected an .npz archive in {path}, received an unreadable one ({exc})") from None
        key = next((k for k in self.KEYS if k in keys), keys[0] if len(keys) == 1 else None)
        if key is None:
            raise DataError(
                f"expected an array named {' or '.join(self.KEYS)} (or a single array) in {path}, "
                f"received keys {', '.join(keys) or '(none)'}"
            )
        self.key, self.name = key, f"{path}[{key}]"
        with _zip_errors(self.name), zipfile.ZipFile(path) as zf, zf.open(key + ".npy") as fh:
            self.shape, self.fortran, self.dtype = _npy_header(fh, self.name)
            member = zf.getinfo(key + ".npy")
            check_zip_member(member.file_size, member.compress_size, self.name, DataError)
            declared = math.prod(self.shape) * self.dtype.itemsize
            check_declared(declared, member.file_size - fh.tell(), self.name, f"shape {self.shape}", DataError)
        self.rows: int | None = self.shape[0]

    def chunks(self, size: int) -> Iterator[np.ndarray]:
        with _zip_errors(self.name), zipfile.ZipFile(self.path) as zf, zf.open(self.key + ".npy") as fh:
            _npy_header(fh, self.name)
            if self.fortran and len(self.shape) > 1:  # rows are strided: read it whole, within a budget
                nbytes = math.prod(self.shape) * self.dtype.itemsize
                if nbytes > MAX_FORTRAN_BYTES:
                    raise DataError(
                        f"{self.name}: a Fortran-order array of {human(nbytes)} would have to be read whole; "
                        f"expected at most {human(MAX_FORTRAN_BYTES)}",
                        hint="save it in C order: np.savez(path, x=np.ascontiguousarray(x))",
                    )
                raw = read_exact(fh, nbytes)
                if len(raw) != nbytes:
                    raise DataError(f"expected {nbytes} bytes of data in {self.name}, received {len(raw)} (truncated)")
                arr = np.frombuffer(raw, dtype=self.dtype).reshape(self.shape[::-1]).T
                for i in range(0, self.shape[0], size):
                    yield np.ascontiguousarray(arr[i : i + size], dtype=_native(self.dtype))
                return
            yield from _read_rows(fh, self.dtype, self.shape[1:], self.shape[0], size, self.name)


# ---------------------------------------------------------------------------------------------
# IDX (MNIST) files, raw or gzip


def _open_maybe_gzip(path: Path) -> IO[bytes]:
    with path.open("rb") as probe:
        gz = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else path.open("rb")  # type: ignore[return-value]


def is_idx(path: Path) -> bool:
    """Sniff the IDX header (``0x00 0x00 <type> <ndim>``), looking inside gzip when compressed."""
    from trainctl.data.idx import _TYPES

    try:
        with _open_maybe_gzip(path) as fh:
            head = fh.read(4)
    except (OSError, EOFError, zlib.error):
        return False
    return len(head) == 4 and head[:2] == b"\x00\x00" and head[2] in _TYPES and head[3] > 0


class IdxReader:
    """An IDX file (MNIST's format): the header first, then chunks of rows from the (gzip) stream."""

    def __init__(self, path: Path) -> None:
        self.path, self.name = path, str(path)
        with _open_maybe_gzip(path) as fh:
            self.dtype, self.shape = self._header(fh)
            if isinstance(fh, io.BufferedReader):  # raw file: its size is known before reading
                declared = math.prod(self.shape) * self.dtype.itemsize
                check_declared(declared, path.stat().st_size - fh.tell(), self.name, f"shape {self.shape}", DataError)
        self.rows: int | None = self.shape[0]

    def _header(self, fh: IO[bytes]) -> tuple[np.dtype, tuple[int, ...]]:
        from trainctl.data.idx import _TYPES

        try:
            head = fh.read(4)
            if len(head) < 4 or head[:2] != b"\x00\x00" or head[2] not in _TYPES or head[3] == 0:
                raise DataError(f"expected an IDX file, received a file that starts with {head!r}: {self.name}")
            dims = fh.read(4 * head[3])
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(
                f"expected a valid IDX (or gzip) file, received a corrupt one: {self.name} ({exc})"
            ) from None
        if len(dims) < 4 * head[3]:
            raise DataError(f"expected a {4 + 4 * head[3]}-byte IDX header in {self.name}, received a shorter file")
        return _TYPES[head[2]], tuple(int(d) for d in np.frombuffer(dims, dtype=">u4"))

    def chunks(self, size: int) -> Iterator[np.ndarray]:
        with _open_maybe_gzip(self.path) as fh:
            try:
                self._header(fh)
                yield from _read_rows(fh, self.dtype, self.shape[1:], self.shape[0], size, self.name)
                trailing = fh.read(1)
            except (OSError, EOFError, zlib.error) as exc:
                raise DataError(
                    f"expected a valid IDX (or gzip) file, received a corrupt one: {self.name} ({exc})"
                ) from None
        if trailing:
            raise DataError(
                f"expected {self.shape[0]} rows of shape {self.shape[1:]} in {self.name}, received trailing bytes"
            )


# ---------------------------------------------------------------------------------------------
# CSV text (a file or stdin)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def feature_columns(options: InputOptions, header: list[str] | None, width: int, name: str) -> list[int] | None:
    """Which columns are features: the run's ``features`` by name/index, else all but the target
    (None: all of them)."""
    feats, target = options.features, options.target

    def index(j: int) -> int:
        if -width <= j < width:
            return j % width
        raise DataError(f"expected a column index below {width} in {name}, received {j}")

    def named(column: str) -> int:
        if header is not None and column in header:
            return header.index(column)
        guess = did_you_mean(column, header or [])
        raise DataError(
            f"expected a column named {column!r} (a feature the run was trained on) in {name}, "
            f"received columns {', '.join(header or [])}",
            hint=f"did you mean {guess!r}?" if guess else None,
        )

    if header is None:
        if feats is not None and all(isinstance(f, int) for f in feats):
            return [index(f) for f in feats]  # type: ignore[arg-type]
        return None
    if feats is not None:
        return [named(f) if isinstance(f, str) else index(f) for f in feats]
    if isinstance(target, str) and target in header:
        return [j for j, h in enumerate(header) if h != target]
    return None


class CsvReader:
    """Numeric CSV, a row at a time; a header row (any non-number) selects columns by name."""

    rows: int | None = None

    def __init__(self, source: Path | IO[str], options: InputOptions = InputOptions()) -> None:
        self.source, self.options = source, options
        self.header: list[str] | None = None
        self.name = str(source) if isinstance(source, Path) else "<stdin>"
        self.delimiter = "\t" if isinstance(source, Path) and source.suffix == ".tsv" else options.delimiter

    def chunks(self, size: int) -> Iterator[np.ndarray]:
        if isinstance(self.source, Path):
            try:
                with self.source.open(newline="", encoding="utf-8-sig") as fh:
                    yield from self._parse(fh, size)
            except UnicodeDecodeError as exc:
                raise DataError(f"expected a UTF-8 CSV file, received an unreadable one: {self.name} ({exc})") from None
        else:
            yield from self._parse(self.source, size)

    def _parse(self, fh: IO[str], size: int) -> Iterator[np.ndarray]:
        reader = csv.reader(fh, delimiter=self.delimiter)
        cols: list[int] | None = None
        width = -1
        rows: list[list[str]] = []
        lines: list[int] = []
        try:
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                if width < 0:
                    width = len(row)
                    header = None if all(_is_number(c) for c in row) else [c.strip() for c in row]
                    self.header = header
                    cols = feature_columns(self.options, header, width, self.name)
                    if header is not None:
                        continue
                if len(row) != width:
                    raise DataError(
                        f"expected {width} fields on line {reader.line_num} of {self.name} (as on its first "
                        f"line), received {len(row)}"
                    )
                rows.append(row)
                lines.append(reader.line_num)
                if len(rows) == size:
                    yield self._numbers(rows, lines, cols)
                    rows, lines = [], []
        except csv.Error as exc:
            raise DataError(f"expected CSV text in {self.name}, received: {exc}") from None
        if rows:
            yield self._numbers(rows, lines, cols)

    def _numbers(self, rows: list[list[str]], lines: list[int], cols: list[int] | None) -> np.ndarray:
        cells = np.char.strip(np.array(rows, dtype=str))
        if cols is not None:
            cells = cells[:, cols]
        try:
            return cells.astype(np.float64)  # float64 like the csv data source, so the numbers agree
        except ValueError:
            bad = ~np.vectorize(_is_number, otypes=[bool])(cells)
            i, j = (int(v[0]) for v in np.nonzero(bad))
            column = cols[j] if cols is not None else j
            label = f" ({self.header[column]!r})" if self.header else ""
            raise DataError(
                f"expected numbers in {self.name}, received {str(cells[i, j])!r} on line {lines[i]}, "
                f"column {column + 1}{label}"
            ) from None


class ParquetReader:
    """Numeric columns of a Parquet file, one row group at a time (pyarrow: the ``parquet``
    extra): the run's features by name or index, else every column but the target."""

    def __init__(self, path: Path, options: InputOptions = InputOptions()) -> None:
        from trainctl.data.tables import numeric_columns, parquet_file

        self.name = str(path)
        self.pf = parquet_file(path, DataError)
        header = list(self.pf.schema_arrow.names)
        cols = feature_columns(options, header, len(header), self.name)
        self.columns = [header[j] for j in (cols if cols is not None else range(len(header)))]
        numeric_columns(self.pf.schema_arrow, self.columns, path)
        self.rows: int | None = int(self.pf.metadata.num_rows)

    def chunks(self, size: int) -> Iterator[np.ndarray]:
        from trainctl.data.tables import row_group

        for g in range(self.pf.num_row_groups):
            group = row_group(self.pf, g, self.columns, self.name)
            for i in range(0, group.shape[0], size):
                yield group[i : i + size]


# ---------------------------------------------------------------------------------------------
# a folder of images


class ImageFolderReader:
    """Images sorted by file name, converted to the model's colour mode; all must share one size."""

    def __init__(self, folder: Path, options: InputOptions = InputOptions()) -> None:
        self.name, self.options = str(folder), options
        self.files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.files:
            raise DataError(f"expected image files ({', '.join(IMAGE_SUFFIXES)}) in the folder {folder}, found none")
        self.rows: int | None = len(self.files)
        self._size: tuple[int, int] | None = None

    def _load(self, path: Path) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(path) as opened:  # reads the header only: the size is declared
                    check_pixels(*opened.size, str(path), DataError)
                    img = opened.convert(self.options.image_mode)
            if self._size is None:
                self._size = img.size
            elif img.size != self._size:
                raise DataError(
                    f"expected every image to be {self._size[0]}x{self._size[1]} (as the first one), "
                    f"received {img.size[0]}x{img.size[1]} in {path}"
                )
            return np.asarray(img)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise DataError(f"{path}: refusing a decompression bomb ({exc})") from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            # Pillow raises ValueError for oversized text chunks, SyntaxError for some broken headers
            raise DataError(f"expected an image, received an unreadable file: {path} ({exc})") from None

    def chunks(self, size: int) -> Iterator[np.ndarray]:
        for i in range(0, len(self.files), size):
            yield np.stack([self._load(p) for p in self.files[i : i + size]])


# ---------------------------------------------------------------------------------------------


def not_found(path: Path) -> DataFileNotFound:
    parent = path.parent if str(path.parent) else Path(".")
    names = [p.name for p in parent.iterdir()] if parent.is_dir() else []
    guess = did_you_mean(path.name, names)
    return DataFileNotFound(
        f"expected an input file or folder at {path}, found none",
        hint=f"did you mean {str(parent / guess)!r}?" if guess else None,
    )


def open_input(source: str | Path | IO[str], options: InputOptions = InputOptions()) -> Reader:
    """The reader for ``source``: a text stream (CSV), or a path picked by suffix, content or folder."""
    if isinstance(source, io.TextIOBase) or not isinstance(source, (str, Path)):
        return CsvReader(source, options)  # type: ignore[arg-type]
    path = Path(source).expanduser()
    if path.is_dir():
        return ImageFolderReader(path, options)
    if not path.is_file():
        raise not_found(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return NpyReader(path)
    if suffix == ".npz":
        return NpzReader(path)
    if suffix in CSV_SUFFIXES:
        return CsvReader(path, options)
    if suffix in (".parquet", ".pq"):
        return ParquetReader(path, options)
    if is_idx(path):
        return IdxReader(path)
    raise DataError(
        f"expected .npy, .npz, .csv, .parquet, an IDX file (raw or .gz) or a folder of images, received {path}"
    )


def read_all(reader: Reader, size: int = 65536) -> np.ndarray:
    """Every row at once (for ``evaluate``, which needs the labels beside the samples)."""
    parts: list[Any] = list(reader.chunks(size))
    if not parts:
        raise DataError(f"expected at least one row in {reader.name}, received none")
    return np.concatenate(parts)


__all__ = [
    "CsvReader",
    "IdxReader",
    "ImageFolderReader",
    "InputOptions",
    "NpyReader",
    "NpzReader",
    "Reader",
    "is_idx",
    "not_found",
    "open_input",
    "read_all",
]
