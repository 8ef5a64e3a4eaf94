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


@dataclass
class Dataset:
    """Arrays ready for ``fit``/``evaluate``: x float32 (unless cast), y int64 labels or float32."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    preprocessor: Preprocessor
    class_names: list[str] | None
    task_hint: str


def _check_rows(x: np.ndarray, y: np.ndarray, split: str) -> None:
    if len(x) != len(y):
        raise DataError(f"expected as many {split} labels as samples, received {len(x)} samples and {len(y)} labels")
    if len(x) == 0:
        raise DataError(f"expected at least one {split} sample, received 0")


def load_data(spec: Any, *, base_dir: Path, seed: int) -> Dataset:
    """Load ``spec`` (a ``SourceSpec``), carve ``test_split`` if asked, fit the steps on train."""
    raw: Raw = load_raw(spec, base_dir=Path(base_dir), seed=seed)
    _check_rows(raw.x, raw.y, "training")
    if spec.test_split is not None:
        if raw.x_test is not None:
            raise ConfigError(
                f"expected no test_split for a {spec.source} source that already has a test split, "
                f"received test_split={spec.test_split}",
                key="data.test_split",
                hint="remove test_split to use the source's own test set",
            )
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
