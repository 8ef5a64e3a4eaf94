"""Losses against real Keras (torch backend), hand-computed cases, and target-shape checks."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest
import torch
from pydantic import TypeAdapter

from trainctl.config.compile import Loss as LossField
from trainctl.errors import ConfigError, DataError
from trainctl.training.losses import build_loss, check_targets

os.environ.setdefault("KERAS_BACKEND", "torch")

N, K = 24, 5
REDUCTIONS = ["sum_over_batch_size", "sum", "mean", "none"]


def spec(value: Any) -> Any:
    return TypeAdapter(LossField).validate_python(value)


def keras_value(keras: Any, cls: str, y_true: np.ndarray, y_pred: np.ndarray, weight: Any, **kw: Any) -> np.ndarray:
    loss = getattr(keras.losses, cls)(**kw)
    out = loss(y_true, y_pred, sample_weight=weight)
    return np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float64)


def ours(loss_spec: Any, final: str, y_out: np.ndarray, y_true: np.ndarray, weight: Any) -> float:
    loss = build_loss(spec(loss_spec), final)
    w = None if weight is None else torch.from_numpy(weight)
    return float(loss(torch.from_numpy(y_out), torch.from_numpy(y_true), w))


def expected(keras_out: np.ndarray) -> float:
    # reduction "none": Keras returns the weighted per-sample values; ours is their sum
    return float(keras_out.sum())


RNG = np.random.default_rng(0)


def _regression_data(kind: str, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    if kind == "positive":
        return RNG.uniform(0.0, 3.0, shape).astype(np.float32), RNG.uniform(0.01, 3.0, shape).astype(np.float32)
    if kind == "prob":
        t = RNG.dirichlet(np.ones(shape[-1]), shape[0]).astype(np.float32)
        p = RNG.dirichlet(np.ones(shape[-1]), shape[0]).astype(np.float32)
        p[0, 0] = 0.0  # exercises the clip at epsilon
        return t, p
    if kind == "binary":
        return RNG.integers(0, 2, shape).astype(np.float32), RNG.normal(0, 1.5, shape).astype(np.float32)
    if kind == "signed":
        return RNG.choice([-1.0, 1.0], shape).astype(np.float32), RNG.normal(0, 1.5, shape).astype(np.float32)
    t = RNG.normal(0, 2, shape).astype(np.float32)
    t[0, 0] = 0.0  # mape divides by max(|y|, eps)
    return t, RNG.normal(0, 2, shape).astype(np.float32)


REGRESSION = [
    ("mse", "MeanSquaredError", {}, "real"),
    ("mae", "MeanAbsoluteError", {}, "real"),
    ("mape", "MeanAbsolutePercentageError", {}, "real"),
    ("msle", "MeanSquaredLogarithmicError", {}, "positive"),
    ({"type": "huber", "delta": 0.7}, "Huber", {"delta": 0.7}, "real"),
    ("log_cosh", "LogCosh", {}, "real"),
    ("hinge", "Hinge", {}, "binary"),
    ("hinge", "Hinge", {}, "signed"),
    ("poisson", "Poisson", {}, "positive"),
    ("kl_divergence", "KLDivergence", {}, "prob"),
    ("cosine_similarity", "CosineSimilarity", {}, "real"),
]


@pytest.mark.parametrize(("name", "cls", "kw", "data"), REGRESSION, ids=lambda v: str(v)[:24])
def test_regression_losses_match_keras(keras: Any, name: Any, cls: str, kw: dict, data: str) -> None:
    y_true, y_pred = _regression_data(data, (N, K))
    weight = RNG.uniform(0.0, 2.0, N).astype(np.float32)
    base = {"type": name} if isinstance(name, str) else dict(name)
    for reduction in ("sum_over_batch_size", "none"):
        for w in (None, weight):
            got = ours({**base, "reduction": reduction}, "linear", y_pred, y_true, w)
            want = expected(keras_value(keras, cls, y_true, y_pred, w, reduction=reduction, **kw))
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("name", "cls"), [("mse", "MeanSquaredError"), ("log_cosh", "LogCosh")])
def test_reductions_over_a_time_axis_match_keras(keras: Any, name: str, cls: str, reduction: str) -> None:
    # per-element values of shape (N, T): the divisor is N*T, and weights may be (N,) or (N, T)
    y_true, y_pred = _regression_data("real", (6, 7, K))
    for w in (None, RNG.uniform(0, 2, (6, 7)).astype(np.float32)):
        got = ours({"type": name, "reduction": reduction}, "linear", y_pred, y_true, w)
        want = expected(keras_value(keras, cls, y_true, y_pred, w, reduction=reduction))
        np.testing.assert_allclose(got, want, rtol=1e-5)


def test_per_sample_equals_keras_unreduced(keras: Any) -> None:
    y_true, y_pred = _regression_data("real", (N, K))
    loss = build_loss(spec("huber"), "linear")
    got = loss.per_sample(torch.from_numpy(y_pred), torch.from_numpy(y_true)).numpy()
    want = keras_value(keras, "Huber", y_true, y_pred, None, reduction="none")
    assert got.shape == (N,)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_targets_of_rank_one_meet_an_output_of_width_one(keras: Any) -> None:
    y_true = RNG.normal(size=N).astype(np.float32)
    y_pred = RNG.normal(size=(N, 1)).astype(np.float32)
    weight = RNG.uniform(size=(N, 1)).astype(np.float32)
    got = ours("mse", "linear", y_pred, y_true, weight)
    np.testing.assert_allclose(got, keras_value(keras, "MeanSquaredError", y_true, y_pred, weight), rtol=1e-6)


# --- crossentropy: the probability path, the fused path and from_logits --------------------


def _logits(shape: tuple[int, ...]) -> np.ndarray:
    """Moderate logits, plus saturated rows whose probabilities hit Keras's clip both ways."""
    z = RNG.normal(0, 1.5, shape)
    z[:4] = RNG.choice([-1.0, 1.0], (4, *shape[1:])) * RNG.uniform(18, 40, (4, *shape[1:]))
    return z.astype(np.float32)


def _softmax(z: np.ndarray) -> np.ndarray:
    return torch.softmax(torch.from_numpy(z), -1).numpy()


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return torch.sigmoid(torch.from_numpy(z)).numpy()


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_categorical_crossentropy_matches_keras(keras: Any, smoothing: float, reduction: str) -> None:
    z = _logits((N, K))
    p = _softmax(z)
    p[5] = [0.0, 0.3, 0.3, 0.2, 0.1]  # does not sum to 1, and a zero: renormalise, then clip
    z[5] = np.log(np.maximum(p[5], 1e-30))  # the same distribution for the fused path
    y = np.eye(K, dtype=np.float32)[RNG.integers(0, K, N)]
    y[5] = np.eye(K)[0]  # target on the zero-probability class
    weight = RNG.uniform(0.0, 2.0, N).astype(np.float32)
    s = {"type": "categorical_crossentropy", "label_smoothing": smoothing, "reduction": reduction}
    for w in (None, weight):
        kw = {"label_smoothing": smoothing, "reduction": reduction}
        want = expected(keras_value(keras, "CategoricalCrossentropy", y, p, w, **kw))
        np.testing.assert_allclose(ours(s, "linear", p, y, w), want, rtol=1e-5)
        np.testing.assert_allclose(ours(s, "softmax", z, y, w), want, rtol=1e-5)
        want_logits = expected(keras_value(keras, "CategoricalCrossentropy", y, z, w, from_logits=True, **kw))
        np.testing.assert_allclose(ours({**s, "from_logits": True}, "linear", z, y, w), want_logits, rtol=1e-5)


@pytest.mark.parametrize("ignore_class", [None, 2])
@pytest.mark.parametrize("label_shape", [(N,), (N, 1)])
def test_sparse_categorical_crossentropy_matches_keras(keras: Any, ignore_class: Any, label_shape: tuple) -> None:
    z = _logits((N, K))
    p = _softmax(z)
    labels = RNG.integers(0, K, N)
    labels[:3] = 2
    y = labels.reshape(label_shape)
    weight = RNG.uniform(0.0, 2.0, N).astype(np.float32)
    s = {"type": "sparse_categorical_crossentropy", "ignore_class": ignore_class}
    for w in (None, weight):
        kw = {"ignore_class": ignore_class}
        want = expected(keras_value(keras, "SparseCategoricalCrossentropy", y, p, w, **kw))
        np.testing.assert_allclose(ours(s, "linear", p, y, w), want, rtol=1e-5)
        np.testing.assert_allclose(ours(s, "softmax", z, y, w), want, rtol=1e-5)
        want_logits = expected(keras_value(keras, "SparseCategoricalCrossentropy", y, z, w, from_logits=True, **kw))
        np.testing.assert_allclose(ours({**s, "from_logits": True}, "linear", z, y, w), want_logits, rtol=1e-5)


def test_sparse_crossentropy_over_a_sequence_matches_keras(keras: Any) -> None:
    z = _logits((6, 7, K)).reshape(6, 7, K)
    y = RNG.integers(0, K, (6, 7))
    y[0, :3] = 0
    s = {"type": "sparse_categorical_crossentropy", "ignore_class": 0}
    want = expected(keras_value(keras, "SparseCategoricalCrossentropy", y, _softmax(z), None, ignore_class=0))
    np.testing.assert_allclose(ours(s, "softmax", z, y, None), want, rtol=1e-5)


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("width", [1, 3])
def test_binary_crossentropy_matches_keras(keras: Any, smoothing: float, width: int, reduction: str) -> None:
    z = _logits((N, width))
    p = _sigmoid(z)
    p[4, 0], p[5, 0] = 0.0, 1.0  # exact 0 and 1: only the clip keeps these finite
    z[4, 0], z[5, 0] = -60.0, 60.0
    y = RNG.integers(0, 2, (N, width)).astype(np.float32)
    y[4, 0], y[5, 0] = 1.0, 0.0
    weight = RNG.uniform(0.0, 2.0, N).astype(np.float32)
    s = {"type": "binary_crossentropy", "label_smoothing": smoothing, "reduction": reduction}
    for w in (None, weight):
        kw = {"label_smoothing": smoothing, "reduction": reduction}
        want = expected(keras_value(keras, "BinaryCrossentropy", y, p, w, **kw))
        np.testing.assert_allclose(ours(s, "linear", p, y, w), want, rtol=1e-5)
        np.testing.assert_allclose(ours(s, "sigmoid", z, y, w), want, rtol=1e-5)
        want_logits = expected(keras_value(keras, "BinaryCrossentropy", y, z, w, from_logits=True, **kw))
        np.testing.assert_allclose(ours({**s, "from_logits": True}, "linear", z, y, w), want_logits, rtol=1e-5)


def test_clipping_caps_the_per_element_crossentropy() -> None:
    # -log(1e-7) = 16.118: the largest loss Keras gives for a confident wrong prediction
    loss = build_loss(spec("categorical_crossentropy"), "softmax")
    z = torch.tensor([[100.0, 0.0]])
    assert float(loss(z, torch.tensor([[0.0, 1.0]]))) == pytest.approx(-np.log(np.float32(1e-7)), rel=1e-6)


@pytest.mark.parametrize(
    ("name", "activation", "smoothing"),
    [
        ("categorical_crossentropy", "softmax", 0.1),
        ("sparse_categorical_crossentropy", "softmax", 0.0),
        ("binary_crossentropy", "sigmoid", 0.1),
    ],
)
def test_fused_gradient_equals_unfused_gradient(name: str, activation: str, smoothing: float) -> None:
    g = torch.Generator().manual_seed(1)
    z = (torch.randn(16, 4, generator=g, dtype=torch.float64) * 2).requires_grad_(True)
    if name == "sparse_categorical_crossentropy":
        y = torch.randint(0, 4, (16,), generator=g)
        s: dict[str, Any] = {"type": name}
    else:
        y = (torch.rand(16, 4, generator=g, dtype=torch.float64) > 0.5).double()
        if name == "categorical_crossentropy":
            y = torch.eye(4, dtype=torch.float64)[torch.randint(0, 4, (16,), generator=g)]
        s = {"type": name, "label_smoothing": smoothing}
    weight = torch.rand(16, generator=g, dtype=torch.float64)
    fused = build_loss(spec(s), activation)
    plain = build_loss(spec(s), "linear")
    assert fused.takes_logits and not plain.takes_logits
    act = torch.softmax(z, -1) if activation == "softmax" else torch.sigmoid(z)
    (g_fused,) = torch.autograd.grad(fused(z, y, weight), z)
    (g_plain,) = torch.autograd.grad(plain(act, y, weight), z)
    torch.testing.assert_close(g_fused, g_plain, rtol=1e-9, atol=1e-12)


def test_names_and_logits_flags() -> None:
    assert build_loss(spec("cce"), "softmax").name == "categorical_crossentropy"
    assert build_loss(spec("bce"), "sigmoid").takes_logits
    assert not build_loss(spec("bce"), "softmax").takes_logits  # nothing to fuse with
    assert not build_loss(spec({"type": "bce", "from_logits": True}), "linear").takes_logits
    assert not build_loss(spec("mse"), "linear").takes_logits
    with pytest.raises(ConfigError, match="from_logits"):
        build_loss(spec({"type": "cce", "from_logits": True}), "softmax")


# --- hand-computed cases (float64 numpy) -----------------------------------------------------


def _ours64(name: Any, y_pred: list, y_true: list, weight: list | None = None) -> float:
    loss = build_loss(spec(name), "linear")
    w = None if weight is None else torch.tensor(weight, dtype=torch.float64)
    return float(loss(torch.tensor(y_pred, dtype=torch.float64), torch.tensor(y_true, dtype=torch.float64), w))


def test_mse_by_hand() -> None:
    # per sample: mean((1-0)^2, (2-4)^2) = 2.5 and mean(0, (3-0)^2) = 4.5
    assert _ours64("mse", [[0.0, 4.0], [5.0, 0.0]], [[1.0, 2.0], [5.0, 3.0]]) == pytest.approx(3.5)
    # weights 2 and 0: (2*2.5 + 0)/2 samples, not /(sum of weights)
    assert _ours64("mse", [[0.0, 4.0], [5.0, 0.0]], [[1.0, 2.0], [5.0, 3.0]], [2.0, 0.0]) == pytest.approx(2.5)


def test_huber_by_hand() -> None:
    # delta 1: errors 0.5 -> 0.125 ; 3 -> 1*3 - 0.5 = 2.5 ; -2 -> 1.5 ; 0 -> 0
    got = _ours64({"type": "huber", "delta": 1.0}, [[0.5, 3.0], [-2.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]])
    assert got == pytest.approx(((0.125 + 2.5) / 2 + 1.5 / 2) / 2)
    # delta 2: error 3 -> 2*3 - 2 = 4
    assert _ours64({"type": "huber", "delta": 2.0}, [[3.0]], [[0.0]]) == pytest.approx(4.0)


def test_hinge_by_hand() -> None:
    # 0/1 labels become -1/1: max(1 - (-1)(0.3), 0) = 1.3 ; max(1 - 1*2, 0) = 0 ; max(1 - 0.5, 0) = 0.5
    assert _ours64("hinge", [[0.3, 2.0, 0.5]], [[0.0, 1.0, 1.0]]) == pytest.approx(1.8 / 3)
    # labels not all 0/1 are used as they are: max(1 - 0.5*2, 0) = 0 ; max(1 - 0*2, 0) = 1
    assert _ours64("hinge", [[2.0, 2.0]], [[0.5, 0.0]]) == pytest.approx(0.5)


def test_reductions_by_hand() -> None:
    y_pred, y_true = [[1.0], [3.0], [0.0]], [[0.0], [0.0], [0.0]]  # squared errors 1, 9, 0
    assert _ours64({"type": "mse", "reduction": "sum"}, y_pred, y_true) == pytest.approx(10.0)
    assert _ours64({"type": "mse", "reduction": "mean"}, y_pred, y_true) == pytest.approx(10 / 3)
    assert _ours64({"type": "mse", "reduction": "none"}, y_pred, y_true, [1.0, 0.5, 3.0]) == pytest.approx(5.5)


# --- target checks ---------------------------------------------------------------------------


def test_categorical_crossentropy_with_integer_labels_is_explained() -> None:
    with pytest.raises(DataError) as err:
        check_targets(spec("categorical_crossentropy"), (60000,), (None, 10))
    e = err.value
    assert e.exit_code == 3 and e.key == "compile.loss"
    assert "expected one-hot targets of shape (N, 10) for categorical_crossentropy" in str(e)
    assert "received labels of shape (60000,)" in str(e)
    assert "{one_hot: 10}" in (e.hint or "") and "sparse_categorical_crossentropy" in (e.hint or "")


def test_sparse_crossentropy_with_one_hot_targets_is_explained() -> None:
    with pytest.raises(DataError) as err:
        check_targets(spec("scce"), (60000, 10), (32, 10), key="compile.loss")
    assert "expected integer class labels of shape (N,)" in str(err.value)
    assert "one-hot targets of shape (60000, 10)" in str(err.value)
    assert "categorical_crossentropy" in (err.value.hint or "")


@pytest.mark.parametrize(
    ("loss", "y_shape", "out_shape", "words"),
    [
        ("mse", (100, 1), (None, 3), "expected targets of shape (N, 3)"),
        ("mae", (100,), (None, 3), "received targets of shape (100,)"),
        ("mse", (100, 2), (None, 3), "give the last layer 2 units"),
        ("categorical_crossentropy", (100, 4), (None, 10), "expected targets of shape (N, 10)"),
        ("categorical_crossentropy", (100, 1), (None, 1), "one unit per class"),
        ("sparse_categorical_crossentropy", (100,), (None, 1), "one unit per class"),
        ("binary_crossentropy", (100,), (None, 10), "sparse_categorical_crossentropy"),
    ],
)
def test_mismatched_targets_raise(loss: str, y_shape: tuple, out_shape: tuple, words: str) -> None:
    with pytest.raises(DataError) as err:
        check_targets(spec(loss), y_shape, out_shape, key="data.y")
    assert words in err.value.render() and err.value.key == "data.y"


@pytest.mark.parametrize(
    ("loss", "y_shape", "out_shape"),
    [
        ("sparse_categorical_crossentropy", (100,), (None, 10)),
        ("sparse_categorical_crossentropy", (100, 1), (None, 10)),
        ("sparse_categorical_crossentropy", (8, 7), (None, 7, 10)),
        ("categorical_crossentropy", (100, 10), (None, 10)),
        ("binary_crossentropy", (100,), (None, 1)),
        ("binary_crossentropy", (100, 5), (None, 5)),
        ("mse", (100,), (None, 1)),
        ("mse", (100, 3), (None, 3)),
        ("huber", (100, 1), (None,)),
    ],
)
def test_matching_targets_pass(loss: str, y_shape: tuple, out_shape: tuple) -> None:
    check_targets(spec(loss), y_shape, out_shape)
