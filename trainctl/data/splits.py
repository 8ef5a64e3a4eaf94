"""Train/validation/test splits with Keras's (and scikit-learn's) exact semantics."""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import numpy as np

from trainctl.errors import DataError

if TYPE_CHECKING:
    from trainctl.data.dataset import Dataset


def validation_split(n: int, fraction: float) -> tuple[slice, slice]:
    """Keras ``fit(validation_split=v)``: train on rows ``[0, floor(n*(1-v)))``, validate on the
    rest, the *last* rows, taken before any shuffling (so a sorted dataset gives a biased split,
    exactly as in Keras)."""
    split_at = math.floor(n * (1.0 - fraction))
    if split_at == 0 or split_at == n:
        raise DataError(
            f"expected enough samples to split into training and validation sets with "
            f"validation_split={fraction}, received {n} samples",
            key="fit.validation_split",
            hint="provide more data, or a different validation_split",
        )
    return slice(0, split_at), slice(split_at, n)


def _strata(y: np.ndarray) -> np.ndarray:
    """One class id per row: sparse labels as they are, (N, 1) columns raveled, one-hot argmaxed."""
    flat = y.reshape(len(y), -1)
    return flat[:, 0] if flat.shape[1] == 1 else flat.argmax(axis=1)


def carve_test(
    x: np.ndarray, y: np.ndarray, fraction: float, *, seed: int, stratify: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Carve a held-out test set: ``train_test_split(test_size=fraction, random_state=seed)``,
    stratified by class when asked, so rare classes appear in both splits."""
    from sklearn.model_selection import train_test_split  # slow import; only needed here

    try:
        x_tr, x_te, y_tr, y_te = train_test_split(
            x, y, test_size=fraction, random_state=seed, stratify=_strata(y) if stratify else None
        )
    except ValueError as exc:
        key = "data.stratify" if stratify and "class" in str(exc) else "data.test_split"
        raise DataError(
            f"expected data that can be split with test_split={fraction}, received {len(x)} rows: {exc}",
            key=key,
            hint="set `stratify: false`" if key == "data.stratify" else None,
        ) from exc
    return x_tr, x_te, y_tr, y_te


def take_rows(ds: Dataset, n_train: int, n_test: int) -> Dataset:
    """The first rows of each split (``--smoke``); the fitted preprocessor is kept as it is."""
    if ds.streamed:
        from trainctl.data.dataset import View

        return dataclasses.replace(
            ds,
            x_train=View(ds.x_train, np.arange(min(n_train, len(ds.x_train)))),
            y_train=ds.y_train[:n_train],
            x_test=None if ds.x_test is None else View(ds.x_test, np.arange(min(n_test, len(ds.x_test)))),
            y_test=None if ds.y_test is None else ds.y_test[:n_test],
        )
    return dataclasses.replace(
        ds,
        x_train=ds.x_train[:n_train],
        y_train=ds.y_train[:n_train],
        x_test=None if ds.x_test is None else ds.x_test[:n_test],
        y_test=None if ds.y_test is None else ds.y_test[:n_test],
    )
