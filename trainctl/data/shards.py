"""Several ``.npy``/``.npz`` shards read as one table, without loading it whole. numpy only.

A list or a glob of shard files becomes one :class:`Concat`: a row view over the shards' memory
maps (``.npy`` files, and members stored uncompressed in an ``.npz``). A slice reads the shards it
spans; shuffled rows are read with ``pread`` (:func:`trainctl.data.mapped.read_rows`), shard by
shard, so the files never become resident. Every shard must have the first shard's per-row shape
and dtype; the message names the shard that differs.
"""

from __future__ import annotations

import glob
import math
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from trainctl.bounds import check_declared
from trainctl.data.paths import resolve
from trainctl.data.rows import DiskRows
from trainctl.errors import ConfigError, DataError, DataFileNotFound

GLOB_CHARS = frozenset("*?[")


def is_glob(name: str) -> bool:
    return any(c in GLOB_CHARS for c in name)


def expand(base_dir: Path, names: str | list[str], key: str) -> list[Path]:
    """The shard files ``names`` means: one file, a list of files, or a glob (sorted by name;
    ``**`` recurses). A glob that matches no file is a DataError naming the pattern."""
    if isinstance(names, str) and not is_glob(names):
        return [resolve(base_dir, names, key)]
    if isinstance(names, str):
        pattern = Path(names).expanduser()
        if not pattern.is_absolute():
            pattern = Path(base_dir) / pattern
        found = sorted(Path(p).resolve() for p in glob.glob(str(pattern), recursive=True) if Path(p).is_file())
        if not found:
            raise DataFileNotFound(
                f"expected shard files matching the glob {pattern}, found none",
                key=key,
                hint="check the folder and the pattern (shards are sorted by name: zero-pad their numbers)",
            )
        return found
    if not names:
        raise ConfigError("expected at least one shard file, received an empty list", key=key)
    return [resolve(base_dir, n, f"{key}[{i}]") for i, n in enumerate(names)]


class Concat(DiskRows):
    """Rows of several arrays (memory maps or in memory) as one array of ``len`` rows, read only
    when sliced. Integer indices may come in any order; the result keeps their order."""

    def __init__(self, parts: list[Any], names: list[str]) -> None:
        self.parts, self.names = parts, names
        self.starts = np.cumsum([0, *(len(p) for p in parts)]).astype(np.int64)
        self.shape: tuple[int, ...] = (int(self.starts[-1]), *parts[0].shape[1:])
        self.dtype = parts[0].dtype
        self.ndim = len(self.shape)

    def _span(self, start: int, stop: int) -> np.ndarray:
        pieces = []
        for k, part in enumerate(self.parts):
            lo, hi = max(start, int(self.starts[k])), min(stop, int(self.starts[k + 1]))
            if lo < hi:
                pieces.append(np.array(part[lo - self.starts[k] : hi - self.starts[k]]))
        if not pieces:
            return np.empty((0, *self.shape[1:]), dtype=self.dtype)
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

    def _take(self, idx: np.ndarray) -> np.ndarray:
        shard = np.searchsorted(self.starts, idx, side="right") - 1
        out = np.empty((len(idx), *self.shape[1:]), dtype=self.dtype)
        from trainctl.data.mapped import read_rows

        for k in np.unique(shard).tolist():
            mask = shard == k
            local = idx[mask] - self.starts[k]
            part = self.parts[k]
            out[mask] = read_rows(part, local) if isinstance(part, np.memmap) else part[local]
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = np.concatenate([np.asarray(p) for p in self.parts])
        return whole if dtype is None else whole.astype(dtype)

    def nbytes_on_disk(self) -> int:
        return len(self) * math.prod(self.shape[1:]) * self.dtype.itemsize


def check_alike(arrays: list[Any], names: list[str], key: str) -> None:
    """Every shard has the first one's per-row shape (its columns) and dtype."""
    first, where = arrays[0], names[0]
    for arr, name in zip(arrays[1:], names[1:], strict=True):
        if arr.shape[1:] != first.shape[1:]:
            raise DataError(
                f"expected rows of shape {tuple(first.shape[1:])} in every shard (as in {where}), "
                f"received {tuple(arr.shape[1:])} in {name}",
                key=key,
                hint="all shards of one table need the same columns",
            )
        if arr.dtype != first.dtype:
            raise DataError(
                f"expected dtype {first.dtype} in every shard (as in {where}), received {arr.dtype} in {name}",
                key=key,
                hint="save every shard with the same dtype, e.g. x.astype(np.float32)",
            )


def check_pairs(xs: list[Any], x_names: list[str], ys: list[Any], y_names: list[str], key: str) -> None:
    """x and y shards pair up one to one, with the same rows in each pair."""
    if len(xs) != len(ys):
        raise DataError(
            f"expected as many y shards as x shards, received {len(xs)} x shards and {len(ys)} y shards "
            f"({x_names[0]} ... and {y_names[0]} ...)",
            key=key,
            hint="x shard i pairs with y shard i, both in name order",
        )
    for x, xn, y, yn in zip(xs, x_names, ys, y_names, strict=True):
        if len(x) != len(y):
            raise DataError(f"expected as many rows in {yn} as in {xn}, received {len(y)} and {len(x)}", key=key)


def one_table(arrays: list[Any], names: list[str], key: str) -> Any:
    """One array as is; several as a :class:`Concat` (checked alike first)."""
    if len(arrays) == 1:
        return arrays[0]
    check_alike(arrays, names, key)
    return Concat(arrays, names)


# ---------------------------------------------------------------------------------------------
# .npz members: a member stored without compression is a .npy file inside the zip, mapped in place


def npz_member(path: Path, key: str, config_key: str, mmap: bool) -> np.ndarray:
    """Array ``key`` of the archive at ``path``: memory-mapped in place when ``mmap`` and the member
    is stored uncompressed (``np.savez``), else read whole (``np.savez_compressed``) when it fits."""
    name = f"{path}[{key}]"
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
            if key not in names:
                raise DataError(
                    f"expected a key {key!r} in {path}, received keys {', '.join(names) or '(none)'}", key=config_key
                )
            info = zf.getinfo(key + ".npy")
            if not mmap or info.compress_type != zipfile.ZIP_STORED:
                if mmap:
                    raise DataError(
                        f"expected {name} stored uncompressed to stream it from disk, received a compressed member",
                        key=config_key,
                        hint="save the shards with np.savez (not savez_compressed) or as .npy files, "
                        "or set data.cache: memory",
                    )
                with zf.open(info) as fh:
                    return np.lib.format.read_array(fh, allow_pickle=False)  # type: ignore[no-any-return]
            with path.open("rb") as raw:
                raw.seek(info.header_offset)
                head = raw.read(30)
                if len(head) != 30 or head[:4] != b"PK\x03\x04":
                    raise DataError(f"expected a zip local header for {name}, received a damaged archive")
                name_len, extra_len = struct.unpack("<HH", head[26:30])
                start = info.header_offset + 30 + name_len + extra_len
                raw.seek(start)
                version = np.lib.format.read_magic(raw)
                reader = (
                    np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                )
                shape, fortran, dtype = reader(raw)
                data_at = raw.tell()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, struct.error) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"expected an .npz archive with a numeric array {key!r}, received: {path} ({exc})") from None
    if dtype.hasobject:
        raise DataError(f"expected a numeric array in {name}, received Python objects (pickles are never loaded)")
    if not shape:
        raise DataError(f"expected an array with a batch axis in {name}, received a scalar", key=config_key)
    if fortran and len(shape) > 1:
        raise DataError(
            f"expected a C-order array in {name} to stream it, received Fortran order",
            key=config_key,
            hint="save it with np.ascontiguousarray(x)",
        )
    declared = math.prod(shape) * dtype.itemsize
    check_declared(declared, info.file_size - (data_at - start), name, f"shape {tuple(shape)}", DataError)
    if declared == 0:
        return np.empty(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=data_at, shape=tuple(shape))
