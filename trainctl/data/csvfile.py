"""CSV files with a header row, read with the ``csv`` module (pandas is not a dependency).

Features must be numeric; a text column is an error that names the column, the line and the
value. A text target is label-encoded with its sorted unique values (as scikit-learn's
``LabelEncoder`` does), and those values become the class names.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from trainctl.config.base import did_you_mean
from trainctl.data.paths import resolve
from trainctl.errors import DataError


def _read(path: Path, delimiter: str) -> tuple[list[str], np.ndarray, list[int]]:
    """Header, the cells as a (rows, columns) str array, and each row's line number."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh, delimiter=delimiter)
            header = [h.strip() for h in next(reader, [])]
            rows: list[list[str]] = []
            lines: list[int] = []
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    raise DataError(
                        f"expected {len(header)} fields (as in the header) on line {reader.line_num} of "
                        f"{path}, received {len(row)}",
                        key="data.delimiter" if len(row) == 1 or len(header) == 1 else None,
                        hint=f"the delimiter is {delimiter!r}" if len(row) == 1 or len(header) == 1 else None,
                    )
                rows.append(row)
                lines.append(reader.line_num)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"expected a UTF-8 CSV file, received an unreadable one: {path} ({exc})") from exc
    if not header or not rows:
        raise DataError(f"expected a header row and at least one data row in {path}, received none")
    return header, np.char.strip(np.array(rows, dtype=str)), lines


def _column(header: list[str], ref: str | int, key: str, path: Path) -> int:
    if isinstance(ref, int):
        if -len(header) <= ref < len(header):
            return ref % len(header)
        raise DataError(f"expected a column index in 0..{len(header) - 1} for {path}, received {ref}", key=key)
    if ref in header:
        return header.index(ref)
    guess = did_you_mean(ref, header)
    raise DataError(
        f"expected a column named {ref!r} in {path}, received columns {', '.join(header)}",
        key=key,
        hint=f"did you mean {guess!r}?" if guess else None,
    )


def _numeric(cells: np.ndarray, names: list[str], lines: list[int], path: Path) -> np.ndarray:
    """The feature block as float64; the first bad cell is reported with its column and line."""
    try:
        return cells.astype(np.float64)
    except ValueError:
        pass
    for j, name in enumerate(names):
        try:
            cells[:, j].astype(np.float64)
        except ValueError:
            for i, value in enumerate(cells[:, j].tolist()):
                try:
                    float(value)
                except ValueError:
                    raise DataError(
                        f"expected numbers in feature column {name!r} of {path}, received {value!r} on line {lines[i]}",
                        key="data.features",
                        hint="encode text columns as numbers, or leave the column out of data.features",
                    ) from None
    raise AssertionError("unreachable: astype failed but every column parsed")  # pragma: no cover


def _target(col: np.ndarray) -> np.ndarray:
    """int64 if every value is an integer, else float64; raises ValueError for text."""
    try:
        return col.astype(np.int64)
    except ValueError:
        return col.astype(np.float64)


def check_split(spec: Any, header: list[str], path: Path) -> None:
    """A header that splits into one column: the file uses another delimiter than ``data.delimiter``."""
    if len(header) == 1:
        raise DataError(
            f"expected a target and feature columns in {path}, received one column {header[0]!r} "
            f"when splitting on {spec.delimiter!r}",
            key="data.delimiter",
            hint="set data.delimiter to the file's separator",
        )


def columns(spec: Any, header: list[str], path: Path) -> tuple[int, list[int]]:
    """``(target column, feature columns)`` from ``data.target``/``data.features`` (names or indices)."""
    t = _column(header, spec.target, "data.target", path)
    if spec.features is None:
        cols = [j for j in range(len(header)) if j != t]
    else:
        cols = [_column(header, f, f"data.features[{i}]", path) for i, f in enumerate(spec.features)]
        if t in cols:
            raise DataError(
                f"expected the target column {header[t]!r} to be left out of the features, received it "
                f"as data.features[{cols.index(t)}]",
                key=f"data.features[{cols.index(t)}]",
            )
    if not cols:
        raise DataError(f"expected at least one feature column in {path}, received only the target")
    return t, cols


def _table(spec: Any, path: Path) -> tuple[np.ndarray, np.ndarray]:
    header, cells, lines = _read(path, spec.delimiter)
    check_split(spec, header, path)
    t, cols = columns(spec, header, path)
    x = _numeric(cells[:, cols], [header[j] for j in cols], lines, path)
    return x, cells[:, t]


def load_csv(
    spec: Any, base_dir: Path
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, list[str] | None]:
    """``(x, y, x_test, y_test, class_names)`` from ``data.path`` and the optional ``data.test_path``."""
    x, y_text = _table(spec, resolve(base_dir, spec.path, "data.path"))
    x_test = y_text_test = None
    if spec.test_path is not None:
        x_test, y_text_test = _table(spec, resolve(base_dir, spec.test_path, "data.test_path"))
    y, y_test, names = encode_targets(y_text, y_text_test)
    return x, y, x_test, y_test, names


def encode_targets(
    y_text: np.ndarray, y_text_test: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    """Target cells (text) as numbers: int64 when every value is an integer, else float64; text
    labels become codes of one sorted vocabulary over train and test (its values: the class names)."""
    both = y_text if y_text_test is None else np.concatenate([y_text, y_text_test])
    try:
        _target(both)
    except ValueError:
        # text labels: one sorted vocabulary over train and test, so the codes agree
        names, codes = np.unique(both, return_inverse=True)
        codes = codes.astype(np.int64)
        y, y_test = codes[: len(y_text)], (None if y_text_test is None else codes[len(y_text) :])
        return y, y_test, [str(v) for v in names]
    y = _target(y_text)
    y_test = None if y_text_test is None else _target(y_text_test)
    if y_test is not None and y.dtype != y_test.dtype:
        y, y_test = y.astype(np.float64), y_test.astype(np.float64)
    return y, y_test, None


# ---------------------------------------------------------------------------------------------
# several inputs and outputs: a group of columns per input, a target column per output


def _groups(spec: Any, names: list[str], outputs: list[str]) -> tuple[dict[str, Any], dict[str, Any], bool, bool]:
    """``features`` and ``target`` as mappings by input and output name (a list or one column
    stands for the only input or output), and whether each was written as a mapping."""
    by_input = isinstance(spec.features, dict)
    by_output = isinstance(spec.target, dict)
    features = dict(spec.features) if by_input else {names[0]: spec.features}
    targets = dict(spec.target) if by_output else {outputs[0]: spec.target}
    return features, targets, by_input, by_output


def read_groups(
    spec: Any, path: Path, names: list[str], dtypes: list[str], outputs: list[str] | None
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """One array per input (its columns, in the group's order) and, unless ``outputs`` is None
    (predict), one text column per output, from one CSV file."""
    from trainctl.data.multi import cast_input

    header, cells, lines = _read(path, spec.delimiter)
    features, targets, by_input, by_output = _groups(spec, names, outputs or [""])
    tcols: list[int] = []
    if outputs is not None:
        for o in outputs:
            tcols.append(_column(header, targets[o], f"data.target.{o}" if by_output else "data.target", path))
    elif features.get(names[0], []) is None:  # predict, every column but the targets: skip those present
        tcols = [header.index(t) for t in targets.values() if isinstance(t, str) and t in header]
    arrays = []
    for name, dtype in zip(names, dtypes, strict=True):
        refs = features[name]
        prefix = f"data.features.{name}" if by_input else "data.features"
        if refs is None:  # the only input: every column but the targets
            cols = [j for j in range(len(header)) if j not in tcols]
        else:
            cols = [_column(header, ref, f"{prefix}[{i}]", path) for i, ref in enumerate(refs)]
        clash = next((i for i, j in enumerate(cols) if j in tcols), None)
        if clash is not None:
            raise DataError(
                f"expected the target column {header[cols[clash]]!r} to be left out of the features, "
                f"received it as {prefix}[{clash}]",
                key=f"{prefix}[{clash}]",
            )
        if not cols:
            raise DataError(f"expected at least one feature column in {path}, received only targets", key=prefix)
        arrays.append(cast_input(_numeric(cells[:, cols], [header[j] for j in cols], lines, path), dtype))
    return arrays, [cells[:, t] for t in tcols]


def load_csv_groups(
    spec: Any,
    base_dir: Path,
    inputs: list[tuple[str, str]],
    outputs: list[str],
    vocab: dict[str, list[str]] | None = None,
) -> tuple[Any, Any, Any, Any, dict[str, list[str]], Path]:
    """``(x, y, x_test, y_test, class_names, path)`` for a model with several inputs or outputs:
    TensorTuples with one array per input (its column group) and one per output (its column).

    Each target column is encoded on its own: text labels by their sorted vocabulary over train
    and test, or through ``vocab`` (a trained run's, by output name) so the codes are the run's.
    ``class_names`` holds each text target's classes, by output name."""
    from trainctl.data.multi import cast_target
    from trainctl.model.tensors import TensorTuple

    names, dtypes = [n for n, _ in inputs], [d for _, d in inputs]
    path = resolve(base_dir, spec.path, "data.path")
    x, y_text = read_groups(spec, path, names, dtypes, outputs)
    x_test: list[np.ndarray] | None = None
    y_text_test: list[np.ndarray | None] = [None] * len(outputs)
    if spec.test_path is not None:
        x_test, texts = read_groups(spec, resolve(base_dir, spec.test_path, "data.test_path"), names, dtypes, outputs)
        y_text_test = list(texts)
    y, y_test, class_names = [], [], {}
    for k, output in enumerate(outputs):
        yk, yk_test, names_k = encode_targets(y_text[k], y_text_test[k])
        if names_k is not None and vocab and output in vocab:
            known = {n: i for i, n in enumerate(vocab[output])}
            unknown = sorted(set(names_k) - set(known))
            if unknown:
                raise DataError(
                    f"expected {output!r} labels among the run's classes ({', '.join(known)}), received "
                    f"{', '.join(repr(u) for u in unknown[:5])} in {path}"
                )
            codes = np.asarray([known[n] for n in names_k], dtype=np.int64)
            yk, yk_test = codes[yk], (None if yk_test is None else codes[yk_test])
            names_k = list(vocab[output])
        y.append(cast_target(yk))
        y_test.append(None if yk_test is None else cast_target(yk_test))
        if names_k is not None:
            class_names[output] = names_k
    return (
        TensorTuple(x),
        TensorTuple(y),
        None if x_test is None else TensorTuple(x_test),
        None if spec.test_path is None else TensorTuple(y_test),
        class_names,
        path,
    )
