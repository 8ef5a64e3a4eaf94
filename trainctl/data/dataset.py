"""``load_data``: source -> optional test split -> preprocessing fitted on the training rows only."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trainctl.data.preprocess import Preprocessor
from trainctl.data.sources import Raw, load_raw
from trainctl.data.splits import carve_test
from trainctl.errors import ConfigError, DataError

MEMORY_BUDGET_BYTES = 2 * 2**30  # data.cache: auto keeps a split in memory up to this (and 1/4 of RAM)


def memory_budget() -> int:
    """The ``data.cache: auto`` budget: 2 GiB, or a quarter of the machine's RAM when that is less."""
    import os

    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return MEMORY_BUDGET_BYTES
    return min(MEMORY_BUDGET_BYTES, ram // 4)


def plan_cache(requested: str, nbytes: int, *, budget: int | None = None) -> str:
    """``memory`` or ``none``: ``auto`` is memory when the decoded training data fits the budget."""
    if requested != "auto":
        return requested
    return "memory" if nbytes <= (memory_budget() if budget is None else budget) else "none"


def decoded_bytes(x: Any) -> int:
    """The float32 size of ``x`` once decoded (what the in-memory path would hold)."""
    return len(x) * int(np.prod(x.shape[1:], dtype=np.int64)) * 4


class View:
    """Rows ``idx`` of ``x`` (all rows when ``idx`` is None), read only when sliced: a memory map
    stays on disk until a batch asks for its rows."""

    def __init__(self, x: Any, idx: np.ndarray | None = None) -> None:
        self.x, self.idx = x, idx
        self.shape = (len(self), *x.shape[1:])
        self.dtype = x.dtype

    def __len__(self) -> int:
        return len(self.x) if self.idx is None else len(self.idx)

    def __getitem__(self, rows: Any) -> np.ndarray:
        picked = rows if self.idx is None else self.idx[rows]
        if isinstance(self.x, np.memmap) and not isinstance(picked, slice) and np.ndim(picked) == 1:
            from trainctl.data.mapped import read_rows

            return read_rows(self.x, picked)  # shuffled rows: pread, so the file never becomes resident
        return np.asarray(self.x[picked])


@dataclass
class Dataset:
    """Arrays ready for ``fit``/``evaluate``: x float32 (unless cast), y int64 labels or float32.

    A streamed dataset (``streamed`` true) keeps x_train/x_test as :class:`View`s of the raw rows
    (on disk, or files to decode); the batch source transforms them one batch at a time."""

    x_train: Any
    y_train: np.ndarray
    x_test: Any
    y_test: np.ndarray | None
    preprocessor: Preprocessor
    class_names: list[str] | None
    task_hint: str
    streamed: bool = False
    cache: str = "memory"  # the path chosen: memory or none (streaming)
    extra: dict[str, Any] | None = None  # source facts for run.json / preprocess.json
    val: tuple[Any, np.ndarray] | None = None  # a validation split the source made (image_directory)

    def sample_shape(self) -> tuple[int, ...]:
        """One transformed training sample's shape."""
        if not self.streamed:
            return tuple(self.x_train.shape[1:])
        return tuple(self.preprocessor.transform_x(self.x_train[0:1]).shape[1:])


def _in_memory(x: Any) -> Any:
    return x if isinstance(x, np.ndarray) else np.asarray(x)


def _check_rows(x: np.ndarray, y: np.ndarray, split: str) -> None:
    if len(x) != len(y):
        raise DataError(f"expected as many {split} labels as samples, received {len(x)} samples and {len(y)} labels")
    if len(x) == 0:
        raise DataError(f"expected at least one {split} sample, received 0")


def load_data(spec: Any, *, base_dir: Path, seed: int) -> Dataset:
    """Load ``spec`` (a ``SourceSpec``), carve ``test_split`` if asked, fit the steps on train."""
    if spec.source == "image_directory":
        from trainctl.data.images import load_image_directory

        return load_image_directory(spec, base_dir=Path(base_dir), seed=seed)
    raw: Raw = load_raw(spec, base_dir=Path(base_dir), seed=seed)
    _check_rows(raw.x, raw.y, "training")
    if (raw.cache or plan_cache(spec.cache, decoded_bytes(raw.x))) == "none":
        return _streamed(spec, raw, seed)
    raw.x = _in_memory(raw.x)  # a shard table that fits: one array
    raw.x_test = None if raw.x_test is None else _in_memory(raw.x_test)
    if spec.test_split is not None:
        _no_second_test_split(spec, raw)
        stratify = spec.stratify and raw.task_hint == "classification"
        raw.x, raw.x_test, raw.y, raw.y_test = carve_test(raw.x, raw.y, spec.test_split, seed=seed, stratify=stratify)
    x_steps, y_steps = spec.steps()
    keys = ("data.x_steps", "data.y_steps") if spec.source == "npy" else ("data.x", "data.y")
    pre, x_train, y_train = Preprocessor.fit(x_steps, y_steps, raw.x, raw.y, x_key=keys[0], y_key=keys[1])
    x_test = y_test = None
    if raw.x_test is not None and raw.y_test is not None:
        _check_rows(raw.x_test, raw.y_test, "test")
        x_test, y_test = pre.transform_x(raw.x_test), pre.transform_y(raw.y_test)
    return Dataset(x_train, y_train, x_test, y_test, pre, raw.class_names, raw.task_hint)


def load_test_split(
    spec: Any, *, base_dir: Path, seed: int, preprocessor: Preprocessor, rows: int | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """The test split exactly as :func:`load_data` carved it, transformed by a GIVEN fitted
    preprocessor (``evaluate`` replays the saved one; refitting could differ). ``rows`` keeps the
    first rows only, as ``take_rows`` did for a smoke run. None when the data has no test split."""
    raw: Raw = load_raw(spec, base_dir=Path(base_dir), seed=seed)
    if spec.test_split is not None and raw.x_test is None:
        stratify = spec.stratify and raw.task_hint == "classification"
        _, raw.x_test, _, raw.y_test = carve_test(raw.x, raw.y, spec.test_split, seed=seed, stratify=stratify)
    if raw.x_test is None or raw.y_test is None:
        return None
    x, y = raw.x_test[:rows], raw.y_test[:rows]
    _check_rows(x, y, "test")
    return preprocessor.transform_x(x), preprocessor.transform_y(y)


def _no_second_test_split(spec: Any, raw: Raw) -> None:
    if raw.x_test is not None:
        raise ConfigError(
            f"expected no test_split for a {spec.source} source that already has a test split, "
            f"received test_split={spec.test_split}",
            key="data.test_split",
            hint="remove test_split to use the source's own test set",
        )


def _streamed(spec: Any, raw: Raw, seed: int) -> Dataset:
    """The same split and fitted steps as the in-memory path, without reading x whole: the test
    carve works on row indices, and the statistics are gathered chunk by chunk."""
    x_train, x_test, y_test = View(raw.x), None, raw.y_test
    y_train = np.asarray(raw.y)
    if raw.x_test is not None:
        x_test = View(raw.x_test)
    if spec.test_split is not None:
        _no_second_test_split(spec, raw)
        stratify = spec.stratify and raw.task_hint == "classification"
        rows = np.arange(len(raw.x))
        tr, te, y_train, y_test = carve_test(rows, y_train, spec.test_split, seed=seed, stratify=stratify)
        x_train, x_test = View(raw.x, tr), View(raw.x, te)
    x_steps, y_steps = spec.steps()
    keys = ("data.x_steps", "data.y_steps") if spec.source == "npy" else ("data.x", "data.y")
    pre = Preprocessor.fit_streaming(x_steps, y_steps, x_train, y_train, x_key=keys[0], y_key=keys[1])  # type: ignore[arg-type]
    y_train = pre.transform_y(y_train)
    if x_test is not None and y_test is not None:
        _check_rows(x_test, y_test, "test")  # type: ignore[arg-type]
        y_test = pre.transform_y(y_test)
    return Dataset(x_train, y_train, x_test, y_test, pre, raw.class_names, raw.task_hint, streamed=True, cache="none")
