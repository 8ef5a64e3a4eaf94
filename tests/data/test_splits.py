"""validation_split against Keras, stratified test_split against counted proportions, take_rows."""

from __future__ import annotations

import os

import numpy as np
import pytest
from datahelp import source

from trainctl.data import load_data, take_rows, validation_split
from trainctl.errors import DataError


def test_validation_split_takes_the_last_rows() -> None:
    train, val = validation_split(10, 0.3)
    rows = np.arange(10)
    assert rows[train].tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert rows[val].tolist() == [7, 8, 9]


@pytest.mark.keras
@pytest.mark.parametrize(("n", "v"), [(10, 0.3), (7, 0.5), (1000, 0.1), (33, 0.2), (3, 0.34), (60000, 0.2)])
def test_validation_split_matches_keras(n: int, v: float) -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    pytest.importorskip("keras")
    from keras.src.trainers.data_adapters.array_slicing import train_validation_split

    rows = np.arange(n)
    (k_train,), (k_val,) = train_validation_split((rows,), validation_split=v)
    train, val = validation_split(n, v)
    np.testing.assert_array_equal(rows[train], np.asarray(k_train))
    np.testing.assert_array_equal(rows[val], np.asarray(k_val))


@pytest.mark.keras
@pytest.mark.parametrize(("n", "v"), [(1, 0.5), (3, 0.7), (2, 0.99), (10, 1e-17)])
def test_validation_split_too_small_is_an_error(n: int, v: float) -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    pytest.importorskip("keras")
    from keras.src.trainers.data_adapters.array_slicing import train_validation_split

    with pytest.raises(ValueError, match="not sufficient to split"):
        train_validation_split((np.arange(n),), validation_split=v)
    with pytest.raises(DataError, match=f"validation_split={v}, received {n} samples"):
        validation_split(n, v)


def test_stratified_test_split_keeps_class_proportions() -> None:
    # 20 samples of class 2 among 200: a stratified 25% split keeps exactly 5 of them in test
    spec = source(source="synthetic", kind="blobs", n=200, classes=4, test_split=0.25)
    ds = load_data(spec, base_dir=".", seed=3)
    from sklearn.datasets import make_blobs

    _, y_all = make_blobs(n_samples=200, n_features=2, centers=4, random_state=3)
    full = np.bincount(y_all, minlength=4)
    test = np.bincount(ds.y_test, minlength=4)
    assert len(ds.y_test) == 50 and len(ds.y_train) == 150
    np.testing.assert_allclose(test, full * 0.25, atol=1)
    np.testing.assert_array_equal(np.bincount(ds.y_train, minlength=4) + test, full)


def test_test_split_is_seeded_and_train_only_standardized() -> None:
    from sklearn.model_selection import train_test_split

    spec = source(source="sklearn", name="wine", test_split=0.3, x=["standardize"])
    ds = load_data(spec, base_dir=".", seed=11)
    from sklearn.datasets import load_wine

    raw = load_wine()
    x_tr, x_te, _, y_te = train_test_split(raw.data, raw.target, test_size=0.3, random_state=11, stratify=raw.target)
    mean, std = x_tr.mean(axis=0), x_tr.std(axis=0)
    np.testing.assert_allclose(ds.x_test, (x_te - mean) / std, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(ds.y_test, y_te)
    np.testing.assert_allclose(ds.x_train.mean(axis=0), 0, atol=1e-5)


def test_unstratifiable_split_points_at_stratify() -> None:
    # 5 xor rows, 2 classes, a 1-row test split: sklearn cannot stratify that
    spec = source(source="synthetic", kind="xor", n=5, test_split=0.2)
    with pytest.raises(DataError) as e:
        load_data(spec, base_dir=".", seed=0)
    assert e.value.key == "data.stratify" and "stratify: false" in (e.value.hint or "")
    ds = load_data(spec.model_copy(update={"stratify": False}), base_dir=".", seed=0)
    assert len(ds.y_test) == 1 and len(ds.y_train) == 4


def test_take_rows_keeps_the_first_rows() -> None:
    ds = load_data(source(source="sklearn", name="iris", test_split=0.2), base_dir=".", seed=0)
    small = take_rows(ds, 8, 3)
    np.testing.assert_array_equal(small.x_train, ds.x_train[:8])
    np.testing.assert_array_equal(small.y_test, ds.y_test[:3])
    assert small.preprocessor is ds.preprocessor and small.class_names == ds.class_names
    no_test = take_rows(load_data(source(source="synthetic", kind="linear"), base_dir=".", seed=0), 5, 5)
    assert no_test.x_test is None and len(no_test.x_train) == 5
