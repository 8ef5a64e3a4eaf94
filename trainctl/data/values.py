"""Values checked where they enter: array dtypes, finiteness, and labels against the loss.

A NaN in the data would otherwise surface epochs later as "the loss diverged" (exit 5), a complex
array would be cast to float silently, and a label of 7 for a 3-unit softmax would crash inside
torch. Each check is one vectorized pass over an array already in memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trainctl.errors import DataError

_FILE_FIELDS = {
    "npy": {"x": "x", "y": "y", "x_test": "x_test", "y_test": "y_test"},
    "idx": {"x": "images", "y": "labels", "x_test": "test_images", "y_test": "test_labels"},
}
_NPZ_KEYS = {"x": "x_train", "y": "y_train", "x_test": "x_test", "y_test": "y_test"}


def where_of(spec: Any, field: str) -> str:
    """The file (and archive key) an array of ``Raw`` came from, for messages."""
    source = getattr(spec, "source", "data")
    if source in _FILE_FIELDS:
        return str(getattr(spec, _FILE_FIELDS[source][field], None) or source)
    path = getattr(spec, "path", None)
    if source == "npz":
        return f"{path}[{getattr(spec, _NPZ_KEYS[field], field)}]"
    return f"{path} ({field})" if path else f"{source} data ({field})"


def check_array(arr: np.ndarray, where: str, key: str | None = None, first_row: int = 0) -> None:
    """Refuse dtypes a model cannot take, and NaN/inf, naming the file, row and column
    (``first_row``: the row number of ``arr[0]``, when ``arr`` is a chunk)."""
    dtype = arr.dtype
    if dtype.names is not None or dtype.kind in "OSUVMmc":
        what = {
            "O": "Python objects",
            "S": "byte strings",
            "U": "strings",
            "V": "structured records",
            "M": "dates",
            "m": "time deltas",
            "c": "complex numbers",
        }[dtype.kind if dtype.names is None else "V"]
        raise DataError(
            f"{where}: expected a real numeric array (int, float or bool), received {what} (dtype {dtype})",
            key=key,
            hint="convert it to float32 or int64 first" + (" (take .real or abs())" if dtype.kind == "c" else ""),
        )
    if dtype.kind != "f" or arr.size == 0:
        return
    finite = np.isfinite(arr)
    if finite.all():
        return
    bad = np.argwhere(~finite)[0]
    value = arr[tuple(bad)]
    row = (int(bad[0]) if len(bad) else 0) + first_row
    col = ", column " + ", ".join(str(int(i)) for i in bad[1:]) if len(bad) > 1 else ""
    count = int(arr.size - finite.sum())
    raise DataError(
        f"{where}: expected finite numbers, received {value} at row {row}{col} "
        f"(0-based data rows, header excluded; {count} non-finite value{'s' if count != 1 else ''})",
        key=key,
        hint="drop or impute the missing values before training",
    )


CHECK_CHUNK_BYTES = 16 * 2**20  # rows on disk are checked this much at a time


def check_raw(raw: Any, spec: Any) -> None:
    """``check_array`` on every array a source returned; rows on disk (a memory map, a shard
    table) are checked chunk by chunk, their pages released as it goes, so RSS stays bounded."""
    for field in ("x", "y", "x_test", "y_test"):
        arr = getattr(raw, field)
        if arr is None or not hasattr(arr, "dtype"):
            continue
        if type(arr) is np.ndarray:
            check_array(arr, where_of(spec, field))
        else:
            check_rows_on_disk(arr, where_of(spec, field))


def check_rows_on_disk(arr: Any, where: str) -> None:
    """:func:`check_array` over ``arr`` in chunks of about :data:`CHECK_CHUNK_BYTES`."""
    from trainctl.data.mapped import release_pages

    check_array(np.empty((0,), dtype=arr.dtype), where)  # the dtype, before reading anything
    if arr.dtype.kind != "f":
        return
    row_bytes = max(1, int(np.prod(arr.shape[1:], dtype=np.int64)) * arr.dtype.itemsize)
    step = max(1, CHECK_CHUNK_BYTES // row_bytes)
    for i in range(0, len(arr), step):
        check_array(np.array(arr[i : i + step]), where, first_row=i)
        release_pages(arr)


def check_labels(loss_spec: Any, y: np.ndarray, width: int | None, split: str = "training") -> None:
    """Sparse class labels must be whole numbers in ``[0, width)`` (or ``ignore_class``), as the
    README promises: a bad label is a data error (exit 3), not a crash inside the loss."""
    if getattr(loss_spec, "type", None) != "sparse_categorical_crossentropy" or y.size == 0 or not width:
        return
    values = np.asarray(y)
    if values.dtype.kind == "f" and not np.array_equal(values, np.round(values)):
        i = int(np.flatnonzero(values.reshape(-1) != np.round(values.reshape(-1)))[0])
        raise DataError(
            f"expected whole-number class labels for sparse_categorical_crossentropy, received "
            f"{values.reshape(-1)[i]} in the {split} labels (element {i})",
            key="compile.loss",
            hint="use integer labels, or categorical_crossentropy for soft targets",
        )
    flat = values.reshape(-1)
    ignore = getattr(loss_spec, "ignore_class", None)
    bad = (flat < 0) | (flat >= width)
    if ignore is not None:
        bad &= flat != ignore
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"expected class labels in 0..{width - 1} for a {width}-unit output, received "
            f"{flat[i].item()} in the {split} labels (element {i}; {int(bad.sum())} out of range)",
            key="compile.loss",
            hint=f"give the last layer {int(flat.max()) + 1} units, or fix the labels",
        )


def check_model_labels(loss_spec: Any, model: Any, y: Any, split: str = "training") -> None:
    """``check_labels`` for each of a model's outputs (one loss for all, or one per output name)."""
    from trainctl.model.tensors import TensorTuple

    if y is None:
        return
    if not isinstance(y, TensorTuple):
        check_labels(loss_spec, y, model.output_shape[-1] if model.output_shape else 1, split)
        return
    for name, shape, arr in zip(model.output_names, model.output_shapes, y, strict=True):
        spec = loss_spec.get(name) if isinstance(loss_spec, dict) else loss_spec
        check_labels(spec, np.asarray(arr), shape[-1] if shape else 1, f"{split} '{name}'")
