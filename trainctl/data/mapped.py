"""Memory-mapped rows with bounded RSS. numpy only.

Pages of a read-only memory map count in the process's RSS once touched (2 GiB mapped and read
showed 2 GiB RSS here). Dropping them with ``madvise(DONTNEED)`` every so often keeps them in the
OS page cache (a later read is still fast) but out of the process, so a file bigger than memory
streams, and preprocessing statistics are fitted, with bounded RSS.
"""

from __future__ import annotations

from typing import Any

# read this much from a map, then drop its pages from RSS. Small, because a page fault maps up to
# 16 neighbouring pages (fault-around): rows read in a shuffled order map far more than they use.
RELEASE_BYTES = 1 * 2**20


def _mappings(x: Any) -> list[Any]:
    """The memory maps under ``x``: an ``np.memmap``, a wrapper whose ``.x`` leads to one, or the
    ``parts`` of a shard table (:class:`trainctl.data.shards.Concat`)."""
    while x is not None and not hasattr(x, "_mmap") and not hasattr(x, "parts"):
        x = getattr(x, "x", None)
    if x is not None and hasattr(x, "parts"):
        return [m for p in x.parts for m in _mappings(p)]
    m = getattr(x, "_mmap", None)
    return [m] if m is not None and hasattr(m, "madvise") else []


def random_access(x: Any) -> None:
    """Tell the kernel the rows under ``x`` are read in a shuffled order (no readahead)."""
    import mmap

    for m in _mappings(x):
        m.madvise(mmap.MADV_RANDOM)


def release_pages(x: Any) -> None:
    """``madvise(DONTNEED)`` on the memory maps under ``x`` (see :func:`_mappings`). A no-op for
    arrays in memory."""
    import mmap

    for m in _mappings(x):
        m.madvise(mmap.MADV_DONTNEED)


def read_rows(x: Any, idx: Any) -> Any:
    """Rows ``idx`` of the ``np.memmap`` ``x``, read with ``pread`` into a fresh array instead of
    through the map. In a shuffled order, each page fault maps a whole page-cache folio (up to
    2 MiB here), so reading a few thousand random rows through the map made the whole file
    resident; ``pread`` copies just the rows. The file is reopened per process (fork-safe)."""
    import os

    import numpy as np

    idx = np.asarray(idx, dtype=np.int64).reshape(-1)
    row = int(np.prod(x.shape[1:], dtype=np.int64)) * x.dtype.itemsize
    out = np.empty((len(idx), *x.shape[1:]), dtype=x.dtype)
    view = memoryview(out.reshape(-1).view(np.uint8))  # type: ignore[arg-type]
    base = int(x.offset) + _base_offset(x)
    fd = os.open(x.filename, os.O_RDONLY)
    try:
        for k, i in enumerate(idx.tolist()):
            if i < 0:
                i += x.shape[0]
            got = os.preadv(fd, [view[k * row : (k + 1) * row]], base + i * row)
            if got != row:
                raise IndexError(f"row {i} is beyond the end of {x.filename}")
    finally:
        os.close(fd)
    return out


def _base_offset(x: Any) -> int:
    """Bytes from the map's start to row 0 of ``x`` (0 for the array np.load returned)."""
    import numpy as np

    base = x
    while getattr(base, "base", None) is not None and isinstance(base.base, np.ndarray):
        base = base.base
    if base is x:
        return 0
    return int(x.__array_interface__["data"][0] - base.__array_interface__["data"][0])
