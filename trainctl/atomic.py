"""Atomic file writes: a reader sees the old file or the complete new one, never half of one.

Runs are killed (SIGINT, OOM, a full disk) while they save, and a truncated ``model.h5`` is worse than
none: it looks like a model. So every artifact is written to a temporary file in the same folder
(same file system, so the rename is atomic), flushed to disk, then renamed over the target.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path


def _temp_name(path: Path) -> Path:
    # A hidden, unique sibling: never collides with a concurrent writer, never listed as an artifact.
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _discard(tmp: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()


@contextlib.contextmanager
def atomic_path(path: Path, *, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write (e.g. with ``h5py.File(tmp, "w")``); rename it on success.

    The caller must close its handle before the block ends. On any exception the temporary file
    is removed and ``path`` is left as it was.
    """
    path = Path(path)
    tmp = _temp_name(path)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to the temporary file for {path}")
        if durable:
            _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        _discard(tmp)
        raise
    if durable:
        _fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, rename).

    ``durable=False`` skips the fsyncs: the rename still makes the write all-or-nothing for a
    killed process, only a power cut may lose it. For files rewritten every epoch.
    """
    with atomic_path(Path(path), durable=durable) as tmp:
        # O_EXCL: the unique name must be ours; 0o666 lets the umask decide, as open() would.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
