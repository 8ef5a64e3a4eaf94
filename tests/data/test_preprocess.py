"""Each preprocessing step against numpy / scikit-learn, fitting on train only, JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from datahelp import steps
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from trainctl.data import Preprocessor
from trainctl.errors import ArtifactError, DataError

RNG = np.random.default_rng(7)
X = RNG.normal(3.0, 2.0, (40, 5))
Y = RNG.integers(0, 4, 40)


def fit(x_steps: list, y_steps: list | None = None, x: np.ndarray = X, y: np.ndarray = Y):
    return Preprocessor.fit(steps(*x_steps), steps(*(y_steps or [])), x, y)


def test_scale_divides_like_keras_tutorials() -> None:
    img = RNG.integers(0, 256, (6, 4, 4)).astype(np.uint8)
    _, x, _ = fit([{"scale": 255}], x=img, y=Y[:6])
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x, img.astype("float32") / 255)


def test_standardize_matches_sklearn_and_uses_train_statistics_only() -> None:
    x_train, x_test = X[:30].copy(), X[30:] + 5.0
    x_train[:, 2] = 1.5  # constant column: std 0 is replaced by 1, as in sklearn
    pre, xt, _ = fit(["standardize"], x=x_train, y=Y[:30])
    ref = StandardScaler().fit(x_train)
    np.testing.assert_allclose(xt, ref.transform(x_train), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(pre.transform_x(x_test), ref.transform(x_test), rtol=1e-5, atol=1e-5)
    # fitted on train: the shifted test split is not re-centred
    assert abs(pre.transform_x(x_test)[:, 0].mean()) > 1.0
    assert xt.dtype == np.float32


def test_standardize_is_per_feature_for_images() -> None:
    img = RNG.integers(0, 256, (20, 3, 3)).astype(np.uint8)
    _, x, _ = fit([{"scale": 255}, "standardize"], x=img, y=Y[:20])
    f = img.astype(np.float64) / 255
    std = f.std(axis=0)
    expected = (f - f.mean(axis=0)) / np.where(std == 0, 1, std)
    np.testing.assert_allclose(x, expected, rtol=1e-4, atol=1e-5)


def test_normalize_matches_minmax_scaler_fitted_on_train() -> None:
    pre, xt, _ = fit(["normalize"], x=X[:30], y=Y[:30])
    ref = MinMaxScaler().fit(X[:30])
    np.testing.assert_allclose(xt, ref.transform(X[:30]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pre.transform_x(X[30:]), ref.transform(X[30:]), rtol=1e-5, atol=1e-6)


def test_flatten_reshape_clip_cast() -> None:
    img = RNG.integers(0, 256, (4, 28, 28)).astype(np.uint8)
    _, flat, _ = fit(["flatten"], x=img, y=Y[:4])
    np.testing.assert_array_equal(flat, img.reshape(4, 784).astype(np.float32))
    _, chw, _ = fit([{"reshape": [-1, 28, 1]}], x=img, y=Y[:4])
    assert chw.shape == (4, 28, 28, 1)
    _, clipped, _ = fit([{"clip": [-1, 2.5]}])
    np.testing.assert_array_equal(clipped, np.clip(X, -1, 2.5).astype(np.float32))
    _, ids, _ = fit([{"cast": "int64"}], x=np.array([[1.0, 2.0], [3.0, 4.0]]), y=Y[:2])
    assert ids.dtype == np.int64 and ids.tolist() == [[1, 2], [3, 4]]
    _, half, _ = fit([{"cast": "float16"}])
    assert half.dtype == np.float16


def test_cast_bfloat16_rounds_like_ml_dtypes() -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = np.concatenate([RNG.normal(0, 100, (50, 3)), [[np.inf, -np.inf, 1e38]]])
    _, got, _ = fit([{"cast": "bfloat16"}], x=x, y=np.zeros(51, dtype=int))
    expected = x.astype(np.float32).astype(ml_dtypes.bfloat16).astype(np.float32)
    assert got.dtype == np.float32  # stored as float32: numpy and torch.from_numpy have no bfloat16
    np.testing.assert_array_equal(got, expected)


def test_reshape_size_mismatch_names_the_step() -> None:
    with pytest.raises(DataError) as err:
        fit([{"scale": 255}, {"reshape": [28, 28, 1]}], x=np.zeros((3, 100)), y=Y[:3])
    assert str(err.value) == "expected 784 values per sample for reshape [28, 28, 1], received 100"
    assert err.value.key == "data.x[1]"


def test_one_hot_matches_eye_and_is_float32() -> None:
    _, _, y = fit([], [{"one_hot": 4}])
    np.testing.assert_array_equal(y, np.eye(4, dtype=np.float32)[Y])
    assert y.dtype == np.float32 and y.shape == (40, 4)
    _, _, y_col = fit([], [{"one_hot": 4}], y=Y.reshape(-1, 1))  # (N, 1) columns are sparse too
    np.testing.assert_array_equal(y_col, y)


def test_double_one_hot_is_an_error_that_says_so() -> None:
    with pytest.raises(DataError) as err:
        fit([], [{"one_hot": 4}, {"one_hot": 4}])
    assert err.value.key == "data.y[1]"
    assert "already one-hot" in str(err.value) and "(40, 4)" in str(err.value)
    assert "remove the one_hot step" in (err.value.hint or "")
    already = np.eye(10, dtype=np.float32)[RNG.integers(0, 10, 12)]
    with pytest.raises(DataError, match=r"already one-hot, shape \(12, 10\)") as err2:
        fit([], [{"one_hot": 10}], x=X[:12], y=already)
    assert err2.value.key == "data.y[0]"


@pytest.mark.parametrize("bad", [4, -1])
def test_one_hot_rejects_labels_out_of_range(bad: int) -> None:
    y = Y.copy()
    y[5] = bad
    with pytest.raises(DataError, match=f"received label {bad}") as err:
        fit([], [{"one_hot": 4}], y=y)
    assert err.value.key == "data.y[0]"


def test_one_hot_rejects_fractional_labels() -> None:
    with pytest.raises(DataError, match="integer class labels"):
        fit([], [{"one_hot": 3}], y=np.array([0.0, 1.5, 2.0]), x=X[:3])


def test_default_dtypes_and_target_shapes() -> None:
    _, x, y = fit([], [], x=np.arange(6, dtype=np.uint8).reshape(3, 2), y=np.array([0, 1, 2], np.uint8))
    assert x.dtype == np.float32 and y.dtype == np.int64 and y.shape == (3,)
    _, _, reg = fit([], [], x=X[:3], y=np.array([0.5, 1.5, 2.5]))
    assert reg.dtype == np.float32 and reg.shape == (3, 1)  # like Dense(1)'s (N, 1) output


def test_json_round_trip_reproduces_the_transform() -> None:
    pre, _, _ = fit([{"scale": 2}, "standardize", "normalize", {"clip": [0, 0.9]}], [{"one_hot": 4}])
    text = json.dumps(pre.to_json())  # plain JSON: no pickle, no numpy objects
    again = Preprocessor.from_json({**json.loads(text), "class_names": ["a"]})  # extra keys: ignored
    new_x = RNG.normal(0, 5, (9, 5))
    np.testing.assert_array_equal(again.transform_x(new_x), pre.transform_x(new_x))
    np.testing.assert_array_equal(again.transform_y(Y[:9]), pre.transform_y(Y[:9]))
    # the stored statistics are the training split's, halved by the scale step
    std = next(s for s in json.loads(text)["x"] if s["op"] == "standardize")
    np.testing.assert_allclose(std["mean"]["values"], (X / 2).mean(axis=0))


def test_predict_time_shape_mismatch_and_bad_json() -> None:
    pre, _, _ = fit(["standardize"])
    with pytest.raises(DataError, match=r"expected samples of shape \(5,\)"):
        pre.transform_x(np.zeros((2, 4)))
    with pytest.raises(ArtifactError):
        Preprocessor.from_json({"format": 99})
