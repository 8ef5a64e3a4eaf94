"""Data for a model with several inputs or outputs: one array per input and per output.

An ``.npz`` archive keyed by name, as the issue's contract says: ``x_train_<input>``,
``y_train_<output>``, ``x_test_<input>``, ``y_test_<output>`` (a side with one array keeps the plain
``x_train``/``y_train`` key, or may use the named one). The arrays of one split share their rows,
so ``test_split`` and ``validation_split`` cut every array at the same rows. Preprocessing steps
apply to one array and are refused here (scale the arrays when writing the archive).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from trainctl.data.dataset import Dataset
from trainctl.data.paths import resolve
from trainctl.data.preprocess import Preprocessor
from trainctl.errors import ConfigError, DataError
from trainctl.model.tensors import TensorTuple


def _keys(prefix: str, names: list[str]) -> list[list[str]]:
    """Accepted keys per name: ``<prefix>_<name>``, and the plain ``<prefix>`` for a single name."""
    return [[f"{prefix}_{n}", *([prefix] if len(names) == 1 else [])] for n in names]


def load_multi(
    spec: Any,
    *,
    base_dir: Path,
    seed: int,
    inputs: list[tuple[str, str]],
    outputs: list[str],
    vocab: dict[str, list[str]] | None = None,
) -> Dataset:
    """``inputs``: (name, dtype) in model order; ``outputs``: output names in model order.

    From an ``.npz`` keyed by name, or a CSV whose ``features`` give each input its columns and
    whose ``target`` gives each output its column (:func:`trainctl.data.csvfile.load_csv_groups`;
    ``vocab``: a trained run's text classes by output, ``extra["output_class_names"]`` of its data).
    """
    from trainctl.config.data import check_data_for_model

    check_data_for_model(spec, [n for n, _ in inputs], outputs, loading=True)  # a CSV also at config validate
    if spec.source == "csv":
        from trainctl.data.csvfile import load_csv_groups

        x, y, x_test, y_test, vocabs, path = load_csv_groups(spec, base_dir, inputs, outputs, vocab)
        ds = _split(spec, seed, x, y, x_test, y_test, path, vocabs.get(outputs[0]) if len(outputs) == 1 else None)
        ds.extra = {"output_class_names": vocabs} if vocabs else None
        return ds
    x, y, x_test, y_test, path = _npz_groups(spec, base_dir, inputs, outputs)
    return _split(spec, seed, x, y, x_test, y_test, path, None)


def cast_input(a: np.ndarray, dtype: str) -> np.ndarray:
    """An input in its declared dtype, as the model takes it: int ids as int64, the rest float32."""
    return a.astype(np.int64 if dtype.startswith("int") else np.float32)


def cast_target(a: np.ndarray) -> np.ndarray:
    """A target: integer labels stay int64, the rest float32."""
    return a.astype(np.int64 if a.dtype.kind in "iub" else np.float32)


def _npz_groups(
    spec: Any, base_dir: Path, inputs: list[tuple[str, str]], outputs: list[str]
) -> tuple[TensorTuple, TensorTuple, TensorTuple | None, TensorTuple | None, Path]:
    path = resolve(base_dir, spec.path, "data.path")
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"expected an .npz archive in {path}, received an unreadable one ({exc})") from None
    if isinstance(archive, np.ndarray):
        raise DataError(f"expected an .npz archive in {path}, received a single array (.npy)", key="data.path")
    with archive:
        files = list(archive.files)

        def group(prefix: str, names: list[str], dtypes: list[str] | None, required: bool) -> TensorTuple | None:
            arrays = []
            for k, options in enumerate(_keys(prefix, names)):
                key = next((o for o in options if o in files), None)
                if key is None:
                    if not required:
                        return None
                    raise DataError(
                        f"expected the array {options[0]!r} in {path}, received keys {', '.join(files)}",
                        key="data.path",
                        hint=f"name one array per model {'input' if prefix[0] == 'x' else 'output'}: "
                        + ", ".join(o[0] for o in _keys(prefix, names)),
                    )
                arr = np.asarray(archive[key])
                if arr.ndim == 0 or arr.dtype.kind not in "fiub":
                    raise DataError(f"expected a numeric array with a batch axis under {key!r} in {path}")
                arrays.append(cast_input(arr, dtypes[k]) if dtypes is not None else cast_target(arr))
            rows = {len(a) for a in arrays}
            if len(rows) != 1:
                raise DataError(
                    f"expected the {prefix}_* arrays in {path} to share their rows, received {sorted(rows)}"
                )
            return TensorTuple(arrays)

        names, dtypes = [n for n, _ in inputs], [d for _, d in inputs]
        x = group("x_train", names, dtypes, True)
        y = group("y_train", outputs, None, True)
        x_test = group("x_test", names, dtypes, False)
        y_test = group("y_test", outputs, None, False)
    assert x is not None and y is not None
    return x, y, x_test, y_test, path


def _split(
    spec: Any,
    seed: int,
    x: TensorTuple,
    y: TensorTuple,
    x_test: TensorTuple | None,
    y_test: TensorTuple | None,
    path: Path,
    class_names: list[str] | None,
) -> Dataset:
    """``test_split`` (the same rows of every array), then the one-array-per-side contract."""
    if x.shape[0] != y.shape[0]:
        raise DataError(f"expected as many training targets as samples, received {x.shape[0]} and {y.shape[0]}")
    if spec.test_split is not None:
        if x_test is not None:
            raise ConfigError("expected no test_split: the data has its own test rows", key="data.test_split")
        rng = np.random.default_rng(seed)
        order = rng.permutation(x.shape[0])
        n_test = int(np.ceil(spec.test_split * x.shape[0]))
        test, train = order[:n_test], order[n_test:]
        x, x_test = TensorTuple(a[train] for a in x), TensorTuple(a[test] for a in x)
        y, y_test = TensorTuple(a[train] for a in y), TensorTuple(a[test] for a in y)
    if (x_test is None) != (y_test is None):
        raise DataError(f"expected both x_test_* and y_test_* arrays in {path}, or neither")

    def one(t: TensorTuple | None) -> Any:  # the contract: a plain array for a single input/output
        return t[0] if t is not None and len(t) == 1 else t

    return Dataset(one(x), one(y), one(x_test), one(y_test), Preprocessor([], []), class_names, "")
