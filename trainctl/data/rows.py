"""Row access shared by the arrays that read their rows from disk only when indexed.

``x[i]``, ``x[a:b]``, ``x[a:b:k]`` and ``x[index_array]`` behave as on a numpy array (negative
indices included, out-of-range refused); a subclass reads a contiguous run (:meth:`_span`) and a
list of in-range rows (:meth:`_take`), each into a new array.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class DiskRows:
    """The indexing of a lazily read array of ``shape[0]`` rows of ``shape[1:]`` and ``dtype``."""

    shape: tuple[int, ...]
    dtype: np.dtype[Any]

    def __len__(self) -> int:
        return self.shape[0]

    def _span(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start..stop-1`` (``0 <= start <= stop <= len``)."""
        raise NotImplementedError

    def _take(self, idx: np.ndarray) -> np.ndarray:
        """Rows ``idx`` (int64, each in ``0..len-1``, any order, repeats allowed), in that order."""
        raise NotImplementedError

    def __getitem__(self, rows: Any) -> np.ndarray:
        if isinstance(rows, (int, np.integer)):
            return self[np.asarray([rows])][0]
        if isinstance(rows, slice):
            start, stop, step = rows.indices(len(self))
            if step != 1:
                return self[np.arange(start, stop, step)]
            return self._span(start, max(start, stop))
        idx = np.asarray(rows, dtype=np.int64).reshape(-1)
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"row index out of range for {n} rows")
        return self._take(np.where(idx < 0, idx + n, idx))
