"""synthetic, sklearn, npz and npy sources, and the missing-file error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from datahelp import source

from trainctl.data import load_data
from trainctl.errors import ConfigError, DataError, DataFileNotFound


def load(tmp_path: Path = Path("."), seed: int = 0, **fields):
    return load_data(source(**fields), base_dir=tmp_path, seed=seed)


# --- synthetic --------------------------------------------------------------------------------


def test_linear_is_4x_plus_3_on_the_requested_range() -> None:
    ds = load(source="synthetic", kind="linear", n=50, low=-2, high=5)
    x, y = ds.x_train, ds.y_train
    assert x.shape == (50, 1) and y.shape == (50, 1) and y.dtype == np.float32
    assert x.min() >= -2 and x.max() < 5
    np.testing.assert_allclose(y, 4 * x + 3, rtol=1e-6, atol=1e-5)
    assert ds.task_hint == "regression" and ds.x_test is None


def test_quadratic_noise_is_gaussian_with_the_given_scale_and_seeded() -> None:
    ds = load(source="synthetic", kind="quadratic", n=4000, noise=0.5, seed=5)
    residual = ds.y_train - (1.5 * ds.x_train.astype(np.float64) ** 2 - 12 * ds.x_train + 0.5)
    assert abs(residual.mean()) < 0.05 and abs(residual.std() - 0.5) < 0.03
    again = load(source="synthetic", kind="quadratic", n=4000, noise=0.5, seed=5)
    other = load(source="synthetic", kind="quadratic", n=4000, noise=0.5, seed=6)
    np.testing.assert_array_equal(again.y_train, ds.y_train)
    assert not np.array_equal(other.y_train, ds.y_train)


def test_xor_truth_table_once_and_tiled() -> None:
    ds = load(source="synthetic", kind="xor", n=4)
    assert ds.x_train.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert ds.y_train.tolist() == [[0], [1], [1], [0]] and ds.y_train.dtype == np.float32
    big = load(source="synthetic", kind="xor", n=10)
    assert big.x_train.shape == (10, 2) and big.y_train.shape == (10, 1)
    np.testing.assert_array_equal(big.y_train[:, 0], (big.x_train[:, 0] != big.x_train[:, 1]).astype(float))
    noisy = load(source="synthetic", kind="xor", n=400, noise=0.1)
    np.testing.assert_allclose(np.round(noisy.x_train), np.tile([[0, 0], [0, 1], [1, 0], [1, 1]], (100, 1)))
    with pytest.raises(ConfigError) as e:
        load(source="synthetic", kind="xor", n=3)
    assert e.value.key == "data.n"


def test_random_and_blobs() -> None:
    ds = load(source="synthetic", kind="random", n=30, features=3, low=1, high=2)
    assert ds.x_train.shape == (30, 3) and ds.y_train.shape == (30, 1)
    assert ds.x_train.min() >= 1 and ds.x_train.max() < 2 and 0 <= ds.y_train.min() < ds.y_train.max() < 1
    from sklearn.datasets import make_blobs

    ref_x, ref_y = make_blobs(n_samples=60, n_features=4, centers=5, random_state=9)
    ds = load(source="synthetic", kind="blobs", n=60, features=4, classes=5, seed=9)
    np.testing.assert_allclose(ds.x_train, ref_x, rtol=1e-6)
    np.testing.assert_array_equal(ds.y_train, ref_y)
    assert ds.y_train.dtype == np.int64 and ds.task_hint == "classification"


# --- sklearn ----------------------------------------------------------------------------------


def test_sklearn_digits_and_diabetes() -> None:
    from sklearn.datasets import load_diabetes, load_digits

    ds = load(source="sklearn", name="digits", x=[{"scale": 16}, {"reshape": [8, 8, 1]}])
    ref = load_digits()
    np.testing.assert_allclose(ds.x_train, (ref.images / 16)[..., None], rtol=1e-6)
    np.testing.assert_array_equal(ds.y_train, ref.target)
    assert ds.class_names == [str(i) for i in range(10)]
    reg = load(source="sklearn", name="diabetes")
    np.testing.assert_allclose(reg.y_train[:, 0], load_diabetes().target)
    assert reg.y_train.shape == (442, 1) and reg.task_hint == "regression" and reg.class_names is None


# --- npz / npy --------------------------------------------------------------------------------

X = np.arange(24, dtype=np.float64).reshape(6, 4)
Y = np.array([0, 1, 2, 0, 1, 2], dtype=np.uint8)


def test_npz_default_keras_keys(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x_train=X, y_train=Y, x_test=X[:2] * 2, y_test=Y[:2])
    ds = load(tmp_path, source="npz", path="d.npz", x=[{"scale": 2}])
    np.testing.assert_array_equal(ds.x_train, (X / 2).astype(np.float32))
    np.testing.assert_array_equal(ds.x_test, X[:2].astype(np.float32))
    assert ds.y_train.dtype == np.int64 and ds.task_hint == "classification"


def test_npz_without_test_keys_and_custom_keys(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", features=X, target=Y)
    ds = load(tmp_path, source="npz", path="d.npz", x_train="features", y_train="target", test_split=0.5)
    assert len(ds.x_train) == 3 and len(ds.x_test) == 3
    with pytest.raises(DataError) as e:
        load(tmp_path, source="npz", path="d.npz", x_train="featurs", y_train="target")
    assert e.value.key == "data.x_train" and "features, target" in str(e.value)
    assert e.value.hint == "did you mean 'features'?"
    with pytest.raises(DataError) as e:  # an explicitly named test key must exist
        load(tmp_path, source="npz", path="d.npz", x_train="features", y_train="target", x_test="xt")
    assert e.value.key == "data.x_test"


def test_npz_never_unpickles(tmp_path: Path) -> None:
    np.savez(tmp_path / "evil.npz", x_train=np.array([{"a": 1}], dtype=object), y_train=Y[:1])
    with pytest.raises(DataError) as e:
        load(tmp_path, source="npz", path="evil.npz")
    assert "allow_pickle" in str(e.value) and e.value.key == "data.x_train"


def test_npy_files_and_steps_keys(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", Y)
    ds = load(tmp_path, source="npy", x="x.npy", y="y.npy", x_steps=["standardize"], y_steps=[{"one_hot": 3}])
    np.testing.assert_allclose(ds.x_train, (X - X.mean(0)) / X.std(0), rtol=1e-5)
    np.testing.assert_array_equal(ds.y_train, np.eye(3)[Y])
    with pytest.raises(DataError) as e:
        load(tmp_path, source="npy", x="x.npy", y="y.npy", y_steps=[{"one_hot": 2}])
    assert e.value.key == "data.y_steps[0]"
    np.save(tmp_path / "obj.npy", np.array([None, 1], dtype=object))
    with pytest.raises(DataError, match="allow_pickle"):
        load(tmp_path, source="npy", x="obj.npy", y="y.npy")


def test_row_count_mismatch(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", Y[:5])
    with pytest.raises(DataError, match="6 samples and 5 labels"):
        load(tmp_path, source="npy", x="x.npy", y="y.npy")


def test_missing_file_suggests_the_sibling(tmp_path: Path) -> None:
    np.savez(tmp_path / "train.npz", x_train=X, y_train=Y)
    with pytest.raises(DataFileNotFound) as e:
        load(tmp_path, source="npz", path="trian.npz")
    assert e.value.key == "data.path" and str(tmp_path / "trian.npz") in str(e.value)
    assert e.value.hint == "did you mean 'train.npz'?"
    assert isinstance(e.value, FileNotFoundError) and e.value.exit_code == 3


@pytest.mark.parametrize("cache", ["memory", "none"])
def test_test_split_on_a_source_with_its_own_test_set_is_refused(tmp_path: Path, cache: str) -> None:
    """In memory and streamed alike: carving a second test split is a config error naming the key."""
    x = np.zeros((20, 3), np.float32)
    y = np.zeros(20, np.int64)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x[:4], y_test=y[:4])
    with pytest.raises(ConfigError, match="already has a test split") as err:
        load(tmp_path, source="npz", path="d.npz", test_split=0.2, cache=cache)
    assert err.value.key == "data.test_split"
